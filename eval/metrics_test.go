package eval

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestComputeHand checks a 4-sample case worked out by hand:
// labels (0, 0, 1, 2), predictions (0, 1, 1, 1), 4 classes (class 3 absent).
//
//	class 0: tp 1, predicted 1, support 2 → P 1,   R 1/2, F1 2/3
//	class 1: tp 1, predicted 3, support 1 → P 1/3, R 1,   F1 1/2
//	class 2: tp 0, predicted 0, support 1 → P 0,   R 0,   F1 0
//	macro over classes 0–2: P 4/9, R 1/2, F1 7/18
//	weighted by support (2, 1, 1): P 7/12, R 1/2, F1 11/24; accuracy 1/2
func TestComputeHand(t *testing.T) {
	m, err := Compute([]int{0, 0, 1, 2}, []int{0, 1, 1, 1}, 4, []string{"a", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"accuracy", m.Accuracy, 0.5},
		{"macro P", m.MacroPrecision, 4.0 / 9}, {"macro R", m.MacroRecall, 0.5}, {"macro F1", m.MacroF1, 7.0 / 18},
		{"weighted P", m.WeightedPrecision, 7.0 / 12}, {"weighted R", m.WeightedRecall, 0.5}, {"weighted F1", m.WeightedF1, 11.0 / 24},
		{"F1 class 0", m.PerClass[0].F1, 2.0 / 3}, {"P class 1", m.PerClass[1].Precision, 1.0 / 3},
		{"F1 class 1", m.PerClass[1].F1, 0.5}, {"F1 class 3", m.PerClass[3].F1, 0},
	}
	for _, c := range checks {
		if !near(c.got, c.want, 1e-12) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if m.Confusion[0][1] != 1 || m.Confusion[2][1] != 1 || m.Confusion[1][1] != 1 || m.PerClass[1].Predicted != 3 {
		t.Errorf("confusion %v", m.Confusion)
	}
	if m.PerClass[3].Name != "d" || m.PerClass[3].Support != 0 {
		t.Errorf("class 3 row %+v", m.PerClass[3])
	}
}

func TestComputeErrors(t *testing.T) {
	if _, err := Compute([]int{0, 3}, []int{0, 1}, 3, nil); err == nil {
		t.Error("label out of range: want error")
	}
	if _, err := Compute([]int{0, 1}, []int{0, -1}, 3, nil); err == nil {
		t.Error("negative prediction: want error")
	}
	if _, err := Compute([]int{0, 1}, []int{0}, 3, nil); err == nil {
		t.Error("length mismatch: want error")
	}
	if _, err := Compute([]int{0}, []int{0}, 2, []string{"x"}); err == nil {
		t.Error("short class names: want error")
	}
	if _, err := ComputeLogits([]int{0, 1}, []float32{1, 2, 3}, 2, nil); err == nil {
		t.Error("ragged logits: want error")
	}
}

type sklearnFixture struct {
	Metrics []struct {
		Name     string
		Classes  int
		Labels   []int
		Preds    []int
		Accuracy float64
		Macro    struct{ Precision, Recall, F1 float64 }
		Weighted struct{ Precision, Recall, F1 float64 }
		PerClass struct {
			Precision, Recall, F1 []float64
			Support               []float64 // sklearn 1.2 writes supports as floats
		} `json:"per_class"`
		Confusion [][]int
	}
	AUROC []struct {
		Name     string
		Scores   []float64
		Positive []int
		AUROC    float64
	} `json:"auroc"`
}

func loadSklearn(t *testing.T) *sklearnFixture {
	t.Helper()
	raw, err := os.ReadFile("testdata/sklearn_fixture.json")
	if err != nil {
		t.Fatal(err)
	}
	var f sklearnFixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("sklearn_fixture.json: %v", err)
	}
	if len(f.Metrics) == 0 || len(f.AUROC) == 0 {
		t.Fatal("sklearn_fixture.json: no cases")
	}
	return &f
}

// TestComputeSklearn compares with scikit-learn 1.2.1 answers stored by
// testdata/sklearn_fixture.py (absent classes, 17 classes, all wrong).
func TestComputeSklearn(t *testing.T) {
	for _, c := range loadSklearn(t).Metrics {
		m, err := Compute(c.Labels, c.Preds, c.Classes, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		got := []float64{m.Accuracy, m.MacroPrecision, m.MacroRecall, m.MacroF1, m.WeightedPrecision, m.WeightedRecall, m.WeightedF1}
		want := []float64{c.Accuracy, c.Macro.Precision, c.Macro.Recall, c.Macro.F1, c.Weighted.Precision, c.Weighted.Recall, c.Weighted.F1}
		names := []string{"accuracy", "macro P", "macro R", "macro F1", "weighted P", "weighted R", "weighted F1"}
		for i := range got {
			if !near(got[i], want[i], 1e-12) {
				t.Errorf("%s: %s = %.15g, sklearn %.15g", c.Name, names[i], got[i], want[i])
			}
		}
		for k, pc := range m.PerClass {
			if !near(pc.Precision, c.PerClass.Precision[k], 1e-12) || !near(pc.Recall, c.PerClass.Recall[k], 1e-12) ||
				!near(pc.F1, c.PerClass.F1[k], 1e-12) || float64(pc.Support) != c.PerClass.Support[k] {
				t.Errorf("%s: class %d %+v, sklearn P %v R %v F1 %v support %v", c.Name, k, pc,
					c.PerClass.Precision[k], c.PerClass.Recall[k], c.PerClass.F1[k], c.PerClass.Support[k])
			}
			for j, v := range m.Confusion[k] {
				if v != c.Confusion[k][j] {
					t.Errorf("%s: confusion[%d][%d] = %d, sklearn %d", c.Name, k, j, v, c.Confusion[k][j])
				}
			}
		}
	}
}

func TestArgmaxTies(t *testing.T) {
	p, err := Argmax([]float32{1, 3, 3, -1, 0, 0}, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p[0] != 1 || p[1] != 1 {
		t.Errorf("argmax %v, want [1 1] (first maximum)", p)
	}
}
