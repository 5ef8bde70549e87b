package eval

import (
	"math"
	"testing"
)

func TestUnknownThreshold(t *testing.T) {
	// Two classes, logits (0, x): max-prob = 1/(1+e^-x) for x ≥ 0.
	xs := []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}
	var logits []float32
	for _, x := range xs {
		logits = append(logits, 0, x)
	}
	// keep 95 % of 20 flows = 19 flows: the lowest kept is x = 1.
	th, err := UnknownThreshold(logits, 20, 2, 1, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 / (1 + math.Exp(-1)); math.Abs(th-want) > 1e-12 {
		t.Fatalf("threshold %v, want %v", th, want)
	}
	// Temperature 2 halves the logits.
	th2, _ := UnknownThreshold(logits, 20, 2, 2, 0.95)
	if want := 1 / (1 + math.Exp(-0.5)); math.Abs(th2-want) > 1e-12 {
		t.Fatalf("T=2 threshold %v, want %v", th2, want)
	}
	if _, err := UnknownThreshold(logits, 20, 2, 1, 0); err == nil {
		t.Fatal("keep 0: want an error")
	}
}
