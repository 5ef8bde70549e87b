// Package train holds the training math of netmamba — losses with their
// gradients (softmax cross-entropy with label smoothing and class weights,
// LDAM), the AdamW optimiser over named parameter groups with layer-wise
// learning-rate decay, and learning-rate schedules — and the training loop
// built on them.
//
// Every loss has an explicit forward and backward in one call (llm.c style):
// it reads logits (N, C) row-major, writes d loss / d logits into a caller
// buffer of the same shape and returns the scalar loss. The loops allocate
// nothing, so they can run once per optimiser step on a reused buffer.
package train

import (
	"fmt"
	"math"
)

// CrossEntropy computes PyTorch's F.cross_entropy(logits, labels,
// weight=weights, label_smoothing=smoothing, reduction="mean") and its
// gradient.
//
// logits is (n, c) row-major, labels holds n class indices in [0, c),
// weights is nil (every class weighs 1) or holds c class weights, and
// smoothing ε is in [0, 1). With p = softmax(logits) row-wise the loss is
//
//	[(1−ε) Σ_i w_{y_i}(−log p_{i,y_i}) + (ε/C) Σ_i Σ_c w_c(−log p_{i,c})] / Σ_i w_{y_i}
//
// If dlogits is not nil it must have n·c elements and receives
// d loss / d logits. Arithmetic is in float64; the result is rounded once.
func CrossEntropy(logits []float32, labels []int, n, c int, weights []float32, smoothing float64, dlogits []float32) (float32, error) {
	return softmaxCE(logits, labels, n, c, weights, smoothing, 1, nil, dlogits)
}

// Criterion is a classification loss with its gradient: it returns the
// loss of logits (n, c) for labels and, if dlogits is not nil, writes
// d loss / d logits into it (n·c elements). *CrossEntropyLoss and *LDAM
// implement it.
type Criterion interface {
	Loss(logits []float32, labels []int, n, c int, dlogits []float32) (float32, error)
}

// CrossEntropyLoss is CrossEntropy as a Criterion: optional class weights
// (nil or one per class) and label smoothing (0.1 to fine-tune, SPEC §4).
type CrossEntropyLoss struct {
	Weights   []float32
	Smoothing float64
}

// Loss implements Criterion.
func (l *CrossEntropyLoss) Loss(logits []float32, labels []int, n, c int, dlogits []float32) (float32, error) {
	return CrossEntropy(logits, labels, n, c, l.Weights, l.Smoothing, dlogits)
}

// softmaxCE is CrossEntropy on adjusted logits z_{i,k} = scale·(x_{i,k} −
// [k = y_i]·margins[y_i]) (margins nil: no margin). The adjustment is done
// in float32 exactly as PyTorch's LDAMLoss does it, so z is bit-identical to
// the official one; the gradient returned is with respect to x.
func softmaxCE(logits []float32, labels []int, n, c int, weights []float32, smoothing float64, scale float32, margins []float32, dlogits []float32) (float32, error) {
	if n <= 0 || c <= 0 {
		return 0, fmt.Errorf("train: cross-entropy: batch %d × %d classes: both must be positive", n, c)
	}
	if len(logits) != n*c {
		return 0, fmt.Errorf("train: cross-entropy: %d logits for a (%d, %d) batch", len(logits), n, c)
	}
	if len(labels) != n {
		return 0, fmt.Errorf("train: cross-entropy: %d labels for a batch of %d", len(labels), n)
	}
	if weights != nil && len(weights) != c {
		return 0, fmt.Errorf("train: cross-entropy: %d class weights for %d classes", len(weights), c)
	}
	if margins != nil && len(margins) != c {
		return 0, fmt.Errorf("train: cross-entropy: %d margins for %d classes", len(margins), c)
	}
	if dlogits != nil && len(dlogits) != n*c {
		return 0, fmt.Errorf("train: cross-entropy: gradient buffer of %d for (%d, %d) logits", len(dlogits), n, c)
	}
	if !(smoothing >= 0 && smoothing < 1) {
		return 0, fmt.Errorf("train: cross-entropy: label smoothing %g outside [0, 1)", smoothing)
	}
	w := func(k int) float64 {
		if weights == nil {
			return 1
		}
		return float64(weights[k])
	}
	sumW := 0.0 // Σ_c w_c
	for k := 0; k < c; k++ {
		sumW += w(k)
	}
	eps := smoothing
	epsC := eps / float64(c)
	var num, den float64 // loss numerator, Σ_i w_{y_i}
	for i := 0; i < n; i++ {
		y := labels[i]
		if y < 0 || y >= c {
			return 0, fmt.Errorf("train: cross-entropy: label %d of sample %d outside [0, %d)", y, i, c)
		}
		row := logits[i*c : (i+1)*c]
		// Pass 1: the adjusted logits z_k = scale·(x_k − [k=y]·m_y), computed in
		// float32 like the official code, their max and Σ_k w_k z_k.
		mx, zw, zy := math.Inf(-1), 0.0, 0.0
		for k, v := range row {
			if margins != nil && k == y {
				v -= margins[y]
			}
			z := float64(scale * v)
			mx = math.Max(mx, z)
			zw += w(k) * z
			if k == y {
				zy = z
			}
		}
		// Pass 2: e_k = exp(z_k − max), kept in the gradient buffer if any.
		var se float64
		var drow []float32
		if dlogits != nil {
			drow = dlogits[i*c : (i+1)*c]
		}
		for k, v := range row {
			if margins != nil && k == y {
				v -= margins[y]
			}
			e := math.Exp(float64(scale*v) - mx)
			se += e
			if drow != nil {
				drow[k] = float32(e)
			}
		}
		lse := mx + math.Log(se) // log Σ_k exp z_{i,k}
		wy := w(y)
		// −log p_k = lse − z_k, so Σ_k w_k(−log p_k) = lse·Σw − Σ_k w_k z_k.
		num += (1-eps)*wy*(lse-zy) + epsC*(lse*sumW-zw)
		den += wy
		if drow != nil {
			// d/dz_k (before dividing by Σ_i w_{y_i}) =
			// p_k((1−ε)w_y + (ε/C)Σw) − (1−ε)w_y[k=y] − (ε/C)w_k.
			a := ((1-eps)*wy + epsC*sumW) / se
			for k := range drow {
				d := float64(drow[k])*a - epsC*w(k)
				if k == y {
					d -= (1 - eps) * wy
				}
				drow[k] = float32(d)
			}
		}
	}
	if den == 0 {
		return 0, fmt.Errorf("train: cross-entropy: the labels' class weights sum to 0")
	}
	if dlogits != nil {
		g := float32(float64(scale) / den) // d/dx = scale · d/dz / Σ_i w_{y_i}
		for k := range dlogits {
			dlogits[k] *= g
		}
	}
	return float32(num / den), nil
}

// LDAM is the label-distribution-aware margin loss (Cao et al., 2019) as
// NetMamba+ uses it (SPEC §4): logits x become Scale·(x − m_y·onehot(y))
// before a (weighted, label-smoothed) softmax cross-entropy.
type LDAM struct {
	Margins   []float32 // m_c per class
	Scale     float32   // s, 30 officially
	Weights   []float32 // class weights for the cross-entropy, nil for none
	Smoothing float64   // label smoothing ε
}

// LDAMMargins returns m_c = maxMargin · n_c^(−1/4) / max_c n_c^(−1/4) for the
// per-class training counts, rounded to float32 after float64 arithmetic as
// the official code does. Every count must be positive.
func LDAMMargins(counts []int, maxMargin float64) ([]float32, error) {
	if len(counts) == 0 {
		return nil, fmt.Errorf("train: LDAM margins: no classes")
	}
	q := make([]float64, len(counts))
	top := 0.0
	for k, n := range counts {
		if n <= 0 {
			return nil, fmt.Errorf("train: LDAM margins: class %d has %d training samples; every class needs at least 1", k, n)
		}
		q[k] = 1 / math.Sqrt(math.Sqrt(float64(n)))
		top = math.Max(top, q[k])
	}
	m := make([]float32, len(counts))
	for k := range q {
		m[k] = float32(q[k] * (maxMargin / top))
	}
	return m, nil
}

// ClassBalancedWeights returns the class-balanced weights of Cui et al.
// (2019): w_c = (1−β)/(1−β^{n_c}), normalised to sum to the class count
// (β = 0.999 in SPEC §4). Every count must be positive.
func ClassBalancedWeights(counts []int, beta float64) ([]float32, error) {
	if len(counts) == 0 {
		return nil, fmt.Errorf("train: class-balanced weights: no classes")
	}
	if !(beta >= 0 && beta < 1) {
		return nil, fmt.Errorf("train: class-balanced weights: β %g outside [0, 1)", beta)
	}
	raw := make([]float64, len(counts))
	sum := 0.0
	for k, n := range counts {
		if n <= 0 {
			return nil, fmt.Errorf("train: class-balanced weights: class %d has %d training samples; every class needs at least 1", k, n)
		}
		raw[k] = (1 - beta) / (1 - math.Pow(beta, float64(n)))
		sum += raw[k]
	}
	w := make([]float32, len(counts))
	for k := range raw {
		w[k] = float32(raw[k] / sum * float64(len(counts)))
	}
	return w, nil
}

// NewLDAM builds the SPEC §4 LDA loss from per-class training counts: LDAM
// margins with max margin 0.5 and scale 30, class-balanced weights with
// β = 0.999 when classBalanced, and the given label smoothing.
func NewLDAM(counts []int, classBalanced bool, smoothing float64) (*LDAM, error) {
	m, err := LDAMMargins(counts, 0.5)
	if err != nil {
		return nil, err
	}
	l := &LDAM{Margins: m, Scale: 30, Smoothing: smoothing}
	if classBalanced {
		if l.Weights, err = ClassBalancedWeights(counts, 0.999); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Loss returns the LDAM loss of logits (n, c) for labels and, if dlogits is
// not nil, writes d loss / d logits into it (n·c elements).
func (l *LDAM) Loss(logits []float32, labels []int, n, c int, dlogits []float32) (float32, error) {
	if l.Scale <= 0 {
		return 0, fmt.Errorf("train: LDAM: scale %g must be positive", l.Scale)
	}
	if len(l.Margins) != c {
		return 0, fmt.Errorf("train: LDAM: %d margins for %d classes", len(l.Margins), c)
	}
	return softmaxCE(logits, labels, n, c, l.Weights, l.Smoothing, l.Scale, l.Margins, dlogits)
}
