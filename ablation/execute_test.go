package ablation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/model/arch"
)

// writeSynthetic writes n flows per class (n in all when classes is empty:
// unlabelled, a mix of the patterns) whose bytes, sizes and IATs depend on
// the class, plus noise from seed.
func writeSynthetic(t *testing.T, path string, classes []string, n int, seed uint64) {
	t.Helper()
	w, err := dataset.Create(path, dataset.Meta{Classes: classes, Settings: dataset.Settings{Direction: "bi", Seed: seed}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	total := n * max(len(classes), 1)
	for i := range total {
		c, label := i%3, -1
		if len(classes) > 0 {
			c = i % len(classes)
			label = c
		}
		var r dataset.Record
		for k := range 200 {
			r.View.Bytes[k] = byte(c*85 + k*(c+1)*7 + rng.IntN(16))
		}
		r.View.NPackets = 10
		for k := range r.View.NPackets {
			r.View.Sizes[k] = uint32(80 + c*300 + rng.IntN(40))
			r.View.Dirs[k] = int8(1 - 2*(k%2))
			if k > 0 {
				r.View.IATs[k] = float64(c+1)*0.01 + float64(rng.IntN(100))*1e-5
			}
		}
		r.Key.SrcIP = [16]byte{10, 0, byte(i >> 8), byte(i)}
		r.Key.DstIP = [16]byte{192, 168, 1, 1}
		r.Key.SrcPort, r.Key.DstPort, r.Key.Proto, r.Key.IPVersion = uint16(40000+i), 443, 6, 4
		r.Label = label
		r.Source = fmt.Sprintf("synthetic/%d.pcap", c)
		if err := w.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// tinyVariants are the three families of the grid at toy sizes (depth 1,
// width 16, 64 bytes) so that a whole grid trains in seconds.
func tinyVariants() []Variant {
	small := func(c arch.Config) arch.Config {
		c.EmbedDim, c.Depth, c.DState, c.ByteLength, c.Stride = 16, 1, 4, 64, 4
		c.DecoderEmbedDim, c.DecoderDepth = 16, 1
		return c
	}
	return []Variant{
		{Name: "NetMamba", Arch: small(arch.Config{Arch: "netmamba"})},
		{Name: "NetMamba+", Arch: small(arch.Config{Arch: "fuse3", Modalities: []string{"bytes", "sizes", "iats"}})},
		{Name: "NetTrans", Arch: small(arch.Config{Arch: "nettrans", NumHeads: 2})},
	}
}

// tinyGrid writes the datasets into dir and returns a grid over them with
// its output in dir/out.
func tinyGrid(t *testing.T, dir string) Grid {
	t.Helper()
	classes := []string{"alpha", "beta", "gamma"}
	paths := map[string]string{}
	for i, split := range []string{"train", "valid", "test", "pretrain"} {
		paths[split] = filepath.Join(dir, split+dataset.Ext)
		cls, n := classes, []int{16, 8, 8, 0}[i]
		if split == "pretrain" {
			cls, n = nil, 32
		}
		writeSynthetic(t, paths[split], cls, n, uint64(i+1))
	}
	return Grid{Train: paths["train"], Valid: paths["valid"], Test: paths["test"],
		PretrainData: []string{paths["pretrain"]}, PretrainSteps: 2,
		Variants: tinyVariants(), Losses: []string{"ce", "lda"}, Fractions: []float64{1, 0.5}, Seeds: []uint64{0, 1},
		Epochs: 2, Batch: 8, BLR: 5e-3, Threads: 2, Jobs: 2, HoldOut: 1, OutDir: filepath.Join(dir, "out")}
}

// TestExecuteTinyGrid runs a whole grid (3 tiny variants × 2 losses × 2
// seeds, pre-training, a few-shot phase, OOD) with two runs at once, checks
// every artefact and number, then runs it again and checks that nothing is
// retrained, and once more one run at a time with the same per-run thread
// count and checks that the results are identical.
func TestExecuteTinyGrid(t *testing.T) {
	dir := t.TempDir()
	g := tinyGrid(t, dir)
	var log bytes.Buffer
	g.Log = &log
	t0 := time.Now()
	res, err := g.Execute()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first Execute: %v", time.Since(t0))

	// Progress: whole lines, each run started and finished.
	lineRE := regexp.MustCompile(`^\d\d:\d\d:\d\d ablation: \S.*$`)
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	for _, l := range lines {
		if !lineRE.MatchString(l) {
			t.Errorf("log line %q is not one whole progress line", l)
		}
	}
	if n := strings.Count(log.String(), ": fine-tuning (threads 1)"); n != 17 {
		t.Errorf("%d runs started in the log, want 17:\n%s", n, log.String())
	}

	// Phase 1: every variant × loss × seed at fraction 1, in grid order.
	if len(res.Runs) != 14 || len(res.OODRuns) != 3 {
		t.Fatalf("%d runs and %d OOD runs, want 12+2 and 3", len(res.Runs), len(res.OODRuns))
	}
	i := 0
	for _, v := range []string{"NetMamba", "NetMamba+", "NetTrans"} {
		for _, l := range []string{"ce", "lda"} {
			for _, s := range []uint64{0, 1} {
				r := res.Runs[i]
				if r.Variant != v || r.Loss != l || r.Seed != s || r.Fraction != 1 {
					t.Errorf("run %d is %s/%s f%g s%d, want %s/%s f1 s%d", i, r.Variant, r.Loss, r.Fraction, r.Seed, v, l, s)
				}
				i++
			}
		}
	}
	// The best variant+loss has the highest mean validation macro-F1 (first wins ties).
	sums := map[string]float64{}
	var order []string
	for _, r := range res.Runs[:12] {
		k := r.Variant + "/" + r.Loss
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += r.ValMacroF1
	}
	want := order[0]
	for _, k := range order {
		if sums[k] > sums[want] {
			want = k
		}
	}
	if res.Best != want {
		t.Errorf("best %q, want %q (validation macro-F1 sums %v)", res.Best, want, sums)
	}
	for _, r := range res.Runs[12:] {
		if r.Variant+"/"+r.Loss != want || r.Fraction != 0.5 {
			t.Errorf("phase 2 run %s/%s f%g, want %s at 0.5", r.Variant, r.Loss, r.Fraction, want)
		}
	}
	if res.Runs[12].Seed != 0 || res.Runs[13].Seed != 1 {
		t.Errorf("phase 2 seeds %d, %d", res.Runs[12].Seed, res.Runs[13].Seed)
	}

	// Sane numbers.
	unit := func(what string, x float64) {
		if !(x >= 0 && x <= 1) {
			t.Errorf("%s = %g outside [0, 1]", what, x)
		}
	}
	all := append(append([]Run(nil), res.Runs...), res.OODRuns...)
	for _, r := range all {
		id := fmt.Sprintf("%s/%s f%g s%d ood=%v", r.Variant, r.Loss, r.Fraction, r.Seed, r.HeldOut)
		for name, x := range map[string]float64{"val macro-F1": r.ValMacroF1, "accuracy": r.Accuracy, "macro-F1": r.MacroF1,
			"weighted-F1": r.WeightedF1, "ECE": r.ECE, "ECE calibrated": r.ECECal} {
			unit(id+" "+name, x)
		}
		if !(r.Temp > 0) || !(r.Seconds > 0) || r.Threads != 1 {
			t.Errorf("%s: temperature %g, seconds %g, threads %d", id, r.Temp, r.Seconds, r.Threads)
		}
	}
	for _, r := range res.OODRuns {
		if len(r.HeldOut) != 1 || r.Loss != "ce" || r.Seed != 0 {
			t.Errorf("OOD run %s: held out %v, loss %s, seed %d", r.Variant, r.HeldOut, r.Loss, r.Seed)
		}
		if len(r.OOD) != 4 {
			t.Errorf("OOD run %s: %d confidence kinds, want 4", r.Variant, len(r.OOD))
		}
		for k, s := range r.OOD {
			unit(r.Variant+" OOD AUROC "+k, s[0])
			unit(r.Variant+" OOD FPR95 "+k, s[1])
		}
	}

	// Every artefact exists.
	out := g.OutDir
	stems := map[string]string{"NetMamba": "netmamba", "NetMamba+": "netmambaplus", "NetTrans": "nettrans"}
	var files []string
	for _, s := range stems {
		for _, ext := range []string{".safetensors", ".cost.json", ".log.jsonl"} {
			files = append(files, s+"-pretrain"+ext)
		}
	}
	for _, r := range all {
		stem := fmt.Sprintf("%s-%s-f%g-s%d", stems[r.Variant], r.Loss, r.Fraction, r.Seed)
		if len(r.HeldOut) > 0 {
			stem += "-ood"
		}
		if r.Model != filepath.Join(out, stem+".safetensors") {
			t.Errorf("model %s, want %s", r.Model, stem+".safetensors")
		}
		for _, ext := range []string{".safetensors", ".log.jsonl", ".result.json"} {
			files = append(files, stem+ext)
		}
	}
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("missing or empty %s (%v)", f, err)
		}
	}

	// Pre-training costs: persisted and reported.
	for v, s := range stems {
		b, err := os.ReadFile(filepath.Join(out, s+"-pretrain.cost.json"))
		if err != nil {
			t.Fatal(err)
		}
		var c PretrainCost
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		// 32 flows in batches of min(128, 32): 2 steps of 32 flows.
		if c.Steps != 2 || c.RunSteps != 2 || c.Batch != 32 || !(c.Seconds > 0) || c.Source != "measured" ||
			math.Abs(c.FlowsPerSec-64/c.Seconds) > 1e-9*c.FlowsPerSec {
			t.Errorf("%s cost %+v", v, c)
		}
		if res.PretrainSecs[v] != c.Seconds || !reflect.DeepEqual(res.Pretrain[v], c) {
			t.Errorf("%s: result has %g s / %+v, file %+v", v, res.PretrainSecs[v], res.Pretrain[v], c)
		}
	}

	// The reports list every run group and the costs.
	var md, js bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"NetMamba", "NetMamba+", "NetTrans"} {
		for _, l := range []string{"ce", "lda"} {
			if row := fmt.Sprintf("| %s | %s | 1 | 2 | ", v, l); !strings.Contains(md.String(), row) {
				t.Errorf("markdown lacks %q", row)
			}
		}
		var ftSum float64
		n := 0
		for _, r := range all {
			if r.Variant == v {
				ftSum += r.Seconds
				n++
			}
		}
		row := fmt.Sprintf("| %s | %.1f | 2 | %.1f | %d | %.1f | %.1f |", v, res.Pretrain[v].Seconds, res.Pretrain[v].FlowsPerSec, n, ftSum, ftSum/float64(n))
		if !strings.Contains(md.String(), row) {
			t.Errorf("markdown lacks cost row %q:\n%s", row, md.String())
		}
		if oodRow := fmt.Sprintf("\n| %s | ", v); !strings.Contains(md.String()[strings.Index(md.String(), "## OOD"):], oodRow) {
			t.Errorf("markdown OOD table lacks %s", v)
		}
	}
	bs := strings.Split(want, "/")
	if row := fmt.Sprintf("| %s | %s | 0.5 | 2 | ", bs[0], bs[1]); !strings.Contains(md.String(), row) {
		t.Errorf("markdown lacks phase 2 row %q", row)
	}
	for _, s := range []string{"## Cost", "2 fine-tuning run(s) at once with 1 thread(s) each", "pre-training 2 steps on"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
	var doc struct {
		Runs     []Run                   `json:"runs"`
		OODRuns  []Run                   `json:"ood_runs"`
		Pretrain map[string]PretrainCost `json:"pretrain"`
		Best     string                  `json:"best"`
		Grid     map[string]any          `json:"grid"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc.Runs, res.Runs) || !reflect.DeepEqual(doc.OODRuns, res.OODRuns) || doc.Best != want ||
		len(doc.Pretrain) != 3 || doc.Grid["jobs"] != 2.0 || doc.Grid["run_threads"] != 1.0 {
		t.Errorf("ablation.json does not match the result: best %q, grid %v", doc.Best, doc.Grid)
	}

	// A second Execute reuses everything: no file changes, same numbers.
	mtimes := dirMtimes(t, out)
	log.Reset()
	res2, err := g.Execute()
	if err != nil {
		t.Fatal(err)
	}
	if got := dirMtimes(t, out); !reflect.DeepEqual(got, mtimes) {
		t.Errorf("the second Execute changed files:\nbefore %v\nafter  %v", mtimes, got)
	}
	if !reflect.DeepEqual(res2.Runs, res.Runs) || !reflect.DeepEqual(res2.OODRuns, res.OODRuns) || res2.Best != res.Best ||
		!reflect.DeepEqual(res2.PretrainSecs, res.PretrainSecs) || !reflect.DeepEqual(res2.Pretrain, res.Pretrain) {
		t.Error("the second Execute gave different results")
	}
	if strings.Contains(log.String(), "fine-tuning (") || strings.Contains(log.String(), "pre-training ") ||
		strings.Count(log.String(), "reusing") != 17+3 {
		t.Errorf("second Execute log:\n%s", log.String())
	}

	// One run at a time with the same per-run thread count (1), from the
	// same pre-trained checkpoints: identical results.
	seq := g
	seq.OutDir, seq.Jobs, seq.Threads, seq.Log = filepath.Join(dir, "seq"), 1, 1, nil
	if err := os.MkdirAll(seq.OutDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range stems {
		for _, ext := range []string{".safetensors", ".cost.json"} {
			b, err := os.ReadFile(filepath.Join(out, s+"-pretrain"+ext))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(seq.OutDir, s+"-pretrain"+ext), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t0 = time.Now()
	res3, err := seq.Execute()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sequential Execute (fine-tuning only): %v", time.Since(t0))
	strip := func(rs []Run) []Run {
		out := make([]Run, len(rs))
		for i, r := range rs {
			r.Seconds, r.Model = 0, filepath.Base(r.Model)
			out[i] = r
		}
		return out
	}
	if a, b := strip(res.Runs), strip(res3.Runs); !reflect.DeepEqual(a, b) {
		t.Errorf("--jobs 2 and --jobs 1 runs differ:\n%+v\n%+v", a, b)
	}
	if a, b := strip(res.OODRuns), strip(res3.OODRuns); !reflect.DeepEqual(a, b) {
		t.Errorf("--jobs 2 and --jobs 1 OOD runs differ:\n%+v\n%+v", a, b)
	}

	// Changed settings never reuse a stale result.
	other := g
	other.Epochs++
	other.Log = nil
	if _, err := other.Execute(); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("Execute with other epochs over the same directory: err = %v, want a settings mismatch", err)
	}
}

// dirMtimes maps each file of dir to its size and modification time.
func dirMtimes(t *testing.T, dir string) map[string]string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range es {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fmt.Sprintf("%d@%s", info.Size(), info.ModTime().Format(time.RFC3339Nano))
	}
	if len(m) == 0 {
		t.Fatalf("%s is empty", dir)
	}
	return m
}

// TestExecuteRunFailure checks that a failing run stops the grid with its
// error (and the runs under way finish) when runs go in parallel.
func TestExecuteRunFailure(t *testing.T) {
	dir := t.TempDir()
	g := tinyGrid(t, dir)
	g.PretrainData, g.PretrainSteps, g.HoldOut, g.Seeds = nil, 0, 0, []uint64{0}
	bad := g.Variants[0]
	bad.Name, bad.Arch.Arch = "Broken", "no-such-arch"
	g.Variants = []Variant{g.Variants[0], bad, g.Variants[2]}
	_, err := g.Execute()
	if err == nil || !strings.Contains(err.Error(), `"no-such-arch"`) {
		t.Fatalf("error %v, want one naming the architecture", err)
	}
	// The NetMamba runs before the failure finished and are kept for a rerun.
	for _, l := range []string{"ce", "lda"} {
		if _, err := os.Stat(filepath.Join(g.OutDir, "netmamba-"+l+"-f1-s0.result.json")); err != nil {
			t.Errorf("finished run lost: %v", err)
		}
	}
}
