package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

// twoClass returns logits (0, ln(p/(1−p))): class 1 with confidence p.
func twoClass(p float64) []float32 { return []float32{0, float32(math.Log(p / (1 - p)))} }

// TestECEHand: confidences 0.9 (right), 0.9 (wrong), 0.7, 0.7 (both right):
// bins (13/15, 14/15] and (10/15, 11/15]; ECE = ½·|½ − 0.9| + ½·|1 − 0.7| = 0.35.
func TestECEHand(t *testing.T) {
	var logits []float32
	for _, p := range []float64{0.9, 0.9, 0.7, 0.7} {
		logits = append(logits, twoClass(p)...)
	}
	labels := []int{1, 0, 1, 1}
	bins, ece, err := Reliability(labels, logits, 2, 1, ECEBins)
	if err != nil {
		t.Fatal(err)
	}
	if !near(ece, 0.35, 1e-6) {
		t.Errorf("ECE %v, want 0.35", ece)
	}
	if bins[13].Count != 2 || !near(bins[13].Accuracy, 0.5, 0) || !near(bins[13].Confidence, 0.9, 1e-6) {
		t.Errorf("bin 13 %+v", bins[13])
	}
	if bins[10].Count != 2 || bins[10].Accuracy != 1 || !near(bins[10].Lower, 10.0/15, 1e-15) {
		t.Errorf("bin 10 %+v", bins[10])
	}
	// Temperature 2 halves the logit: confidence of the 0.9 rows becomes
	// 1/(1+√(1/9)) = 0.75, of the 0.7 rows 1/(1+√(3/7)).
	_, ece2, err := Reliability(labels, logits, 2, 2, ECEBins)
	if err != nil {
		t.Fatal(err)
	}
	c7 := 1 / (1 + math.Sqrt(3.0/7))
	// 0.75 → bin (0.7333, 0.8]; c7 = 0.6044 → bin (0.6, 0.6667]: separate bins.
	want := 0.5*math.Abs(0.5-0.75) + 0.5*math.Abs(1-c7)
	if !near(ece2, want, 1e-6) {
		t.Errorf("ECE at T=2 %v, want %v", ece2, want)
	}
}

func TestNLLHand(t *testing.T) {
	// p = (1/4, 3/4); label 0 → −ln ¼.
	v, err := NLL([]int{0}, []float32{0, float32(math.Log(3))}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(v, math.Log(4), 1e-7) {
		t.Errorf("NLL %v, want ln 4", v)
	}
}

// overconfident draws labels from softmax(z) (so z is calibrated) and
// returns the logits of a model that reports 3·z.
func overconfident(rng *rand.Rand, n, c int) ([]int, []float32) {
	labels := make([]int, n)
	logits := make([]float32, n*c)
	z := make([]float64, c)
	for i := 0; i < n; i++ {
		var se float64
		for k := range z {
			z[k] = rng.NormFloat64() * 1.5
			se += math.Exp(z[k])
		}
		u := rng.Float64() * se
		y := c - 1
		for k := range z {
			u -= math.Exp(z[k])
			if u <= 0 {
				y = k
				break
			}
		}
		labels[i] = y
		for k := range z {
			logits[i*c+k] = float32(3 * z[k])
		}
	}
	return labels, logits
}

// TestFitTemperatureOverconfident: logits 3× too sharp must give T ≈ 3 on
// validation data, and calibrating the separate test data lowers its ECE.
func TestFitTemperatureOverconfident(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const c = 5
	vl, vx := overconfident(rng, 3000, c)
	tl, tx := overconfident(rng, 3000, c)
	temp, err := FitTemperature(vl, vx, c)
	if err != nil {
		t.Fatal(err)
	}
	if temp < 2.6 || temp > 3.4 {
		t.Errorf("temperature %v, want about 3", temp)
	}
	// The fit is a minimum: nearby temperatures have higher NLL.
	f0, _ := NLL(vl, vx, c, temp)
	for _, d := range []float64{0.98, 1.02} {
		if f, _ := NLL(vl, vx, c, temp*d); f < f0 {
			t.Errorf("NLL(%v) = %v < NLL(fit %v) = %v", temp*d, f, temp, f0)
		}
	}
	before, err := ECE(tl, tx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	after, err := ECE(tl, tx, c, temp)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("T %.4f, test ECE %.4f → %.4f", temp, before, after)
	if !(after < before/3) {
		t.Errorf("ECE %v → %v: calibration should cut it well down", before, after)
	}
}

// TestFitTemperatureBounds: perfectly separable data wants T → 0, clamped
// to the search range's lower end.
func TestFitTemperatureBounds(t *testing.T) {
	labels := []int{0, 1, 0, 1}
	logits := []float32{1, 0, 0, 1, 2, 0, 0, 2}
	temp, err := FitTemperature(labels, logits, 2)
	if err != nil {
		t.Fatal(err)
	}
	if temp > MinTemperature*1.001 {
		t.Errorf("temperature %v, want the lower bound %v", temp, MinTemperature)
	}
}
