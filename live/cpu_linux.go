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

// LowerThreadPriority raises the nice value of the calling OS thread by
// delta (Linux applies setpriority(PRIO_PROCESS, tid) to one thread), so
// that under CPU contention the scheduler favours the process's other
// threads — capture over the classifier. Call it from a goroutine locked
// to its thread (runtime.LockOSThread), or the priority sticks to
// whatever thread the goroutine happened to run on. An unprivileged
// process may lower its priority, never raise it back.
func LowerThreadPriority(delta int) error {
	tid := unix.Gettid()
	// getpriority(2)'s raw value is 20 - nice; x/sys returns it as is.
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return fmt.Errorf("live: priority of thread %d: %w", tid, err)
	}
	nice := min(20-raw+delta, 19)
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
		return fmt.Errorf("live: setting nice %d on thread %d: %w", nice, tid, err)
	}
	return nil
}

// threadNice is the nice value of the calling thread.
func threadNice() (int, error) {
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		return 0, fmt.Errorf("live: thread priority: %w", err)
	}
	return 20 - raw, nil
}
