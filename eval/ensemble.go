package eval

import (
	"fmt"
	"math"
)

// EnsembleLogits combines the logits of several classifiers over the same
// n flows and c classes (each (n, c), row-major) into the logits of their
// ensemble: dst[i, k] = log( (1/M) · Σ_m softmax(members[m][i, :])_k ).
// The ensemble's softmax is therefore the members' mean probability (a
// "deep ensemble"), and argmax, max-prob, energy, ECE and temperature
// scaling all read the averaged distribution. Computed in float64 with a
// max-shifted log-sum-exp; a class every member gives probability 0 (after
// float64 underflow) gets −Inf. One member returns its log-softmax, which
// has the same argmax and softmax as its logits.
func EnsembleLogits(members [][]float32, n, c int) ([]float32, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("eval: ensemble of no member")
	}
	if n < 0 || c <= 0 {
		return nil, fmt.Errorf("eval: ensemble: bad shape (%d, %d)", n, c)
	}
	for m, l := range members {
		if len(l) != n*c {
			return nil, fmt.Errorf("eval: ensemble member %d: %d logits for (%d, %d)", m, len(l), n, c)
		}
	}
	dst := make([]float32, n*c)
	mean := make([]float64, c) // (c,) mean probability of one flow
	M := float64(len(members))
	for i := 0; i < n; i++ {
		clear(mean)
		for _, l := range members {
			row := l[i*c : (i+1)*c]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			if math.IsInf(mx, 0) || math.IsNaN(mx) {
				return nil, fmt.Errorf("eval: ensemble: flow %d has non-finite logits", i)
			}
			sum := 0.0
			for _, v := range row {
				sum += math.Exp(float64(v) - mx)
			}
			for k, v := range row {
				mean[k] += math.Exp(float64(v)-mx) / sum / M
			}
		}
		for k := range mean {
			dst[i*c+k] = float32(math.Log(mean[k]))
		}
	}
	return dst, nil
}
