//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package dataset

// mapFile reads path into memory (no mmap on this platform).
func mapFile(path string) ([]byte, func() error, error) { return readAll(path) }
