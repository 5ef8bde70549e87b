package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/netmamba/netmamba/eval"
	"github.com/netmamba/netmamba/repr"
)

// FinetuneOptions configure supervised fine-tuning (SPEC §4).
type FinetuneOptions struct {
	Schedule
	RunOptions
	Loss           string  // "ce" (label-smoothed cross-entropy) or "lda" (LDAM + class-balanced weights + smoothing)
	LabelSmoothing float64 // 0.1 officially
	Fraction       float64 // few-shot: keep the first int(N·Fraction) flows of a seed-0 shuffle (0 or 1: all)
	Select         string  // epoch selection on validation: "macro_f1" (default) or "accuracy" (official)
	// EMA, when in (0, 1), keeps an exponential moving average of the
	// weights with this decay (warmed up as min(EMA, (1+t)/(10+t)) after t
	// steps); validation, epoch selection and the result use the average
	// instead of the raw weights. 0: off (the official recipe).
	EMA float64
	// ShiftAug > 0 is payload-alignment augmentation: in every training
	// view, each packet's payload (bytes HeaderBytes..SlotBytes of its
	// slot) moves right by 0..ShiftAug bytes, zeros in front and the tail
	// dropped, drawn per packet from the step's seeded generator (so a
	// resumed run stays exact). The stride-4 byte embedding then sees the
	// same string (a TLS SNI, an HTTP Host) at each of its 4 alignments.
	// Headers are never moved. 0: off (the official recipe).
	ShiftAug int
	// LDACounts chooses the per-class counts behind LDA's margins and
	// class-balanced weights: "all" (default; every training flow kept by
	// Fraction) or "labelled" (pseudo-labelled flows left out, so a capped,
	// flattened self-training set does not undo the re-weighting of the
	// real class imbalance; a class with no flow of its own keeps its
	// pseudo-labelled count). CE ignores it.
	LDACounts string
}

// DefaultFinetune is the official fine-tuning recipe with the epoch count
// used by the acceptance runs (30 epochs, 5 warm-up).
func DefaultFinetune() FinetuneOptions {
	return FinetuneOptions{
		Schedule: Schedule{Epochs: 30, WarmupEpochs: 5, Batch: 64, BLR: 2e-3, MinLR: 1e-6,
			WeightDecay: 0.05, Beta2: 0.999, LayerDecay: 0.75},
		Loss: "ce", LabelSmoothing: 0.1, Fraction: 1, Select: "macro_f1", LDACounts: "all",
	}
}

// FinetuneResult summarises a fine-tuning run.
type FinetuneResult struct {
	Steps      int     // optimiser steps of the whole run
	RunSteps   int     // steps taken by this process (fewer after --resume)
	Seconds    float64 // wall time of the training loop (validation included), summed over a resumed run's processes
	BestEpoch  int     // -1 when there was no validation data (the last epoch is kept)
	BestScore  float64 // validation score of BestEpoch (Select)
	TrainFlows int     // after the few-shot fraction
	Counts     []int   // training flows per class (LDA's counts: see FinetuneOptions.LDACounts)
}

// CheckLDACounts reports whether v is a FinetuneOptions.LDACounts value:
// "all" (or empty) or "labelled".
func CheckLDACounts(v string) error {
	switch v {
	case "", "all", "labelled":
		return nil
	}
	return fmt.Errorf("train: unknown LDA counts %q (want all or labelled)", v)
}

// FewShot returns the indices kept by the few-shot fraction r (SPEC §4):
// a seed-0 shuffle of the whole list, then the first int(n·r).
func FewShot(n int, r float64) []int {
	perm := rand.New(rand.NewPCG(0, 0x66657773686f7400)).Perm(n)
	if r <= 0 || r >= 1 {
		return perm
	}
	return perm[:int(float64(n)*r)]
}

// NewCriterion builds the loss named by o.Loss for the class counts.
func NewCriterion(loss string, smoothing float64, counts []int) (Criterion, error) {
	switch loss {
	case "", "ce":
		return &CrossEntropyLoss{Smoothing: smoothing}, nil
	case "lda":
		c := make([]int, len(counts))
		for i, v := range counts {
			c[i] = max(v, 1) // a class absent from a few-shot subset still gets a (large) margin
		}
		return NewLDAM(c, true, smoothing)
	}
	return nil, fmt.Errorf("train: unknown loss %q (want ce or lda)", loss)
}

// Finetune trains net on trainData, picks the epoch with the best
// validation score (when valid is not nil) and leaves net's parameters at
// that epoch's weights.
func Finetune(net Classifier, trainData, valid *Data, o FinetuneOptions) (*FinetuneResult, error) {
	if trainData.N == 0 {
		return nil, fmt.Errorf("train: the training set is empty")
	}
	C := net.NumClasses()
	for i, y := range trainData.Labels {
		if y < 0 || y >= C {
			return nil, fmt.Errorf("train: training flow %d (%s) has label %d outside the model's %d classes", i, trainData.Sources[i], y, C)
		}
	}
	keep := FewShot(trainData.N, o.Fraction)
	td := trainData.Subset(keep)
	if err := CheckLDACounts(o.LDACounts); err != nil {
		return nil, err
	}
	counts := td.ClassCounts()
	ldaCountsKey := ""
	if o.LDACounts == "labelled" {
		// A class with no flow of its own keeps its pseudo-labelled count:
		// counted as 0 (then 1) it would get the largest margin and weight,
		// all of it on the teacher's labels.
		for k, n := range td.LabelledClassCounts() {
			if n > 0 {
				counts[k] = n
			}
		}
		if o.Loss == "lda" {
			ldaCountsKey = o.LDACounts
		}
	}
	crit, err := NewCriterion(o.Loss, o.LabelSmoothing, counts)
	if err != nil {
		return nil, err
	}
	switch o.Select {
	case "", "macro_f1", "accuracy":
	default:
		return nil, fmt.Errorf("train: unknown --select %q (want macro_f1 or accuracy)", o.Select)
	}
	if o.EMA < 0 || o.EMA >= 1 {
		return nil, fmt.Errorf("train: EMA decay %g outside [0, 1)", o.EMA)
	}
	if o.ShiftAug < 0 || o.ShiftAug >= repr.SlotBytes-repr.HeaderBytes {
		return nil, fmt.Errorf("train: payload shift %d outside [0, %d)", o.ShiftAug, repr.SlotBytes-repr.HeaderBytes)
	}
	opt, err := newOptimizer(net.Params(), o.Schedule, net.Depth(), func(n string, _ int) int { return net.LayerID(n) }, net.NoDecay())
	if err != nil {
		return nil, err
	}
	batch := min(o.Batch, td.N)
	logits := make([]float32, batch*C)
	dlogits := make([]float32, batch*C)
	labels := make([]int, batch)
	var aug *shiftedBatch
	if o.ShiftAug > 0 {
		aug = newShiftedBatch(td, batch)
	}
	step := func(idx []int, rng *rand.Rand) (float64, error) {
		for j, i := range idx {
			labels[j] = td.Labels[i]
		}
		in, inIdx := td, idx
		if aug != nil {
			in, inIdx = aug.fill(td, idx, o.ShiftAug, rng)
		}
		if err := net.ForwardTrain(in, inIdx, logits, rng); err != nil {
			return 0, err
		}
		loss, err := crit.Loss(logits, labels, len(idx), C, dlogits)
		if err != nil {
			return 0, err
		}
		return float64(loss), net.Backward(dlogits)
	}
	log, err := openTrainLog(o.LogPath, o.Resume)
	if err != nil {
		return nil, err
	}
	defer log.close()
	sets := weightSets{}
	var afterStep func(int)
	var ema map[string][]float32
	if o.EMA > 0 {
		ema = map[string][]float32{}
		for _, p := range net.Params() {
			ema[p.Name] = append([]float32(nil), p.Data...)
		}
		sets["ema"] = ema // a resumed run reloads it from the state
		afterStep = func(steps int) { updateEMA(net.Params(), ema, emaDecay(o.EMA, steps-1)) }
	}
	// withEMA runs f with the averaged weights in place of the raw ones (or
	// with the raw ones when EMA is off), then puts the raw weights back.
	raw := map[string][]float32{}
	withEMA := func(f func() error) error {
		if ema == nil {
			return f()
		}
		for _, p := range net.Params() {
			raw[p.Name] = append(raw[p.Name][:0], p.Data...)
			copy(p.Data, ema[p.Name])
		}
		err := f()
		for _, p := range net.Params() {
			copy(p.Data, raw[p.Name])
		}
		return err
	}
	var best map[string][]float32
	var epochEnd epochEndFunc
	if valid != nil && valid.N > 0 {
		best = map[string][]float32{}
		sets["best"] = best
		validate := func(epoch int, pos *position) error {
			m, vloss, err := Evaluate(net, valid, batch, crit)
			if err != nil {
				return fmt.Errorf("train: validation after epoch %d: %w", epoch, err)
			}
			score := m.MacroF1
			if o.Select == "accuracy" {
				score = m.Accuracy
			}
			if err := log.add(eval.TrainRecord{Step: int64(pos.Step), Epoch: float64(epoch + 1),
				ValLoss: eval.Float(vloss), ValAccuracy: eval.Float(m.Accuracy), ValMacroF1: eval.Float(m.MacroF1)}); err != nil {
				return err
			}
			if score > pos.BestScore {
				pos.BestScore, pos.BestEpoch = score, epoch
				for _, p := range net.Params() {
					best[p.Name] = append(best[p.Name][:0], p.Data...)
				}
			}
			return nil
		}
		epochEnd = func(epoch int, pos *position) error {
			return withEMA(func() error { return validate(epoch, pos) })
		}
	}
	cfg := configString(struct {
		Schedule
		Loss, Select        string
		Smoothing, Fraction float64
		Seed                uint64
		N, C                int
		EMA                 float64 `json:",omitempty"`
		ShiftAug            int     `json:",omitempty"`
		LDACounts           string  `json:",omitempty"` // only when it changes the loss (state files of other runs stay valid)
	}{o.Schedule, o.Loss, o.Select, o.LabelSmoothing, o.Fraction, o.Seed, td.N, C, o.EMA, o.ShiftAug, ldaCountsKey})
	pos, err := runLoop(td.N, o.Schedule, o.RunOptions, net.Params(), opt, net.ZeroGrad, step, afterStep, epochEnd, sets, cfg, log)
	if err != nil {
		return nil, err
	}
	switch {
	case best != nil && pos.BestEpoch >= 0:
		for _, p := range net.Params() {
			copy(p.Data, best[p.Name])
		}
	case ema != nil: // no validation: the last average
		for _, p := range net.Params() {
			copy(p.Data, ema[p.Name])
		}
	}
	return &FinetuneResult{Steps: pos.Step, RunSteps: pos.Done, Seconds: pos.Seconds, BestEpoch: pos.BestEpoch, BestScore: pos.BestScore, TrainFlows: td.N, Counts: counts}, nil
}

// emaDecay is the moving average's decay after t steps: the target decay,
// warmed up as (1+t)/(10+t) so the first steps (from the pre-trained
// encoder and a fresh head) do not dominate a short run.
func emaDecay(decay float64, t int) float64 {
	return min(decay, float64(1+t)/float64(10+t))
}

// updateEMA moves ema towards the current weights: ema = d·ema + (1-d)·w.
func updateEMA(params []*Param, ema map[string][]float32, d float64) {
	a, b := float32(d), float32(1-d)
	for _, p := range params {
		e := ema[p.Name]
		for i, w := range p.Data {
			e[i] = a*e[i] + b*w
		}
	}
}

// Predict returns the eval-mode logits (d.N, C) of every flow of d.
func Predict(net Classifier, d *Data, batch int) ([]float32, error) {
	if batch < 1 {
		return nil, fmt.Errorf("train: predict: batch %d: want ≥ 1", batch)
	}
	C := net.NumClasses()
	out := make([]float32, d.N*C)
	idx := make([]int, 0, batch)
	for s := 0; s < d.N; s += batch {
		idx = idx[:0]
		for i := s; i < min(s+batch, d.N); i++ {
			idx = append(idx, i)
		}
		if err := net.Forward(d, idx, out[s*C:(s+len(idx))*C]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Evaluate scores net on d: metrics and the mean loss under crit (nil: no loss).
func Evaluate(net Classifier, d *Data, batch int, crit Criterion) (*eval.Metrics, float64, error) {
	C := net.NumClasses()
	logits, err := Predict(net, d, batch)
	if err != nil {
		return nil, 0, err
	}
	var loss float64
	if crit != nil {
		l, err := crit.Loss(logits, d.Labels, d.N, C, nil)
		if err != nil {
			return nil, 0, err
		}
		loss = float64(l)
	}
	names := d.Classes
	if len(names) != C {
		names = nil
	}
	m, err := eval.ComputeLogits(d.Labels, logits, C, names)
	return m, loss, err
}

// shiftedBatch holds one training batch with payload-alignment
// augmentation applied (FinetuneOptions.ShiftAug): its memory is laid out
// once and refilled every step.
type shiftedBatch struct {
	d   Data
	idx []int // 0, 1, ..., batch−1
}

func newShiftedBatch(src *Data, batch int) *shiftedBatch {
	b := &shiftedBatch{d: Data{Path: src.Path, Classes: src.Classes, Settings: src.Settings,
		Bytes: make([]byte, batch*repr.ViewBytes), Labels: make([]int, batch),
		Sources: make([]string, batch), Views: make([]repr.View, batch)}, idx: make([]int, batch)}
	for i := range b.idx {
		b.idx[i] = i
	}
	return b
}

// fill copies flows idx of src into the batch, moves each packet's payload
// right by rng.IntN(maxShift+1) bytes, and returns the batch and its row
// indices. The views' sizes and times are copied unchanged.
func (b *shiftedBatch) fill(src *Data, idx []int, maxShift int, rng *rand.Rand) (*Data, []int) {
	b.d.N = len(idx)
	for j, i := range idx {
		row := b.d.Bytes[j*repr.ViewBytes : (j+1)*repr.ViewBytes]
		copy(row, src.Bytes[i*repr.ViewBytes:(i+1)*repr.ViewBytes])
		for p := range repr.ViewPackets {
			shiftPayload(row[p*repr.SlotBytes:(p+1)*repr.SlotBytes], rng.IntN(maxShift+1))
		}
		b.d.Labels[j], b.d.Sources[j], b.d.Views[j] = src.Labels[i], src.Sources[i], src.Views[i]
		copy(b.d.Views[j].Bytes[:], row) // the view's bytes agree with Bytes
	}
	return &b.d, b.idx[:len(idx)]
}

// shiftPayload moves the payload of one packet slot (bytes
// repr.HeaderBytes..repr.SlotBytes) right by r bytes: r zero bytes in
// front, the last r payload bytes dropped. The header is left alone.
func shiftPayload(slot []byte, r int) {
	if r <= 0 {
		return
	}
	pay := slot[repr.HeaderBytes:repr.SlotBytes] // (240,)
	copy(pay[r:], pay[:len(pay)-r])
	clear(pay[:r])
}
