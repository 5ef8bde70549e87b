package kernels

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestPoolForMatchesParallelFor: every i runs exactly once, on the worker
// ParallelFor gives it, for a nil Pool and for pools larger and smaller
// than the requested threads.
func TestPoolForMatchesParallelFor(t *testing.T) {
	for _, size := range []int{1, 2, 3, 5} {
		p := NewPool(size, nil, nil)
		for _, n := range []int{0, 1, 2, 7, 64, 65} {
			for _, threads := range []int{1, 2, 3, 4, 8} {
				want := make([]int32, n)
				ParallelFor(n, min(threads, size), func(w, i int) { want[i] = int32(w) })
				got := make([]int32, n)
				var calls atomic.Int32
				p.For(n, threads, func(w, i int) {
					got[i] = int32(w)
					calls.Add(1)
				})
				if int(calls.Load()) != n {
					t.Fatalf("pool %d, n %d, threads %d: %d calls", size, n, threads, calls.Load())
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("pool %d, n %d, threads %d: item %d on worker %d, ParallelFor's %d", size, n, threads, i, got[i], want[i])
					}
				}
			}
		}
		p.Close()
	}
	var nilPool *Pool
	seen := make([]bool, 10)
	nilPool.For(10, 3, func(_, i int) { seen[i] = true })
	for i, s := range seen {
		if !s {
			t.Fatalf("nil pool skipped item %d", i)
		}
	}
	if nilPool.Threads() != 0 {
		t.Fatalf("nil pool has %d threads", nilPool.Threads())
	}
	nilPool.Close()
}

// TestPoolWrap: wrap runs each helper's share once per loop, never the
// caller's; setup runs once per helper.
func TestPoolWrap(t *testing.T) {
	var setups, wraps atomic.Int32
	p := NewPool(3, func() { setups.Add(1) }, func(run func()) { wraps.Add(1); run() })
	defer p.Close()
	if setups.Load() != 2 {
		t.Fatalf("setup ran %d times for 2 helpers", setups.Load())
	}
	for range 5 {
		p.For(30, 3, func(int, int) {})
	}
	p.For(30, 2, func(int, int) {}) // one helper
	p.For(1, 3, func(int, int) {})  // the caller alone
	if wraps.Load() != 5*2+1 {
		t.Fatalf("wrap ran %d times, want 11", wraps.Load())
	}
}

func BenchmarkParallelForSpawn(b *testing.B) {
	x := make([]float32, 64)
	for b.Loop() {
		ParallelFor(64, 2, func(_, i int) { x[i]++ })
	}
}

func BenchmarkPoolFor(b *testing.B) {
	p := NewPool(2, nil, nil)
	defer p.Close()
	x := make([]float32, 64)
	for b.Loop() {
		p.For(64, 2, func(_, i int) { x[i]++ })
	}
}

// TestThreads: a positive count is kept; 0 or less means GOMAXPROCS.
func TestThreads(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	for _, c := range [][2]int{{0, 3}, {-1, 3}, {1, 1}, {5, 5}} {
		if got := Threads(c[0]); got != c[1] {
			t.Errorf("Threads(%d) = %d with GOMAXPROCS 3, want %d", c[0], got, c[1])
		}
	}
}
