package kernels

import (
	"runtime"
	"sync"
)

// Pool runs parallel loops on a fixed set of helper goroutines, each
// locked to its own OS thread for the pool's life. ParallelFor starts
// goroutines per call, and they run on whatever threads the Go scheduler
// picks; a Pool's helpers always run on their own threads, so what a
// setup function sets on a thread (live capture lowers its scheduling
// priority) holds for every loop the pool runs. The caller of For is
// worker 0 and runs its share itself.
//
// A Pool is not safe for concurrent use: one For at a time.
type Pool struct {
	tasks  []chan poolTask // helper w-1 receives worker w's share
	wrap   func(run func())
	busy   sync.WaitGroup // the current For's helpers
	alive  sync.WaitGroup // helpers not yet exited
	closed sync.Once
}

// poolTask is worker w's share of a For: fn(w, i) for i in [lo, hi).
type poolTask struct {
	fn        func(worker, i int)
	w, lo, hi int
}

// NewPool starts a pool of threads workers: the caller of For and
// threads-1 helpers (threads <= 0 means runtime.GOMAXPROCS(0)). setup, if
// non-nil, runs once on each helper's thread before any work; wrap, if
// non-nil, runs each helper's share of every loop (to measure its thread's
// CPU time, say). Close stops the helpers.
func NewPool(threads int, setup func(), wrap func(run func())) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{tasks: make([]chan poolTask, threads-1), wrap: wrap}
	ready := make(chan struct{})
	p.alive.Add(threads - 1)
	for h := range p.tasks {
		p.tasks[h] = make(chan poolTask, 1)
		go p.helper(p.tasks[h], setup, ready)
	}
	for range p.tasks {
		<-ready
	}
	return p
}

// helper is one helper goroutine: locked to its thread, which it never
// unlocks, so the thread (and whatever setup set on it) ends with it
// (the main thread, which the runtime cannot end, is parked for good).
func (p *Pool) helper(tasks <-chan poolTask, setup func(), ready chan<- struct{}) {
	defer p.alive.Done()
	runtime.LockOSThread()
	if setup != nil {
		setup()
	}
	ready <- struct{}{}
	var cur poolTask
	run := func() {
		for i := cur.lo; i < cur.hi; i++ {
			cur.fn(cur.w, i)
		}
	}
	for t := range tasks {
		cur = t
		if p.wrap != nil {
			p.wrap(run)
		} else {
			run()
		}
		cur = poolTask{}
		p.busy.Done()
	}
}

// Threads is the number of workers: the caller of For and the helpers.
// A nil Pool has none (For is then ParallelFor).
func (p *Pool) Threads() int {
	if p == nil {
		return 0
	}
	return len(p.tasks) + 1
}

// For is ParallelFor(n, threads, fn) on the pool's threads: the same
// contiguous blocks, worker w running [w·n/t, (w+1)·n/t) with t =
// min(threads, n), so results equal ParallelFor's for the same threads.
// threads <= 0 or above p.Threads() means p.Threads(). Worker 0's block
// runs on the calling goroutine. A nil Pool is ParallelFor.
func (p *Pool) For(n, threads int, fn func(worker, i int)) {
	if p == nil {
		ParallelFor(n, threads, fn)
		return
	}
	if threads <= 0 || threads > p.Threads() {
		threads = p.Threads()
	}
	threads = min(threads, n)
	if threads <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	p.busy.Add(threads - 1)
	for w := 1; w < threads; w++ {
		p.tasks[w-1] <- poolTask{fn: fn, w: w, lo: w * n / threads, hi: (w + 1) * n / threads}
	}
	// Deferred: should fn panic on worker 0 and the panic be recovered,
	// the helpers still finish before the next For reuses their memory.
	defer p.busy.Wait()
	for i := 0; i < n/threads; i++ { // worker 0: [0, n/threads)
		fn(0, i)
	}
}

// Close stops the helpers (their threads exit with them) and waits for
// them. A closed Pool must not run a For; Close on nil or a closed Pool
// does nothing.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.closed.Do(func() {
		for _, t := range p.tasks {
			close(t)
		}
	})
	p.alive.Wait()
}
