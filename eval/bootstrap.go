package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Interval is a confidence interval.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// CI95 holds bootstrap 95 % intervals of the headline scores.
type CI95 struct {
	Resamples  int      `json:"resamples"`
	Seed       uint64   `json:"seed"`
	Accuracy   Interval `json:"accuracy"`
	MacroF1    Interval `json:"macro_f1"`
	WeightedF1 Interval `json:"weighted_f1"`
}

// DefaultResamples is the bootstrap size used when none is given.
const DefaultResamples = 1000

// Bootstrap estimates 95 % confidence intervals of accuracy, macro-F1 and
// weighted-F1 by the percentile bootstrap: resamples draws of N samples with
// replacement (PCG seeded with seed, so results are reproducible), each
// scored exactly as Compute scores the full set; the interval is the 2.5th
// and 97.5th percentiles of the draws, interpolated linearly between order
// statistics (numpy.percentile's default).
func Bootstrap(labels, preds []int, c, resamples int, seed uint64) (*CI95, error) {
	if _, err := Confusion(labels, preds, c); err != nil {
		return nil, err
	}
	n := len(labels)
	if n == 0 {
		return nil, fmt.Errorf("eval: bootstrap of an empty set")
	}
	if resamples <= 0 {
		return nil, fmt.Errorf("eval: bootstrap with %d resamples", resamples)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6e65746d616d6261)) // "netmamba"
	acc := make([]float64, resamples)
	mf1 := make([]float64, resamples)
	wf1 := make([]float64, resamples)
	cc := newClassCounts(c)
	for b := 0; b < resamples; b++ {
		cc.reset()
		for j := 0; j < n; j++ {
			i := rng.IntN(n)
			cc.add(labels[i], preds[i])
		}
		s := cc.summary()
		acc[b], mf1[b], wf1[b] = s.accuracy, s.macroF1, s.weightedF1
	}
	return &CI95{
		Resamples:  resamples,
		Seed:       seed,
		Accuracy:   percentileInterval(acc),
		MacroF1:    percentileInterval(mf1),
		WeightedF1: percentileInterval(wf1),
	}, nil
}

func percentileInterval(v []float64) Interval {
	slices.Sort(v)
	return Interval{Low: percentile(v, 2.5), High: percentile(v, 97.5)}
}

// percentile is numpy.percentile(v, q) with linear interpolation on sorted v.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[hi]-sorted[lo])
}
