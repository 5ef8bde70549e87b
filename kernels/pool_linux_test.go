package kernels

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// TestPoolThreads: each helper runs setup and all its shares on one OS
// thread of its own; worker 0 runs on the caller's; Close ends the
// helpers' threads.
func TestPoolThreads(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	caller := syscall.Gettid()
	var mu sync.Mutex
	setupTids := map[int]bool{}
	p := NewPool(3, func() {
		mu.Lock()
		setupTids[syscall.Gettid()] = true
		mu.Unlock()
	}, nil)
	if len(setupTids) != 2 || setupTids[caller] {
		t.Fatalf("setup on threads %v (caller %d): want 2 helper threads", setupTids, caller)
	}
	workerTid := map[int]int{}
	for range 20 {
		p.For(9, 3, func(w, _ int) {
			tid := syscall.Gettid()
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := workerTid[w]; ok && prev != tid {
				t.Errorf("worker %d moved from thread %d to %d", w, prev, tid)
			}
			workerTid[w] = tid
		})
	}
	if workerTid[0] != caller {
		t.Fatalf("worker 0 on thread %d, caller on %d", workerTid[0], caller)
	}
	for w := 1; w < 3; w++ {
		if !setupTids[workerTid[w]] {
			t.Fatalf("worker %d on thread %d, not a helper thread %v", w, workerTid[w], setupTids)
		}
	}
	if workerTid[1] == workerTid[2] {
		t.Fatalf("workers 1 and 2 share thread %d", workerTid[1])
	}
	p.Close()
	for tid := range setupTids {
		if tid == os.Getpid() {
			continue // the main thread: the runtime parks it for good instead of ending it
		}
		// The runtime ends a thread whose locked goroutine exits; allow
		// it a moment to be reaped.
		for try := 0; ; try++ {
			if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(tid)); os.IsNotExist(err) {
				break
			}
			if try == 200 {
				t.Fatalf("helper thread %d still exists after Close", tid)
			}
			runtime.Gosched()
			syscall.Nanosleep(&syscall.Timespec{Nsec: 5e6}, nil)
		}
	}
}
