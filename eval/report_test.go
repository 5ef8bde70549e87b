package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

var exampleHTML = flag.String("example-html", "", "also write the example HTML report to this file")

// ndpiClasses reads the 17 class names of the real ndpi-app dataset.
func ndpiClasses(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../shared/data/ndpi-app/classes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if len(names) != 17 {
		t.Fatalf("classes.txt: %d classes, want 17", len(names))
	}
	return names
}

// synthLogits makes logits for labels: the true class gets a boost so
// that about acc of the rows are right, scaled by sharp (over-confidence).
func synthLogits(rng *rand.Rand, labels []int, c int, boost, sharp float64) []float32 {
	x := make([]float32, len(labels)*c)
	for i, y := range labels {
		for k := 0; k < c; k++ {
			v := rng.NormFloat64()
			if k == y {
				v += boost
			}
			x[i*c+k] = float32(sharp * v)
		}
	}
	return x
}

func exampleReport(t *testing.T) (*Report, []TrainRecord) {
	t.Helper()
	names := ndpiClasses(t)
	c := len(names)
	rng := rand.New(rand.NewPCG(11, 12))
	draw := func(n int) []int {
		l := make([]int, n)
		for i := range l {
			// Imbalanced: class k drawn with weight 1/(k+1).
			u := rng.Float64() * 3.44
			k := 0
			for ; k < c-1; k++ {
				u -= 1 / float64(k+1)
				if u <= 0 {
					break
				}
			}
			l[i] = k
		}
		return l
	}
	test, val := draw(600), draw(400)
	in := Input{
		Model: "netmamba", Dataset: "ndpi-app", Split: "test", Seed: 0, ClassMap: names,
		Time:   time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		Labels: test, Logits: synthLogits(rng, test, c, 2.2, 5),
		ValLabels: val, ValLogits: synthLogits(rng, val, c, 2.2, 5),
		OODLogits: synthLogits(rng, make([]int, 150), c, 0, 2.5), // no true class: flat rows
		CISeed:    7,
	}
	// The OOD rows above boost class 0; make them truly flat instead.
	for i := range in.OODLogits {
		in.OODLogits[i] = float32(5 * rng.NormFloat64())
	}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	var log []TrainRecord
	sched := func(e float64) float64 { // warm-up 2, cosine to 20
		if e < 2 {
			return 1e-3 * e / 2
		}
		return 1e-6 + (1e-3-1e-6)*0.5*(1+math.Cos(math.Pi*(e-2)/18))
	}
	for s := int64(1); s <= 200; s++ {
		e := float64(s) / 10
		rec := TrainRecord{Step: s, Epoch: e, LR: Float(sched(e)), Loss: Float(2.8*math.Exp(-e/5) + 0.3 + 0.05*rng.NormFloat64())}
		if s%10 == 0 {
			rec.ValLoss = Float(2.8*math.Exp(-e/6) + 0.45)
			rec.ValAccuracy = Float(0.9 - 0.75*math.Exp(-e/4))
			rec.ValMacroF1 = Float(0.8 - 0.7*math.Exp(-e/4))
		}
		log = append(log, rec)
	}
	return r, log
}

// TestReportJSONContract checks the snake_case keys scripts rely on.
func TestReportJSONContract(t *testing.T) {
	r, _ := exampleReport(t)
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"model", "dataset", "split", "seed", "class_map", "time", "flows", "accuracy",
		"macro_f1", "weighted_f1", "macro_precision", "macro_recall", "weighted_precision", "weighted_recall",
		"per_class", "confusion", "ci95", "ood", "ece", "ece_calibrated", "temperature", "reliability"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	ood := m["ood"].(map[string]any)
	for _, k := range []string{"max_logit", "max_prob", "energy", "neg_entropy"} {
		s, ok := ood[k].(map[string]any)
		if !ok {
			t.Errorf("ood lacks %q", k)
			continue
		}
		if _, ok := s["auroc"].(float64); !ok {
			t.Errorf("ood.%s lacks auroc", k)
		}
		if _, ok := s["fpr95"].(float64); !ok {
			t.Errorf("ood.%s lacks fpr95", k)
		}
	}
	ci := m["ci95"].(map[string]any)
	for _, k := range []string{"accuracy", "macro_f1", "weighted_f1"} {
		iv, ok := ci[k].(map[string]any)
		if !ok || iv["low"] == nil || iv["high"] == nil {
			t.Errorf("ci95.%s: %v", k, ci[k])
		}
	}
	pc := m["per_class"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "precision", "recall", "f1", "support"} {
		if _, ok := pc[k]; !ok {
			t.Errorf("per_class row lacks %q", k)
		}
	}
	if m["flows"].(float64) != 600 || m["time"] != "2026-11-27T12:00:00Z" {
		t.Errorf("flows %v time %v", m["flows"], m["time"])
	}
	// The report's scores equal an independent Compute on the argmax, and the
	// synthetic OOD rows (flat) are well separated from the boosted ones.
	if *r.Temperature < 1.5 || *r.ECECalibrated >= *r.ECE {
		t.Errorf("over-confident logits: T %v, ECE %v → %v", *r.Temperature, *r.ECE, *r.ECECalibrated)
	}
	if r.OOD.MaxLogit.AUROC < 0.7 { // well above chance (0.5)
		t.Errorf("OOD AUROC %v", r.OOD.MaxLogit.AUROC)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.MacroF1 != r.MacroF1 || len(back.PerClass) != 17 || *back.Temperature != *r.Temperature {
		t.Error("JSON round trip lost values")
	}
}

func TestReportPredictionsOnly(t *testing.T) {
	r, err := Build(Input{ClassMap: []string{"a", "b"}, Labels: []int{0, 1, 1}, Preds: []int{0, 1, 0}, Resamples: 50})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"ood"`, `"ece"`, `"temperature"`} {
		if bytes.Contains(b, []byte(k)) {
			t.Errorf("predictions-only report has %s", k)
		}
	}
	if !near(r.Accuracy, 2.0/3, 1e-12) {
		t.Errorf("accuracy %v", r.Accuracy)
	}
	if _, err := Build(Input{ClassMap: []string{"a"}, Labels: []int{0}, Preds: []int{0}, OODLogits: []float32{1}}); err == nil {
		t.Error("OOD logits without logits: want error")
	}
}

func TestReportTextAndHTML(t *testing.T) {
	r, log := exampleReport(t)
	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"macro avg", "weighted avg", "BitTorrent", "confusion matrix", "neg_entropy", "ECE (15 bins)"} {
		if !strings.Contains(txt.String(), s) {
			t.Errorf("text report lacks %q", s)
		}
	}
	var h bytes.Buffer
	if err := r.WriteHTML(&h, log); err != nil {
		t.Fatal(err)
	}
	s := h.String()
	if n := strings.Count(s, "<svg"); n != 7 { // F1 bars, confusion, 3 learning curves, 2 reliability
		t.Errorf("%d SVG figures, want 7", n)
	}
	for _, bad := range []string{"<script", "http://", "https://", "src=", "NaN", "Inf"} {
		if bad == "http://" {
			s2 := strings.ReplaceAll(s, `xmlns="http://www.w3.org/2000/svg"`, "")
			if strings.Contains(s2, bad) {
				t.Errorf("HTML refers to an external resource (%s)", bad)
			}
			continue
		}
		if strings.Contains(s, bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	// Confusion cells: one <rect> with a <title> per class pair.
	if n := strings.Count(s, "</title></rect>"); n < 17*17 {
		t.Errorf("%d titled rects, want at least 289 confusion cells", n)
	}
	if *exampleHTML != "" {
		if err := os.WriteFile(*exampleHTML, h.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log(txt.String())
	}
}

func TestHTMLEscapesNames(t *testing.T) {
	r, err := Build(Input{ClassMap: []string{"<b>x</b>", "a&b"}, Labels: []int{0, 1}, Preds: []int{0, 0}, Model: "<m>"})
	if err != nil {
		t.Fatal(err)
	}
	var h bytes.Buffer
	if err := r.WriteHTML(&h, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.String(), "<b>x</b>") || strings.Contains(h.String(), "<m>") {
		t.Error("class or model name not escaped")
	}
}
