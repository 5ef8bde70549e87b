package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/train"
)

// predictLogits runs `predict` for model on the u8 export u8 (n rows) and
// returns its logits as (n, c) float64 rows.
func predictLogits(t *testing.T, model, u8 string, n, c int) [][]float64 {
	t.Helper()
	out := model + ".f32"
	runCLI(t, "predict", "--model", model, "--bytes", u8, "--logits", out, "--threads", "1")
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 4*n*c {
		t.Fatalf("%s: %d logit bytes for %d flows × %d classes", out, len(raw), n, c)
	}
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, c)
		for k := range rows[i] {
			rows[i][k] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(i*c+k):])))
		}
	}
	return rows
}

// twoModelsAndRows writes two tiny random classifiers (seeds 5 and 11) over
// ndpi-app's classes that record the default model's representation, and
// exports data's byte views to u8 with its index rows (row, file, label).
func twoModelsAndRows(t *testing.T, data string) (classes []string, a, b, u8 string, index [][]string) {
	t.Helper()
	raw, err := os.ReadFile(prepNdpiApp + "/classes.txt")
	if err != nil {
		t.Fatal(err)
	}
	classes = strings.Fields(string(raw))
	rm := checkpoint.ReprMeta{Direction: "bi", Debias: strings.Split(modelDebias, ","), SizeMode: "unsigned"}
	a = writeTinyReprModelSeed(t, classes, rm, "a", 5)
	b = writeTinyReprModelSeed(t, classes, rm, "b", 11)
	u8 = data + ".u8"
	runCLI(t, "dataset", "export", "--format", "u8", "-o", u8, data)
	return classes, a, b, u8, readCSVFile(t, u8+".csv")[1:]
}

// sameTensors reports whether two checkpoints hold the same tensors with
// the same values.
func sameTensors(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := checkpoint.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := checkpoint.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(fa.Tensors) != len(fb.Tensors) {
		return false
	}
	for name, ta := range fa.Tensors {
		if tb := fb.Tensors[name]; tb == nil || !slices.Equal(ta.F32, tb.F32) {
			return false
		}
	}
	return true
}

// readRows lists a dataset's rows as "source label".
func readRows(t *testing.T, path string) []string {
	t.Helper()
	d, err := dataset.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out := make([]string, d.Len())
	for i := range out {
		out[i] = fmt.Sprintf("%s %d", d.Source(i), d.Label(i))
	}
	return out
}

// softmaxT is softmax(row / t).
func softmaxT(row []float64, t float64) []float64 {
	mx := slices.Max(row)
	p := make([]float64, len(row))
	var sum float64
	for k, v := range row {
		p[k] = math.Exp((v - mx) / t)
		sum += p[k]
	}
	for k := range p {
		p[k] /= sum
	}
	return p
}

// TestDatasetPseudoLabel: `dataset pseudolabel` with two teacher models
// labels the flows of ndpi-app/valid whose mean tempered probability
// (computed here from the logits `predict` writes for each model, an
// independent path) reaches --min-confidence, with the argmax class; the
// most confident ones per class under --max-per-class. The output keeps the
// stored views and sources, takes the teacher's class map and records the
// teacher; a windowed dataset's windows follow their flow's decision; the
// agreement with the split's own labels is reported; finetune's loader
// accepts the output next to labelled data. Bad flags are errors.
func TestDatasetPseudoLabel(t *testing.T) {
	plainPath, winPath, _ := prepWindowed(t)
	classes, a, b, u8, index := twoModelsAndRows(t, plainPath)
	N, C := len(index), len(classes)
	const temp = 3.0
	la, lb := predictLogits(t, a, u8, N, C), predictLogits(t, b, u8, N, C)
	pred := make([]int, N)
	conf := make([]float64, N)
	for i := range pred {
		pa, pb := softmaxT(la[i], temp), softmaxT(lb[i], temp)
		for k := range pa {
			if p := (pa[k] + pb[k]) / 2; p > conf[i] {
				pred[i], conf[i] = k, p
			}
		}
	}
	// A bar that splits the flows near the median, midway between two
	// confidences far enough apart that rounding cannot move a flow across.
	sorted := slices.Clone(conf)
	sort.Float64s(sorted)
	bar := -1.0
	for j := N / 2; j < N && bar < 0; j++ {
		if sorted[j]-sorted[j-1] > 1e-6 {
			bar = (sorted[j] + sorted[j-1]) / 2
		}
	}
	wantKept := map[int]int{} // row -> label
	perClass := make([]int, C)
	for i := range conf {
		if conf[i] >= bar {
			wantKept[i] = pred[i]
			perClass[pred[i]]++
		}
	}
	if len(wantKept) == N || len(wantKept) == 0 {
		t.Fatalf("the median bar keeps %d of %d flows: the check would be vacuous", len(wantKept), N)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "pl.nmds")
	barArg := fmt.Sprintf("%.17g", bar)
	stdout := runCLI(t, "dataset", "pseudolabel", "--model", a, "--model", b, "--data", plainPath,
		"--temperature", "3", "--min-confidence", barArg, "--threads", "1", "-o", out)
	// Members calibrated to temperature 3 (eval --save-calibrated's
	// metadata) give the same labels without --temperature.
	ca, cb := filepath.Join(dir, "ca.safetensors"), filepath.Join(dir, "cb.safetensors")
	for _, m := range [][2]string{{a, ca}, {b, cb}} {
		if err := writeCalibrated(m[0], m[1], 3, 0.5); err != nil {
			t.Fatal(err)
		}
	}
	calibrated := filepath.Join(dir, "calibrated.nmds")
	runCLI(t, "dataset", "pseudolabel", "--model", ca, "--model", cb, "--data", plainPath,
		"--min-confidence", barArg, "--threads", "1", "-o", calibrated)
	if x, y := readRows(t, out), readRows(t, calibrated); !slices.Equal(x, y) {
		t.Errorf("calibrated members (temperature 3 in their metadata) label otherwise than --temperature 3:\n%v\n%v", y, x)
	}
	if info := runCLI(t, "inspect", out); !strings.Contains(info, fmt.Sprintf("labels: PSEUDO-LABELS predicted by %s + %s for %d of the %d flows of %s (temperature 3 + 3, min confidence %s)", a, b, len(wantKept), N, plainPath, barArg)) {
		t.Errorf("inspect lacks the pseudo-label provenance:\n%s", info)
	}

	src, err := dataset.Open(plainPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := dataset.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Len() != len(wantKept) {
		t.Fatalf("%d rows written, want %d (confidence ≥ %v)", got.Len(), len(wantKept), bar)
	}
	if !slices.Equal(got.Classes(), classes) {
		t.Errorf("class map %v, want the teacher's %v", got.Classes(), classes)
	}
	srcClasses := src.Classes()
	agree, j := 0, 0
	for i := 0; i < N; i++ {
		y, ok := wantKept[i]
		if !ok {
			continue
		}
		if got.Label(j) != y {
			t.Errorf("row %d (flow %d): label %d, want %d", j, i, got.Label(j), y)
		}
		if got.Source(j) != src.Source(i) || !slices.Equal(got.ViewBytes(j), src.ViewBytes(i)) {
			t.Errorf("row %d is not flow %d as stored", j, i)
		}
		if srcClasses[src.Label(i)] == classes[y] {
			agree++
		}
		j++
	}
	if want := fmt.Sprintf("agreement with the dataset's own labels: %d of %d kept flows", agree, len(wantKept)); !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout)
	}
	pl := got.Meta().Settings.PseudoLabel
	if pl == nil || got.Meta().Settings.Origin != "pseudolabel" {
		t.Fatalf("settings do not record the pseudo-labelling: %+v", got.Meta().Settings)
	}
	if !slices.Equal(pl.Models, []string{a, b}) || !slices.Equal(pl.Temperatures, []float64{3, 3}) || pl.MinConfidence != bar || pl.FlowsIn != uint64(N) || pl.From != plainPath {
		t.Errorf("pseudo-label settings %+v", pl)
	}
	for k, n := range perClass {
		if pl.Kept[classes[k]] != n {
			t.Errorf("kept[%s] = %d, want %d", classes[k], pl.Kept[classes[k]], n)
		}
	}
	if d := got.Meta().Summary.DroppedFlows["below min confidence"]; d != uint64(N-len(wantKept)) {
		t.Errorf("dropped below confidence %d, want %d", d, N-len(wantKept))
	}
	// The student's loader takes it with labelled data of the same classes
	// (valid lacks two of them: --classes gives it the full class map).
	labelled := filepath.Join(dir, "labelled.nmds")
	runCLI(t, "prep", "-q", "--debias", modelDebias, "--classes", prepNdpiApp+"/classes.txt", "-o", labelled, prepNdpiApp+"/valid")
	if d, err := train.LoadData(labelled, out); err != nil {
		t.Errorf("LoadData(valid, pseudo): %v", err)
	} else if d.N != N+len(wantKept) {
		t.Errorf("LoadData(valid, pseudo): %d rows, want %d", d.N, N+len(wantKept))
	} else {
		// the pseudo-labelled rows are marked (for finetune --lda-counts labelled)
		for i := 0; i < d.N; i++ {
			if want := i >= N; d.Pseudo == nil || d.Pseudo[i] != want {
				t.Fatalf("LoadData(valid, pseudo): row %d pseudo-labelled = %v, want %v", i, d.Pseudo != nil && d.Pseudo[i], want)
			}
		}
		if d, err := train.LoadData(labelled); err != nil || d.Pseudo != nil {
			t.Errorf("LoadData(valid): Pseudo %v (err %v), want nil", d.Pseudo, err)
		}
	}
	// finetune --lda-counts labelled on valid + pseudo-labels: other LDA
	// counts, so other weights than the default (all) after one epoch.
	student := func(name string, extra ...string) (string, string) {
		o := filepath.Join(dir, name+".safetensors")
		_, errs := runCLIErr(t, append([]string{"finetune", "--data", labelled, "--data", out, "--epochs", "1", "--batch", "16",
			"--embed-dim", "8", "--depth", "1", "--threads", "1", "--quiet", "--seed", "1", "-o", o}, extra...)...)
		return o, errs
	}
	sAll, _ := student("lda-all", "--loss", "lda")
	sLab, errs := student("lda-labelled", "--loss", "lda", "--lda-counts", "labelled")
	if strings.Contains(errs, "warning") {
		t.Errorf("--lda-counts labelled with pseudo-labelled data: stderr %q, want no warning", errs)
	}
	if sameTensors(t, sAll, sLab) {
		t.Error("--lda-counts labelled trained the same weights as all: the flag did not reach the loss")
	}
	if _, errs := student("ce-labelled", "--loss", "ce", "--lda-counts", "labelled"); !strings.Contains(errs, "no effect with --loss ce") {
		t.Errorf("--loss ce --lda-counts labelled: stderr %q, want a warning", errs)
	}
	runCLIFail(t, "finetune", "--data", labelled, "--lda-counts", "labeled", "--loss", "lda", "-o", filepath.Join(dir, "x.safetensors"))

	// --max-per-class 1: per class, the single most confident flow.
	capped := filepath.Join(dir, "cap.nmds")
	runCLI(t, "dataset", "pseudolabel", "--model", a, "--model", b, "--data", plainPath,
		"--temperature", "3", "--min-confidence", "0", "--max-per-class", "1", "--threads", "1", "-o", capped)
	best := map[int]int{} // class -> row
	for i := range conf {
		if r, ok := best[pred[i]]; !ok || conf[i] > conf[r] {
			best[pred[i]] = i
		}
	}
	cd, err := dataset.Open(capped)
	if err != nil {
		t.Fatal(err)
	}
	defer cd.Close()
	if d := cd.Meta().Summary.DroppedFlows["over max per class"]; d != uint64(N-len(best)) {
		t.Errorf("capped: %d flows dropped over the cap, want %d", d, N-len(best))
	}
	if cd.Len() != len(best) {
		t.Fatalf("capped: %d rows, want one per predicted class (%d)", cd.Len(), len(best))
	}
	for j := 0; j < cd.Len(); j++ {
		r, ok := best[cd.Label(j)]
		if !ok || cd.Source(j) != src.Source(r) {
			t.Errorf("capped row %d (%s, class %d) is not its class's most confident flow", j, cd.Source(j), cd.Label(j))
		}
	}

	// A windowed dataset: windows follow their flow, kept or not.
	wout := filepath.Join(dir, "win-pl.nmds")
	_, werrs := runCLIErr(t, "dataset", "pseudolabel", "--model", a, "--model", b, "--data", winPath,
		"--temperature", "3", "--min-confidence", barArg, "--threads", "1", "-o", wout)
	if strings.Contains(werrs, "window") {
		t.Errorf("windowed input is supported, yet stderr warns: %s", werrs)
	}
	win, err := dataset.Open(winPath)
	if err != nil {
		t.Fatal(err)
	}
	defer win.Close()
	wd, err := dataset.Open(wout)
	if err != nil {
		t.Fatal(err)
	}
	defer wd.Close()
	flowLabel := map[string]int{} // source -> pseudo-label of its flow
	for i := 0; i < N; i++ {
		if y, ok := wantKept[i]; ok {
			flowLabel[src.Source(i)] = y
		}
	}
	wantRows := 0
	for i := 0; i < win.Len(); i++ {
		if _, ok := flowLabel[win.Source(i)]; ok {
			wantRows++
		}
	}
	if wd.Len() != wantRows || wantRows <= len(wantKept) {
		t.Fatalf("windowed: %d rows, want %d (the %d kept flows with their windows)", wd.Len(), wantRows, len(wantKept))
	}
	for j := 0; j < wd.Len(); j++ {
		if y, ok := flowLabel[wd.Source(j)]; !ok || wd.Label(j) != y {
			t.Errorf("windowed row %d (%s): label %d, want its flow's %d (kept %v)", j, wd.Source(j), wd.Label(j), y, ok)
		}
	}

	// One temperature per member (2 for a, 5 for b), nothing dropped: each
	// flow takes the argmax of the mean of the two members' probabilities.
	mixed := filepath.Join(dir, "mixed.nmds")
	runCLI(t, "dataset", "pseudolabel", "--model", a, "--model", b, "--data", plainPath,
		"--temperature", "2", "--temperature", "5", "--min-confidence", "0", "--threads", "1", "-o", mixed)
	md, err := dataset.Open(mixed)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	if md.Len() != N {
		t.Fatalf("per-member temperatures: %d rows, want %d", md.Len(), N)
	}
	if got := md.Meta().Settings.PseudoLabel.Temperatures; !slices.Equal(got, []float64{2, 5}) {
		t.Errorf("per-member temperatures recorded as %v, want [2 5]", got)
	}
	differs := 0 // flows where one shared temperature would give another label
	for i := 0; i < N; i++ {
		pa, pb := softmaxT(la[i], 2), softmaxT(lb[i], 5)
		want, top := 0, -1.0
		for k := range pa {
			if p := (pa[k] + pb[k]) / 2; p > top {
				want, top = k, p
			}
		}
		if md.Label(i) != want {
			t.Errorf("per-member temperatures: row %d labelled %d, want %d", i, md.Label(i), want)
		}
		if want != pred[i] {
			differs++
		}
	}
	t.Logf("per-member temperatures change %d of %d labels against --temperature 3", differs, N)
	if differs == 0 {
		t.Error("per-member temperatures 2 and 5 give the labels of --temperature 3 on every flow: the check is vacuous")
	}
	if err := runCLIFail(t, "dataset", "pseudolabel", "--model", a, "--model", b, "--data", plainPath,
		"--temperature", "1,2,3", "-o", filepath.Join(dir, "x.nmds")); !strings.Contains(err.Error(), "3 --temperature values for 2 --model") {
		t.Errorf("3 temperatures for 2 models: %v, want the count error", err)
	}

	for _, args := range [][]string{
		{"dataset", "pseudolabel", "--model", a, "--data", plainPath},
		{"dataset", "pseudolabel", "--model", a, "-o", filepath.Join(dir, "x.nmds")},
		{"dataset", "pseudolabel", "--model", a, "--data", plainPath, "--temperature", "-1", "-o", filepath.Join(dir, "x.nmds")},
		{"dataset", "pseudolabel", "--model", a, "--data", plainPath, "--min-confidence", "1.5", "-o", filepath.Join(dir, "x.nmds")},
		{"dataset", "pseudolabel", "--model", a, "--data", plainPath, "--max-per-class", "-2", "-o", filepath.Join(dir, "x.nmds")},
		{"dataset", "pseudolabel", "--model", a, "--data", filepath.Join(dir, "missing.nmds"), "-o", filepath.Join(dir, "x.nmds")},
		{"dataset", "pseudolabel", "--model", a, "--data", plainPath, "--batch", "0", "-o", filepath.Join(dir, "x.nmds")},
	} {
		runCLIFail(t, args...)
	}
}
