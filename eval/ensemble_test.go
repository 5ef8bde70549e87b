package eval

import (
	"math"
	"testing"
)

// TestEnsembleLogitsHand checks the mean-probability combination on values
// worked out by hand: member A gives flow 0 the probabilities (1/2, 1/2, 0+)
// and member B (0.1, 0.2, 0.7) via log-probabilities, so the ensemble is
// (0.3, 0.35, 0.35) up to A's tiny third class.
func TestEnsembleLogitsHand(t *testing.T) {
	a := []float32{3, 3, -100, 0, 0, 0}
	b := []float32{
		float32(math.Log(0.1)), float32(math.Log(0.2)), float32(math.Log(0.7)),
		float32(math.Log(0.6)), float32(math.Log(0.3)), float32(math.Log(0.1)),
	}
	got, err := EnsembleLogits([][]float32{a, b}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.30, 0.35, 0.35, (1.0/3 + 0.6) / 2, (1.0/3 + 0.3) / 2, (1.0/3 + 0.1) / 2}
	for i, w := range want {
		if p := math.Exp(float64(got[i])); math.Abs(p-w) > 1e-6 {
			t.Errorf("ensemble probability [%d] = %.7f, want %.7f", i, p, w)
		}
	}
	// Flow 1: member B alone would pick class 0, the mean keeps it.
	pred, err := Argmax(got, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pred[1] != 0 {
		t.Errorf("flow 1 predicted %d, want 0", pred[1])
	}
}

// TestEnsembleLogitsSingleMember: one member's ensemble is its log-softmax,
// the same distribution as its logits (shift-invariance of softmax).
func TestEnsembleLogitsSingleMember(t *testing.T) {
	l := []float32{1, 2, 3, -4, 0.5, 7}
	got, err := EnsembleLogits([][]float32{l}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		shift := float64(got[i*3]) - float64(l[i*3])
		for k := 1; k < 3; k++ {
			if d := float64(got[i*3+k]) - float64(l[i*3+k]); math.Abs(d-shift) > 1e-5 {
				t.Errorf("flow %d class %d: shift %.6f, want %.6f", i, k, d, shift)
			}
		}
		sum := 0.0
		for k := 0; k < 3; k++ {
			sum += math.Exp(float64(got[i*3+k]))
		}
		if math.Abs(sum-1) > 1e-6 {
			t.Errorf("flow %d: probabilities sum to %.7f", i, sum)
		}
	}
}

// TestEnsembleLogitsErrors: shape mismatches and non-finite logits are
// errors, not silent garbage.
func TestEnsembleLogitsErrors(t *testing.T) {
	if _, err := EnsembleLogits(nil, 1, 2); err == nil {
		t.Error("no members: want an error")
	}
	if _, err := EnsembleLogits([][]float32{{1, 2}, {1, 2, 3}}, 1, 2); err == nil {
		t.Error("member of the wrong length: want an error")
	}
	if _, err := EnsembleLogits([][]float32{{float32(math.NaN()), 1}}, 1, 2); err == nil {
		t.Error("NaN logits: want an error")
	}
}

// TestEnsembleLogitsFinite: a class every member puts 2000 logits below the
// top (probability 0 in float64) still gets a finite ensemble logit, the
// log of its mean probability: log((e^-2000 + e^-3000)/2) ≈ −2000 − log 2.
func TestEnsembleLogitsFinite(t *testing.T) {
	got, err := EnsembleLogits([][]float32{{0, -2000}, {0, -3000}}, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := -2000 - math.Log(2); math.IsInf(float64(got[1]), 0) || math.Abs(float64(got[1])-want) > 1e-3 {
		t.Errorf("ensemble logit %v, want %.4f", got[1], want)
	}
	if math.Abs(float64(got[0])) > 1e-6 {
		t.Errorf("top class log-probability %v, want 0", got[0])
	}
}
