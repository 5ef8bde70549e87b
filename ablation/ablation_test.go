package ablation

import (
	"math"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/train"
)

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{0.5, 0.7, 0.9})
	// mean 0.7, sample variance ((0.04+0+0.04)/2) = 0.04 → std 0.2
	if math.Abs(s.Mean-0.7) > 1e-12 || math.Abs(s.Std-0.2) > 1e-12 || s.N != 3 {
		t.Fatalf("got %+v", s)
	}
	if got := s.String(); got != "0.700 ± 0.200" {
		t.Fatalf("String %q", got)
	}
	if one := Summarize([]float64{0.25}); one.Std != 0 || one.String() != "0.250" {
		t.Fatalf("single: %+v", one)
	}
}

func TestPickBest(t *testing.T) {
	runs := []Run{
		{Variant: "A", Loss: "ce", Fraction: 1, ValMacroF1: 0.5},
		{Variant: "A", Loss: "ce", Fraction: 1, ValMacroF1: 0.7},
		{Variant: "B", Loss: "lda", Fraction: 1, ValMacroF1: 0.65},
		{Variant: "B", Loss: "lda", Fraction: 1, ValMacroF1: 0.61},
		{Variant: "C", Loss: "ce", Fraction: 0.1, ValMacroF1: 0.99}, // few-shot runs do not count
	}
	if got := pickBest(runs); got != "B/lda" { // A/ce mean 0.60 < B/lda 0.63
		t.Fatalf("best %q, want B/lda", got)
	}
}

func TestExclude(t *testing.T) {
	d := &train.Data{N: 5, Classes: []string{"a", "b", "c"}, Labels: []int{0, 1, 2, 1, 0},
		Bytes: make([]byte, 5*1600), Sources: []string{"0", "1", "2", "3", "4"}}
	d.Views = make([]repr.View, 5)
	kept, out, err := exclude(d, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(kept.Classes, ",") != "a,c" || kept.N != 3 || out.N != 2 {
		t.Fatalf("kept %v n=%d, out n=%d", kept.Classes, kept.N, out.N)
	}
	// a stays 0, c becomes 1; the b flows (sources 1 and 3) are out.
	if kept.Labels[0] != 0 || kept.Labels[1] != 1 || kept.Labels[2] != 0 || out.Sources[0] != "1" || out.Sources[1] != "3" {
		t.Fatalf("labels %v, out sources %v", kept.Labels, out.Sources)
	}
}
