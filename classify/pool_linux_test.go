package classify

import (
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/train"
)

// TestWorkerSetupCoversModelThreads: with WorkerSetup and a model on 2
// threads, each classifier worker runs its model's second worker on a
// helper thread that ran WorkerSetup too (live capture lowers every
// model thread's priority there), HelperRun sees that helper's share, and
// the results are exactly those of a run without WorkerSetup (goroutines
// per call). The models have run once before (live classify's warm-up),
// so their workspaces exist before the pipeline starts; after Close every
// thread that ran WorkerSetup is gone (none returns to the scheduler).
func TestWorkerSetupCoversModelThreads(t *testing.T) {
	trace := tracePath(t)
	mpath := writeTinyModel(t, 8, 1)
	load := func() (*train.Loaded, []train.Classifier) {
		var nets []train.Classifier
		var first *train.Loaded
		for range 2 {
			l, err := train.LoadClassifier(mpath, 64, 2)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := l.Net.(train.Pooled); !ok {
				t.Fatalf("%T is not train.Pooled", l.Net)
			}
			first = l
			nets = append(nets, l.Net)
		}
		return first, nets
	}
	l, nets := load()
	opts := Options{Classes: l.Meta.Classes, Bidirectional: true, Block: true, Filter: "tcp port 443"}
	plain, _ := classifyFile(t, trace, nets, opts)

	var mu sync.Mutex
	setupTids := map[int]bool{}
	helperTids := map[int]int{}
	opts.WorkerSetup = func() {
		mu.Lock()
		setupTids[syscall.Gettid()] = true
		mu.Unlock()
	}
	opts.HelperRun = func(run func()) {
		mu.Lock()
		helperTids[syscall.Gettid()]++
		mu.Unlock()
		run()
	}
	_, nets = load()
	for _, n := range nets { // warm-up: workspaces made before the pool
		if err := n.Forward(&train.Data{N: 1, Bytes: make([]byte, repr.ViewBytes), Views: make([]repr.View, 1)}, []int{0}, make([]float32, n.NumClasses())); err != nil {
			t.Fatal(err)
		}
	}
	pooled, st := classifyFile(t, trace, nets, opts)
	if len(setupTids) != 4 {
		t.Fatalf("WorkerSetup ran on %d threads, want 4 (2 classifier workers + 1 helper each)", len(setupTids))
	}
	if len(helperTids) == 0 {
		t.Fatalf("no batch share ran on a helper thread (%d flows classified)", st.Flows)
	}
	for tid := range helperTids {
		if !setupTids[tid] {
			t.Fatalf("a helper share ran on thread %d, which did not run WorkerSetup %v", tid, setupTids)
		}
	}
	if len(pooled.final) != len(plain.final) || len(plain.final) == 0 {
		t.Fatalf("%d results with a pool, %d without", len(pooled.final), len(plain.final))
	}
	for id, a := range plain.final {
		b := pooled.final[id]
		if a.Label != b.Label || a.Confidence != b.Confidence {
			t.Fatalf("flow %v: pool %s %v, goroutines %s %v", id, b.Label, b.Confidence, a.Label, a.Confidence)
		}
	}
	for tid := range setupTids {
		if tid == os.Getpid() {
			// The main thread: the runtime parks it for good instead
			// of ending it (it never runs a goroutine again).
			continue
		}
		for try := 0; ; try++ {
			if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(tid)); os.IsNotExist(err) {
				break
			}
			if try == 2000 {
				pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
				st, _ := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
				t.Fatalf("thread %d, set up by WorkerSetup, still exists after Close (helpers %v): %s", tid, helperTids, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("%d flows; helper shares per thread %v", len(plain.final), helperTids)
}
