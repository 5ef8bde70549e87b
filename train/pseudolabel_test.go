package train

import (
	"math"
	"slices"
	"testing"
)

// TestPseudoLabels checks the teacher's decisions against probabilities
// worked out by hand: softmax([2, 0]) tops at 1/(1+e^-2) = 0.8808,
// softmax([0, 0]) at 0.5, softmax([0, 3]) at 1/(1+e^-3) = 0.9526,
// softmax([1, 0]/0.5) = softmax([2, 0]).
func TestPseudoLabels(t *testing.T) {
	logits := []float32{
		2, 0, // row 0: class 0, 0.8808
		0, 0, // row 1: a tie, class 0 (first), 0.5
		0, 3, // row 2: class 1, 0.9526
		3, 0, // row 3: class 0, 0.9526
	}
	r, err := PseudoLabels(logits, 4, 2, PseudoLabelOptions{Temperature: 1, MinConfidence: 0.6})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0.8808, 0.5, 0.9526, 0.9526}
	for i, w := range want {
		if math.Abs(r.Confidence[i]-float64(w)) > 1e-4 {
			t.Errorf("confidence[%d] = %v, want %v", i, r.Confidence[i], w)
		}
	}
	if !slices.Equal(r.Predicted, []int{0, 0, 1, 0}) || !slices.Equal(r.Labels, []int{0, -1, 1, 0}) {
		t.Errorf("predicted %v labels %v", r.Predicted, r.Labels)
	}
	if r.BelowConfidence != 1 || r.OverCap != 0 || !slices.Equal(r.Kept, []int{2, 1}) {
		t.Errorf("below %d over cap %d kept %v", r.BelowConfidence, r.OverCap, r.Kept)
	}

	// Cap 1 per class: row 3 (0.9526) beats row 0 (0.8808) for class 0.
	r, err = PseudoLabels(logits, 4, 2, PseudoLabelOptions{Temperature: 1, MinConfidence: 0.6, MaxPerClass: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Labels, []int{-1, -1, 1, 0}) || r.OverCap != 1 || r.BelowConfidence != 1 {
		t.Errorf("cap 1: labels %v over cap %d below %d", r.Labels, r.OverCap, r.BelowConfidence)
	}

	// Temperature 0.5 doubles the logits: [1, 0] scores like [2, 0].
	r, err = PseudoLabels([]float32{1, 0}, 1, 2, PseudoLabelOptions{Temperature: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Confidence[0]-1/(1+math.Exp(-2))) > 1e-12 {
		t.Errorf("temperature 0.5: confidence %v", r.Confidence[0])
	}

	// Margins of 40 and 45: both probabilities round to 1 in float64, yet
	// the cap keeps the second flow, whose margin is larger.
	r, err = PseudoLabels([]float32{40, 0, 45, 0}, 2, 2, PseudoLabelOptions{Temperature: 1, MinConfidence: 1, MaxPerClass: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Labels, []int{-1, 0}) || r.OverCap != 1 {
		t.Errorf("saturated: labels %v over cap %d (confidences %v)", r.Labels, r.OverCap, r.Confidence)
	}

	for name, tc := range map[string]struct {
		logits []float32
		n, c   int
		o      PseudoLabelOptions
	}{
		"short logits":       {[]float32{1}, 1, 2, PseudoLabelOptions{Temperature: 1}},
		"zero temperature":   {[]float32{1, 0}, 1, 2, PseudoLabelOptions{}},
		"confidence above 1": {[]float32{1, 0}, 1, 2, PseudoLabelOptions{Temperature: 1, MinConfidence: 1.5}},
		"NaN confidence":     {[]float32{1, 0}, 1, 2, PseudoLabelOptions{Temperature: 1, MinConfidence: math.NaN()}},
		"negative cap":       {[]float32{1, 0}, 1, 2, PseudoLabelOptions{Temperature: 1, MaxPerClass: -1}},
		"NaN logit":          {[]float32{float32(math.NaN()), 0}, 1, 2, PseudoLabelOptions{Temperature: 1}},
		"infinite logit":     {[]float32{float32(math.Inf(1)), 0}, 1, 2, PseudoLabelOptions{Temperature: 1}},
	} {
		if _, err := PseudoLabels(tc.logits, tc.n, tc.c, tc.o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
