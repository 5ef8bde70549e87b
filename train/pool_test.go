package train

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/nettrans"
)

// TestUsePool: for each architecture, a classifier moved onto a
// kernels.Pool after its workspaces exist (as live classify does after its
// warm-up run) runs its workers there and gives exactly the logits of the
// goroutine-per-call run, in eval and training mode; Threads is capped by
// the batch.
func TestUsePool(t *testing.T) {
	d := synthData(7, 3, 5)
	cfgs := map[string]arch.Config{
		"netmamba": {EmbedDim: 16, Depth: 1, ByteLength: 400, NumClasses: 3},
		"fuse3": {Arch: model.ArchFuse3, NumClasses: 3, EmbedDim: 16, Depth: 1, DState: 4, ByteLength: 64, Stride: 4,
			Modalities: []string{"bytes", "sizes", "iats"}},
		"nettrans": tinyNetTransConfig(nettrans.ArchBytes),
	}
	idx := []int{6, 0, 3, 1, 5, 2, 4}
	for name, cfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			net, _, err := NewClassifier(cfg, 3, len(idx), 3, 0)
			if err != nil {
				t.Fatal(err)
			}
			pn, ok := net.(Pooled)
			if !ok {
				t.Fatalf("%T is not Pooled", net)
			}
			if pn.Threads() != 3 {
				t.Fatalf("Threads %d, want 3", pn.Threads())
			}
			if small, _, _ := NewClassifier(cfg, 3, 2, 3, 0); small.(Pooled).Threads() != 2 {
				t.Fatalf("batch 2, 3 threads: Threads %d, want 2", small.(Pooled).Threads())
			}
			run := func() (eval, tr []float32) {
				eval = make([]float32, len(idx)*3)
				tr = make([]float32, len(idx)*3)
				if err := net.Forward(d, idx, eval); err != nil {
					t.Fatal(err)
				}
				if err := net.ForwardTrain(d, idx, tr, rand.New(rand.NewPCG(1, 2))); err != nil {
					t.Fatal(err)
				}
				return eval, tr
			}
			wantEval, wantTrain := run() // workspaces created without a pool
			var shares atomic.Int32
			pool := kernels.NewPool(pn.Threads(), nil, func(f func()) { shares.Add(1); f() })
			defer pool.Close()
			pn.UsePool(pool)
			gotEval, gotTrain := run()
			if shares.Load() == 0 {
				t.Fatal("no work ran on the pool's helpers")
			}
			if !slices.Equal(gotEval, wantEval) || !slices.Equal(gotTrain, wantTrain) {
				t.Fatalf("logits differ on the pool:\neval %v\nwant %v\ntrain %v\nwant %v", gotEval, wantEval, gotTrain, wantTrain)
			}
			pn.UsePool(nil)
			before := shares.Load()
			if e, _ := run(); !slices.Equal(e, wantEval) || shares.Load() != before {
				t.Fatalf("after UsePool(nil): %d more helper shares, logits equal %v", shares.Load()-before, slices.Equal(e, wantEval))
			}
		})
	}
}
