package train

import (
	"fmt"
	"math/rand/v2"
)

// PretrainOptions configure self-supervised pre-training (SPEC §4).
type PretrainOptions struct {
	Schedule
	RunOptions
	// Steps is the number of optimiser steps (the cosine schedule spans
	// them; the last epoch may be partial). 0 keeps Schedule.Epochs.
	Steps int
	// WarmupFraction sets the warm-up as a fraction of the epochs when
	// Schedule.WarmupEpochs is 0 (default 0.05).
	WarmupFraction float64
}

// DefaultPretrain is the official MAE recipe: AdamW β (0.9, 0.95), weight
// decay 0.05 on everything but 1-D tensors and biases, lr = 1e-3·batch/256,
// batch 128, warm-up then per-iteration half-cosine to 0, drop-path 0.1.
func DefaultPretrain() PretrainOptions {
	return PretrainOptions{
		Schedule:       Schedule{Epochs: 1, Batch: 128, BLR: 1e-3, MinLR: 0, WeightDecay: 0.05, Beta2: 0.95, NoDecayBias: true},
		WarmupFraction: 0.05,
	}
}

// PretrainResult summarises a pre-training run.
type PretrainResult struct {
	Steps, Epochs int
	RunSteps      int     // steps taken by this process (fewer after --resume)
	Seconds       float64 // wall time of the training loop, summed over a resumed run's processes
	FinalLoss     float64 // mean loss of the last epoch
}

// Pretrain trains p on the flows of d (labels are ignored).
func Pretrain(p Pretrainer, d *Data, o PretrainOptions) (*PretrainResult, error) {
	if d.N == 0 {
		return nil, fmt.Errorf("train: the pre-training set is empty")
	}
	batch := min(o.Batch, d.N)
	ipe := d.N / batch
	if o.Steps > 0 {
		o.Epochs = (o.Steps + ipe - 1) / ipe
		o.MaxSteps = o.Steps
	}
	if o.Epochs <= 0 {
		return nil, fmt.Errorf("train: pre-training needs --steps or --epochs > 0")
	}
	if o.WarmupEpochs == 0 {
		f := o.WarmupFraction
		if f == 0 {
			f = 0.05
		}
		o.WarmupEpochs = f * float64(o.Epochs)
		if o.MaxSteps > 0 {
			o.WarmupEpochs = f * float64(o.MaxSteps) / float64(ipe)
		}
	}
	opt, err := newOptimizer(p.Params(), o.Schedule, 0, nil, nil)
	if err != nil {
		return nil, err
	}
	step := func(idx []int, rng *rand.Rand) (float64, error) {
		loss, err := p.Loss(d, idx, rng)
		if err != nil {
			return 0, err
		}
		return float64(loss), p.Backward()
	}
	var last float64
	epochEnd := func(epoch int, pos *position) error {
		if pos.EpochSteps > 0 {
			last = pos.EpochMeanLoss()
		}
		return nil
	}
	log, err := openTrainLog(o.LogPath, o.Resume)
	if err != nil {
		return nil, err
	}
	defer log.close()
	cfg := configString(struct {
		Schedule
		Seed uint64
		N    int
	}{o.Schedule, o.Seed, d.N})
	pos, err := runLoop(d.N, o.Schedule, o.RunOptions, p.Params(), opt, p.ZeroGrad, step, nil, epochEnd, nil, cfg, log)
	if err != nil {
		return nil, err
	}
	return &PretrainResult{Steps: pos.Step, RunSteps: pos.Done, Seconds: pos.Seconds, Epochs: o.Epochs, FinalLoss: last}, nil
}
