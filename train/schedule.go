package train

import (
	"fmt"
	"math"
)

// AbsoluteLR is the learning rate the official scripts derive from a base
// learning rate: lr = blr · batch / 256 (batch is the effective batch:
// per-step batch × gradient-accumulation steps).
func AbsoluteLR(blr float64, batch int) float64 { return blr * float64(batch) / 256 }

// CosineSchedule is MAE's adjust_learning_rate, used by NetMamba and
// NetMamba+ for pre-training and fine-tuning: a linear warm-up from 0 to LR
// over WarmupEpochs, then a half-cosine from LR down to MinLR at Epochs.
// Epochs are fractional and the rate is set every iteration.
type CosineSchedule struct {
	LR           float64 // peak (absolute) learning rate, see AbsoluteLR
	MinLR        float64 // final learning rate (1e-6 to fine-tune, 0 to pre-train)
	WarmupEpochs float64
	Epochs       float64 // total epochs; must exceed WarmupEpochs
}

// Validate reports an inconsistent schedule.
func (s CosineSchedule) Validate() error {
	if !(s.LR >= 0 && s.MinLR >= 0 && s.WarmupEpochs >= 0 && s.Epochs > s.WarmupEpochs) {
		return fmt.Errorf("train: schedule lr %g min_lr %g warm-up %g epochs %g: want lr, min_lr, warm-up ≥ 0 and epochs > warm-up",
			s.LR, s.MinLR, s.WarmupEpochs, s.Epochs)
	}
	return nil
}

// At returns the learning rate at fractional epoch e:
//
//	e < warm-up: LR · e / warm-up
//	otherwise:   MinLR + (LR − MinLR) · ½ · (1 + cos(π · (e − warm-up) / (Epochs − warm-up)))
//
// Past Epochs the cosine is not clamped (as in the official code).
func (s CosineSchedule) At(epoch float64) float64 {
	if epoch < s.WarmupEpochs {
		return s.LR * epoch / s.WarmupEpochs
	}
	return s.MinLR + (s.LR-s.MinLR)*0.5*(1+math.Cos(math.Pi*(epoch-s.WarmupEpochs)/(s.Epochs-s.WarmupEpochs)))
}

// FractionalEpoch is the epoch value the official loop passes to the
// schedule at iteration iter (0-based) of epoch (0-based) when an epoch has
// itersPerEpoch iterations: epoch + iter/itersPerEpoch.
func FractionalEpoch(epoch, iter, itersPerEpoch int) float64 {
	return float64(epoch) + float64(iter)/float64(itersPerEpoch)
}
