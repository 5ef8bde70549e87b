package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/eval"
)

// Schedule configures the optimiser and the learning-rate schedule shared
// by pre-training and fine-tuning (SPEC §4).
type Schedule struct {
	Epochs       int     // passes over the training data
	WarmupEpochs float64 // linear warm-up, then half-cosine to MinLR
	Batch        int     // flows per step (the last incomplete batch of an epoch is dropped, as the official loaders do)
	BLR          float64 // base lr; the absolute lr is BLR·Batch/256
	MinLR        float64
	WeightDecay  float64
	Beta2        float64 // AdamW β2 (0.999 to fine-tune, 0.95 to pre-train)
	LayerDecay   float64 // layer-wise lr decay (0.75 to fine-tune; 0 = none)
	// MaxSteps, when > 0, ends the run after exactly this many optimiser
	// steps (possibly mid-epoch); the cosine schedule then spans MaxSteps.
	MaxSteps    int
	NoDecayBias bool // exempt ".bias" parameters from decay (pre-training)
}

// RunOptions are the run-level settings: seeds, threads, checkpoints, log.
type RunOptions struct {
	Seed            uint64
	Threads         int
	StatePath       string // resumable state (weights, optimiser, position); "" = none
	CheckpointEvery int    // steps between state saves (0: at epoch ends only)
	Resume          bool   // continue from StatePath
	LogPath         string // JSONL training log ("" = none)
	// Warn, when set, receives warnings that do not stop the run (a
	// resume with another thread count).
	Warn func(msg string)
	// Progress, when set, is called after every step.
	Progress func(Progress)
	// StopAfterSteps stops the run once this many steps are done in this
	// process (Run returns ErrStopped); 0 = never. Without SaveOnStop it
	// stops as an interruption would (the state is the last checkpoint's).
	StopAfterSteps int
	// SaveOnStop saves the state when StopAfterSteps stops the run, so
	// --resume continues from exactly there (the log is written as it goes).
	SaveOnStop bool
}

// Progress is reported after every optimiser step.
type Progress struct {
	Step, TotalSteps int
	Epoch            float64
	Loss             float64 // this step's loss
	LR               float64
	FlowsPerSec      float64 // since the start of this process
	Elapsed          time.Duration
	RunSteps         int // steps taken by this process (fewer than Step after a resume)
}

// ETA estimates the time left at this process's rate.
func (p Progress) ETA() time.Duration {
	if p.RunSteps <= 0 {
		return 0
	}
	return time.Duration(float64(p.Elapsed) / float64(p.RunSteps) * float64(p.TotalSteps-p.Step))
}

// ErrStopped is returned when RunOptions.StopAfterSteps ends a run early.
var ErrStopped = fmt.Errorf("train: stopped after the requested number of steps")

// position is where a run stands: the next step to take.
type position struct {
	Step      int     `json:"step"`       // steps done
	Epoch     int     `json:"epoch"`      // current epoch
	Iter      int     `json:"iter"`       // next iteration within Epoch
	BestScore float64 `json:"best_score"` // best validation score so far (fine-tune; scores are in [0, 1], -1 = none)
	BestEpoch int     `json:"best_epoch"` // its epoch (-1: none)
	Config    string  `json:"config"`     // the run's configuration, to refuse resuming a different run
	Threads   int     `json:"threads"`    // worker threads of the run that saved it (0: not recorded)
	// Seconds is the wall time the loop has run to reach this position,
	// summed over the processes of a resumed run (work lost to an
	// interruption after the last save is not counted; 0 in states saved
	// before it was recorded).
	Seconds float64 `json:"seconds"`
	// EpochLoss and EpochSteps sum the step losses of the current epoch so
	// far, so an epoch's mean loss survives a resume (absent in older states:
	// the mean then covers the resumed steps only).
	EpochLoss  float64 `json:"epoch_loss,omitempty"`
	EpochSteps int     `json:"epoch_steps,omitempty"`
	Done       int     `json:"-"` // steps taken by this process (not saved)
}

// EpochMeanLoss is the mean step loss of the current epoch so far (0 before
// its first step).
func (p *position) EpochMeanLoss() float64 {
	if p.EpochSteps == 0 {
		return 0
	}
	return p.EpochLoss / float64(p.EpochSteps)
}

// epochPerm is the shuffled order of epoch e: a pure function of the seed
// and the epoch, so a resumed run sees the same batches.
func epochPerm(n int, seed uint64, epoch int) []int {
	r := rand.New(rand.NewPCG(seed, 0x7065726d00000000|uint64(epoch)))
	return r.Perm(n)
}

// stepRand is the generator of step s's stochastic draws (drop-path, masks).
func stepRand(seed uint64, step int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(step)))
}

// newOptimizer builds AdamW over params with the schedule's groups.
func newOptimizer(params []*Param, s Schedule, depth int, layerID func(string, int) int, noDecay []string) (*AdamW, error) {
	groups := BuildGroups(params, GroupConfig{
		WeightDecay: s.WeightDecay,
		NoDecay:     noDecay,
		NoDecayBias: s.NoDecayBias,
		LayerDecay:  s.LayerDecay,
		Depth:       depth,
		LayerID:     layerID,
	})
	cfg := DefaultAdamWConfig()
	if s.Beta2 > 0 {
		cfg.Beta2 = s.Beta2
	}
	return NewAdamW(groups, cfg)
}

// weightSets are copies of the parameters kept by a run besides the
// current weights, by name prefix in the state file: "best" (the best
// validation epoch's weights), "ema" (the moving average of the weights).
// Each maps a parameter name to its values; an absent entry is not saved.
type weightSets map[string]map[string][]float32

// saveState writes the resumable state: parameters ("param.*"), optimiser
// ("optim.*"), the extra weight sets ("best.*", "ema.*", when present) and
// the position.
func saveState(path string, params []*Param, opt *AdamW, sets weightSets, pos position) error {
	f := &checkpoint.File{Tensors: map[string]*checkpoint.Tensor{}, Metadata: map[string]string{}}
	for _, p := range params {
		f.Tensors["param."+p.Name] = &checkpoint.Tensor{DType: "F32", Shape: p.Shape, F32: p.Data}
		for prefix, set := range sets {
			if b := set[p.Name]; b != nil {
				f.Tensors[prefix+"."+p.Name] = &checkpoint.Tensor{DType: "F32", Shape: p.Shape, F32: b}
			}
		}
	}
	for k, t := range opt.State() {
		f.Tensors["optim."+k] = t
	}
	b, err := json.Marshal(pos)
	if err != nil {
		return err
	}
	f.Metadata["netmamba.train.position"] = string(b)
	if err := checkpoint.WriteSafetensors(path, f, checkpoint.WriteOptions{}); err != nil {
		return fmt.Errorf("train: saving state: %w", err)
	}
	return nil
}

// loadState restores what saveState wrote into params, opt and the weight
// sets (each set present in sets is filled from its prefix's tensors).
func loadState(path string, params []*Param, opt *AdamW, sets weightSets, config string) (position, error) {
	var pos position
	f, err := checkpoint.ReadSafetensors(path)
	if err != nil {
		return pos, fmt.Errorf("train: resume: %w", err)
	}
	if err := json.Unmarshal([]byte(f.Metadata["netmamba.train.position"]), &pos); err != nil {
		return pos, fmt.Errorf("train: resume: %s has no training position: %w", path, err)
	}
	if pos.Config != config {
		return pos, fmt.Errorf("train: resume: %s was written by a run with other settings:\n  saved: %s\n  now:   %s", path, pos.Config, config)
	}
	for _, p := range params {
		t := f.Tensors["param."+p.Name]
		if t == nil || len(t.F32) != len(p.Data) {
			return pos, fmt.Errorf("train: resume: %s: parameter %s missing or mis-shaped", path, p.Name)
		}
		copy(p.Data, t.F32)
		for prefix, set := range sets {
			if bt := f.Tensors[prefix+"."+p.Name]; bt != nil && set != nil {
				set[p.Name] = append([]float32(nil), bt.F32...)
			}
		}
	}
	st := map[string]*checkpoint.Tensor{}
	for k, t := range f.Tensors {
		if len(k) > 6 && k[:6] == "optim." {
			st[k[6:]] = t
		}
	}
	if err := opt.LoadState(st); err != nil {
		return pos, fmt.Errorf("train: resume: %s: %w", path, err)
	}
	return pos, nil
}

// trainLog appends JSONL records to a file (no file: records are dropped).
type trainLog struct {
	f    *os.File
	path string
}

func openTrainLog(path string, resume bool) (*trainLog, error) {
	if path == "" {
		return &trainLog{}, nil
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resume {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: log: %w", err)
	}
	return &trainLog{f: f, path: path}, nil
}

// truncateAfter drops the records of steps after step: a resumed run
// repeats the steps taken after its last saved state, and logs them again.
func (l *trainLog) truncateAfter(step int) error {
	if l.f == nil {
		return nil
	}
	raw, err := os.ReadFile(l.path)
	if err != nil {
		return fmt.Errorf("train: log: %w", err)
	}
	recs, err := eval.ReadTrainLog(bytes.NewReader(raw), l.path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, r := range recs {
		if r.Step <= int64(step) {
			if err := eval.AppendTrainRecord(&buf, r); err != nil {
				return err
			}
		}
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("train: log: %w", err)
	}
	if _, err := l.f.Write(buf.Bytes()); err != nil { // O_APPEND: writes go to the (new) end
		return fmt.Errorf("train: log: %w", err)
	}
	return nil
}

func (l *trainLog) add(rec eval.TrainRecord) error {
	if l.f == nil {
		return nil
	}
	rec.Time = time.Now().UTC().Format(time.RFC3339)
	return eval.AppendTrainRecord(l.f, rec)
}

func (l *trainLog) close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// stepFunc runs one optimiser step's forward and backward on flows idx and
// returns the loss.
type stepFunc func(idx []int, rng *rand.Rand) (float64, error)

// epochEndFunc runs after each epoch (validation); it may update pos.
type epochEndFunc func(epoch int, pos *position) error

// runLoop is the loop shared by pre-training and fine-tuning. afterStep,
// when not nil, runs after each optimiser step with the number of steps
// done; sets are saved with the state and restored on resume.
func runLoop(n int, s Schedule, ro RunOptions, params []*Param, opt *AdamW, zero func(), step stepFunc,
	afterStep func(steps int), epochEnd epochEndFunc, sets weightSets, config string, log *trainLog) (position, error) {
	batch := min(s.Batch, n)
	if batch <= 0 {
		return position{}, fmt.Errorf("train: no training flows")
	}
	ipe := n / batch // drop_last
	total := ipe * s.Epochs
	schedEpochs := float64(s.Epochs)
	if s.MaxSteps > 0 && s.MaxSteps < total {
		total = s.MaxSteps
		schedEpochs = float64(total) / float64(ipe)
	}
	sched := CosineSchedule{LR: AbsoluteLR(s.BLR, batch), MinLR: s.MinLR, WarmupEpochs: s.WarmupEpochs, Epochs: schedEpochs}
	if err := sched.Validate(); err != nil {
		return position{}, err
	}
	threads := ro.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	pos := position{BestEpoch: -1, BestScore: -1, Config: config, Threads: threads}
	if ro.Resume {
		p, err := loadState(ro.StatePath, params, opt, sets, config)
		if err != nil {
			return pos, err
		}
		if p.Threads != 0 && p.Threads != threads && ro.Warn != nil {
			// Gradients are reduced per worker, so the sums round differently:
			// the run goes on, but it is no longer bit-identical to an
			// uninterrupted one.
			ro.Warn(fmt.Sprintf("resuming %s with %d threads; it was saved by a run with %d: "+
				"the result will differ in rounding from an uninterrupted run (use --threads %d to reproduce it exactly)",
				ro.StatePath, threads, p.Threads, p.Threads))
		}
		p.Threads = threads
		pos = p
	}
	if ro.Resume {
		if err := log.truncateAfter(pos.Step); err != nil {
			return pos, err
		}
	}
	start, done := time.Now(), 0
	base := pos.Seconds // loop time of the processes before this one
	stamp := func() { pos.Seconds = base + time.Since(start).Seconds() }
	save := func() error {
		stamp()
		return saveState(ro.StatePath, params, opt, sets, pos)
	}
	for pos.Epoch < s.Epochs {
		perm := epochPerm(n, ro.Seed, pos.Epoch)
		for pos.Iter < ipe && pos.Step < total {
			if ro.StopAfterSteps > 0 && done >= ro.StopAfterSteps {
				if ro.SaveOnStop && ro.StatePath != "" {
					if err := save(); err != nil {
						return pos, err
					}
				}
				return pos, ErrStopped
			}
			ep := FractionalEpoch(pos.Epoch, pos.Iter, ipe)
			lr := sched.At(ep)
			idx := perm[pos.Iter*batch : (pos.Iter+1)*batch]
			zero()
			loss, err := step(idx, stepRand(ro.Seed, pos.Step))
			if err != nil {
				return pos, fmt.Errorf("train: step %d: %w", pos.Step, err)
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return pos, fmt.Errorf("train: step %d: loss is %g", pos.Step, loss)
			}
			opt.Step(lr)
			pos.EpochLoss += loss
			pos.EpochSteps++
			pos.Step++
			if afterStep != nil {
				afterStep(pos.Step)
			}
			pos.Iter++
			done++
			pos.Done = done
			if ro.Progress != nil {
				el := time.Since(start)
				ro.Progress(Progress{Step: pos.Step, TotalSteps: total, Epoch: ep, Loss: loss, LR: lr,
					FlowsPerSec: float64(done*batch) / el.Seconds(), Elapsed: el, RunSteps: done})
			}
			if err := log.add(eval.TrainRecord{Step: int64(pos.Step), Epoch: FractionalEpoch(pos.Epoch, pos.Iter, ipe),
				LR: eval.Float(lr), Loss: eval.Float(loss)}); err != nil {
				return pos, err
			}
			if ro.StatePath != "" && ro.CheckpointEvery > 0 && pos.Step%ro.CheckpointEvery == 0 && pos.Iter < ipe {
				if err := save(); err != nil {
					return pos, err
				}
			}
		}
		if epochEnd != nil {
			if err := epochEnd(pos.Epoch, &pos); err != nil {
				return pos, err
			}
		}
		if pos.Step >= total && pos.Iter < ipe { // MaxSteps ended the run mid-epoch
			if ro.StatePath != "" {
				if err := save(); err != nil {
					return pos, err
				}
			}
			stamp()
			return pos, nil
		}
		pos.Epoch++
		pos.Iter = 0
		pos.EpochLoss, pos.EpochSteps = 0, 0
		if ro.StatePath != "" {
			if err := save(); err != nil {
				return pos, err
			}
		}
	}
	stamp()
	return pos, nil
}

// configString renders a run configuration for the resume check.
func configString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("train: run configuration is not serialisable: %v", err))
	}
	return string(b)
}

// itoa is strconv.Itoa, for metadata values.
func itoa(i int) string { return strconv.Itoa(i) }
