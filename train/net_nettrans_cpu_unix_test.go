//go:build unix

package train

import (
	"syscall"
	"time"
)

// nettransCPUTime is the process's user+system CPU time (getrusage): on a
// shared machine it measures a benchmark's work better than wall time.
func nettransCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
