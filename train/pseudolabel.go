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

// Validate reports options PseudoLabels would refuse.
func (o PseudoLabelOptions) Validate() error {
	if !(o.Temperature > 0) || math.IsInf(o.Temperature, 0) {
		return fmt.Errorf("pseudolabel: temperature %v: want a finite value > 0", o.Temperature)
	}
	if !(o.MinConfidence >= 0 && o.MinConfidence <= 1) {
		return fmt.Errorf("pseudolabel: minimum confidence %v: want 0…1", o.MinConfidence)
	}
	if o.MaxPerClass < 0 {
		return fmt.Errorf("pseudolabel: max per class %d: want ≥ 0", o.MaxPerClass)
	}
	return nil
}

// PseudoLabelResult is the teacher's decision for every flow.
type PseudoLabelResult struct {
	Labels     []int     // per flow: the predicted class, or -1 when the flow is left out
	Predicted  []int     // per flow: the predicted class (argmax), kept or not
	Confidence []float64 // per flow: the top class probability
	Kept       []int     // flows kept per class
	// BelowConfidence and OverCap count the flows left out, by reason.
	BelowConfidence, OverCap int
}

// PseudoLabels turns a teacher's logits (n flows, c classes) into labels.
// Ensemble members' averaged log-probabilities (eval.EnsembleLogits) are
// logits too; pass temperature 1 for them.
//
// The top probability is 1 / (1 + rest) with rest = Σ_{k≠top} exp((x_k −
// x_top)/T), computed in float64: flows are ranked by rest, which keeps
// them apart when the probability itself rounds to 1 (a logit margin above
// about 37 T in float64, 17 T in float32).
func PseudoLabels(logits []float32, n, c int, o PseudoLabelOptions) (*PseudoLabelResult, error) {
	if n < 0 || c <= 0 || len(logits) != n*c {
		return nil, fmt.Errorf("pseudolabel: %d logits for %d flows of %d classes", len(logits), n, c)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := &PseudoLabelResult{
		Labels: make([]int, n), Predicted: make([]int, n), Confidence: make([]float64, n), Kept: make([]int, c),
	}
	rest := make([]float64, n)
	var kept []int // flows that pass the confidence bar
	for i := 0; i < n; i++ {
		row := logits[i*c : (i+1)*c]
		best := 0
		for k, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("pseudolabel: flow %d: logit %d is %v", i, k, v)
			}
			if v > row[best] {
				best = k
			}
		}
		for k, v := range row {
			if k != best {
				rest[i] += math.Exp((float64(v) - float64(row[best])) / o.Temperature)
			}
		}
		r.Predicted[i], r.Confidence[i], r.Labels[i] = best, 1/(1+rest[i]), -1
		if r.Confidence[i] >= o.MinConfidence {
			kept = append(kept, i)
		} else {
			r.BelowConfidence++
		}
	}
	if o.MaxPerClass > 0 {
		slices.SortStableFunc(kept, func(a, b int) int { return cmp.Compare(rest[a], rest[b]) })
	}
	for _, i := range kept {
		k := r.Predicted[i]
		if o.MaxPerClass > 0 && r.Kept[k] >= o.MaxPerClass {
			r.OverCap++
			continue
		}
		r.Kept[k]++
		r.Labels[i] = k
	}
	return r, nil
}
