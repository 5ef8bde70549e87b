//go:build linux

package live

import (
	"context"
	"crypto/sha256"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// work is a fixed amount of CPU work.
func work() byte {
	buf := make([]byte, 1<<20)
	var sum [32]byte
	for range 8 {
		sum = sha256.Sum256(buf)
		buf[0] = sum[0]
	}
	return sum[0]
}

// rusageCPU is the CPU time of the calling thread (RUSAGE_THREAD) or the
// process (RUSAGE_SELF) from getrusage, independent of the CPU clocks.
func rusageCPU(t *testing.T, who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCaptureCPUTime runs a fixed CPU cost in the capture Handler for each
// of 10 frames and checks Capture.CPUTime against getrusage: at least half
// the cost of the same work measured on a pinned thread (getrusage
// RUSAGE_THREAD), at most the process's CPU time over the run, and kept
// after Run returns.
func TestCaptureCPUTime(t *testing.T) {
	requireRaw(t)
	runtime.LockOSThread()
	t0 := rusageCPU(t, unix.RUSAGE_THREAD)
	for range 10 {
		work()
	}
	cost := rusageCPU(t, unix.RUSAGE_THREAD) - t0
	runtime.UnlockOSThread()

	txIf, rxIf := vethPair(t)
	c, err := Open(Config{Interface: rxIf, Workers: 2, BlockSize: 1 << 16, NumBlocks: 8, RetireTimeout: 2 * time.Millisecond, Filter: udpFilter(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p0 := rusageCPU(t, unix.RUSAGE_SELF)
	var seen atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(ctx, func(int) Handler {
			return func([]byte, int64, int) {
				work()
				seen.Add(1)
			}
		})
	}()
	s := newSender(t, txIf)
	for i := range 10 {
		if err := s.send(testFrame(i, 100, mac(t, txIf), mac(t, rxIf))); err != nil {
			t.Fatal(err)
		}
	}
	for end := time.Now().Add(20 * time.Second); seen.Load() < 10 && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	during, err := c.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	after, err := c.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	proc := rusageCPU(t, unix.RUSAGE_SELF) - p0
	if seen.Load() != 10 {
		t.Fatalf("%d frames handled, want 10", seen.Load())
	}
	if during < cost/2 || after < during || after > proc+10*time.Millisecond {
		t.Errorf("capture CPU %v during Run, %v after; want >= %v (half the work's cost on one thread) and <= %v (process)", during, after, cost/2, proc)
	}
	t.Logf("work %v; capture CPU %v during Run, %v after; process %v", cost, during, after, proc)
}

// TestLowerThreadPriority: the calling (locked) thread's nice value rises
// by the delta, and another thread of the process keeps its own.
func TestLowerThreadPriority(t *testing.T) {
	other := make(chan int)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		n, err := threadNice()
		if err != nil {
			t.Error(err)
		}
		other <- n
		<-other
		n, err = threadNice()
		if err != nil {
			t.Error(err)
		}
		other <- n
	}()
	otherBefore := <-other
	done := make(chan [2]int)
	go func() {
		runtime.LockOSThread()
		// not unlocked: the thread exits with the goroutine, its priority with it
		before, err := threadNice()
		if err != nil {
			t.Error(err)
		}
		if err := LowerThreadPriority(3); err != nil {
			t.Error(err)
		}
		after, err := threadNice()
		if err != nil {
			t.Error(err)
		}
		done <- [2]int{before, after}
	}()
	r := <-done
	other <- 0
	otherAfter := <-other
	if want := min(r[0]+3, 19); r[1] != want {
		t.Fatalf("nice %d -> %d, want %d", r[0], r[1], want)
	}
	if otherAfter != otherBefore {
		t.Fatalf("another thread's nice changed from %d to %d", otherBefore, otherAfter)
	}
}
