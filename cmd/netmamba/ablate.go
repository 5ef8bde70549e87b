package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/ablation"
)

func newAblateCmd() *cobra.Command {
	var (
		g                       ablation.Grid
		variants, losses, fracs string
		seeds                   string
	)
	c := &cobra.Command{
		Use:   "ablate --train DATASET --valid DATASET --test DATASET [--pretrain-data DATASET --pretrain-steps N] -o DIR",
		Short: "Train and evaluate a grid (backbone × modalities × loss × few-shot fraction × seeds); write a comparison table",
		Long: `ablate pre-trains every variant once with the same step budget (seed 0), fine-tunes every
variant × loss × seed on all training data, picks the best variant+loss by mean validation
macro-F1 and fine-tunes it at the other --fractions, then (with --hold-out K) fine-tunes each
variant with K test classes held out and scores their test flows as out-of-distribution.
It writes DIR/ablation.md (mean ± sample std over seeds) and DIR/ablation.json (every run),
plus each run's model, training log and result (DIR/*.result.json). Running the same command
again continues an interrupted ablation: finished runs and pre-trained checkpoints are reused
and an interrupted pre-training resumes from its state file, so a grid longer than one sitting
can be completed piecewise.

--jobs N runs up to N fine-tuning runs at once, each with --threads/N threads (at least 1):
on a 2-core machine two 1-thread runs finish sooner than one 2-thread run after the other.
Results equal those of --jobs 1 with that per-run thread count. Pre-training runs one
variant at a time on all --threads. The report's cost section gives each variant's
pre-training and fine-tuning seconds (also for reused checkpoints: DIR/*-pretrain.cost.json),
the grid settings, and this invocation's wall and CPU time.

Variants: netmamba (bytes), netmamba+ (fuse3: bytes, sizes, IATs), nettrans (attention, bytes),
nettrans+ (attention, all three modalities).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.Train == "" || g.Valid == "" || g.Test == "" || g.OutDir == "" {
				return fmt.Errorf("ablate: --train, --valid, --test and -o are required")
			}
			if len(g.PretrainData) > 0 && g.PretrainSteps <= 0 {
				return fmt.Errorf("ablate: --pretrain-data needs --pretrain-steps N (the budget every variant gets)")
			}
			if g.Jobs < 1 {
				return fmt.Errorf("ablate: --jobs must be at least 1, got %d", g.Jobs)
			}
			if g.Threads < 0 {
				return fmt.Errorf("ablate: --threads must be >= 0, got %d", g.Threads)
			}
			if g.PretrainSteps > 0 && len(g.PretrainData) == 0 {
				return fmt.Errorf("ablate: --pretrain-steps needs --pretrain-data")
			}
			all := map[string]ablation.Variant{}
			for _, v := range ablation.DefaultVariants() {
				all[strings.ToLower(v.Name)] = v
			}
			nt := ablation.DefaultVariants()[2]
			nt.Name, nt.Arch.Arch, nt.Arch.Modalities = "NetTrans+", "fuse3_nettrans", []string{"bytes", "sizes", "iats"}
			all["nettrans+"] = nt
			for _, name := range strings.Split(variants, ",") {
				v, ok := all[strings.ToLower(strings.TrimSpace(name))]
				if !ok {
					return fmt.Errorf("ablate: unknown variant %q (want netmamba, netmamba+, nettrans, nettrans+)", name)
				}
				g.Variants = append(g.Variants, v)
			}
			for _, l := range strings.Split(losses, ",") {
				g.Losses = append(g.Losses, strings.TrimSpace(l))
			}
			for _, f := range strings.Split(fracs, ",") {
				v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
				if err != nil || v <= 0 || v > 1 {
					return fmt.Errorf("ablate: bad fraction %q", f)
				}
				g.Fractions = append(g.Fractions, v)
			}
			for _, s := range strings.Split(seeds, ",") {
				v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
				if err != nil {
					return fmt.Errorf("ablate: bad seed %q", s)
				}
				g.Seeds = append(g.Seeds, v)
			}
			g.Log = cmd.ErrOrStderr()
			res, err := g.Execute()
			if err != nil {
				return err
			}
			for name, write := range map[string]func(*os.File) error{
				"ablation.md":   func(f *os.File) error { return res.WriteMarkdown(f) },
				"ablation.json": func(f *os.File) error { return res.WriteJSON(f) },
			} {
				f, err := os.Create(filepath.Join(g.OutDir, name))
				if err != nil {
					return fmt.Errorf("ablate: %w", err)
				}
				if err := write(f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("ablate: %w", err)
				}
			}
			return res.WriteMarkdown(cmd.OutOrStdout())
		},
	}
	fs := c.Flags()
	fs.StringVar(&g.Train, "train", "", "training dataset")
	fs.StringVar(&g.Valid, "valid", "", "validation dataset (epoch and variant selection, temperature)")
	fs.StringVar(&g.Test, "test", "", "test dataset (scored once per run)")
	fs.StringArrayVar(&g.PretrainData, "pretrain-data", nil, "unlabelled dataset for pre-training (repeatable); none = from scratch")
	fs.IntVar(&g.PretrainSteps, "pretrain-steps", 0, "pre-training steps per variant (the same budget for all)")
	fs.StringVar(&variants, "variants", "netmamba,netmamba+,nettrans", "variants to compare")
	fs.StringVar(&losses, "losses", "ce,lda", "losses: ce, lda")
	fs.StringVar(&fracs, "fractions", "1,0.1,0.4,0.7", "few-shot fractions (1 = phase 1, others for the best variant)")
	fs.StringVar(&seeds, "seeds", "0,1,2", "seeds")
	fs.IntVar(&g.Epochs, "epochs", 30, "fine-tuning epochs")
	fs.IntVar(&g.Batch, "batch", 64, "fine-tuning batch size (pre-training: 128)")
	fs.Float64Var(&g.BLR, "blr", 0, "fine-tuning base learning rate, lr = blr·batch/256 (0: the official 2e-3)")
	fs.IntVar(&g.Threads, "threads", 0, "worker threads in all (0 = all CPUs)")
	fs.IntVar(&g.Jobs, "jobs", 1, "fine-tuning runs at once, each with threads/jobs threads")
	fs.IntVar(&g.HoldOut, "hold-out", 3, "classes held out for the OOD runs (0: none)")
	fs.StringVarP(&g.OutDir, "out", "o", "", "output directory")
	return c
}
