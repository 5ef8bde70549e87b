package model

import "fmt"

// The stochastic parts of a training forward that NetMamba, its MAE and
// fuse3 share: per-flow drop-path scales, dropout seeds and the dropout
// mask.

// drawTrainFlows checks opt's rates and draws, flow by flow (sequentially,
// so the draws do not depend on the thread count), the drop-path scales
// of flow i's encoder blocks into encScale(i), from the rates of depth
// blocks, then, when dropout is on, a dropout seed into seeds[i] (0 when
// off); len(seeds) is the number of flows.
func drawTrainFlows(opt TrainOptions, depth int, encScale func(i int) []float32, seeds []uint64) error {
	if (opt.DropPath > 0 || opt.DropRate > 0) && opt.Rand == nil {
		return fmt.Errorf("drop-path %g / dropout %g needs TrainOptions.Rand", opt.DropPath, opt.DropRate)
	}
	if opt.DropPath < 0 || opt.DropPath >= 1 || opt.DropRate < 0 || opt.DropRate >= 1 {
		return fmt.Errorf("drop-path %g and dropout %g must be in [0, 1)", opt.DropPath, opt.DropRate)
	}
	rates := DropPathRates(depth, opt.DropPath)
	clear(seeds)
	for i := range seeds {
		scale := encScale(i)
		for l := range scale {
			scale[l] = dropScale(rates[l], opt.Rand)
		}
		if opt.DropRate > 0 {
			seeds[i] = opt.Rand.Uint64()
		}
	}
	return nil
}

// dropoutMask is one flow's official pos_drop mask (inverted dropout on
// the embedded encoder input), kept for backward: a scale per element,
// 0 or 1/(1−p); empty when dropout is off. NetMamba and fuse3 share it.
type dropoutMask []float32

// apply draws the mask for rate p from a per-flow splitmix64 stream
// seeded by seed and multiplies v by it in place (p <= 0: no-op, empty
// mask).
func (d *dropoutMask) apply(v []float32, p float64, seed uint64) {
	if p <= 0 {
		*d = (*d)[:0]
		return
	}
	if cap(*d) < len(v) {
		*d = make(dropoutMask, len(v))
	}
	mask := (*d)[:len(v)]
	*d = mask
	keep := float32(1 / (1 - p))
	s := seed
	for i := range v {
		s += 0x9e3779b97f4a7c15 // splitmix64
		z := s
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		if float64(z>>11)/(1<<53) < p {
			mask[i] = 0
		} else {
			mask[i] = keep
		}
		v[i] *= mask[i]
	}
}

// backward multiplies the input gradient dv by the mask of the last
// apply, in place (no-op when dropout was off).
func (d dropoutMask) backward(dv []float32) {
	for j, s := range d {
		dv[j] *= s
	}
}
