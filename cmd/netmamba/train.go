package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/train"
)

// trainFlags are the flags pretrain and finetune share.
type trainFlags struct {
	data            []string
	out, logPath    string
	archName        string
	modalities      string
	seed            uint64
	threads         int
	epochs          int
	warmup          float64
	batch           int
	blr, minLR, wd  float64
	dropPath        float64
	checkpointEvery int
	stopAfter       int
	resume, quiet   bool
	embedDim, depth int
	byteLength      int
}

func (f *trainFlags) register(fs *pflag.FlagSet, batch int, blr float64) {
	fs.StringArrayVar(&f.data, "data", nil, "training dataset written by netmamba prep (repeatable)")
	fs.StringVarP(&f.out, "out", "o", "", "output model (.safetensors)")
	fs.StringVar(&f.logPath, "log", "", "JSONL training log (default: OUT with .log.jsonl)")
	fs.StringVar(&f.archName, "arch", "mamba", "backbone: mamba | nettrans")
	fs.StringVar(&f.modalities, "modalities", "bytes", "inputs: bytes | bytes,sizes | bytes,sizes,iats (mamba with all three = NetMamba+ fuse3)")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of initialisation, shuffling, drop-path and masks")
	fs.IntVar(&f.threads, "threads", 0, "worker threads (0 = all CPUs); results are reproducible for a fixed seed and thread count")
	fs.Float64Var(&f.warmup, "warmup-epochs", -1, "linear warm-up epochs (default: epochs/6 to fine-tune, 5% of the epochs to pre-train)")
	fs.IntVar(&f.batch, "batch", batch, "flows per optimiser step")
	fs.Float64Var(&f.blr, "blr", blr, "base learning rate; lr = blr·batch/256")
	fs.Float64Var(&f.wd, "weight-decay", 0.05, "AdamW weight decay")
	fs.Float64Var(&f.dropPath, "drop-path", 0.1, "maximum drop-path rate")
	fs.IntVar(&f.checkpointEvery, "checkpoint-every", 50, "save the resumable state every N steps (and at every epoch end)")
	fs.BoolVar(&f.resume, "resume", false, "continue an interrupted run from OUT's .state.safetensors")
	fs.IntVar(&f.stopAfter, "stop-after", 0, "stop after N steps of this process, saving the state (no model written); --resume continues (0 = run to the end)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	fs.IntVar(&f.embedDim, "embed-dim", 0, "model width (0 = official default)")
	fs.IntVar(&f.depth, "depth", 0, "encoder blocks (0 = official default)")
	fs.IntVar(&f.byteLength, "byte-length", 0, "bytes read per flow: 400, 800 or 1600 (0 = 1600)")
}

// config turns the flags into an architecture.
func (f *trainFlags) config() (arch.Config, error) {
	cfg := arch.Config{EmbedDim: f.embedDim, Depth: f.depth, ByteLength: f.byteLength}
	mods := strings.Split(f.modalities, ",")
	switch f.archName {
	case "mamba", "netmamba":
		cfg.Arch = "netmamba"
		if f.modalities != "bytes" {
			cfg.Arch = "fuse3"
			cfg.Modalities = mods
		}
	case "nettrans":
		cfg.Arch = "nettrans"
		if f.modalities != "bytes" {
			cfg.Arch = "fuse3_nettrans"
			cfg.Modalities = mods
		}
	default:
		return cfg, fmt.Errorf("unknown --arch %q (want mamba or nettrans)", f.archName)
	}
	return cfg, nil
}

func (f *trainFlags) runOptions(statePath string, total int) (train.RunOptions, func()) {
	ro := train.RunOptions{Seed: f.seed, Threads: f.threads, StatePath: statePath, CheckpointEvery: f.checkpointEvery,
		Resume: f.resume, LogPath: f.logPath, StopAfterSteps: f.stopAfter, SaveOnStop: true,
		Warn: func(msg string) { fmt.Fprintln(os.Stderr, "warning:", msg) }}
	var bar *progressbar.ProgressBar
	if !f.quiet && stderrIsTerminal(os.Stderr) {
		ro.Progress = func(p train.Progress) {
			if bar == nil {
				bar = progressbar.NewOptions(p.TotalSteps, progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(25), progressbar.OptionShowElapsedTimeOnFinish(),
					// Our ETA (this process's rate): after --resume the bar's own would count the resumed steps as instant.
					progressbar.OptionSetPredictTime(false), progressbar.OptionClearOnFinish())
			}
			bar.Describe(fmt.Sprintf("epoch %.2f loss %.4f lr %.2e %.1f flows/s ETA %s", p.Epoch, p.Loss, p.LR, p.FlowsPerSec, p.ETA().Round(time.Second)))
			_ = bar.Set(p.Step)
		}
	} else if !f.quiet {
		last := time.Now()
		ro.Progress = func(p train.Progress) {
			if time.Since(last) > 10*time.Second || p.Step == p.TotalSteps {
				last = time.Now()
				fmt.Fprintf(os.Stderr, "step %d/%d epoch %.2f loss %.4f lr %.2e %.1f flows/s ETA %s\n",
					p.Step, p.TotalSteps, p.Epoch, p.Loss, p.LR, p.FlowsPerSec, p.ETA().Round(time.Second))
			}
		}
	}
	return ro, func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
}

// stoppedAsAsked reports (on w) a run that --stop-after ended, which is
// not an error: its state is saved and no model is written.
func (f *trainFlags) stoppedAsAsked(w io.Writer, name string, err error, statePath string) bool {
	if !errors.Is(err, train.ErrStopped) {
		return false
	}
	fmt.Fprintf(w, "%s: stopped after %d steps of this process (--stop-after); the state is in %s and no model is written yet: "+
		"run the same command with --resume to continue (without --stop-after to finish, with it to take %d more steps)\n",
		name, f.stopAfter, statePath, f.stopAfter)
	return true
}

// defaultPaths fills the log path and returns the state path for out.
func (f *trainFlags) defaultPaths() (string, error) {
	if f.out == "" {
		return "", fmt.Errorf("-o MODEL is required")
	}
	if f.stopAfter < 0 {
		return "", fmt.Errorf("--stop-after %d: want ≥ 0 (0 = run to the end)", f.stopAfter)
	}
	if !strings.HasSuffix(f.out, ".safetensors") {
		return "", fmt.Errorf("-o %s: the output model must be a .safetensors file", f.out)
	}
	base := strings.TrimSuffix(f.out, ".safetensors")
	if f.logPath == "" {
		f.logPath = base + ".log.jsonl"
	}
	return base + ".state.safetensors", nil
}

// reprMeta reads the representation settings of the first dataset.
func reprMeta(path string) (checkpoint.ReprMeta, error) {
	ds, err := dataset.Open(path)
	if err != nil {
		return checkpoint.ReprMeta{}, err
	}
	defer ds.Close()
	return train.ReprMeta(ds.Meta().Settings), nil
}

// warnInitRepr warns (on w, one line) when the --init checkpoint at path
// was trained on byte views built unlike d's, so that its encoder would
// start on another representation (e.g. the default model's five debias
// strategies against plain prep's zero_ip). Checkpoints that record no
// representation are not checked.
func warnInitRepr(w io.Writer, prefix, path string, rm checkpoint.ReprMeta, d *train.Data) {
	if rm.Direction == "" {
		return
	}
	have := train.ReprMeta(d.Settings)
	if rm.SizeMode == "" {
		rm.SizeMode = have.SizeMode
	}
	if train.SameRepr(rm, have) {
		return
	}
	fmt.Fprintf(w, "%s: warning: --init %s was trained on byte views with %s, %s was built with %s: the encoder starts on another representation (rebuild the data with the checkpoint's prep settings)\n",
		prefix, path, train.DescribeRepr(rm), d.Path, train.DescribeRepr(have))
}

// saveModel writes params with netmamba metadata.
func saveModel(path string, params []*train.Param, cfg arch.Config, classes []string, rm checkpoint.ReprMeta, data string, seed uint64) error {
	s := int64(seed)
	meta := &checkpoint.Meta{
		FormatVersion: checkpoint.FormatVersion,
		Config:        &cfg,
		Classes:       classes,
		Repr:          rm,
		Prov: checkpoint.ProvMeta{Data: data, Seed: &s, Command: strings.Join(os.Args, " "),
			Created: time.Now().UTC().Truncate(time.Second), Version: buildVersion(), Commit: buildCommit()},
	}
	f := &checkpoint.File{Tensors: train.ParamTensors(params), Metadata: meta.Map()}
	return checkpoint.WriteSafetensors(path, f, checkpoint.WriteOptions{})
}

func newPretrainCmd() *cobra.Command {
	var (
		f        trainFlags
		steps    int
		initPath string
	)
	c := &cobra.Command{
		Use:   "pretrain --data DATASET... --steps N -o MODEL",
		Short: "Self-supervised masked-autoencoder pre-training on unlabelled flows",
		Long: `pretrain trains the masked autoencoder (official recipe: AdamW β (0.9, 0.95), weight
decay 0.05, lr = blr·batch/256 with blr 1e-3, batch 128, warm-up then per-iteration
half-cosine to 0, mask ratio 0.9, drop-path 0.1) on the flows of the given datasets
(labels are ignored) for exactly --steps optimiser steps (the cosine spans them), or for
--epochs whole epochs.
--init FILE starts from the weights of an earlier checkpoint (a pre-training output, or
a classifier, whose decoder then starts from its initialisation) with a fresh optimiser
and schedule: more epochs on the same corpus, or adaptation of an encoder to new traffic.
The output holds the encoder and decoder under the official names; finetune --init
reads its encoder.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			statePath, err := f.defaultPaths()
			if err != nil {
				return err
			}
			if len(f.data) == 0 {
				return fmt.Errorf("pretrain: --data is required")
			}
			cfg, err := f.config()
			if err != nil {
				return err
			}
			var initFile *checkpoint.File
			var initMeta *checkpoint.Meta
			var initCfg arch.Config // the checkpoint's (recorded or inferred from its tensors)
			if initPath != "" {
				if initFile, err = checkpoint.Load(initPath); err != nil {
					return err
				}
				if cfg, initCfg, initMeta, err = initConfig(cmd, cfg, initPath, initFile); err != nil {
					return err
				}
				if initCfg.Task == "pretrain" {
					// the decoder too: its weights are continued
					cfg.DecoderEmbedDim, cfg.DecoderDepth = initCfg.DecoderEmbedDim, initCfg.DecoderDepth
					if initCfg.MaskRatio > 0 {
						cfg.MaskRatio = initCfg.MaskRatio
					}
				}
			}
			d, err := train.LoadData(f.data...)
			if err != nil {
				return err
			}
			if initMeta != nil {
				warnInitRepr(cmd.ErrOrStderr(), "pretrain", initPath, initMeta.Repr, d)
			}
			o := train.DefaultPretrain()
			o.Batch, o.BLR, o.WeightDecay, o.Steps = f.batch, f.blr, f.wd, steps
			if f.epochs > 0 {
				o.Epochs, o.Steps = f.epochs, 0
			}
			if f.warmup >= 0 {
				o.WarmupEpochs = f.warmup
			}
			p, cfg, err := train.NewPretrainer(cfg, f.seed, o.Batch, f.threads, f.dropPath)
			if err != nil {
				return err
			}
			if initFile != nil && !f.resume {
				var fromClassifier map[string]bool // nil: a pre-training checkpoint, every tensor needed
				if initCfg.Task != "pretrain" {
					if fromClassifier, err = train.PretrainOnly(cfg); err != nil {
						return err
					}
				}
				rep, err := train.ContinueFrom(p.Params(), initFile.Tensors, fromClassifier)
				if err != nil {
					return fmt.Errorf("pretrain: --init %s: %w", initPath, err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "pretrain: --init %s: %d tensors loaded, %d left at their initialisation, %d unused\n",
					initPath, len(rep.Loaded), len(rep.Kept), len(rep.Skipped))
			}
			ro, done := f.runOptions(statePath, 0)
			o.RunOptions = ro
			start := time.Now()
			res, err := train.Pretrain(p, d, o)
			done()
			if f.stoppedAsAsked(cmd.ErrOrStderr(), "pretrain", err, statePath) {
				return nil
			}
			if err != nil {
				return err
			}
			rm, err := reprMeta(f.data[0])
			if err != nil {
				return err
			}
			if err := saveModel(f.out, p.Params(), cfg, nil, rm, strings.Join(f.data, ","), f.seed); err != nil {
				return err
			}
			el := time.Since(start)
			fmt.Fprintf(cmd.ErrOrStderr(), "pretrain: %d flows, %d steps (%d epochs)%s (%.1f flows/s), final epoch loss %.5f -> %s\n",
				d.N, res.Steps, res.Epochs, describeRunTime(res.Steps, res.RunSteps, el, res.Seconds),
				float64(res.RunSteps*min(o.Batch, d.N))/el.Seconds(), res.FinalLoss, f.out)
			return nil
		},
	}
	f.register(c.Flags(), 128, 1e-3)
	c.Flags().IntVar(&steps, "steps", 1000, "optimiser steps")
	c.Flags().IntVar(&f.epochs, "epochs", 0, "epochs (overrides --steps)")
	c.Flags().StringVar(&initPath, "init", "", "checkpoint to continue from (pre-training output or classifier; fresh optimiser and schedule)")
	return c
}

func newFinetuneCmd() *cobra.Command {
	var (
		f                     trainFlags
		valid, test, initPath string
		loss, sel             string
		fraction, smoothing   float64
		layerDecay, ema       float64
		exclude, ldaCounts    string
		shiftAug              int
	)
	c := &cobra.Command{
		Use:   "finetune --data DATASET --valid DATASET --epochs E --seed S -o MODEL",
		Short: "Supervised fine-tuning (from a pre-trained checkpoint or from scratch)",
		Long: `finetune trains a classifier with the official recipe (AdamW, layer-wise lr decay 0.75,
blr 2e-3, warm-up then cosine to 1e-6, label smoothing 0.1, drop-path 0.1; the head is
re-initialised with std 2e-5 when --init is given), keeps the epoch with the best
validation macro-F1 (--select accuracy: the official criterion) and writes it with its
class names and representation settings. --loss lda applies LDAM margins + class-balanced
weights + label smoothing. --fraction R keeps the first int(N·R) flows of a seed-0
shuffle (few-shot). --ema D keeps an exponential moving average of the weights (decay D,
warmed up as min(D, (1+t)/(10+t)) after t steps) and validates, selects and writes the
average instead of the raw weights (off by default, as in the official recipe).
--shift-aug N moves each packet's payload in a training view right by 0..N bytes (zeros in
front; drawn per packet from the seeded generator; headers untouched), so the stride-4 byte
embedding sees strings such as a TLS SNI at every alignment (off by default).
--lda-counts labelled computes LDA's margins and class-balanced weights from the flows with
their own labels only, leaving out those of pseudo-labelled datasets (written by dataset
pseudolabel, marked by settings.pseudo_label; an export/import round trip drops the mark),
whose per-class cap flattens the class counts; a class with no flow of its own keeps its
pseudo-labelled count. The default, all, counts every training flow (after --fraction).
With --test the chosen model is evaluated once on the test set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			statePath, err := f.defaultPaths()
			if err != nil {
				return err
			}
			if len(f.data) == 0 {
				return fmt.Errorf("finetune: --data is required")
			}
			if err := train.CheckLDACounts(ldaCounts); err != nil {
				return fmt.Errorf("finetune: --lda-counts: %w", err)
			}
			cfg, err := f.config()
			if err != nil {
				return err
			}
			var initFile *checkpoint.File
			var initMeta *checkpoint.Meta
			var initCfg arch.Config // the checkpoint's (recorded or inferred from its tensors)
			if initPath != "" {
				if initFile, err = checkpoint.Load(initPath); err != nil {
					return err
				}
				if cfg, initCfg, initMeta, err = initConfig(cmd, cfg, initPath, initFile); err != nil {
					return err
				}
			}
			d, err := train.LoadData(f.data...)
			if err != nil {
				return err
			}
			if len(d.Classes) == 0 {
				return fmt.Errorf("finetune: %s has no class map (unlabelled data)", d.Path)
			}
			if initMeta != nil {
				warnInitRepr(cmd.ErrOrStderr(), "finetune", initPath, initMeta.Repr, d)
			}
			if fraction < 1 && d.Settings.Windows > 1 {
				fmt.Fprintf(cmd.ErrOrStderr(), "finetune: warning: --fraction %g picks rows of %s, which was built with --windows %d: a flow's windows count as flows and may be kept without their flow\n",
					fraction, d.Path, d.Settings.Windows)
			}
			var vd, td *train.Data
			// the model is trained on d's representation: validation and
			// test views get d's debias when that can be applied exactly
			trainedOn := "the model trained on " + d.Path
			if valid != "" {
				if vd, err = train.LoadData(valid); err != nil {
					return err
				}
				if err := sameClasses(d, vd); err != nil {
					return err
				}
				if err := alignRepr(cmd.ErrOrStderr(), "finetune", trainedOn, train.ReprMeta(d.Settings), vd); err != nil {
					return err
				}
			}
			if test != "" {
				if td, err = train.LoadData(test); err != nil {
					return err
				}
				if err := sameClasses(d, td); err != nil {
					return err
				}
				if err := alignRepr(cmd.ErrOrStderr(), "finetune", trainedOn, train.ReprMeta(d.Settings), td); err != nil {
					return err
				}
			}
			if exclude != "" {
				if d, vd, td, err = excludeClasses(exclude, d, vd, td); err != nil {
					return err
				}
			}
			o := train.DefaultFinetune()
			o.Epochs, o.Batch, o.BLR, o.WeightDecay, o.LayerDecay = f.epochs, f.batch, f.blr, f.wd, layerDecay
			o.WarmupEpochs = float64(f.epochs) / 6
			if f.warmup >= 0 {
				o.WarmupEpochs = f.warmup
			}
			o.Loss, o.Select, o.Fraction, o.LabelSmoothing, o.EMA = loss, sel, fraction, smoothing, ema
			o.ShiftAug, o.LDACounts = shiftAug, ldaCounts
			switch {
			case ldaCounts == "labelled" && loss != "lda":
				fmt.Fprintf(cmd.ErrOrStderr(), "finetune: warning: --lda-counts labelled has no effect with --loss %s\n", loss)
			case ldaCounts == "labelled" && d.Pseudo == nil:
				fmt.Fprintf(cmd.ErrOrStderr(), "finetune: warning: --lda-counts labelled: no --data is pseudo-labelled (settings.pseudo_label), so every flow counts\n")
			}
			cfg.NumClasses = len(d.Classes)
			net, cfg, err := train.NewClassifier(cfg, f.seed, o.Batch, f.threads, f.dropPath)
			if err != nil {
				return err
			}
			if initFile != nil && !f.resume {
				withDecoder := cfg // the decoder the checkpoint has, whose tensors go unused
				withDecoder.DecoderEmbedDim, withDecoder.DecoderDepth = initCfg.DecoderEmbedDim, initCfg.DecoderDepth
				pretrainOnly, err := train.PretrainOnly(withDecoder)
				if err != nil {
					return err
				}
				rep, err := train.InitFrom(net.Params(), initFile.Tensors, f.seed, pretrainOnly)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "finetune: --init %s: %d tensors loaded, %d unused (decoder, head), head re-initialised\n",
					initPath, len(rep.Loaded), len(rep.Skipped))
			}
			ro, done := f.runOptions(statePath, 0)
			o.RunOptions = ro
			start := time.Now()
			res, err := train.Finetune(net, d, vd, o)
			done()
			if f.stoppedAsAsked(cmd.ErrOrStderr(), "finetune", err, statePath) {
				return nil
			}
			if err != nil {
				return err
			}
			el := time.Since(start)
			rm, err := reprMeta(f.data[0])
			if err != nil {
				return err
			}
			if err := saveModel(f.out, net.Params(), cfg, d.Classes, rm, strings.Join(f.data, ","), f.seed); err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "finetune: %d training flows, %d steps%s (%.1f flows/s)", res.TrainFlows, res.Steps,
				describeRunTime(res.Steps, res.RunSteps, el, res.Seconds), float64(res.RunSteps*min(o.Batch, res.TrainFlows))/el.Seconds())
			if res.BestEpoch >= 0 {
				fmt.Fprintf(w, ", best validation %s %.4f at epoch %d", o.Select, res.BestScore, res.BestEpoch+1)
			}
			fmt.Fprintf(w, " -> %s\n", f.out)
			if td != nil {
				m, _, err := train.Evaluate(net, td, o.Batch, nil)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "test: flows %d accuracy %.4f macro_f1 %.4f weighted_f1 %.4f\n", m.Flows, m.Accuracy, m.MacroF1, m.WeightedF1)
			}
			return nil
		},
	}
	f.register(c.Flags(), 64, 2e-3)
	c.Flags().IntVar(&f.epochs, "epochs", 30, "epochs (official: 120; the acceptance runs use 30)")
	c.Flags().StringVar(&valid, "valid", "", "validation dataset (epoch selection)")
	c.Flags().StringVar(&test, "test", "", "test dataset, evaluated once with the chosen model")
	c.Flags().StringVar(&initPath, "init", "", "pre-trained checkpoint (from pretrain) to start from")
	c.Flags().StringVar(&loss, "loss", "ce", "loss: ce | lda (LDAM + class-balanced weights + label smoothing)")
	c.Flags().StringVar(&sel, "select", "macro_f1", "epoch selection on validation: macro_f1 | accuracy")
	c.Flags().Float64Var(&fraction, "fraction", 1, "few-shot fraction of the training flows")
	c.Flags().Float64Var(&smoothing, "label-smoothing", 0.1, "label smoothing")
	c.Flags().Float64Var(&layerDecay, "layer-decay", 0.75, "layer-wise lr decay")
	c.Flags().IntVar(&shiftAug, "shift-aug", 0, "payload-alignment augmentation: move each training packet's payload right by 0..N bytes (0 = off; e.g. 3)")
	c.Flags().Float64Var(&ema, "ema", 0, "decay of an exponential moving average of the weights, used for validation and the result (0 = off; e.g. 0.99)")
	c.Flags().StringVar(&ldaCounts, "lda-counts", "all", "flows behind LDA's margins and class weights: all | labelled (pseudo-labelled datasets left out)")
	c.Flags().StringVar(&exclude, "exclude-classes", "", "comma-separated classes held out of training (for OOD evaluation)")
	return c
}

func sameClasses(a, b *train.Data) error {
	if len(b.Classes) != len(a.Classes) {
		return fmt.Errorf("%s has classes %v, %s has %v: build both with prep --classes", a.Path, a.Classes, b.Path, b.Classes)
	}
	for i := range a.Classes {
		if a.Classes[i] != b.Classes[i] {
			return fmt.Errorf("%s has classes %v, %s has %v: build both with prep --classes", a.Path, a.Classes, b.Path, b.Classes)
		}
	}
	return nil
}

// excludeClasses removes the named classes from every set and renumbers the rest.
func excludeClasses(list string, sets ...*train.Data) (*train.Data, *train.Data, *train.Data, error) {
	drop := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		drop[strings.TrimSpace(n)] = true
	}
	base := sets[0].Classes
	remap := make([]int, len(base))
	var kept []string
	for i, n := range base {
		if drop[n] {
			remap[i] = -1
			delete(drop, n)
			continue
		}
		remap[i] = len(kept)
		kept = append(kept, n)
	}
	if len(drop) > 0 {
		return nil, nil, nil, fmt.Errorf("--exclude-classes: unknown classes %v", keys(drop))
	}
	out := make([]*train.Data, len(sets))
	for si, d := range sets {
		if d == nil {
			continue
		}
		var idx []int
		for i, y := range d.Labels {
			if y >= 0 && remap[y] >= 0 {
				idx = append(idx, i)
			}
		}
		s := d.Subset(idx)
		for i := range s.Labels {
			s.Labels[i] = remap[s.Labels[i]]
		}
		s.Classes = kept
		out[si] = s
	}
	return out[0], out[1], out[2], nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// initConfig takes the architecture of a pre-trained checkpoint (its
// netmamba.config metadata, else inferred from its tensors) for the flags
// the user did not set, and checks the ones they did. It returns the
// config to build, the checkpoint's own and its parsed metadata.
func initConfig(cmd *cobra.Command, cfg arch.Config, path string, f *checkpoint.File) (arch.Config, arch.Config, *checkpoint.Meta, error) {
	meta, err := checkpoint.ParseMeta(f.Metadata)
	if err != nil {
		return cfg, cfg, nil, fmt.Errorf("--init %s: %w", path, err)
	}
	var pc arch.Config
	if meta.Config != nil {
		pc = *meta.Config
	} else if pc, err = checkpoint.InferConfig(f.Tensors); err != nil {
		return cfg, cfg, nil, fmt.Errorf("--init %s: %w", path, err)
	}
	fl := cmd.Flags()
	if !fl.Changed("arch") && !fl.Changed("modalities") {
		cfg.Arch, cfg.Modalities = pc.Arch, pc.Modalities
	} else if cfg.Arch != pc.Arch {
		return cfg, pc, nil, fmt.Errorf("--init %s is a %q model, but --arch/--modalities ask for %q", path, pc.Arch, cfg.Arch)
	} else if len(cfg.Modalities)+len(pc.Modalities) > 0 && !slices.Equal(cfg.Modalities, pc.Modalities) {
		return cfg, pc, nil, fmt.Errorf("--init %s reads modalities %s, but --modalities asks for %s", path, strings.Join(pc.Modalities, ","), strings.Join(cfg.Modalities, ","))
	}
	if !fl.Changed("embed-dim") {
		cfg.EmbedDim = pc.EmbedDim
	}
	if !fl.Changed("depth") {
		cfg.Depth = pc.Depth
	}
	if !fl.Changed("byte-length") {
		cfg.ByteLength = pc.ByteLength
	}
	cfg.Stride, cfg.DState, cfg.DConv, cfg.Expand, cfg.DtRank, cfg.NumHeads, cfg.SeqLen =
		pc.Stride, pc.DState, pc.DConv, pc.Expand, pc.DtRank, pc.NumHeads, pc.SeqLen
	return cfg, pc, meta, nil
}

// describeRunTime says how long a training run took: " in 5m2s", or after
// --resume, where this process took only the last runSteps of steps,
// " in 8m0s of training over the resumed run (1200 of them in this process:
// 3m1s; the rate is this process's)"; total sums the training loops of
// every process of the run.
func describeRunTime(steps, runSteps int, el time.Duration, total float64) string {
	if runSteps >= steps {
		return fmt.Sprintf(" in %s", el.Round(time.Second))
	}
	return fmt.Sprintf(" in %s of training over the resumed run (%d of them in this process: %s; the rate is this process's)",
		time.Duration(total*float64(time.Second)).Round(time.Second), runSteps, el.Round(time.Second))
}
