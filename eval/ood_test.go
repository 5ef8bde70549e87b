package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestConfidenceHand(t *testing.T) {
	// Logits (0, ln 3): p = (1/4, 3/4).
	x := []float32{0, float32(math.Log(3))}
	want := map[ConfidenceKind]float64{
		MaxLogit:   math.Log(3),
		MaxProb:    0.75,
		Energy:     math.Log(4),
		NegEntropy: 0.25*math.Log(0.25) + 0.75*math.Log(0.75),
	}
	for _, k := range ConfidenceKinds() {
		got, err := Confidence(k, x, 1, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !near(got[0], want[k], 1e-7) {
			t.Errorf("%s = %v, want %v", k, got[0], want[k])
		}
	}
	if _, err := Confidence("bogus", x, 1, 2, nil); err == nil {
		t.Error("unknown kind: want error")
	}
}

// TestAUROCHand: positives score (3, 2), negatives (1, 2); of the 4 pairs
// 3 are ordered right and one tied (½): AUROC 3.5/4.
func TestAUROCHand(t *testing.T) {
	a, err := AUROC([]float64{3, 1, 2, 2}, []bool{true, false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	if a != 0.875 {
		t.Errorf("AUROC %v, want 0.875", a)
	}
	if _, err := AUROC([]float64{1, 2}, []bool{true, true}); err == nil {
		t.Error("one class only: want error")
	}
}

// TestAUROCSklearn compares with roc_auc_score on continuous and tied scores.
func TestAUROCSklearn(t *testing.T) {
	for _, c := range loadSklearn(t).AUROC {
		pos := make([]bool, len(c.Positive))
		for i, v := range c.Positive {
			pos[i] = v == 1
		}
		a, err := AUROC(c.Scores, pos)
		if err != nil {
			t.Fatal(err)
		}
		if !near(a, c.AUROC, 1e-12) {
			t.Errorf("%s: AUROC %.15g, sklearn %.15g", c.Name, a, c.AUROC)
		}
	}
}

// TestFPR95Hand: 20 in-distribution confidences 1..20 → keep ⌈19⌉ = 19 of
// them → threshold 2; OOD confidences (0, 1.5, 2, 2.5, 30) → 3 of 5 pass.
// With 10 in-distribution samples ⌈9.5⌉ = 10 must pass → threshold 1.
func TestFPR95Hand(t *testing.T) {
	id := make([]float64, 20)
	for i := range id {
		id[i] = float64(20 - i)
	}
	ood := []float64{0, 1.5, 2, 2.5, 30}
	f, err := FPRAtTPR95(id, ood)
	if err != nil {
		t.Fatal(err)
	}
	if f != 0.6 {
		t.Errorf("FPR95 %v, want 0.6", f)
	}
	f, err = FPRAtTPR95(id[10:], ood)
	if err != nil {
		t.Fatal(err)
	}
	if f != 0.8 {
		t.Errorf("FPR95 (10 ID) %v, want 0.8", f)
	}
}

// TestDetectOOD: OOD rows have flat logits, ID rows a clear winner, so
// every confidence separates them perfectly; swapping the roles gives AUROC 0.
func TestDetectOOD(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const c = 4
	var id, ood []float32
	for i := 0; i < 50; i++ {
		row := make([]float32, c)
		for k := range row {
			row[k] = float32(rng.NormFloat64() * 0.1)
		}
		ood = append(ood, row...)
		row2 := make([]float32, c)
		copy(row2, row)
		row2[i%c] += 6
		id = append(id, row2...)
	}
	r, err := DetectOOD(id, ood, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ConfidenceKinds() {
		s := r.Scores(k)
		if s.AUROC != 1 || s.FPR95 != 0 {
			t.Errorf("%s: %+v, want AUROC 1, FPR95 0", k, s)
		}
	}
	r, err = DetectOOD(ood, id, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxProb.AUROC != 0 || r.MaxProb.FPR95 != 1 {
		t.Errorf("swapped: %+v, want AUROC 0, FPR95 1", r.MaxProb)
	}
}
