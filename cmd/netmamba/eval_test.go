package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
)

// modelDebias is the debias of the default model's training data.
const modelDebias = "zero_ip,zero_seq,zero_options,zero_checksum,zero_ttl"

// writeTinyReprModel saves a RANDOMLY INITIALISED tiny NetMamba classifier
// (a test fixture, not a trained model) whose metadata records rm as its
// input representation.
func writeTinyReprModel(t *testing.T, classes []string, rm checkpoint.ReprMeta, name string) string {
	t.Helper()
	return writeTinyReprModelSeed(t, classes, rm, name, 5)
}

// writeTinyReprModelSeed is writeTinyReprModel with the initialisation seed.
func writeTinyReprModelSeed(t *testing.T, classes []string, rm checkpoint.ReprMeta, name string, seed uint64) string {
	t.Helper()
	m, err := model.NewRandom(arch.Config{EmbedDim: 8, Depth: 1, NumClasses: len(classes)}, seed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.P.HeadW {
		m.P.HeadW[i] *= 200 // spread the logits so that labels differ between flows
	}
	cfg := m.Cfg
	meta := checkpoint.Meta{Config: &cfg, Classes: classes, Repr: rm}
	path := filepath.Join(t.TempDir(), name+".safetensors")
	if err := checkpoint.WriteSafetensors(path, &checkpoint.File{Tensors: m.Tensors(), Metadata: meta.Map()}, checkpoint.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// evalJSON runs eval --json and returns the report without the keys that
// name the run (dataset path, time), and stderr. Stdout must be exactly one
// JSON object.
func evalJSON(t *testing.T, modelPath, data string, extra ...string) (map[string]any, string) {
	t.Helper()
	out, errs := runCLIErr(t, append([]string{"eval", "--model", modelPath, "--data", data, "--json", "--resamples", "50"}, extra...)...)
	dec := json.NewDecoder(strings.NewReader(out))
	var rep map[string]any
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("eval --json stdout is not a JSON object: %v\n%s", err, out)
	}
	if dec.More() || strings.TrimSpace(out[dec.InputOffset():]) != "" {
		t.Fatalf("eval --json stdout holds more than one JSON object:\n%s", out)
	}
	if rep["dataset"] != data {
		t.Errorf("report dataset %v, want %s", rep["dataset"], data)
	}
	delete(rep, "dataset")
	delete(rep, "time")
	return rep, errs
}

// TestEvalAppliesModelDebias: a dataset built with plain prep (zero_ip)
// and one built with the model's debias, from the same captures, get
// identical eval figures from a model whose metadata records the larger
// debias set: eval re-debiases the plain one and says so on stderr. A model
// that saw fewer rewrites than the dataset holds gets a warning instead.
func TestEvalAppliesModelDebias(t *testing.T) {
	_, plain, full := prepPlainAndModelDebias(t)

	// the two datasets differ in their bytes (or the check below is vacuous)
	u8 := func(ds string) []byte {
		p := ds + ".u8"
		runCLI(t, "dataset", "export", "--format", "u8", "-o", p, ds)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := u8(plain), u8(full); len(a) != len(b) || len(a) == 0 || bytes.Equal(a, b) {
		t.Fatalf("plain and %s exports: %d and %d bytes, equal %v", modelDebias, len(a), len(b), bytes.Equal(a, b))
	}

	raw, err := os.ReadFile(prepNdpiApp + "/classes.txt")
	if err != nil {
		t.Fatal(err)
	}
	classes := strings.Fields(string(raw))
	m := writeTinyReprModel(t, classes, checkpoint.ReprMeta{Direction: "bi", Debias: strings.Split(modelDebias, ","), SizeMode: "unsigned"}, "full-debias")

	repPlain, errPlain := evalJSON(t, m, plain)
	repFull, errFull := evalJSON(t, m, full)
	wantNote := "eval: applying the model's debias zero_seq,zero_options,zero_checksum,zero_ttl to " + plain + " (built with zero_ip)\n"
	if errPlain != wantNote {
		t.Errorf("eval on the plain dataset: stderr %q, want %q", errPlain, wantNote)
	}
	if errFull != "" {
		t.Errorf("eval on the %s dataset: stderr %q, want nothing", modelDebias, errFull)
	}
	if repPlain["flows"] != float64(89) {
		t.Errorf("flows %v, want the 89 of ndpi-app/valid", repPlain["flows"])
	}
	if !reflect.DeepEqual(repPlain, repFull) {
		a, _ := json.Marshal(repPlain)
		b, _ := json.Marshal(repFull)
		t.Errorf("figures differ:\nplain %s\nfull  %s", a, b)
	}

	// The same weights without representation metadata score the two
	// datasets as they are: the figures then differ, so the equality above
	// is the re-debias's doing.
	bare := writeTinyRandomModel(t, classes)
	repBarePlain, _ := evalJSON(t, bare, plain)
	repBareFull, _ := evalJSON(t, bare, full)
	delete(repBarePlain, "model")
	delete(repBareFull, "model")
	if reflect.DeepEqual(repBarePlain, repBareFull) {
		t.Error("without the model's debias the two datasets score the same: the test cannot tell re-debias from no-op")
	}

	// a model that never saw zero_seq etc.: the full dataset holds rewrites
	// it cannot undo, so eval warns and scores it as it is
	narrow := writeTinyReprModel(t, classes, checkpoint.ReprMeta{Direction: "bi", Debias: []string{"zero_ip"}, SizeMode: "unsigned"}, "zero-ip")
	_, errs := evalJSON(t, narrow, full)
	if !strings.Contains(errs, "eval: warning: "+narrow+" was trained on byte views with debias zero_ip, "+full+" was built with debias "+modelDebias) ||
		!strings.Contains(errs, "not meaningful") || strings.Count(errs, "\n") != 1 {
		t.Errorf("narrow model on the full dataset: stderr %q, want one not-meaningful warning", errs)
	}
}

// TestFinetuneAppliesTrainingDebias: finetune trained on a dataset built
// with the model's debias re-debiases plain validation and test datasets
// to it, so its test figures equal those on validation and test datasets
// built with that debias.
func TestFinetuneAppliesTrainingDebias(t *testing.T) {
	_, plain, full := prepPlainAndModelDebias(t)
	run := func(eval string) (string, string) {
		return runCLIErr(t, "finetune", "--data", full, "--valid", eval, "--test", eval, "--epochs", "1", "--batch", "16",
			"--embed-dim", "8", "--depth", "1", "--threads", "1", "--quiet", "-o", filepath.Join(t.TempDir(), "m.safetensors"))
	}
	outPlain, errPlain := run(plain)
	outFull, errFull := run(full)
	note := "finetune: applying the model's debias zero_seq,zero_options,zero_checksum,zero_ttl to " + plain + " (built with zero_ip)\n"
	if strings.Count(errPlain, note) != 2 {
		t.Errorf("plain validation and test sets: stderr %q, want the note %q twice", errPlain, note)
	}
	if strings.Contains(errFull, "applying") || strings.Contains(errFull, "warning") {
		t.Errorf("sets built like the training set: stderr %q", errFull)
	}
	if !strings.HasPrefix(outPlain, "test: flows 89 ") || outPlain != outFull {
		t.Errorf("test figures: plain %q, %s %q", outPlain, modelDebias, outFull)
	}
}

// TestPredictAppliesModelDebias: predict on rows exported from a plain prep
// gives exactly the logits of rows built with the model's debias (the
// rewrite is applied to every row, and is idempotent on rows built that
// way); --raw feeds the plain rows as given, which changes the logits.
func TestPredictAppliesModelDebias(t *testing.T) {
	_, plain, full := prepPlainAndModelDebias(t)
	runCLI(t, "dataset", "export", "--format", "u8", "-o", plain+".u8", plain)
	runCLI(t, "dataset", "export", "--format", "u8", "-o", full+".u8", full)
	raw, err := os.ReadFile(prepNdpiApp + "/classes.txt")
	if err != nil {
		t.Fatal(err)
	}
	m := writeTinyReprModel(t, strings.Fields(string(raw)), checkpoint.ReprMeta{Direction: "bi", Debias: strings.Split(modelDebias, ","), SizeMode: "unsigned"}, "full-debias")
	logits := func(u8 string, extra ...string) ([]byte, string) {
		out := u8 + ".f32"
		_, stderr := runCLIErr(t, append([]string{"predict", "--model", m, "--bytes", u8, "--logits", out, "--threads", "1"}, extra...)...)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b, stderr
	}
	lp, errPlain := logits(plain + ".u8")
	lf, _ := logits(full + ".u8")
	if len(lp) == 0 || !bytes.Equal(lp, lf) {
		t.Errorf("logits on plain rows (%d bytes) differ from those on rows built with %s (%d bytes)", len(lp), modelDebias, len(lf))
	}
	if !strings.Contains(errPlain, "predict: applying the model's debias "+modelDebias) {
		t.Errorf("predict stderr %q does not say it applies the model's debias", errPlain)
	}
	if lr, _ := logits(plain+".u8", "--raw"); bytes.Equal(lr, lf) {
		t.Error("--raw on plain rows gives the debiased rows' logits: the check above is vacuous")
	}
}

// prepPlainAndModelDebias builds ndpi-app/valid twice in a temporary dir:
// with plain prep (zero_ip) and with the default model's debias.
func prepPlainAndModelDebias(t *testing.T) (dir, plain, full string) {
	t.Helper()
	dir = t.TempDir()
	in := prepNdpiApp + "/valid"
	plain, full = filepath.Join(dir, "plain.nmds"), filepath.Join(dir, "full.nmds")
	runCLI(t, "prep", "-q", "-o", plain, in)
	runCLI(t, "prep", "-q", "--debias", modelDebias, "-o", full, in)
	return dir, plain, full
}

// TestEvalEnsemble: eval with two --model flags scores the mean of the two
// models' softmax outputs. The expectation is computed here, independently,
// from the logits `predict` writes for each model on the same flows: the
// ensemble's confusion matrix and accuracy must be those of the argmax of
// the averaged probabilities, which differ from each member's alone.
// Members with other classes or another debias, and --save-calibrated with
// an ensemble, are errors; the same debias listed in another order is not.
func TestEvalEnsemble(t *testing.T) {
	_, _, full := prepPlainAndModelDebias(t)
	classes, a, b, u8, index := twoModelsAndRows(t, full)
	rm := checkpoint.ReprMeta{Direction: "bi", Debias: strings.Split(modelDebias, ","), SizeMode: "unsigned"}
	classIndex := map[string]int{}
	for i, c := range classes {
		classIndex[c] = i
	}
	C, N := len(classes), len(index)
	probs := func(m string) ([]float64, []int) {
		p := make([]float64, 0, N*C)
		pred := make([]int, N)
		for i, row := range predictLogits(t, m, u8, N, C) {
			pi := softmaxT(row, 1)
			for k := range pi {
				if pi[k] > pi[pred[i]] {
					pred[i] = k
				}
			}
			p = append(p, pi...)
		}
		return p, pred
	}
	pa, predA := probs(a)
	pb, predB := probs(b)
	if slices.Equal(predA, predB) {
		t.Fatal("the two fixture models predict the same class for every flow: the ensemble check would be vacuous")
	}
	wantConf := make([][]float64, C)
	for k := range wantConf {
		wantConf[k] = make([]float64, C)
	}
	correct := 0
	predEns := make([]int, N)
	for i, row := range index {
		y, ok := classIndex[row[2]]
		if !ok {
			t.Fatalf("flow %s: unknown class %q", row[1], row[2])
		}
		best := 0
		for k := 1; k < C; k++ {
			if pa[i*C+k]+pb[i*C+k] > pa[i*C+best]+pb[i*C+best] {
				best = k
			}
		}
		wantConf[y][best]++
		predEns[i] = best
		if best == y {
			correct++
		}
	}
	if slices.Equal(predEns, predA) || slices.Equal(predEns, predB) {
		t.Fatal("the ensemble's expected predictions equal one member's: the check would not see a member ignored")
	}
	rep, _ := evalJSON(t, a, full, "--model", b)
	if got, want := rep["accuracy"], float64(correct)/float64(N); got != want {
		t.Errorf("ensemble accuracy %v, want %v", got, want)
	}
	conf, err := json.Marshal(rep["confusion"])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(wantConf)
	if !bytes.Equal(conf, want) {
		t.Errorf("ensemble confusion\n%s\nwant\n%s", conf, want)
	}
	if rep["model"] != a+"+"+b {
		t.Errorf("report model %v, want %s+%s", rep["model"], a, b)
	}

	other := writeTinyReprModelSeed(t, append(slices.Clone(classes[1:]), classes[0]), rm, "other", 5)
	if err := runCLIFail(t, "eval", "--model", a, "--model", other, "--data", full); !strings.Contains(err.Error(), "different classes") {
		t.Errorf("members with other classes: error %q", err)
	}
	// The same debias in another order and case reads the same inputs; another debias does not.
	reordered := rm
	reordered.Debias = slices.Clone(rm.Debias)
	slices.Reverse(reordered.Debias)
	reordered.Debias[0] = strings.ToUpper(reordered.Debias[0])
	runCLI(t, "eval", "--model", a, "--model", writeTinyReprModelSeed(t, classes, reordered, "reordered", 11), "--data", full, "--json", "--resamples", "10")
	plainRepr := rm
	plainRepr.Debias = []string{"zero_ip"}
	if err := runCLIFail(t, "eval", "--model", a, "--model", writeTinyReprModelSeed(t, classes, plainRepr, "plain", 11), "--data", full); !strings.Contains(err.Error(), "different representations") {
		t.Errorf("members with another debias: error %q", err)
	}
	if err := runCLIFail(t, "eval", "--model", a, "--model", b, "--data", full, "--calibrate-on", full, "--save-calibrated", filepath.Join(t.TempDir(), "x.safetensors")); !strings.Contains(err.Error(), "takes one --model") {
		t.Errorf("--save-calibrated with an ensemble: error %q", err)
	}
}
