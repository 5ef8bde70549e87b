package train

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// PseudoLabelOptions choose which unlabelled flows a teacher model labels
// for self-training (netmamba dataset pseudolabel).
type PseudoLabelOptions struct {
	// Temperature divides the logits before the softmax (> 0). A model
	// trained with LDA (LDAM, scale s = 30) has logits on the cosine scale:
	// 1/30 gives the probabilities its loss trained.
	Temperature float64
	// MinConfidence keeps a flow when its top class probability is at
	// least this (0 keeps every flow).
	MinConfidence float64
	// MaxPerClass keeps at most this many flows per predicted class, the
	// most confident first (ties: the earlier flow); 0 = no cap.
	MaxPerClass int
}

// PseudoLabelResult is the teacher's decision for every row.
type PseudoLabelResult struct {
	Labels     []int     // per row: the predicted class, or -1 when the flow is left out
	Predicted  []int     // per row: the predicted class (argmax), kept or not
	Confidence []float32 // per row: the top class probability
	Kept       []int     // flows (own rows) kept per class
	// BelowConfidence and OverCap count the flows left out, by reason.
	BelowConfidence, OverCap int
}

// PseudoLabels turns a teacher's logits (n, c) into labels. flowOf maps each
// row to the row that decides for its flow (a flow's own view for its
// sliding-window rows; nil = every row is its own flow): windowed rows take
// their flow's label, kept or left out with it, so a flow is never split.
// Ensemble members' averaged log-probabilities (eval.EnsembleLogits) are
// logits too; pass temperature 1 for them.
func PseudoLabels(logits []float32, n, c int, flowOf []int, o PseudoLabelOptions) (*PseudoLabelResult, error) {
	if n < 0 || c <= 0 || len(logits) != n*c {
		return nil, fmt.Errorf("pseudolabel: %d logits for %d rows of %d classes", len(logits), n, c)
	}
	if flowOf != nil && len(flowOf) != n {
		return nil, fmt.Errorf("pseudolabel: %d flow indices for %d rows", len(flowOf), n)
	}
	if !(o.Temperature > 0) || math.IsInf(o.Temperature, 0) {
		return nil, fmt.Errorf("pseudolabel: temperature %v: want a finite value > 0", o.Temperature)
	}
	if o.MinConfidence < 0 || o.MinConfidence > 1 || math.IsNaN(o.MinConfidence) {
		return nil, fmt.Errorf("pseudolabel: minimum confidence %v: want 0…1", o.MinConfidence)
	}
	if o.MaxPerClass < 0 {
		return nil, fmt.Errorf("pseudolabel: max per class %d: want ≥ 0", o.MaxPerClass)
	}
	owner := func(i int) int {
		if flowOf == nil {
			return i
		}
		return flowOf[i]
	}
	r := &PseudoLabelResult{
		Labels: make([]int, n), Predicted: make([]int, n), Confidence: make([]float32, n), Kept: make([]int, c),
	}
	// Top class and its softmax probability per row: p_k = exp((x_k − max)/T) / Σ_j exp((x_j − max)/T).
	for i := 0; i < n; i++ {
		row := logits[i*c : (i+1)*c]
		best := 0
		for k, v := range row {
			if math.IsNaN(float64(v)) {
				return nil, fmt.Errorf("pseudolabel: row %d: logit %d is NaN", i, k)
			}
			if v > row[best] {
				best = k
			}
		}
		var den float64
		for _, v := range row {
			den += math.Exp((float64(v) - float64(row[best])) / o.Temperature)
		}
		r.Predicted[i], r.Confidence[i] = best, float32(1/den)
	}
	// Decide per flow (own rows only), then let windowed rows follow.
	var kept []int // own rows that pass the confidence bar
	for i := 0; i < n; i++ {
		f := owner(i)
		if f < 0 || f >= n || owner(f) != f {
			return nil, fmt.Errorf("pseudolabel: row %d: flow row %d is not a flow's own row", i, f)
		}
		if f != i {
			continue
		}
		if float64(r.Confidence[i]) >= o.MinConfidence {
			kept = append(kept, i)
		} else {
			r.BelowConfidence++
		}
	}
	if o.MaxPerClass > 0 {
		slices.SortStableFunc(kept, func(a, b int) int { return cmp.Compare(r.Confidence[b], r.Confidence[a]) })
	}
	keep := make([]bool, n)
	for _, i := range kept {
		k := r.Predicted[i]
		if o.MaxPerClass > 0 && r.Kept[k] >= o.MaxPerClass {
			r.OverCap++
			continue
		}
		r.Kept[k]++
		keep[i] = true
	}
	for i := 0; i < n; i++ {
		f := owner(i)
		r.Labels[i] = -1
		if keep[f] {
			r.Labels[i] = r.Predicted[f]
		}
	}
	return r, nil
}
