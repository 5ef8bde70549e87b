// Package eval scores classifiers (SPEC §5): accuracy, macro and weighted
// precision/recall/F1 with scikit-learn's semantics, per-class tables,
// confusion matrices, bootstrap confidence intervals, out-of-distribution
// detection (AUROC, FPR at 95 % TPR), calibration (ECE, temperature
// scaling), and reports as JSON, plain text and self-contained HTML.
//
// It works on labels, logits (N×C float32, row-major) or predictions only;
// it knows nothing of models.
package eval

import "fmt"

// ClassMetrics is one row of the per-class table.
type ClassMetrics struct {
	Class     int     `json:"class"`
	Name      string  `json:"name"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"` // true samples of the class
	Predicted int     `json:"predicted"`
}

// Metrics are the classification scores of one prediction set.
//
// Averages follow scikit-learn's precision_recall_fscore_support with
// zero_division=0: a per-class value whose denominator is 0 is 0; macro
// averages run over the classes present in the true OR the predicted labels
// (sklearn's unique_labels); weighted averages weigh classes by support.
type Metrics struct {
	Flows             int            `json:"flows"`
	Accuracy          float64        `json:"accuracy"`
	MacroPrecision    float64        `json:"macro_precision"`
	MacroRecall       float64        `json:"macro_recall"`
	MacroF1           float64        `json:"macro_f1"`
	WeightedPrecision float64        `json:"weighted_precision"`
	WeightedRecall    float64        `json:"weighted_recall"`
	WeightedF1        float64        `json:"weighted_f1"`
	PerClass          []ClassMetrics `json:"per_class"` // every class 0..C−1, present or not
	Confusion         [][]int        `json:"confusion"` // [true][predicted]
}

// Argmax writes the row-wise argmax of logits (n, c) into dst (length n;
// nil allocates) and returns it. Ties go to the lowest index, like
// torch.argmax and numpy.argmax.
func Argmax(logits []float32, n, c int, dst []int) ([]int, error) {
	if n < 0 || c <= 0 || len(logits) != n*c {
		return nil, fmt.Errorf("eval: argmax: %d logits for (%d, %d)", len(logits), n, c)
	}
	if dst == nil {
		dst = make([]int, n)
	}
	if len(dst) != n {
		return nil, fmt.Errorf("eval: argmax: destination of %d for %d rows", len(dst), n)
	}
	for i := 0; i < n; i++ {
		row := logits[i*c : (i+1)*c]
		best := 0
		for k := 1; k < c; k++ {
			if row[k] > row[best] {
				best = k
			}
		}
		dst[i] = best
	}
	return dst, nil
}

// Confusion returns the c×c confusion matrix [true][predicted], checking
// that every label and prediction is in [0, c).
func Confusion(labels, preds []int, c int) ([][]int, error) {
	if len(labels) != len(preds) {
		return nil, fmt.Errorf("eval: %d labels but %d predictions", len(labels), len(preds))
	}
	if c <= 0 {
		return nil, fmt.Errorf("eval: %d classes", c)
	}
	cm := make([][]int, c)
	flat := make([]int, c*c)
	for k := range cm {
		cm[k] = flat[k*c : (k+1)*c]
	}
	for i, y := range labels {
		p := preds[i]
		if y < 0 || y >= c {
			return nil, fmt.Errorf("eval: label %d of sample %d outside [0, %d)", y, i, c)
		}
		if p < 0 || p >= c {
			return nil, fmt.Errorf("eval: prediction %d of sample %d outside [0, %d)", p, i, c)
		}
		cm[y][p]++
	}
	return cm, nil
}

// Compute scores predictions against labels for c classes; names (nil or
// length c) label the per-class rows.
func Compute(labels, preds []int, c int, names []string) (*Metrics, error) {
	if names != nil && len(names) != c {
		return nil, fmt.Errorf("eval: %d class names for %d classes", len(names), c)
	}
	cm, err := Confusion(labels, preds, c)
	if err != nil {
		return nil, err
	}
	m := &Metrics{Flows: len(labels), Confusion: cm}
	counts := fromConfusion(cm)
	s := counts.summary()
	m.Accuracy, m.MacroPrecision, m.MacroRecall, m.MacroF1 = s.accuracy, s.macroP, s.macroR, s.macroF1
	m.WeightedPrecision, m.WeightedRecall, m.WeightedF1 = s.weightedP, s.weightedR, s.weightedF1
	m.PerClass = make([]ClassMetrics, c)
	for k := 0; k < c; k++ {
		p, r, f := counts.prf(k)
		name := fmt.Sprint(k)
		if names != nil {
			name = names[k]
		}
		m.PerClass[k] = ClassMetrics{
			Class: k, Name: name, Precision: p, Recall: r, F1: f,
			Support: counts.support[k], Predicted: counts.predicted[k],
		}
	}
	return m, nil
}

// ComputeLogits is Compute on the argmax of logits (n, c).
func ComputeLogits(labels []int, logits []float32, c int, names []string) (*Metrics, error) {
	preds, err := Argmax(logits, len(labels), c, nil)
	if err != nil {
		return nil, err
	}
	return Compute(labels, preds, c, names)
}

// classCounts holds per-class true positives, supports and prediction
// counts; the bootstrap refills it without allocating.
type classCounts struct {
	tp, support, predicted []int
	n                      int
}

func newClassCounts(c int) classCounts {
	return classCounts{tp: make([]int, c), support: make([]int, c), predicted: make([]int, c)}
}

func fromConfusion(cm [][]int) classCounts {
	cc := newClassCounts(len(cm))
	for y, row := range cm {
		for p, v := range row {
			cc.support[y] += v
			cc.predicted[p] += v
			cc.n += v
			if p == y {
				cc.tp[y] += v
			}
		}
	}
	return cc
}

func (cc *classCounts) reset() {
	clear(cc.tp)
	clear(cc.support)
	clear(cc.predicted)
	cc.n = 0
}

func (cc *classCounts) add(y, p int) {
	cc.support[y]++
	cc.predicted[p]++
	cc.n++
	if y == p {
		cc.tp[y]++
	}
}

// prf is class k's precision, recall and F1 with zero_division = 0.
// F1 = 2·tp / (2·tp + fp + fn), which equals 2PR/(P+R) whenever defined
// (scikit-learn ≥ 1.3 computes it this way).
func (cc *classCounts) prf(k int) (p, r, f float64) {
	tp := float64(cc.tp[k])
	if cc.predicted[k] > 0 {
		p = tp / float64(cc.predicted[k])
	}
	if cc.support[k] > 0 {
		r = tp / float64(cc.support[k])
	}
	if d := float64(cc.predicted[k] + cc.support[k]); d > 0 {
		f = 2 * tp / d
	}
	return p, r, f
}

type summary struct {
	accuracy                         float64
	macroP, macroR, macroF1          float64
	weightedP, weightedR, weightedF1 float64
}

func (cc *classCounts) summary() summary {
	var s summary
	if cc.n == 0 {
		return s
	}
	present, correct := 0, 0
	for k := range cc.tp {
		correct += cc.tp[k]
		if cc.support[k] == 0 && cc.predicted[k] == 0 {
			continue
		}
		present++
		p, r, f := cc.prf(k)
		s.macroP += p
		s.macroR += r
		s.macroF1 += f
		w := float64(cc.support[k])
		s.weightedP += w * p
		s.weightedR += w * r
		s.weightedF1 += w * f
	}
	s.accuracy = float64(correct) / float64(cc.n)
	s.macroP /= float64(present)
	s.macroR /= float64(present)
	s.macroF1 /= float64(present)
	s.weightedP /= float64(cc.n)
	s.weightedR /= float64(cc.n)
	s.weightedF1 /= float64(cc.n)
	return s
}
