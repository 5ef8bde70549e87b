package kernels

import (
	"runtime"
	"sync"
)

// Threads resolves a worker count as the --threads flags mean it: threads
// itself, or runtime.GOMAXPROCS(0) (every CPU the scheduler uses) when
// threads <= 0.
func Threads(threads int) int {
	if threads <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return threads
}

// ParallelFor calls fn(worker, i) for every i in [0, n) on up to threads
// goroutines (threads <= 0 means runtime.GOMAXPROCS(0)). worker is in
// [0, threads) and identifies the goroutine, so callers can give each
// worker its own scratch memory. Items are handed out in contiguous
// blocks: worker w gets i in [w·n/threads, (w+1)·n/threads), so the
// assignment is deterministic for a given n and threads.
func ParallelFor(n, threads int, fn func(worker, i int)) {
	threads = Threads(threads)
	if threads > n {
		threads = n
	}
	if threads <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(threads)
	for w := 0; w < threads; w++ {
		lo, hi := w*n/threads, (w+1)*n/threads
		go func(w, lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				fn(w, i)
			}
		}(w, lo, hi)
	}
	wg.Wait()
}
