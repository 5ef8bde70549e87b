package eval

import (
	"fmt"
	"math"
)

// ECEBins is the number of equal-width confidence bins of the ECE (SPEC §5).
const ECEBins = 15

// Bin is one bar of a reliability diagram: the samples whose confidence
// (max softmax probability) lies in (Lower, Upper].
type Bin struct {
	Lower      float64 `json:"lower"`
	Upper      float64 `json:"upper"`
	Count      int     `json:"count"`
	Accuracy   float64 `json:"accuracy"`   // fraction of the bin's samples predicted right (0 if empty)
	Confidence float64 `json:"confidence"` // mean confidence in the bin (0 if empty)
}

// Reliability bins the max-softmax confidence of logits (n, c) divided by
// temperature into bins equal-width bins (k/bins, (k+1)/bins] and returns
// them with the expected calibration error of Guo et al. (2017),
// ECE = Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|. Predictions are the argmax
// (temperature does not change them).
func Reliability(labels []int, logits []float32, c int, temperature float64, bins int) ([]Bin, float64, error) {
	n := len(labels)
	if c <= 0 || len(logits) != n*c || n == 0 {
		return nil, 0, fmt.Errorf("eval: calibration: %d logits for %d labels × %d classes", len(logits), n, c)
	}
	if !(temperature > 0) || bins <= 0 {
		return nil, 0, fmt.Errorf("eval: calibration: temperature %g and %d bins must be positive", temperature, bins)
	}
	out := make([]Bin, bins)
	for b := range out {
		out[b].Lower = float64(b) / float64(bins)
		out[b].Upper = float64(b+1) / float64(bins)
	}
	for i, y := range labels {
		if y < 0 || y >= c {
			return nil, 0, fmt.Errorf("eval: calibration: label %d of sample %d outside [0, %d)", y, i, c)
		}
		row := logits[i*c : (i+1)*c]
		best := 0
		for k := 1; k < c; k++ {
			if row[k] > row[best] {
				best = k
			}
		}
		mx := float64(row[best]) / temperature
		var se float64
		for _, v := range row {
			se += math.Exp(float64(v)/temperature - mx)
		}
		conf := 1 / se
		b := int(math.Ceil(conf*float64(bins))) - 1
		b = max(0, min(b, bins-1))
		// Settle rounding at the edges so that Lower < conf ≤ Upper.
		for b > 0 && conf <= out[b].Lower {
			b--
		}
		for b < bins-1 && conf > out[b].Upper {
			b++
		}
		out[b].Count++
		out[b].Confidence += conf
		if best == y {
			out[b].Accuracy++
		}
	}
	var ece float64
	for b := range out {
		if out[b].Count == 0 {
			continue
		}
		cnt := float64(out[b].Count)
		out[b].Accuracy /= cnt
		out[b].Confidence /= cnt
		ece += cnt / float64(n) * math.Abs(out[b].Accuracy-out[b].Confidence)
	}
	return out, ece, nil
}

// ECE is the 15-bin expected calibration error of logits at temperature T.
func ECE(labels []int, logits []float32, c int, temperature float64) (float64, error) {
	_, e, err := Reliability(labels, logits, c, temperature, ECEBins)
	return e, err
}

// NLL is the mean negative log-likelihood of labels under
// softmax(logits/temperature), logits (len(labels), c).
func NLL(labels []int, logits []float32, c int, temperature float64) (float64, error) {
	n := len(labels)
	if c <= 0 || len(logits) != n*c || n == 0 {
		return 0, fmt.Errorf("eval: NLL: %d logits for %d labels × %d classes", len(logits), n, c)
	}
	if !(temperature > 0) {
		return 0, fmt.Errorf("eval: NLL: temperature %g must be positive", temperature)
	}
	var sum float64
	for i, y := range labels {
		if y < 0 || y >= c {
			return 0, fmt.Errorf("eval: NLL: label %d of sample %d outside [0, %d)", y, i, c)
		}
		row := logits[i*c : (i+1)*c]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v)/temperature)
		}
		var se float64
		for _, v := range row {
			se += math.Exp(float64(v)/temperature - mx)
		}
		sum += mx + math.Log(se) - float64(row[y])/temperature
	}
	return sum / float64(n), nil
}

// Temperature search range (SPEC §5: T ∈ [0.1, 5]).
const (
	MinTemperature = 0.1
	MaxTemperature = 5.0
)

// FitTemperature returns the temperature T ∈ [0.1, 5] minimising the NLL of
// softmax(logits/T) on VALIDATION labels and logits (never fit it on the
// test set). The NLL is convex in 1/T, hence unimodal in log T: a 41-point
// grid over log T brackets the minimum, then golden-section search refines
// it to |Δ log T| < 1e-6.
func FitTemperature(labels []int, logits []float32, c int) (float64, error) {
	f := func(logT float64) (float64, error) { return NLL(labels, logits, c, math.Exp(logT)) }
	lo, hi := math.Log(MinTemperature), math.Log(MaxTemperature)
	const grid = 41
	best, bestV := 0, math.Inf(1)
	for g := 0; g < grid; g++ {
		v, err := f(lo + (hi-lo)*float64(g)/(grid-1))
		if err != nil {
			return 0, err
		}
		if v < bestV {
			best, bestV = g, v
		}
	}
	a := lo + (hi-lo)*float64(max(best-1, 0))/(grid-1)
	b := lo + (hi-lo)*float64(min(best+1, grid-1))/(grid-1)
	invPhi := (math.Sqrt(5) - 1) / 2
	x1, x2 := b-invPhi*(b-a), a+invPhi*(b-a)
	f1, err := f(x1)
	if err != nil {
		return 0, err
	}
	f2, err := f(x2)
	if err != nil {
		return 0, err
	}
	for b-a > 1e-6 {
		if f1 <= f2 {
			b, x2, f2 = x2, x1, f1
			x1 = b - invPhi*(b-a)
			if f1, err = f(x1); err != nil {
				return 0, err
			}
		} else {
			a, x1, f1 = x1, x2, f2
			x2 = a + invPhi*(b-a)
			if f2, err = f(x2); err != nil {
				return 0, err
			}
		}
	}
	return math.Exp((a + b) / 2), nil
}
