package eval

import (
	"fmt"
	"math"
)

// EnsembleLogits combines the logits of several classifiers over the same
// n flows and c classes (each (n, c), row-major) into the logits of their
// ensemble: dst[i, k] = log( (1/M) · Σ_m softmax(members[m][i, :])_k ),
// computed as logsumexp_m(log_softmax_m[i, k]) − log M in float64, which
// stays finite for finite inputs. The ensemble's softmax is therefore the
// members' mean probability (a "deep ensemble"), so argmax, max-prob,
// negative entropy, ECE and temperature scaling read the averaged
// distribution. The outputs are log-probabilities: their energy
// (logsumexp) is 0 for every flow and their max-logit is the log of the
// max-prob, so those two OOD scores carry no information of their own for
// an ensemble. One member returns its log-softmax, which has the same
// argmax and softmax as its logits.
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
	M := len(members)
	dst := make([]float32, n*c)
	ls := make([]float64, M*c) // (M, c) log-softmax of one flow
	logM := math.Log(float64(M))
	for i := 0; i < n; i++ {
		for m, l := range members {
			row, out := l[i*c:(i+1)*c], ls[m*c:(m+1)*c]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			if math.IsInf(mx, 0) || math.IsNaN(mx) {
				return nil, fmt.Errorf("eval: ensemble member %d: flow %d has non-finite logits", m, i)
			}
			sum := 0.0
			for _, v := range row {
				sum += math.Exp(float64(v) - mx)
			}
			lse := mx + math.Log(sum)
			for k, v := range row {
				out[k] = float64(v) - lse
			}
		}
		for k := 0; k < c; k++ {
			mx := math.Inf(-1)
			for m := 0; m < M; m++ {
				mx = math.Max(mx, ls[m*c+k])
			}
			sum := 0.0
			for m := 0; m < M; m++ {
				sum += math.Exp(ls[m*c+k] - mx)
			}
			dst[i*c+k] = float32(mx + math.Log(sum) - logM)
		}
	}
	return dst, nil
}
