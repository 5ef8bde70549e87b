package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is an evaluation report. Its JSON form (snake_case keys) is a
// contract read by scripts: model, dataset, split, seed, class_map, time,
// flows, accuracy, macro_/weighted_ precision/recall/f1, per_class,
// confusion, ci95 and, when computed, ood, ece, ece_calibrated,
// temperature, reliability, reliability_calibrated.
type Report struct {
	Model    string   `json:"model"`
	Dataset  string   `json:"dataset"`
	Split    string   `json:"split"`
	Seed     int64    `json:"seed"`
	ClassMap []string `json:"class_map"` // class index → name
	Time     string   `json:"time"`      // RFC 3339, UTC
	Metrics
	CI95                  *CI95      `json:"ci95"`
	OOD                   *OODReport `json:"ood,omitempty"`
	ECE                   *float64   `json:"ece,omitempty"`
	ECECalibrated         *float64   `json:"ece_calibrated,omitempty"`
	Temperature           *float64   `json:"temperature,omitempty"`
	Reliability           []Bin      `json:"reliability,omitempty"`
	ReliabilityCalibrated []Bin      `json:"reliability_calibrated,omitempty"`
}

// Input is what Build scores.
type Input struct {
	Model, Dataset, Split string
	Seed                  int64     // the run's seed (recorded only)
	ClassMap              []string  // class names; its length is the class count C
	Time                  time.Time // zero means now
	Labels                []int     // true classes of the evaluated flows
	Logits                []float32 // (N, C) row-major; nil when only Preds are known
	Preds                 []int     // predictions, used when Logits is nil
	// ValLabels and ValLogits, when set, are the VALIDATION split used to fit
	// the temperature (reported with ece_calibrated on the evaluated flows).
	ValLabels []int
	ValLogits []float32
	// OODLogits, when set, are logits (M, C) of flows from held-out classes;
	// the evaluated flows are the in-distribution side.
	OODLogits []float32
	Resamples int    // bootstrap resamples; 0 means DefaultResamples
	CISeed    uint64 // bootstrap seed
}

// Build computes every score Input allows: metrics and bootstrap intervals
// always; ECE and reliability with logits; temperature and calibrated ECE
// with validation logits; OOD scores with OOD logits.
func Build(in Input) (*Report, error) {
	c := len(in.ClassMap)
	if c == 0 {
		return nil, fmt.Errorf("eval: report: empty class map")
	}
	preds := in.Preds
	if in.Logits != nil {
		var err error
		if preds, err = Argmax(in.Logits, len(in.Labels), c, nil); err != nil {
			return nil, fmt.Errorf("eval: report: %w", err)
		}
	}
	m, err := Compute(in.Labels, preds, c, in.ClassMap)
	if err != nil {
		return nil, fmt.Errorf("eval: report: %w", err)
	}
	t := in.Time
	if t.IsZero() {
		t = time.Now()
	}
	r := &Report{
		Model: in.Model, Dataset: in.Dataset, Split: in.Split, Seed: in.Seed,
		ClassMap: in.ClassMap, Time: t.UTC().Format(time.RFC3339), Metrics: *m,
	}
	if len(in.Labels) > 0 {
		res := in.Resamples
		if res == 0 {
			res = DefaultResamples
		}
		if r.CI95, err = Bootstrap(in.Labels, preds, c, res, in.CISeed); err != nil {
			return nil, fmt.Errorf("eval: report: %w", err)
		}
	}
	if in.Logits != nil && len(in.Labels) > 0 {
		bins, ece, err := Reliability(in.Labels, in.Logits, c, 1, ECEBins)
		if err != nil {
			return nil, fmt.Errorf("eval: report: %w", err)
		}
		r.Reliability, r.ECE = bins, &ece
		if in.ValLogits != nil {
			if len(in.ValLogits) != len(in.ValLabels)*c {
				return nil, fmt.Errorf("eval: report: %d validation logits for %d labels × %d classes", len(in.ValLogits), len(in.ValLabels), c)
			}
			temp, err := FitTemperature(in.ValLabels, in.ValLogits, c)
			if err != nil {
				return nil, fmt.Errorf("eval: report: temperature: %w", err)
			}
			bins, ece, err := Reliability(in.Labels, in.Logits, c, temp, ECEBins)
			if err != nil {
				return nil, fmt.Errorf("eval: report: %w", err)
			}
			r.Temperature, r.ReliabilityCalibrated, r.ECECalibrated = &temp, bins, &ece
		}
	}
	if in.OODLogits != nil {
		if in.Logits == nil {
			return nil, fmt.Errorf("eval: report: OOD scores need the in-distribution logits")
		}
		if r.OOD, err = DetectOOD(in.Logits, in.OODLogits, c); err != nil {
			return nil, fmt.Errorf("eval: report: %w", err)
		}
	}
	return r, nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: report JSON: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("eval: report JSON: %w", err)
	}
	return nil
}

// WriteText renders the report as plain-text tables: summary, per-class
// table (like scikit-learn's classification_report), confusion matrix and,
// when present, OOD and calibration figures.
func (r *Report) WriteText(w io.Writer) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "model %s  dataset %s  split %s  seed %d  flows %d  time %s\n\n",
		orDash(r.Model), orDash(r.Dataset), orDash(r.Split), r.Seed, r.Flows, r.Time)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "class\tprecision\trecall\tf1\tsupport\tpredicted\t\n")
	for _, pc := range r.PerClass {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%d\t%d\t\n", pc.Name, pc.Precision, pc.Recall, pc.F1, pc.Support, pc.Predicted)
	}
	fmt.Fprintf(tw, "\t\t\t\t\t\t\n")
	fmt.Fprintf(tw, "macro avg\t%.4f\t%.4f\t%.4f\t%d\t\t\n", r.MacroPrecision, r.MacroRecall, r.MacroF1, r.Flows)
	fmt.Fprintf(tw, "weighted avg\t%.4f\t%.4f\t%.4f\t%d\t\t\n", r.WeightedPrecision, r.WeightedRecall, r.WeightedF1, r.Flows)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&sb, "\naccuracy %.4f", r.Accuracy)
	if r.CI95 != nil {
		fmt.Fprintf(&sb, "  [%.4f, %.4f]", r.CI95.Accuracy.Low, r.CI95.Accuracy.High)
	}
	fmt.Fprintf(&sb, "\nmacro-F1 %.4f", r.MacroF1)
	if r.CI95 != nil {
		fmt.Fprintf(&sb, "  [%.4f, %.4f]", r.CI95.MacroF1.Low, r.CI95.MacroF1.High)
	}
	fmt.Fprintf(&sb, "\nweighted-F1 %.4f", r.WeightedF1)
	if r.CI95 != nil {
		fmt.Fprintf(&sb, "  [%.4f, %.4f]  (95 %% percentile bootstrap, %d resamples, seed %d)", r.CI95.WeightedF1.Low, r.CI95.WeightedF1.High, r.CI95.Resamples, r.CI95.Seed)
	}
	sb.WriteString("\n\nconfusion matrix (rows: true, columns: predicted)\n")
	tw = tabwriter.NewWriter(&sb, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\t")
	for k := range r.Confusion {
		fmt.Fprintf(tw, "%d\t", k)
	}
	fmt.Fprintf(tw, "\n")
	for k, row := range r.Confusion {
		fmt.Fprintf(tw, "%d %s\t", k, r.className(k))
		for _, v := range row {
			fmt.Fprintf(tw, "%d\t", v)
		}
		fmt.Fprintf(tw, "\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.ECE != nil {
		fmt.Fprintf(&sb, "\nECE (15 bins) %.4f", *r.ECE)
		if r.Temperature != nil {
			fmt.Fprintf(&sb, "  temperature %.4f (fit on validation)  calibrated ECE %.4f", *r.Temperature, *r.ECECalibrated)
		}
		sb.WriteString("\n")
	}
	if r.OOD != nil {
		fmt.Fprintf(&sb, "\nOOD detection (%d in-distribution, %d OOD flows)\n", r.OOD.IDFlows, r.OOD.OODFlows)
		tw = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "confidence\tAUROC\tFPR95\t\n")
		for _, k := range ConfidenceKinds() {
			s := r.OOD.Scores(k)
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t\n", k, s.AUROC, s.FPR95)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func (r *Report) className(k int) string {
	if k < len(r.ClassMap) {
		return r.ClassMap[k]
	}
	return fmt.Sprint(k)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
