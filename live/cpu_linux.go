//go:build linux

package live

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// ThreadCPUTime is the CPU time (user + system) the calling OS thread has
// used. Call it from a goroutine locked to its thread
// (runtime.LockOSThread), or the figure mixes threads.
func ThreadCPUTime() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("live: thread CPU clock: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

// threadCPUTime is the CPU time of thread tid of this process, read from
// its per-thread CPU clock (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).
func threadCPUTime(tid int) (time.Duration, error) {
	const perThread, sched = 4, 2
	clock := int32(^tid)<<3 | perThread | sched
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, fmt.Errorf("live: CPU clock of thread %d: %w", tid, err)
	}
	return time.Duration(ts.Nano()), nil
}
