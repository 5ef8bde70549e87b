//go:build linux || darwin || freebsd || netbsd || openbsd

package dataset

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps path read-only into memory.
func mapFile(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() error { return nil }, nil
	}
	if st.Size() != int64(int(st.Size())) {
		return readAll(path)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return readAll(path) // e.g. a pipe or a file system without mmap
	}
	return b, func() error { return unix.Munmap(b) }, nil
}
