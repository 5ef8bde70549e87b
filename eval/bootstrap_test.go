package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestPercentileNumpy(t *testing.T) {
	// numpy.percentile([1, 2, 3, 4], 2.5) = 1 + 0.075·1; 97.5 → 3 + 0.925.
	v := []float64{1, 2, 3, 4}
	if p := percentile(v, 2.5); !near(p, 1.075, 1e-12) {
		t.Errorf("2.5th percentile %v, want 1.075", p)
	}
	if p := percentile(v, 97.5); !near(p, 3.925, 1e-12) {
		t.Errorf("97.5th percentile %v, want 3.925", p)
	}
}

// TestBootstrap checks determinism, degenerate sets and that the accuracy
// interval has the width the normal approximation predicts: for n = 400 and
// accuracy 0.7, 2·1.96·√(0.7·0.3/400) = 0.0898.
func TestBootstrap(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const n, c = 400, 5
	labels := make([]int, n)
	preds := make([]int, n)
	for i := range labels {
		labels[i] = rng.IntN(c)
		preds[i] = labels[i]
		if i%10 < 3 { // exactly 30 % wrong
			preds[i] = (labels[i] + 1 + rng.IntN(c-1)) % c
		}
	}
	a, err := Bootstrap(labels, preds, c, 1000, 42)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Bootstrap(labels, preds, c, 1000, 42)
	if err != nil {
		t.Fatal(err)
	}
	if *a != *b {
		t.Errorf("same seed, different intervals: %+v vs %+v", a, b)
	}
	m, err := Compute(labels, preds, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, iv := range map[string]struct {
		iv    Interval
		point float64
	}{"accuracy": {a.Accuracy, m.Accuracy}, "macro_f1": {a.MacroF1, m.MacroF1}, "weighted_f1": {a.WeightedF1, m.WeightedF1}} {
		if !(iv.iv.Low < iv.point && iv.point < iv.iv.High) {
			t.Errorf("%s: point %v outside %+v", name, iv.point, iv.iv)
		}
	}
	width := a.Accuracy.High - a.Accuracy.Low
	want := 2 * 1.96 * math.Sqrt(0.7*0.3/n)
	if math.Abs(width-want) > 0.15*want {
		t.Errorf("accuracy interval width %v, normal approximation %v", width, want)
	}
	// All correct: every resample scores 1.
	perfect, err := Bootstrap(labels, labels, c, 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	if perfect.Accuracy != (Interval{1, 1}) || perfect.MacroF1 != (Interval{1, 1}) {
		t.Errorf("perfect predictions: %+v", perfect)
	}
	if _, err := Bootstrap(nil, nil, c, 10, 1); err == nil {
		t.Error("empty set: want error")
	}
}

func BenchmarkBootstrap(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n, c = 2000, 17
	labels := make([]int, n)
	preds := make([]int, n)
	for i := range labels {
		labels[i] = rng.IntN(c)
		preds[i] = rng.IntN(c)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Bootstrap(labels, preds, c, DefaultResamples, 3); err != nil {
			b.Fatal(err)
		}
	}
}
