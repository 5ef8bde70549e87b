package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/eval"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/train"
)

// pseudoLabelFlags are the options of `netmamba dataset pseudolabel`.
type pseudoLabelFlags struct {
	models         []string
	data, out      string
	temperatures   []float64
	minConfidence  float64
	maxPerClass    int
	batch, threads int
}

func newDatasetPseudoLabelCmd() *cobra.Command {
	var f pseudoLabelFlags
	c := &cobra.Command{
		Use:   "pseudolabel [--model FILE]... --data DATASET -o OUT [--min-confidence P] [--max-per-class N] [--temperature T]...",
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

Probabilities are softmax(logits / T) per member. T is --temperature (one value for every
member, or one per --model in the same order, to mix members trained with different
losses), else the member's calibration (eval --save-calibrated), else 1. A model trained
with --loss lda has logits on LDAM's cosine scale (its loss multiplies them by 30): give it
--temperature 0.0333 or calibrate it first, or every probability is near-uniform and
nothing passes --min-confidence.

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
	c.Flags().Float64SliceVar(&f.temperatures, "temperature", nil, "divide the members' logits by `T` before the softmax: once for all, or once per --model in order, repeated or comma-separated (0 or none = the member's calibration, else 1)")
	c.Flags().Float64Var(&f.minConfidence, "min-confidence", 0.9, "keep flows whose top class probability is at least this")
	c.Flags().Lookup("temperature").DefValue = "" // no "(default [])" in the help
	c.Flags().IntVar(&f.maxPerClass, "max-per-class", 0, "keep at most N flows per predicted class, most confident first (0 = no cap)")
	c.Flags().IntVar(&f.batch, "batch", 64, "flows per forward batch")
	c.Flags().IntVar(&f.threads, "threads", 0, "worker threads (0 = all CPUs)")
	return c
}

func runPseudoLabel(w, ew io.Writer, f pseudoLabelFlags) error {
	if f.data == "" || f.out == "" {
		return fmt.Errorf("pseudolabel: --data and -o are required")
	}
	for _, t := range f.temperatures {
		if t < 0 || math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("pseudolabel: --temperature %v: want a finite value > 0 (0 = the model's calibration)", t)
		}
	}
	if f.batch < 1 {
		return fmt.Errorf("pseudolabel: --batch %d: want ≥ 1", f.batch)
	}
	opts := train.PseudoLabelOptions{Temperature: 1, MinConfidence: f.minConfidence, MaxPerClass: f.maxPerClass}
	if err := opts.Validate(); err != nil {
		return err
	}
	if len(f.models) == 0 {
		f.models = []string{""}
	}
	names := modelNames(f.models)
	if n := len(f.temperatures); n > 1 && n != len(f.models) {
		return fmt.Errorf("pseudolabel: %d --temperature values for %d --model: give one for all or one per model", n, len(f.models))
	}
	members, name, err := loadEnsemble("pseudolabel", f.models, f.batch, f.threads)
	if err != nil {
		return err
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
	flowOf, flows, err := flowRows(src)
	if err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	all, err := train.LoadData(f.data)
	if err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	// Feed the teacher what it was trained on (the rows written stay as
	// stored), one row per flow: windows follow their flow's decision.
	if err := matchRepr(ew, "pseudolabel", name, members[0].Meta.Repr, all); err != nil {
		return err
	}
	d := all.Subset(flows)
	// Each member's tempered logits, then the mean of their probabilities.
	tempered := make([][]float32, len(members))
	temps := make([]float64, len(members))
	for m, l := range members {
		lg, err := train.Predict(l.Net, d, f.batch)
		if err != nil {
			return fmt.Errorf("pseudolabel: %s: %w", names[m], err)
		}
		var t float64
		switch len(f.temperatures) {
		case 1:
			t = f.temperatures[0]
		case len(members):
			t = f.temperatures[m]
		}
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
		tempered[m] = lg
	}
	logits, err := eval.EnsembleLogits(tempered, d.N, C)
	if err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	res, err := train.PseudoLabels(logits, d.N, C, opts)
	if err != nil {
		return err
	}
	// Row labels: each row takes its flow's.
	flowIndex := make(map[int]int, len(flows))
	for j, i := range flows {
		flowIndex[i] = j
	}
	rowLabels := make([]int, src.Len())
	var idx []int
	for i := range rowLabels {
		rowLabels[i] = res.Labels[flowIndex[flowOf[i]]]
		if rowLabels[i] >= 0 {
			idx = append(idx, i)
		}
	}
	kept := map[string]int{}
	for k, n := range res.Kept {
		if n > 0 {
			kept[classes[k]] = n
		}
	}
	// The representation settings carry over; how the source was labelled
	// and sampled does not (its own metadata keeps that).
	in := src.Meta().Settings
	meta := dataset.Meta{Classes: classes, Settings: dataset.Settings{
		Inputs: []string{f.data}, Compat: in.Compat, Direction: in.Direction, Filter: in.Filter, Clean: in.Clean,
		Debias: in.Debias, IdleTimeout: in.IdleTimeout, ActiveTimeout: in.ActiveTimeout, Windows: in.Windows,
		Origin: "pseudolabel",
		PseudoLabel: &dataset.PseudoLabelSettings{
			Models: names, Temperatures: temps, MinConfidence: f.minConfidence,
			MaxPerClass: f.maxPerClass, From: f.data, FlowsIn: uint64(len(flows)), Kept: kept,
		},
	}}
	meta.Summary = dataset.Summary{
		FlowsRead: uint64(len(flows)),
		DroppedFlows: map[string]uint64{
			"below min confidence": uint64(res.BelowConfidence),
			"over max per class":   uint64(res.OverCap),
		},
	}
	if err := dataset.WriteRelabelled(src, idx, f.out, meta, rowLabels); err != nil {
		return fmt.Errorf("pseudolabel: %w", err)
	}
	fmt.Fprintf(w, "teacher %s (temperature %s)\n", name, joinFloats(temps))
	fmt.Fprintf(w, "%d flows read from %s: %d kept, %d below min confidence %g, %d over max per class %d\n",
		len(flows), f.data, len(flows)-res.BelowConfidence-res.OverCap, res.BelowConfidence, f.minConfidence, res.OverCap, f.maxPerClass)
	width := 5
	for _, c := range classes {
		width = max(width, len(c))
	}
	fmt.Fprintf(w, "  %-*s %8s %10s\n", width, "class", "kept", "predicted")
	predicted := make([]int, C)
	for _, k := range res.Predicted {
		predicted[k]++
	}
	for k, c := range classes {
		fmt.Fprintf(w, "  %-*s %8d %10d\n", width, c, res.Kept[k], predicted[k])
	}
	reportAgreement(w, src.Classes(), classes, d.Labels, res.Labels)
	fmt.Fprintf(w, "wrote %s (%d rows)\n", f.out, len(idx))
	return nil
}

// flowRows maps every row of src to its flow's own row (a sliding-window
// row follows its flow's row, with the same key) and lists the own rows.
func flowRows(src *dataset.Dataset) (flowOf, flows []int, err error) {
	flowOf = make([]int, src.Len())
	var rec dataset.Record
	var key flow.Key
	for i := range flowOf {
		if err := src.ReadRecord(i, &rec); err != nil {
			return nil, nil, err
		}
		if rec.Window == 0 {
			flows = append(flows, i)
			key = rec.Key
		} else if len(flows) == 0 || rec.Key != key {
			return nil, nil, fmt.Errorf("%s: row %d is window %d of a flow whose own row does not precede it", src.Path(), i, rec.Window)
		}
		flowOf[i] = flows[len(flows)-1]
	}
	return flowOf, flows, nil
}

// joinFloats renders the members' temperatures: one value, or "a + b + …".
func joinFloats(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strings.Join(parts, " + ")
}

// reportAgreement prints how often the kept pseudo-labels match the labels
// the flows already had (matched by class name), when they had any: a check
// of the teacher on labelled data, e.g. a validation split.
func reportAgreement(w io.Writer, have, teacher []string, labels, pseudo []int) {
	byName := map[string]int{}
	for k, c := range teacher {
		byName[c] = k
	}
	var n, agree int
	for i, p := range pseudo {
		if p < 0 || labels[i] < 0 || labels[i] >= len(have) {
			continue
		}
		n++
		if k, ok := byName[have[labels[i]]]; ok && k == p {
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
		out[i] = classifierName(p)
	}
	return out
}
