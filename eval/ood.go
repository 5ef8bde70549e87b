package eval

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// ConfidenceKind names a confidence score computed from logits.
type ConfidenceKind string

// The confidence scores of SPEC §5. Larger means "more in-distribution".
const (
	MaxLogit   ConfidenceKind = "max_logit"   // max_k x_k
	MaxProb    ConfidenceKind = "max_prob"    // max_k softmax(x)_k
	Energy     ConfidenceKind = "energy"      // logsumexp_k x_k = −E(x) at temperature 1
	NegEntropy ConfidenceKind = "neg_entropy" // Σ_k p_k log p_k
)

// ConfidenceKinds lists every ConfidenceKind in report order.
func ConfidenceKinds() []ConfidenceKind {
	return []ConfidenceKind{MaxLogit, MaxProb, Energy, NegEntropy}
}

// Confidence writes the confidence of each row of logits (n, c) into dst
// (length n; nil allocates) and returns it. Arithmetic is in float64.
func Confidence(kind ConfidenceKind, logits []float32, n, c int, dst []float64) ([]float64, error) {
	if n < 0 || c <= 0 || len(logits) != n*c {
		return nil, fmt.Errorf("eval: confidence: %d logits for (%d, %d)", len(logits), n, c)
	}
	if dst == nil {
		dst = make([]float64, n)
	}
	if len(dst) != n {
		return nil, fmt.Errorf("eval: confidence: destination of %d for %d rows", len(dst), n)
	}
	for i := 0; i < n; i++ {
		row := logits[i*c : (i+1)*c]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var se float64
		for _, v := range row {
			se += math.Exp(float64(v) - mx)
		}
		switch kind {
		case MaxLogit:
			dst[i] = mx
		case MaxProb:
			dst[i] = 1 / se
		case Energy:
			dst[i] = mx + math.Log(se)
		case NegEntropy:
			// Σ p log p with log p_k = x_k − mx − log se.
			lse := math.Log(se)
			var h float64
			for _, v := range row {
				lp := float64(v) - mx - lse
				h += math.Exp(lp) * lp
			}
			dst[i] = h
		default:
			return nil, fmt.Errorf("eval: unknown confidence kind %q", kind)
		}
	}
	return dst, nil
}

// AUROC is the area under the ROC curve of scores for the binary labels
// positive, equal to scikit-learn's roc_auc_score: the probability that a
// random positive scores above a random negative, ties counting ½
// (Mann–Whitney U from mid-ranks). Both classes must be present.
func AUROC(scores []float64, positive []bool) (float64, error) {
	if len(scores) != len(positive) {
		return 0, fmt.Errorf("eval: AUROC: %d scores for %d labels", len(scores), len(positive))
	}
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
		if math.IsNaN(scores[i]) {
			return 0, fmt.Errorf("eval: AUROC: score %d is NaN", i)
		}
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var rankSum float64
	var nPos int
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		mid := float64(i+j+1) / 2 // mean of 1-based ranks i+1..j
		for _, k := range idx[i:j] {
			if positive[k] {
				rankSum += mid
				nPos++
			}
		}
		i = j
	}
	nNeg := len(scores) - nPos
	if nPos == 0 || nNeg == 0 {
		return 0, fmt.Errorf("eval: AUROC needs both classes (%d positive, %d negative)", nPos, nNeg)
	}
	return (rankSum - float64(nPos)*float64(nPos+1)/2) / (float64(nPos) * float64(nNeg)), nil
}

// FPRAtTPR95 is the standard OOD "FPR95" (Hendrycks & Gimpel 2017; Liang et
// al. 2018; Liu et al. 2020): the false-positive rate — the fraction of OOD
// samples accepted as in-distribution — at the threshold where 95 % of
// in-distribution samples are accepted. A sample is accepted when its
// confidence is ≥ t, and t is the highest threshold keeping at least
// ⌈0.95·N_id⌉ in-distribution samples, i.e. the ⌈0.95·N_id⌉-th largest
// in-distribution confidence. Lower is better.
func FPRAtTPR95(idConf, oodConf []float64) (float64, error) {
	if len(idConf) == 0 || len(oodConf) == 0 {
		return 0, fmt.Errorf("eval: FPR95 needs in-distribution and OOD samples (%d, %d)", len(idConf), len(oodConf))
	}
	desc := slices.Clone(idConf)
	slices.Sort(desc)
	slices.Reverse(desc)
	k := (95*len(desc) + 99) / 100 // ⌈0.95·N⌉ in integers
	t := desc[k-1]
	accepted := 0
	for _, v := range oodConf {
		if v >= t {
			accepted++
		}
	}
	return float64(accepted) / float64(len(oodConf)), nil
}

// OODScores are the detection scores of one confidence kind.
type OODScores struct {
	AUROC float64 `json:"auroc"` // OOD positive, scored by −confidence
	FPR95 float64 `json:"fpr95"` // see FPRAtTPR95
}

// OODReport holds detection scores for every confidence kind.
type OODReport struct {
	IDFlows    int       `json:"id_flows"`
	OODFlows   int       `json:"ood_flows"`
	MaxLogit   OODScores `json:"max_logit"`
	MaxProb    OODScores `json:"max_prob"`
	Energy     OODScores `json:"energy"`
	NegEntropy OODScores `json:"neg_entropy"`
}

// Scores returns the scores of one kind.
func (r *OODReport) Scores(kind ConfidenceKind) OODScores {
	switch kind {
	case MaxLogit:
		return r.MaxLogit
	case MaxProb:
		return r.MaxProb
	case Energy:
		return r.Energy
	}
	return r.NegEntropy
}

// DetectOOD scores how well each confidence separates in-distribution flows
// (idLogits, (nID, c)) from flows of held-out classes (oodLogits, (nOOD, c)).
// OOD is the positive class, scored by −confidence.
func DetectOOD(idLogits, oodLogits []float32, c int) (*OODReport, error) {
	if c <= 0 || len(idLogits)%c != 0 || len(oodLogits)%c != 0 {
		return nil, fmt.Errorf("eval: OOD: %d and %d logits are not rows of %d classes", len(idLogits), len(oodLogits), c)
	}
	nID, nOOD := len(idLogits)/c, len(oodLogits)/c
	r := &OODReport{IDFlows: nID, OODFlows: nOOD}
	idC := make([]float64, nID)
	oodC := make([]float64, nOOD)
	neg := make([]float64, nID+nOOD)
	pos := make([]bool, nID+nOOD)
	for i := nID; i < len(pos); i++ {
		pos[i] = true
	}
	for _, kind := range ConfidenceKinds() {
		if _, err := Confidence(kind, idLogits, nID, c, idC); err != nil {
			return nil, err
		}
		if _, err := Confidence(kind, oodLogits, nOOD, c, oodC); err != nil {
			return nil, err
		}
		for i, v := range idC {
			neg[i] = -v
		}
		for i, v := range oodC {
			neg[nID+i] = -v
		}
		auc, err := AUROC(neg, pos)
		if err != nil {
			return nil, fmt.Errorf("eval: OOD %s: %w", kind, err)
		}
		fpr, err := FPRAtTPR95(idC, oodC)
		if err != nil {
			return nil, fmt.Errorf("eval: OOD %s: %w", kind, err)
		}
		s := OODScores{AUROC: auc, FPR95: fpr}
		switch kind {
		case MaxLogit:
			r.MaxLogit = s
		case MaxProb:
			r.MaxProb = s
		case Energy:
			r.Energy = s
		case NegEntropy:
			r.NegEntropy = s
		}
	}
	return r, nil
}
