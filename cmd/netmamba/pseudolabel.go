package main

import (
	"fmt"
	"io"
	"math"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/eval"
	"github.com/netmamba/netmamba/train"
)

// pseudoLabelFlags are the options of `netmamba dataset pseudolabel`.
type pseudoLabelFlags struct {
	models         []string
	data, out      string
	temperature    float64
	minConfidence  float64
	maxPerClass    int
	batch, threads int
}

func newDatasetPseudoLabelCmd() *cobra.Command {
	var f pseudoLabelFlags
	c := &cobra.Command{
		Use:   "pseudolabel [--model FILE]... --data DATASET -o OUT [--min-confidence P] [--max-per-class N] [--temperature T]",
		Short: "Label a dataset's flows with a trained model's confident predictions (self-training data)",
		Long: `pseudolabel runs a teacher classifier (the embedded default model when --model is
omitted; several --model flags: the mean of their probabilities, as eval) over every flow of
DATASET, typically an unlabelled one such as the pre-training corpus, and writes the flows
whose top class probability is at least --min-confidence to OUT with that class as their
label and the teacher's class map. --max-per-class keeps only the N most confident flows of
each predicted class, so a class the teacher over-predicts cannot swamp the rest. The flows
are copied as stored (views, sequences, sources, sliding-window rows, which follow their
flow's decision); OUT records the teacher, the settings and the counts (inspect shows them).

Fine-tune a student on the labelled data plus OUT (finetune --data TRAIN --data OUT): the
class maps must be the same (the teacher's) and the representations alike.

Probabilities are softmax(logits / T) per member. T is --temperature, else the member's
calibration (eval --save-calibrated), else 1. A model trained with --loss lda has logits on
LDAM's cosine scale (its loss multiplies them by 30): give --temperature 0.0333 or calibrate
it first, or every probability is near-uniform and nothing passes --min-confidence.

Pseudo-labels are predictions: they carry the teacher's mistakes, and flows of classes the
teacher does not know get one of its classes. Measure the student on held-out labelled data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPseudoLabel(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	c.Flags().StringArrayVar(&f.models, "model", nil, "teacher checkpoint (repeat for an ensemble; default: the embedded model)")
	c.Flags().StringVar(&f.data, "data", "", "dataset whose flows are labelled (labels it has are replaced)")
	c.Flags().StringVarP(&f.out, "output", "o", "", "dataset file to write")
	c.Flags().Float64Var(&f.temperature, "temperature", 0, "divide every member's logits by T before the softmax (0 = its calibration, else 1)")
	c.Flags().Float64Var(&f.minConfidence, "min-confidence", 0.9, "keep flows whose top class probability is at least this")
	c.Flags().IntVar(&f.maxPerClass, "max-per-class", 0, "keep at most N flows per predicted class, most confident first (0 = no cap)")
	c.Flags().IntVar(&f.batch, "batch", 64, "flows per forward batch")
	c.Flags().IntVar(&f.threads, "threads", 0, "worker threads (0 = all CPUs)")
	return c
}

func runPseudoLabel(w, ew io.Writer, f pseudoLabelFlags) error {
	if f.data == "" || f.out == "" {
		return fmt.Errorf("pseudolabel: --data and -o are required")
	}
	if f.temperature < 0 || math.IsNaN(f.temperature) || math.IsInf(f.temperature, 0) {
		return fmt.Errorf("pseudolabel: --temperature %v: want a finite value > 0 (0 = the model's calibration)", f.temperature)
	}
	if len(f.models) == 0 {
		f.models = []string{""}
	}
	members, name, err := loadEnsemble(f.models, f.batch, f.threads)
	if err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	classes := members[0].Meta.Classes
	C := members[0].Net.NumClasses()
	if len(classes) != C {
		return fmt.Errorf("pseudolabel: %s records %d class names for %d outputs: a teacher needs its class map", name, len(classes), C)
	}
	src, err := dataset.Open(f.data)
	if err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	defer src.Close()
	d, err := train.LoadData(f.data)
	if err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	// Feed the teacher what it was trained on; the rows written stay as stored.
	if err := alignRepr(ew, "pseudolabel", name, members[0].Meta.Repr, d); err != nil {
		return err
	}
	// Each member's tempered logits, then the mean of their probabilities.
	all := make([][]float32, len(members))
	temps := make([]float64, len(members))
	for m, l := range members {
		lg, err := train.Predict(l.Net, d, f.batch)
		if err != nil {
			return fmt.Errorf("pseudolabel: %s: %w", f.models[m], err)
		}
		t := f.temperature
		if t == 0 {
			t = l.Meta.Calib.Temperature
		}
		if t == 0 {
			t = 1
		}
		temps[m] = t
		for i := range lg {
			lg[i] = float32(float64(lg[i]) / t)
		}
		all[m] = lg
	}
	logits, err := eval.EnsembleLogits(all, d.N, C)
	if err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	// Windowed rows follow their flow's own row.
	flowOf := make([]int, d.N)
	var rec dataset.Record
	own := -1
	for i := 0; i < d.N; i++ {
		if err := src.ReadRecord(i, &rec); err != nil {
			return fmt.Errorf("pseudolabel: %w", err)
		}
		if rec.Window == 0 || own < 0 {
			own = i
		}
		flowOf[i] = own
	}
	res, err := train.PseudoLabels(logits, d.N, C, flowOf, train.PseudoLabelOptions{
		Temperature: 1, MinConfidence: f.minConfidence, MaxPerClass: f.maxPerClass})
	if err != nil {
		return err
	}
	var idx []int
	for i, l := range res.Labels {
		if l >= 0 {
			idx = append(idx, i)
		}
	}
	flowsIn := 0
	for i, o := range flowOf {
		if o == i {
			flowsIn++
		}
	}
	in := src.Meta()
	meta := dataset.Meta{Classes: classes, Settings: in.Settings}
	meta.Settings.Origin = "pseudolabel"
	meta.Settings.Inputs = []string{f.data}
	kept := map[string]int{}
	for k, n := range res.Kept {
		if n > 0 {
			kept[classes[k]] = n
		}
	}
	meta.Settings.PseudoLabel = &dataset.PseudoLabelSettings{
		Models: modelNames(f.models), Temperature: temps[0], MinConfidence: f.minConfidence,
		MaxPerClass: f.maxPerClass, From: f.data, FlowsIn: uint64(flowsIn), Kept: kept,
	}
	if !allEqual(temps) {
		fmt.Fprintf(ew, "pseudolabel: warning: the members' temperatures differ (%v); the dataset records the first\n", temps)
	}
	meta.Summary = dataset.Summary{
		Files: in.Summary.Files, Packets: in.Summary.Packets, FlowsRead: uint64(flowsIn),
		SkippedPkts: in.Summary.SkippedPkts,
		DroppedFlows: map[string]uint64{
			"below min confidence": uint64(res.BelowConfidence),
			"over max per class":   uint64(res.OverCap),
		},
	}
	if err := dataset.WriteRelabelled(src, idx, f.out, meta, res.Labels); err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	fmt.Fprintf(w, "teacher %s (temperature %g)\n", name, temps[0])
	fmt.Fprintf(w, "%d flows read from %s: %d kept, %d below min confidence %g, %d over max per class %d\n",
		flowsIn, f.data, flowsIn-res.BelowConfidence-res.OverCap, res.BelowConfidence, f.minConfidence, res.OverCap, f.maxPerClass)
	width := 5
	for _, c := range classes {
		width = max(width, len(c))
	}
	fmt.Fprintf(w, "  %-*s %8s %10s\n", width, "class", "kept", "predicted")
	predicted := make([]int, C)
	for i, o := range flowOf {
		if o == i {
			predicted[res.Predicted[i]]++
		}
	}
	for k, c := range classes {
		fmt.Fprintf(w, "  %-*s %8d %10d\n", width, c, res.Kept[k], predicted[k])
	}
	reportAgreement(w, src.Classes(), classes, d.Labels, res, flowOf)
	fmt.Fprintf(w, "wrote %s (%d rows)\n", f.out, len(idx))
	return nil
}

// reportAgreement prints how often the kept pseudo-labels match the labels
// the dataset already had (matched by class name), when it had any: a check
// of the teacher on labelled data, e.g. a validation split.
func reportAgreement(w io.Writer, have, teacher []string, labels []int, res *train.PseudoLabelResult, flowOf []int) {
	byName := map[string]int{}
	for k, c := range teacher {
		byName[c] = k
	}
	var n, agree int
	for i, o := range flowOf {
		if o != i || res.Labels[i] < 0 || labels[i] < 0 || labels[i] >= len(have) {
			continue
		}
		n++
		if k, ok := byName[have[labels[i]]]; ok && k == res.Labels[i] {
			agree++
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "agreement with the dataset's own labels: %d of %d kept flows (%.4f)\n", agree, n, float64(agree)/float64(n))
	}
}

// modelNames names the teacher members ("" is the embedded default model).
func modelNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		if p == "" {
			p = "embedded:" + defaultModelName
		}
		out[i] = p
	}
	return out
}

func allEqual(v []float64) bool {
	for _, x := range v {
		if x != v[0] {
			return false
		}
	}
	return true
}
