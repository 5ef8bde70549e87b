package nettrans

import (
	"math"
	"math/rand/v2"
	"testing"
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
