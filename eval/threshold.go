package eval

import (
	"fmt"
	"math"
	"sort"
)

// UnknownThreshold picks the confidence threshold below which a classifier
// should answer "unknown": the max-softmax probability (logits divided by
// temperature) that keeps the fraction keep (e.g. 0.95) of the given
// VALIDATION flows above it — i.e. the threshold at keep·100 % true-positive
// rate for in-distribution traffic. logits are (n, c).
func UnknownThreshold(logits []float32, n, c int, temperature, keep float64) (float64, error) {
	if n <= 0 || c <= 0 || len(logits) != n*c {
		return 0, fmt.Errorf("eval: unknown threshold: %d logits for (%d, %d)", len(logits), n, c)
	}
	if !(keep > 0 && keep <= 1) || !(temperature > 0) {
		return 0, fmt.Errorf("eval: unknown threshold: keep %g must be in (0, 1] and temperature %g > 0", keep, temperature)
	}
	scaled := make([]float32, len(logits))
	for i, v := range logits {
		scaled[i] = float32(float64(v) / temperature)
	}
	conf, err := Confidence(MaxProb, scaled, n, c, nil)
	if err != nil {
		return 0, err
	}
	sort.Float64s(conf)
	// Keep ⌈keep·n⌉ flows: the threshold is the smallest confidence among them.
	k := int(math.Ceil(keep*float64(n) - 1e-9))
	return conf[n-k], nil
}
