package train

import (
	"math"
	"testing"
)

// TestCosineScheduleHand checks the fine-tune recipe (blr 2e-3, batch 128 →
// lr 1e-3; 20 warm-up epochs of 120; min_lr 1e-6) at points worked out by
// hand.
func TestCosineScheduleHand(t *testing.T) {
	lr := AbsoluteLR(2e-3, 128)
	if lr != 1e-3 {
		t.Fatalf("AbsoluteLR = %v, want 1e-3", lr)
	}
	s := CosineSchedule{LR: lr, MinLR: 1e-6, WarmupEpochs: 20, Epochs: 120}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ e, want float64 }{
		{0, 0},
		{5, 2.5e-4},     // 1e-3 · 5/20
		{19.5, 9.75e-4}, // still warming up
		{20, 1e-3},      // cos 0 = 1
		{70, 5.005e-4},  // half-way: 1e-6 + 999e-6 · ½
		{45, 1e-6 + 999e-6*0.5*(1+math.Sqrt(0.5))}, // a quarter: cos(π/4) = √½
		{120, 1e-6}, // cos π = −1
	}
	for _, c := range cases {
		if got := s.At(c.e); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("At(%v) = %v, want %v", c.e, got, c.want)
		}
	}
	// Per iteration: epoch 2, iteration 50 of 200 → 2.25 → 1e-3 · 2.25/20.
	if got := s.At(FractionalEpoch(2, 50, 200)); math.Abs(got-1.125e-4) > 1e-15 {
		t.Errorf("iteration lr %v, want 1.125e-4", got)
	}
	if (CosineSchedule{LR: 1, WarmupEpochs: 5, Epochs: 5}).Validate() == nil {
		t.Error("epochs = warm-up: want error")
	}
}
