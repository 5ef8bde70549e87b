package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/eval"
	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/train"
)

func newEvalCmd() *cobra.Command {
	var (
		modelPaths                           []string
		dataPath, oodPath, calibPath         string
		format, out, logPath, saveCalibrated string
		keep                                 float64
		asJSON                               bool
		batch, threads, resamples            int
		seed                                 uint64
	)
	c := &cobra.Command{
		Use:   "eval [--model FILE]... --data DATASET [--ood-data DATASET] [--calibrate-on DATASET] [--format table|json|html]",
		Short: "Evaluate a classifier: accuracy, macro/weighted P/R/F1, per-class, confusion, CIs, OOD, calibration",
		Long: `eval scores a classifier (the embedded default model when --model is omitted) on a
labelled dataset. Classes are matched by name between the dataset and the model; flows of
classes the model does not know (e.g. held out with finetune --exclude-classes) are scored
as out-of-distribution, as are the flows of --ood-data. OOD detection is reported for
max-logit, max-prob, energy and negative-entropy confidences (AUROC, FPR at 95 % TPR). ECE
uses 15 bins; --calibrate-on fits a temperature on VALIDATION data (never the test set)
and reports the calibrated ECE. Macro averages run over the classes present in the true
or predicted labels (scikit-learn's default); 95 % intervals are percentile bootstrap.

--model given more than once scores the ENSEMBLE of those models: each flow's class
probabilities are the mean of the members' softmax outputs (members must share class names
and representation settings, e.g. the same recipe run with other seeds); every figure,
calibration included, is computed from that mean. Its logits are log-probabilities, so the
energy OOD score is 0 for every flow and max-logit ranks as max-prob: read max_prob and
neg_entropy for an ensemble. --save-calibrated takes one model.

--format table (default) prints tables; json prints one JSON object (keys: accuracy,
macro_f1, weighted_f1, flows, per_class, confusion, ci95, ood, ece, ece_calibrated,
temperature, ...); html writes a self-contained report (to -o, default report.html) with
the confusion heatmap, per-class F1, reliability diagrams and, with --log, learning curves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				format = "json"
			}
			switch format {
			case "table", "json", "html":
			default:
				return fmt.Errorf("eval: unknown --format %q (want table, json or html)", format)
			}
			if dataPath == "" {
				return fmt.Errorf("eval: --data is required")
			}
			if len(modelPaths) == 0 {
				modelPaths = []string{""} // the embedded default model
			}
			if saveCalibrated != "" && len(modelPaths) > 1 {
				return fmt.Errorf("eval: --save-calibrated takes one --model, not an ensemble of %d", len(modelPaths))
			}
			members, name, err := loadEnsemble("eval", modelPaths, batch, threads)
			if err != nil {
				return err
			}
			l := members[0]
			classes := l.Meta.Classes
			C := l.Net.NumClasses()
			if len(classes) == 0 {
				for k := 0; k < C; k++ {
					classes = append(classes, fmt.Sprintf("class_%d", k))
				}
			}
			d, err := train.LoadData(dataPath)
			if err != nil {
				return err
			}
			if err := alignRepr(cmd.ErrOrStderr(), "eval", name, l.Meta.Repr, d); err != nil {
				return err
			}
			id, ood, err := splitByModelClasses(d, classes)
			if err != nil {
				return err
			}
			if id.N == 0 {
				return fmt.Errorf("eval: %s has no flow of the model's classes %v", dataPath, classes)
			}
			logits, err := predictEnsemble(members, id, batch)
			if err != nil {
				return err
			}
			in := eval.Input{Model: name, Dataset: dataPath, Seed: int64(seed), ClassMap: classes,
				Labels: id.Labels, Logits: logits, Resamples: resamples, CISeed: seed, Time: time.Now()}
			if oodPath != "" {
				od, err := train.LoadData(oodPath)
				if err != nil {
					return err
				}
				if err := alignRepr(cmd.ErrOrStderr(), "eval", name, l.Meta.Repr, od); err != nil {
					return err
				}
				if ood == nil {
					ood = od
				} else {
					ood.Append(od)
				}
			}
			if ood != nil && ood.N > 0 {
				if in.OODLogits, err = predictEnsemble(members, ood, batch); err != nil {
					return err
				}
				if len(members) > 1 {
					fmt.Fprintf(cmd.ErrOrStderr(), "eval: ensemble of %d: its logits are log-probabilities, so the energy score is constant and max-logit equals log max-prob; read max_prob and neg_entropy\n", len(members))
				}
			}
			if calibPath != "" {
				cd, err := train.LoadData(calibPath)
				if err != nil {
					return err
				}
				if err := alignRepr(cmd.ErrOrStderr(), "eval", name, l.Meta.Repr, cd); err != nil {
					return err
				}
				cid, _, err := splitByModelClasses(cd, classes)
				if err != nil {
					return err
				}
				if in.ValLogits, err = predictEnsemble(members, cid, batch); err != nil {
					return err
				}
				in.ValLabels = cid.Labels
			}
			rep, err := eval.Build(in)
			if err != nil {
				return err
			}
			if saveCalibrated != "" {
				if rep.Temperature == nil {
					return fmt.Errorf("eval: --save-calibrated needs --calibrate-on VALID")
				}
				th, err := eval.UnknownThreshold(in.ValLogits, len(in.ValLabels), C, *rep.Temperature, keep)
				if err != nil {
					return err
				}
				if err := writeCalibrated(modelPaths[0], saveCalibrated, *rep.Temperature, th); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "eval: temperature %.4f, unknown threshold %.4f (keeps %.0f %% of the validation flows) -> %s\n",
					*rep.Temperature, th, 100*keep, saveCalibrated)
			}
			w := cmd.OutOrStdout()
			switch format {
			case "json":
				return rep.WriteJSON(w)
			case "table":
				if ood != nil && ood.N > 0 {
					fmt.Fprintf(w, "out-of-distribution flows: %d\n", ood.N)
				}
				return rep.WriteText(w)
			}
			var log []eval.TrainRecord
			if logPath != "" {
				f, err := os.Open(logPath)
				if err != nil {
					return fmt.Errorf("eval: %w", err)
				}
				log, err = eval.ReadTrainLog(f, logPath)
				f.Close()
				if err != nil {
					return err
				}
			}
			if out == "" {
				out = "report.html"
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("eval: %w", err)
			}
			if err := rep.WriteHTML(f, log); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("eval: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "eval: accuracy %.4f macro_f1 %.4f weighted_f1 %.4f on %d flows; report -> %s\n",
				rep.Accuracy, rep.MacroF1, rep.WeightedF1, rep.Flows, out)
			return nil
		},
	}
	fs := c.Flags()
	fs.StringArrayVar(&modelPaths, "model", nil, "classifier (.safetensors or .pth); default: the embedded model; repeat it to score the ensemble (mean probability) of several")
	fs.StringVar(&dataPath, "data", "", "labelled dataset to evaluate")
	fs.StringVar(&oodPath, "ood-data", "", "dataset of out-of-distribution flows")
	fs.StringVar(&calibPath, "calibrate-on", "", "validation dataset to fit the temperature on")
	fs.StringVar(&format, "format", "table", "output: table | json | html")
	fs.BoolVar(&asJSON, "json", false, "short for --format json")
	fs.StringVarP(&out, "out", "o", "", "HTML report path (default report.html)")
	fs.StringVar(&logPath, "log", "", "training log (JSONL) for the learning curves of the HTML report")
	fs.IntVar(&batch, "batch", 64, "flows per forward batch")
	fs.IntVar(&threads, "threads", 0, "worker threads (0 = all CPUs)")
	fs.IntVar(&resamples, "resamples", 1000, "bootstrap resamples for the 95 % intervals")
	fs.Uint64Var(&seed, "seed", 0, "bootstrap seed")
	fs.StringVar(&saveCalibrated, "save-calibrated", "", "write a copy of the model with the fitted temperature and an unknown-verdict threshold (needs --calibrate-on)")
	fs.Float64Var(&keep, "unknown-keep", 0.95, "with --save-calibrated: the share of validation flows the unknown threshold keeps")
	return c
}

// splitByModelClasses maps d's labels onto the model's class names: flows
// of known classes are returned relabelled, flows of other classes as OOD
// (nil when none). Unlabelled flows are an error.
func splitByModelClasses(d *train.Data, classes []string) (id, ood *train.Data, err error) {
	index := map[string]int{}
	for i, c := range classes {
		index[c] = i
	}
	remap := make([]int, len(d.Classes))
	for i, c := range d.Classes {
		k, ok := index[c]
		if !ok {
			k = -1
		}
		remap[i] = k
	}
	var in, out []int
	for i, y := range d.Labels {
		if y < 0 || y >= len(remap) {
			return nil, nil, fmt.Errorf("eval: %s: flow %d (%s) is unlabelled", d.Path, i, d.Sources[i])
		}
		if remap[y] >= 0 {
			in = append(in, i)
		} else {
			out = append(out, i)
		}
	}
	id = d.Subset(in)
	for i := range id.Labels {
		id.Labels[i] = remap[id.Labels[i]]
	}
	id.Classes = classes
	if len(out) > 0 {
		ood = d.Subset(out)
	}
	return id, ood, nil
}

// loadClassifier loads --model, or the embedded default model when path is "".
func loadClassifier(path string, batch, threads int) (*train.Loaded, string, error) {
	if path == "" {
		l, err := loadDefaultModel(batch, threads)
		return l, classifierName(path), err
	}
	l, err := train.LoadClassifier(path, batch, threads)
	return l, classifierName(path), err
}

// classifierName names a --model value in reports: its path, or
// "embedded:NAME" for "" (the embedded default model).
func classifierName(path string) string {
	if path == "" {
		return "embedded:" + defaultModelName
	}
	return path
}

// loadEnsemble (for command prefix) loads the classifiers at paths ("" = the embedded default
// model) and checks that they can be averaged: the same class names in the
// same order and the same representation settings (direction, compat,
// debias, size mode). name joins the members' names with "+".
func loadEnsemble(prefix string, paths []string, batch, threads int) ([]*train.Loaded, string, error) {
	members := make([]*train.Loaded, 0, len(paths))
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		l, name, err := loadClassifier(p, batch, threads)
		if err != nil {
			return nil, "", err
		}
		if len(members) > 0 {
			first := members[0]
			if !slices.Equal(l.Meta.Classes, first.Meta.Classes) || l.Net.NumClasses() != first.Net.NumClasses() {
				return nil, "", fmt.Errorf("%s: ensemble members %s and %s have different classes (%v vs %v)", prefix, names[0], name, first.Meta.Classes, l.Meta.Classes)
			}
			if !train.SameRepr(l.Meta.Repr, first.Meta.Repr) {
				return nil, "", fmt.Errorf("%s: ensemble members %s and %s were trained on different representations (%+v vs %+v)", prefix, names[0], name, first.Meta.Repr, l.Meta.Repr)
			}
		}
		members = append(members, l)
		names = append(names, name)
	}
	return members, strings.Join(names, "+"), nil
}

// predictEnsemble returns the logits of one model on d (train.Predict), or
// for several the log of their mean softmax (eval.EnsembleLogits).
func predictEnsemble(members []*train.Loaded, d *train.Data, batch int) ([]float32, error) {
	if len(members) == 1 {
		return train.Predict(members[0].Net, d, batch)
	}
	all := make([][]float32, len(members))
	for m, l := range members {
		lg, err := train.Predict(l.Net, d, batch)
		if err != nil {
			return nil, err
		}
		all[m] = lg
	}
	return eval.EnsembleLogits(all, d.N, members[0].Net.NumClasses())
}

// writeCalibrated copies the model at src (the embedded model when "") to
// dst with calibration metadata: classify divides logits by temperature and
// answers "unknown" below threshold.
func writeCalibrated(src, dst string, temperature, threshold float64) error {
	var f *checkpoint.File
	var err error
	if src == "" {
		f, err = defaultModelFile()
	} else {
		f, err = checkpoint.Load(src)
	}
	if err != nil {
		return err
	}
	meta, err := checkpoint.ParseMeta(f.Metadata)
	if err != nil {
		return err
	}
	meta.Calib = checkpoint.CalibMeta{Temperature: temperature, UnknownThreshold: threshold, HasThreshold: true}
	if meta.FormatVersion == "" {
		meta.FormatVersion = checkpoint.FormatVersion
	}
	f.Metadata = meta.Map()
	return checkpoint.Save(dst, f, checkpoint.WriteOptions{})
}

// warnReprMismatch warns when a dataset was built with other representation
// settings (direction, compat mode) than the model was trained on: its
// scores would then say little about the model. prefix starts each line
// ("eval", "finetune").
func warnReprMismatch(w io.Writer, prefix, model string, rm checkpoint.ReprMeta, d *train.Data) {
	dir := d.Settings.Direction
	if dir == "" {
		dir = "bi"
	}
	if rm.Direction != "" && rm.Direction != dir {
		fmt.Fprintf(w, "%s: warning: %s was trained on %s-directional flows, %s holds %s-directional flows (prep --direction)\n", prefix, model, rm.Direction, d.Path, dir)
	}
	if rm.Direction != "" && rm.Compat != d.Settings.Compat {
		fmt.Fprintf(w, "%s: warning: %s was trained on byte views with compat %q, %s was built with compat %q (prep --compat)\n", prefix, model, rm.Compat, d.Path, d.Settings.Compat)
	}
}

// warnWindowed warns when an evaluation dataset was built with sliding
// windows (prep --windows): its rows include extra views of long flows, so
// metrics over them weigh those flows several times.
func warnWindowed(w io.Writer, prefix string, d *train.Data) {
	if d.Settings.Windows > 0 {
		fmt.Fprintf(w, "%s: warning: %s was built with --windows %d: its rows include windowed views, so metrics count long flows several times (windows are meant for training data; rebuild it without --windows)\n",
			prefix, d.Path, d.Settings.Windows)
	}
}

// alignRepr makes d's byte views match the model's representation where
// that can be done exactly, and warns (on w, one line each) where it
// cannot. Direction and compat mismatches are warned about
// (warnReprMismatch). When the model and d are both offset-correct and the
// model's debias is d's plus zero_* strategies only, the missing ones are
// applied to every view (d.Bytes and d.Views alike, d.Settings.Debias
// updated) with repr.Redebias — byte-identical to building d with the
// model's debias — and one note says so. Any other debias difference (d has
// rewrites the model did not see, or the model needs relative_*/random_*
// ones) gets a warning that the scores are not meaningful. A model without
// recorded debias (official checkpoints) is taken as it is.
func alignRepr(w io.Writer, prefix, model string, rm checkpoint.ReprMeta, d *train.Data) error {
	warnWindowed(w, prefix, d)
	return matchRepr(w, prefix, model, rm, d)
}

// matchRepr is alignRepr without the warning about sliding-window rows, for
// commands that handle them (pseudolabel).
func matchRepr(w io.Writer, prefix, model string, rm checkpoint.ReprMeta, d *train.Data) error {
	warnReprMismatch(w, prefix, model, rm, d)
	if len(rm.Debias) == 0 || rm.Compat != d.Settings.Compat || d.Settings.Compat != "" {
		return nil // unknown, already warned about, or ignored (compat official)
	}
	want, err := repr.ParseDebias(rm.Debias)
	if err != nil {
		fmt.Fprintf(w, "%s: warning: %s records an unreadable debias (%v): %s cannot be checked against it\n", prefix, model, err, d.Path)
		return nil
	}
	have, err := repr.ParseDebias(d.Settings.Debias) // an empty list is NetMamba's zero_ip
	if err != nil {
		fmt.Fprintf(w, "%s: warning: %s records an unreadable debias (%v): its scores against %s are not meaningful\n", prefix, d.Path, err, model)
		return nil
	}
	wantNames, haveNames := strings.Join(want.Names(), ","), strings.Join(have.Names(), ",")
	if wantNames == haveNames {
		return nil
	}
	add, err := repr.DebiasToAdd(have, want)
	if err != nil {
		fmt.Fprintf(w, "%s: warning: %s was trained on byte views with debias %s, %s was built with debias %s (%v): its scores are not meaningful (prep --debias %s)\n",
			prefix, model, wantNames, d.Path, haveNames, err, wantNames)
		return nil
	}
	if d.N*repr.ViewBytes != len(d.Bytes) || (d.Views != nil && len(d.Views) != d.N) {
		return fmt.Errorf("%s: %s: %d flows but %d view bytes and %d views", prefix, d.Path, d.N, len(d.Bytes), len(d.Views))
	}
	if err := redebiasRows(w, prefix, d.Path, d.Bytes, add); err != nil {
		return err
	}
	for i := range d.Views {
		copy(d.Views[i].Bytes[:], d.Bytes[i*repr.ViewBytes:])
	}
	d.Settings.Debias = want.Names()
	fmt.Fprintf(w, "%s: applying the model's debias %s to %s (built with %s)\n", prefix, strings.Join(add.Names(), ","), d.Path, haveNames)
	return nil
}

// redebiasRows applies the zero_* strategies of add to every ViewBytes row
// of rows in place (repr.Redebias) and warns on w about packet slots it
// could not parse (left unchanged).
func redebiasRows(w io.Writer, prefix, name string, rows []byte, add repr.Debias) error {
	var st repr.RedebiasStats
	for i := 0; i+repr.ViewBytes <= len(rows); i += repr.ViewBytes {
		s, err := repr.Redebias(rows[i:i+repr.ViewBytes], add)
		if err != nil {
			return fmt.Errorf("%s: %s: row %d: %w", prefix, name, i/repr.ViewBytes, err)
		}
		st.Add(s)
	}
	if st.Unknown > 0 {
		fmt.Fprintf(w, "%s: warning: %s: %d packet slots hold no IPv4/IPv6 header and were left unchanged\n", prefix, name, st.Unknown)
	}
	return nil
}
