package nettrans

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
)

// TestSplitStepMatchesForwardBackward: ForwardTrain + Backward fed the
// label-smoothed cross-entropy gradient (softmax − target)/N gives the
// logits and gradients of ForwardBackward bit for bit (same dropout
// masks, same thread count), and Backward accumulates into g.
func TestSplitStepMatchesForwardBackward(t *testing.T) {
	for _, cfg := range tinyConfigs() {
		m, err := New(cfg, 4)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(8, 9))
		for i := range m.P.buf {
			m.P.buf[i] += float32(r.NormFloat64() * 0.1)
		}
		const n = 5
		b, labels := tinyBatch(m, n, r)
		C := m.d.classes
		opt := TrainOptions{LabelSmoothing: 0.1, Dropout: 0.2, Seed: 42}
		want := m.NewGrads()
		wantLogits := make([]float32, n*C)
		if _, err := m.ForwardBackward(b, labels, opt, wantLogits, want, m.NewWorkspace(2, true)); err != nil {
			t.Fatal(err)
		}
		ws := m.NewWorkspace(2, true)
		logits := make([]float32, n*C)
		if err := m.ForwardTrain(b, logits, opt, ws); err != nil {
			t.Fatal(err)
		}
		for i := range logits {
			if logits[i] != wantLogits[i] {
				t.Fatalf("%s %v: logit %d: ForwardTrain %g, ForwardBackward %g", cfg.Arch, cfg.Modalities, i, logits[i], wantLogits[i])
			}
		}
		dl := make([]float32, n*C)
		inv := float32(1.0 / n)
		for i := 0; i < n; i++ {
			crossEntropy(logits[i*C:(i+1)*C], labels[i], opt.LabelSmoothing, dl[i*C:(i+1)*C])
			for c := range C {
				dl[i*C+c] *= inv
			}
		}
		// the caller may overwrite its inputs between the two calls
		for i := range b.Bytes {
			b.Bytes[i] = 0
		}
		got := m.NewGrads()
		if err := m.Backward(dl, got, ws); err != nil {
			t.Fatal(err)
		}
		for i := range got.buf {
			if got.buf[i] != want.buf[i] {
				t.Fatalf("%s %v: gradient %d: split %g, ForwardBackward %g", cfg.Arch, cfg.Modalities, i, got.buf[i], want.buf[i])
			}
		}
		if err := m.Backward(dl, got, ws); err == nil {
			t.Fatal("a second Backward after one ForwardTrain was accepted")
		}
		// accumulation: a second step adds to g
		g2 := m.NewGrads()
		for _, dst := range []*Params{got, g2} {
			if err := m.ForwardTrain(b, logits, opt, ws); err != nil {
				t.Fatal(err)
			}
			if err := m.Backward(dl, dst, ws); err != nil {
				t.Fatal(err)
			}
		}
		for i := range got.buf {
			sum := float64(want.buf[i]) + float64(g2.buf[i])
			if d := math.Abs(float64(got.buf[i]) - sum); d > 1e-6+1e-5*math.Abs(sum) {
				t.Fatalf("%s: gradient %d not accumulated: %g, want %g", cfg.Arch, i, got.buf[i], sum)
			}
		}
	}
}

// TestSplitStepErrors: Backward needs a ForwardTrain, a gradient set of
// the model and enough logit gradients.
func TestSplitStepErrors(t *testing.T) {
	m, _ := New(tinyConfigs()[0], 1)
	b, _ := tinyBatch(m, 2, rand.New(rand.NewPCG(1, 2)))
	ws := m.NewWorkspace(1, true)
	g := m.NewGrads()
	dl := make([]float32, 2*m.d.classes)
	if err := m.Backward(dl, g, ws); err == nil {
		t.Fatal("Backward before ForwardTrain accepted")
	}
	lg := make([]float32, 2*m.d.classes)
	if err := m.ForwardTrain(b, lg, TrainOptions{}, m.NewWorkspace(1, false)); err == nil {
		t.Fatal("ForwardTrain on an inference workspace accepted")
	}
	if err := m.ForwardTrain(b, lg, TrainOptions{}, ws); err != nil {
		t.Fatal(err)
	}
	if err := m.Backward(dl[:1], g, ws); err == nil {
		t.Fatal("short dlogits accepted")
	}
	other, _ := New(tinyConfigs()[1], 1)
	if err := m.Backward(dl, other.NewGrads(), ws); err == nil {
		t.Fatal("gradients of another model accepted")
	}
}

// TestSplitStepStashBudgets: whether Backward reads the activations kept
// by ForwardTrain (stash), recomputes them, or mixes both (a budget
// smaller than the batch), the gradients equal ForwardBackward's bit for
// bit.
func TestSplitStepStashBudgets(t *testing.T) {
	for _, cfg := range tinyConfigs() {
		m, err := New(cfg, 5)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(3, 4))
		for i := range m.P.buf {
			m.P.buf[i] += float32(r.NormFloat64() * 0.1)
		}
		const n = 7
		b, labels := tinyBatch(m, n, r)
		C := m.d.classes
		opt := TrainOptions{LabelSmoothing: 0.1, Dropout: 0.2, Seed: 7}
		want := m.NewGrads()
		wantLogits := make([]float32, n*C)
		if _, err := m.ForwardBackward(b, labels, opt, wantLogits, want, m.NewWorkspace(3, true)); err != nil {
			t.Fatal(err)
		}
		per := m.trainActsBytes()
		for _, flows := range []int64{0, 1, 3, n, n + 2} {
			ws := m.NewWorkspace(3, true)
			ws.StashBytes = flows*per + per/2
			if flows == 0 {
				ws.StashBytes = 0
			}
			logits := make([]float32, n*C)
			dl := make([]float32, n*C)
			// two steps on the same workspace: the second must not read
			// activations left by the first
			for step := 0; step < 2; step++ {
				o := opt
				if step == 0 {
					o.Seed = 99
				}
				if err := m.ForwardTrain(b, logits, o, ws); err != nil {
					t.Fatal(err)
				}
				if want := min(int(flows), n); ws.stashN != want {
					t.Fatalf("budget of %d flows: %d stashed, want %d", flows, ws.stashN, want)
				}
				for i := 0; i < n; i++ {
					crossEntropy(logits[i*C:(i+1)*C], labels[i], opt.LabelSmoothing, dl[i*C:(i+1)*C])
					for c := range C {
						dl[i*C+c] *= float32(1.0 / n)
					}
				}
				got := m.NewGrads()
				if err := m.Backward(dl, got, ws); err != nil {
					t.Fatal(err)
				}
				if step == 0 {
					continue
				}
				for i := range logits {
					if logits[i] != wantLogits[i] {
						t.Fatalf("%s budget %d: logit %d: %g, want %g", cfg.Arch, flows, i, logits[i], wantLogits[i])
					}
				}
				for i := range got.buf {
					if got.buf[i] != want.buf[i] {
						t.Fatalf("%s budget %d: gradient %d: split %g, ForwardBackward %g", cfg.Arch, flows, i, got.buf[i], want.buf[i])
					}
				}
			}
		}
	}
}

// TestTrainActsBytes: the stash's per-flow size is the memory
// newActivations(true) allocates.
func TestTrainActsBytes(t *testing.T) {
	for _, cfg := range append(tinyConfigs(), arch.Config{Arch: ArchBytes, NumClasses: 7}) {
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		a := m.newActivations(true)
		n := len(a.embed) + len(a.normOut) + len(a.normMean) + len(a.normRstd) + len(a.feat)
		for _, b := range a.blocks {
			for _, s := range [][]float32{b.ln1, b.ln1Mean, b.ln1Rstd, b.qkv, b.ctx, b.lse, b.mid,
				b.ln2, b.ln2Mean, b.ln2Rstd, b.u, b.g, b.out, b.dropAttn, b.dropFF} {
				n += len(s)
			}
		}
		if got := m.trainActsBytes(); got != int64(4*n) {
			t.Fatalf("%s: trainActsBytes %d, allocated %d", cfg.Arch, got, 4*n)
		}
	}
	m, _ := New(arch.Config{Arch: ArchBytes, NumClasses: 7}, 1)
	if per := m.trainActsBytes(); 64*per > DefaultStashBytes {
		t.Fatalf("a batch of 64 byte-model flows (%d B each) does not fit the default stash budget", per)
	}
}

// TestStashSlots: the stash entries go to distinct flows, each worker
// gets its share (within one flow of k/threads), and a full stash maps
// flow i to entry i.
func TestStashSlots(t *testing.T) {
	m, _ := New(tinyConfigs()[0], 1)
	for threads := 1; threads <= 4; threads++ {
		ws := m.NewWorkspace(threads, true)
		for n := 1; n <= 13; n++ {
			for k := 0; k <= n; k++ {
				ws.saved.N, ws.stashN = n, k
				used := make(map[int]bool)
				tt := min(threads, n)
				for w := 0; w < tt; w++ {
					share := 0
					for i := w * n / tt; i < (w+1)*n/tt; i++ {
						j := ws.stashSlot(w, i)
						if j < 0 {
							continue
						}
						if j >= k || used[j] || (k == n && j != i) {
							t.Fatalf("threads %d n %d k %d: flow %d → entry %d (used %v)", threads, n, k, i, j, used[j])
						}
						used[j] = true
						share++
					}
					if d := share - k/tt; d < -1 || d > 1 {
						t.Fatalf("threads %d n %d k %d: worker %d stashes %d flows", threads, n, k, w, share)
					}
				}
				if len(used) != k {
					t.Fatalf("threads %d n %d k %d: %d flows stashed", threads, n, k, len(used))
				}
			}
		}
	}
}
