//go:build unix

package model

import (
	"syscall"
	"time"
)

// f3CPUTime is the process's user+system CPU time: on a shared machine it
// measures the work done, where wall time measures the contention too.
func f3CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
