// Package ablation runs a grid of pre-training + fine-tuning experiments
// (backbone × modalities × loss × few-shot fraction × seeds) on one
// dataset and writes a comparison table with mean ± spread.
package ablation

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/eval"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/train"
)

// Variant is one model family of the grid.
type Variant struct {
	Name string      `json:"name"` // e.g. "NetMamba", "NetMamba+", "NetTrans"
	Arch arch.Config `json:"arch"` // Arch and Modalities (other fields: official defaults)
}

// DefaultVariants are the three families of the NetMamba+ paper's comparison.
func DefaultVariants() []Variant {
	return []Variant{
		{Name: "NetMamba", Arch: arch.Config{Arch: "netmamba"}},
		{Name: "NetMamba+", Arch: arch.Config{Arch: "fuse3", Modalities: []string{"bytes", "sizes", "iats"}}},
		{Name: "NetTrans", Arch: arch.Config{Arch: "nettrans"}},
	}
}

// Grid is an ablation plan.
type Grid struct {
	Train, Valid, Test string   // labelled datasets (same class map)
	PretrainData       []string // unlabelled datasets for pre-training; empty = fine-tune from scratch
	PretrainSteps      int      // the same budget for every variant
	Variants           []Variant
	Losses             []string  // "ce", "lda"
	Fractions          []float64 // phase 2: the best variant+loss at these few-shot fractions (1 is phase 1)
	Seeds              []uint64
	Epochs             int
	Batch              int     // fine-tuning batch (pre-training uses the official 128)
	BLR                float64 // fine-tuning base learning rate, lr = BLR·Batch/256 (0: the official 2e-3)
	Threads            int     // worker threads in all (0 = all CPUs); pre-training uses them all
	// Jobs is how many fine-tuning runs go at once (0 or 1: one after the
	// other); each then gets Threads/Jobs threads (at least 1). Results
	// equal those of a one-by-one ablation with that per-run thread count.
	Jobs    int
	HoldOut int // classes held out for the OOD runs (0 = no OOD runs)
	OutDir  string
	Log     io.Writer // progress lines (nil: none); written one whole line at a time
}

// Run is one fine-tuning run's result.
type Run struct {
	Variant    string   `json:"variant"`
	Loss       string   `json:"loss"`
	Fraction   float64  `json:"fraction"`
	Seed       uint64   `json:"seed"`
	ValMacroF1 float64  `json:"val_macro_f1"`
	Accuracy   float64  `json:"test_accuracy"`
	MacroF1    float64  `json:"test_macro_f1"`
	WeightedF1 float64  `json:"test_weighted_f1"`
	ECE        float64  `json:"test_ece"`
	ECECal     float64  `json:"test_ece_calibrated"`
	Temp       float64  `json:"temperature"`
	Seconds    float64  `json:"seconds"`           // wall time of the run (training and scoring)
	Threads    int      `json:"threads,omitempty"` // worker threads of the run (0: all CPUs, or not recorded)
	Model      string   `json:"model"`
	HeldOut    []string `json:"held_out,omitempty"`
	// Settings are the run's training settings (architecture, datasets,
	// epochs, batch, blr, pre-training); a result is reused only when they
	// are unchanged.
	Settings string `json:"settings,omitempty"`
	// OOD scores (runs with held-out classes only): confidence kind → AUROC / FPR95.
	OOD map[string][2]float64 `json:"ood,omitempty"`
}

// Summary is the mean and sample standard deviation of a metric over seeds.
type Summary struct {
	Mean, Std float64
	N         int
}

// Result is everything an ablation produced.
type Result struct {
	Grid    Grid  `json:"-"`
	Runs    []Run `json:"runs"`
	OODRuns []Run `json:"ood_runs,omitempty"`
	// PretrainSecs is each variant's pre-training wall time in seconds,
	// also for checkpoints reused from an earlier invocation (Pretrain has
	// the details; a variant whose cost is unknown is absent).
	PretrainSecs map[string]float64      `json:"pretrain_seconds"`
	Pretrain     map[string]PretrainCost `json:"pretrain,omitempty"`
	TotalSecs    float64                 `json:"total_seconds"`         // wall time of this invocation
	CPUSecs      float64                 `json:"cpu_seconds,omitempty"` // user+system CPU time of this invocation (0: unknown)
	Best         string                  `json:"best"`                  // variant/loss picked on validation for phase 2
}

// runner is one Execute: the grid, its loaded data and the log.
type runner struct {
	g                     *Grid
	trainD, validD, testD *train.Data
	pre                   map[string]string // variant → pre-trained checkpoint ("" = from scratch)
	threads               int               // per fine-tuning run
	logMu                 sync.Mutex        // one log line at a time from concurrent runs
}

func (r *runner) logf(format string, a ...any) {
	if r.g.Log == nil {
		return
	}
	line := fmt.Sprintf("%s ablation: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	r.logMu.Lock()
	defer r.logMu.Unlock()
	io.WriteString(r.g.Log, line) // progress only: a failed write must not stop the grid
}

// RunThreads is the thread count of each fine-tuning run: Threads/Jobs (at
// least 1) with Jobs > 1, else Threads (0 = all CPUs).
func (g *Grid) RunThreads() int {
	if g.Jobs <= 1 {
		return g.Threads
	}
	total := g.Threads
	if total <= 0 {
		total = runtime.GOMAXPROCS(0)
	}
	return max(1, total/g.Jobs)
}

// validate rejects a grid that cannot run, before any work is done.
func (g *Grid) validate() error {
	switch {
	case g.Train == "" || g.Valid == "" || g.Test == "":
		return fmt.Errorf("ablation: the train, valid and test datasets are required")
	case g.OutDir == "":
		return fmt.Errorf("ablation: no output directory")
	case len(g.Variants) == 0:
		return fmt.Errorf("ablation: no variants")
	case len(g.Losses) == 0:
		return fmt.Errorf("ablation: no losses")
	case len(g.Seeds) == 0:
		return fmt.Errorf("ablation: no seeds")
	case g.Epochs <= 0:
		return fmt.Errorf("ablation: epochs must be > 0, got %d", g.Epochs)
	case g.Batch <= 0:
		return fmt.Errorf("ablation: batch must be > 0, got %d", g.Batch)
	case g.Jobs < 0:
		return fmt.Errorf("ablation: jobs must be >= 0, got %d", g.Jobs)
	case g.HoldOut < 0:
		return fmt.Errorf("ablation: hold-out must be >= 0, got %d", g.HoldOut)
	}
	names := map[string]bool{}
	for _, v := range g.Variants {
		if names[fileName(v.Name)] {
			return fmt.Errorf("ablation: variant %q twice (or two variants with the same file name)", v.Name)
		}
		names[fileName(v.Name)] = true
	}
	for _, l := range g.Losses {
		if l != "ce" && l != "lda" {
			return fmt.Errorf("ablation: unknown loss %q (want ce or lda)", l)
		}
	}
	for _, f := range g.Fractions {
		if !(f > 0 && f <= 1) {
			return fmt.Errorf("ablation: fraction %g outside (0, 1]", f)
		}
	}
	return nil
}

// Execute runs the grid: pre-train each variant once (seed 0, the same step
// budget), fine-tune every variant × loss × seed on all training data,
// pick the best variant+loss by mean validation macro-F1, fine-tune it at
// the other fractions, and run OOD with HoldOut classes excluded. Up to
// Jobs fine-tuning runs go at once; phase 2 waits for phase 1 (it needs
// the best variant), the OOD runs go alongside phase 2. Finished runs
// (DIR/*.result.json) and pre-trained checkpoints are reused.
func (g *Grid) Execute() (*Result, error) {
	start := time.Now()
	cpu0, cpuOK := processCPUTime()
	if err := g.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(g.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("ablation: %w", err)
	}
	r := &runner{g: g, pre: map[string]string{}, threads: g.RunThreads()}
	var err error
	if r.trainD, err = train.LoadData(g.Train); err != nil {
		return nil, err
	}
	if r.validD, err = train.LoadData(g.Valid); err != nil {
		return nil, err
	}
	if r.testD, err = train.LoadData(g.Test); err != nil {
		return nil, err
	}
	for _, d := range []*train.Data{r.validD, r.testD} {
		if d.Settings.Windows > 1 {
			r.logf("warning: %s was built with --windows %d: its metrics count long flows several times (windows are meant for training data)", d.Path, d.Settings.Windows)
		}
	}
	if r.trainD.Settings.Windows > 1 && slices.ContainsFunc(g.Fractions, func(f float64) bool { return f < 1 }) {
		r.logf("warning: the few-shot fractions pick rows of %s, which was built with --windows %d: a flow's windows count as flows", r.trainD.Path, r.trainD.Settings.Windows)
	}
	var preD *train.Data
	if len(g.PretrainData) > 0 && g.PretrainSteps > 0 {
		if preD, err = train.LoadData(g.PretrainData...); err != nil {
			return nil, err
		}
	}
	var held []string
	if g.HoldOut > 0 {
		held = pickHeldOut(r.testD, g.HoldOut)
		if len(r.trainD.Classes)-len(held) < 2 {
			return nil, fmt.Errorf("ablation: holding out %d of %d classes leaves fewer than 2 to train on", len(held), len(r.trainD.Classes))
		}
	}
	res := &Result{Grid: *g, PretrainSecs: map[string]float64{}, Pretrain: map[string]PretrainCost{}}
	// Pre-training runs one variant at a time on all Threads.
	for _, v := range g.Variants {
		if preD == nil {
			break
		}
		path := filepath.Join(g.OutDir, fileName(v.Name)+"-pretrain.safetensors")
		if _, err := os.Stat(path); err == nil {
			r.pre[v.Name] = path
			cost, err := readPretrainCost(path)
			if err != nil {
				return nil, err
			}
			if cost != nil && cost.Source == "log" && cost.Batch == 0 && cost.Seconds > 0 {
				// The log has no batch size: it is the one this grid pre-trains with.
				cost.Batch = min(train.DefaultPretrain().Batch, preD.N)
				cost.FlowsPerSec = float64(cost.RunSteps*cost.Batch) / cost.Seconds
			}
			if cost != nil {
				res.Pretrain[v.Name], res.PretrainSecs[v.Name] = *cost, cost.Seconds
				r.logf("pre-trained %s: reusing %s (cost %.1f s, %s)", v.Name, path, cost.Seconds, cost.Source)
			} else {
				r.logf("pre-trained %s: reusing %s (cost unknown)", v.Name, path)
			}
			continue
		}
		r.logf("pre-training %s: %d steps, threads %s", v.Name, g.PretrainSteps, threadsString(g.Threads))
		cost, err := g.pretrain(v, preD, path)
		if err != nil {
			return nil, fmt.Errorf("ablation: pre-training %s: %w", v.Name, err)
		}
		res.Pretrain[v.Name], res.PretrainSecs[v.Name] = *cost, cost.Seconds
		r.pre[v.Name] = path
		r.logf("pre-trained %s in %.1f s (%.1f flows/s)", v.Name, cost.Seconds, cost.FlowsPerSec)
	}
	// Phase 1: every variant × loss × seed on all training data.
	var phase1 []job
	for _, v := range g.Variants {
		for _, loss := range g.Losses {
			for _, seed := range g.Seeds {
				phase1 = append(phase1, job{v: v, loss: loss, fraction: 1, seed: seed})
			}
		}
	}
	runs, err := r.runAll(phase1, "phase 1")
	if err != nil {
		return nil, err
	}
	res.Runs = runs
	res.Best = pickBest(res.Runs)
	// Phase 2 (the best at the other fractions) and the OOD runs.
	var phase2 []job
	for _, f := range g.Fractions {
		if f >= 1 {
			continue
		}
		for _, v := range g.Variants {
			for _, loss := range g.Losses {
				if v.Name+"/"+loss != res.Best {
					continue
				}
				for _, seed := range g.Seeds {
					phase2 = append(phase2, job{v: v, loss: loss, fraction: f, seed: seed})
				}
			}
		}
	}
	n2 := len(phase2)
	for _, v := range g.Variants {
		if len(held) > 0 {
			phase2 = append(phase2, job{v: v, loss: "ce", fraction: 1, seed: g.Seeds[0], held: held})
		}
	}
	if len(phase2) > 0 {
		r.logf("best on validation: %s", res.Best)
	}
	runs, err = r.runAll(phase2, "phase 2 + OOD")
	if err != nil {
		return nil, err
	}
	res.Runs = append(res.Runs, runs[:n2]...)
	res.OODRuns = runs[n2:]
	res.TotalSecs = time.Since(start).Seconds()
	if cpu1, ok := processCPUTime(); ok && cpuOK {
		res.CPUSecs = (cpu1 - cpu0).Seconds()
	}
	return res, nil
}

// job is one fine-tuning run of the grid.
type job struct {
	v        Variant
	loss     string
	fraction float64
	seed     uint64
	held     []string // OOD runs: the held-out classes
}

// runAll runs js on up to Jobs workers and returns their results in the
// order of js. After a failure no new run starts; the first error (in the
// order of js) is returned once the runs under way have finished.
func (r *runner) runAll(js []job, phase string) ([]Run, error) {
	if len(js) == 0 {
		return nil, nil
	}
	workers := min(max(r.g.Jobs, 1), len(js))
	if workers > 1 {
		r.logf("%s: %d runs, %d at once, threads %d each", phase, len(js), workers, r.threads)
	}
	out := make([]Run, len(js))
	errs := make([]error, len(js))
	next := make(chan int)
	var failed sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				run, err := r.finetune(js[i], fmt.Sprintf("%d/%d", i+1, len(js)))
				if err != nil {
					errs[i] = err
					failed.Do(func() { close(stop) })
					continue
				}
				out[i] = *run
			}
		})
	}
feed:
	for i := range js {
		select {
		case next <- i:
		case <-stop:
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fileName(s string) string {
	return strings.NewReplacer("+", "plus", "/", "-", " ", "_").Replace(strings.ToLower(s))
}

// pretrain pre-trains v on d, writes the checkpoint to path and its cost
// beside it, and returns the cost.
func (g *Grid) pretrain(v Variant, d *train.Data, path string) (*PretrainCost, error) {
	t0 := time.Now()
	cfg := v.Arch
	o := train.DefaultPretrain()
	p, cfg, err := train.NewPretrainer(cfg, 0, o.Batch, g.Threads, 0.1)
	if err != nil {
		return nil, err
	}
	o.Steps = g.PretrainSteps
	o.Threads, o.Seed = g.Threads, 0
	o.LogPath = strings.TrimSuffix(path, ".safetensors") + ".log.jsonl"
	o.StatePath = strings.TrimSuffix(path, ".safetensors") + ".state.safetensors"
	o.CheckpointEvery = 50
	if _, err := os.Stat(o.StatePath); err == nil {
		o.Resume = true // an interrupted ablation continues its pre-training
	}
	pr, err := train.Pretrain(p, d, o)
	if err != nil {
		return nil, err
	}
	meta := &checkpoint.Meta{FormatVersion: checkpoint.FormatVersion, Config: &cfg, Repr: train.ReprMeta(d.Settings),
		Prov: checkpoint.ProvMeta{Data: strings.Join(g.PretrainData, ","), Seed: ptr(int64(0)), Command: "ablate pretrain " + v.Name}}
	if err := checkpoint.WriteSafetensors(path, &checkpoint.File{Tensors: train.ParamTensors(p.Params()), Metadata: meta.Map()}, checkpoint.WriteOptions{}); err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	batch := min(o.Batch, d.N)
	cost := &PretrainCost{Seconds: secs, Steps: pr.Steps, RunSteps: pr.RunSteps, LoopSeconds: pr.Seconds, Batch: batch, Threads: g.Threads,
		FinalLoss: pr.FinalLoss, Source: "measured"}
	if secs > 0 {
		cost.FlowsPerSec = float64(pr.RunSteps*batch) / secs
	}
	if err := writePretrainCost(path, cost); err != nil {
		return nil, err
	}
	return cost, nil
}

// finetune runs one fine-tuning and scores it on the test set (and, with
// held-out classes, their test flows as OOD).
// progress ("3/17") numbers it in the log.
func (r *runner) finetune(j job, progress string) (*Run, error) {
	g := r.g
	v, loss, fraction, seed, held := j.v, j.loss, j.fraction, j.seed, j.held
	trainD, validD, testD := r.trainD, r.validD, r.testD
	initPath := r.pre[v.Name]
	t0 := time.Now()
	tr, va, te, ood := trainD, validD, testD, (*train.Data)(nil)
	if len(held) > 0 {
		var err error
		if tr, _, err = exclude(trainD, held); err != nil {
			return nil, err
		}
		if va, _, err = exclude(validD, held); err != nil {
			return nil, err
		}
		if te, ood, err = exclude(testD, held); err != nil {
			return nil, err
		}
	}
	name := fmt.Sprintf("%s-%s-f%g-s%d", fileName(v.Name), loss, fraction, seed)
	if len(held) > 0 {
		name += "-ood"
	}
	resultPath := filepath.Join(g.OutDir, name+".result.json")
	settings := g.runSettings(v, initPath)
	if b, err := os.ReadFile(resultPath); err == nil {
		var run Run
		if err := json.Unmarshal(b, &run); err != nil {
			return nil, fmt.Errorf("ablation: %s: %w", resultPath, err)
		}
		if run.Settings != settings {
			return nil, fmt.Errorf("ablation: %s was written with other settings (remove it or use another -o):\n  saved: %s\n  now:   %s",
				resultPath, run.Settings, settings)
		}
		r.logf("[%s] %s: reusing %s", progress, name, resultPath)
		return &run, nil
	}
	r.logf("[%s] %s: fine-tuning (threads %s)", progress, name, threadsString(r.threads))
	cfg := v.Arch
	cfg.NumClasses = len(tr.Classes)
	net, cfg, err := train.NewClassifier(cfg, seed, g.Batch, r.threads, 0.1)
	if err != nil {
		return nil, err
	}
	if initPath != "" {
		ck, err := checkpoint.Load(initPath)
		if err != nil {
			return nil, err
		}
		pretrainOnly, err := train.PretrainOnly(cfg)
		if err != nil {
			return nil, err
		}
		if _, err := train.InitFrom(net.Params(), ck.Tensors, seed, pretrainOnly); err != nil {
			return nil, err
		}
	}
	o := train.DefaultFinetune()
	o.Epochs, o.WarmupEpochs, o.Batch = g.Epochs, float64(g.Epochs)/6, g.Batch
	if g.BLR > 0 {
		o.BLR = g.BLR
	}
	o.Loss, o.Fraction, o.Seed, o.Threads = loss, fraction, seed, r.threads
	o.LogPath = filepath.Join(g.OutDir, name+".log.jsonl")
	fr, err := train.Finetune(net, tr, va, o)
	if err != nil {
		return nil, fmt.Errorf("ablation: %s: %w", name, err)
	}
	modelPath := filepath.Join(g.OutDir, name+".safetensors")
	meta := &checkpoint.Meta{FormatVersion: checkpoint.FormatVersion, Config: &cfg, Classes: tr.Classes,
		Repr: train.ReprMeta(tr.Settings), Prov: checkpoint.ProvMeta{Data: g.Train, Seed: ptr(int64(seed)), Command: "ablate " + name}}
	if err := checkpoint.WriteSafetensors(modelPath, &checkpoint.File{Tensors: train.ParamTensors(net.Params()), Metadata: meta.Map()}, checkpoint.WriteOptions{}); err != nil {
		return nil, err
	}
	logits, err := train.Predict(net, te, g.Batch)
	if err != nil {
		return nil, err
	}
	vlogits, err := train.Predict(net, va, g.Batch)
	if err != nil {
		return nil, err
	}
	in := eval.Input{Model: modelPath, Dataset: g.Test, ClassMap: tr.Classes, Labels: te.Labels, Logits: logits,
		ValLabels: va.Labels, ValLogits: vlogits, Resamples: 200, Seed: int64(seed)}
	if ood != nil && ood.N > 0 {
		if in.OODLogits, err = train.Predict(net, ood, g.Batch); err != nil {
			return nil, err
		}
	}
	rep, err := eval.Build(in)
	if err != nil {
		return nil, err
	}
	run := &Run{Variant: v.Name, Loss: loss, Fraction: fraction, Seed: seed, ValMacroF1: fr.BestScore,
		Accuracy: rep.Accuracy, MacroF1: rep.MacroF1, WeightedF1: rep.WeightedF1, Model: modelPath,
		Seconds: time.Since(t0).Seconds(), Threads: r.threads, HeldOut: held, Settings: settings}
	if rep.ECE != nil {
		run.ECE = *rep.ECE
	}
	if rep.ECECalibrated != nil {
		run.ECECal, run.Temp = *rep.ECECalibrated, *rep.Temperature
	}
	if rep.OOD != nil {
		run.OOD = map[string][2]float64{}
		for _, k := range eval.ConfidenceKinds() {
			s := rep.OOD.Scores(k)
			run.OOD[string(k)] = [2]float64{s.AUROC, s.FPR95}
		}
	}
	r.logf("[%s] %s: val macro-F1 %.3f, test acc %.3f macro-F1 %.3f weighted-F1 %.3f (%.1f s)", progress, name, run.ValMacroF1, run.Accuracy, run.MacroF1, run.WeightedF1, run.Seconds)
	b, err := json.Marshal(run)
	if err != nil {
		return nil, err
	}
	// The result file lets an interrupted ablation skip this run; written
	// whole (temporary file + rename) so a kill never leaves half of it.
	if err := os.WriteFile(resultPath+".tmp", b, 0o644); err != nil {
		return nil, fmt.Errorf("ablation: %w", err)
	}
	if err := os.Rename(resultPath+".tmp", resultPath); err != nil {
		return nil, fmt.Errorf("ablation: %w", err)
	}
	return run, nil
}

// exclude splits d into the flows of kept classes (relabelled) and those of held classes.
func exclude(d *train.Data, held []string) (kept, out *train.Data, err error) {
	drop := map[string]bool{}
	for _, h := range held {
		drop[h] = true
	}
	remap := make([]int, len(d.Classes))
	var names []string
	for i, c := range d.Classes {
		if drop[c] {
			remap[i] = -1
			continue
		}
		remap[i] = len(names)
		names = append(names, c)
	}
	var in, ex []int
	for i, y := range d.Labels {
		if y < 0 {
			return nil, nil, fmt.Errorf("ablation: %s: unlabelled flow %d", d.Path, i)
		}
		if remap[y] >= 0 {
			in = append(in, i)
		} else {
			ex = append(ex, i)
		}
	}
	kept = d.Subset(in)
	for i := range kept.Labels {
		kept.Labels[i] = remap[kept.Labels[i]]
	}
	kept.Classes = names
	return kept, d.Subset(ex), nil
}

// pickHeldOut chooses n classes with test flows, seeded (seed 0), for OOD.
func pickHeldOut(test *train.Data, n int) []string {
	counts := test.ClassCounts()
	var cands []string
	for i, c := range counts {
		if c >= 2 {
			cands = append(cands, test.Classes[i])
		}
	}
	sort.Strings(cands)
	r := rand.New(rand.NewPCG(0, 0x6f6f64))
	r.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	if len(cands) > n {
		cands = cands[:n]
	}
	sort.Strings(cands)
	return cands
}

// pickBest returns "variant/loss" with the best mean validation macro-F1
// over the full-data runs (ties: first in grid order).
func pickBest(runs []Run) string {
	type acc struct {
		sum float64
		n   int
	}
	var order []string
	m := map[string]*acc{}
	for _, r := range runs {
		if r.Fraction != 1 {
			continue
		}
		k := r.Variant + "/" + r.Loss
		if m[k] == nil {
			m[k] = &acc{}
			order = append(order, k)
		}
		m[k].sum += r.ValMacroF1
		m[k].n++
	}
	best, bv := "", math.Inf(-1)
	for _, k := range order {
		if v := m[k].sum / float64(m[k].n); v > bv {
			best, bv = k, v
		}
	}
	return best
}

// Summarize returns mean and sample standard deviation of xs.
func Summarize(xs []float64) Summary {
	s := Summary{N: len(xs)}
	if len(xs) == 0 {
		return s
	}
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(len(xs))
	if len(xs) > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(len(xs)-1))
	}
	return s
}

// String renders "mean ± std" (just the mean for a single run).
func (s Summary) String() string {
	if s.N <= 1 {
		return fmt.Sprintf("%.3f", s.Mean)
	}
	return fmt.Sprintf("%.3f ± %.3f", s.Mean, s.Std)
}

// WriteMarkdown writes the comparison table.
func (r *Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Ablation: %s\n\n", r.Grid.Train)
	fmt.Fprintf(&b, "Fine-tuning %d epochs, batch %d, blr %g, seeds %v; pre-training %d steps on %v; test set %s. Mean ± sample std over seeds.\n\n",
		r.Grid.Epochs, r.Grid.Batch, r.Grid.blr(), r.Grid.Seeds, r.Grid.PretrainSteps, r.Grid.PretrainData, r.Grid.Test)
	b.WriteString("| variant | loss | fraction | seeds | val macro-F1 | test accuracy | test macro-F1 | test weighted-F1 | ECE | ECE (T) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	type key struct {
		v, l string
		f    float64
	}
	var keys []key
	groups := map[key][]Run{}
	for _, run := range r.Runs {
		k := key{run.Variant, run.Loss, run.Fraction}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], run)
	}
	for _, k := range keys {
		rs := groups[k]
		col := func(f func(Run) float64) string {
			var xs []float64
			for _, x := range rs {
				xs = append(xs, f(x))
			}
			return Summarize(xs).String()
		}
		fmt.Fprintf(&b, "| %s | %s | %g | %d | %s | %s | %s | %s | %s | %s |\n", k.v, k.l, k.f, len(rs),
			col(func(x Run) float64 { return x.ValMacroF1 }), col(func(x Run) float64 { return x.Accuracy }),
			col(func(x Run) float64 { return x.MacroF1 }), col(func(x Run) float64 { return x.WeightedF1 }),
			col(func(x Run) float64 { return x.ECE }), col(func(x Run) float64 { return x.ECECal }))
	}
	if r.Best != "" {
		fmt.Fprintf(&b, "\nBest on validation (phase 2 runs the other fractions with it): %s\n", r.Best)
	}
	if len(r.OODRuns) > 0 {
		fmt.Fprintf(&b, "\n## OOD (held-out classes %v, CE, seed %d)\n\n| variant | test macro-F1 (in-dist.) | max_logit AUROC / FPR95 | max_prob | energy | neg_entropy |\n|---|---|---|---|---|---|\n",
			r.OODRuns[0].HeldOut, r.OODRuns[0].Seed)
		for _, run := range r.OODRuns {
			cell := func(k string) string {
				v, ok := run.OOD[k]
				if !ok {
					return "-"
				}
				return fmt.Sprintf("%.3f / %.3f", v[0], v[1])
			}
			fmt.Fprintf(&b, "| %s | %.3f | %s | %s | %s | %s |\n", run.Variant, run.MacroF1, cell("max_logit"), cell("max_prob"), cell("energy"), cell("neg_entropy"))
		}
	}
	r.writeCost(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes every run.
func (r *Result) WriteJSON(w io.Writer) error {
	out := struct {
		*Result
		Grid map[string]any `json:"grid"`
	}{r, map[string]any{"train": r.Grid.Train, "valid": r.Grid.Valid, "test": r.Grid.Test, "pretrain_data": r.Grid.PretrainData,
		"pretrain_steps": r.Grid.PretrainSteps, "losses": r.Grid.Losses, "fractions": r.Grid.Fractions, "seeds": r.Grid.Seeds,
		"epochs": r.Grid.Epochs, "batch": r.Grid.Batch, "blr": r.Grid.blr(), "threads": r.Grid.Threads, "hold_out": r.Grid.HoldOut,
		"jobs": max(r.Grid.Jobs, 1), "run_threads": r.Grid.RunThreads(), "variants": r.Grid.Variants}}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func ptr[T any](v T) *T { return &v }

// threadsString renders a thread count (0 = all CPUs).
func threadsString(n int) string {
	if n <= 0 {
		return "all"
	}
	return fmt.Sprint(n)
}

// blr is the fine-tuning base learning rate in effect.
func (g *Grid) blr() float64 {
	if g.BLR > 0 {
		return g.BLR
	}
	return train.DefaultFinetune().BLR
}

// runSettings renders what a fine-tuning run's outcome depends on besides its
// variant name, loss, fraction and seed (which name its files).
func (g *Grid) runSettings(v Variant, initPath string) string {
	b, _ := json.Marshal(struct {
		Arch                   arch.Config
		Train, Valid, Test     string
		Epochs, Batch          int
		BLR                    float64
		PretrainData           []string
		PretrainSteps, HoldOut int
		Init                   string
	}{v.Arch, g.Train, g.Valid, g.Test, g.Epochs, g.Batch, g.blr(), g.PretrainData, g.PretrainSteps, g.HoldOut, filepath.Base(initPath)})
	return string(b)
}
