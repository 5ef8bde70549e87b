package ablation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadPretrainCost checks the cost file, the estimate from the
// training log of a checkpoint without one, and "unknown".
func TestReadPretrainCost(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "x-pretrain.safetensors")
	if c, err := readPretrainCost(ckpt); err != nil || c != nil {
		t.Fatalf("no cost file and no log: %+v, %v", c, err)
	}
	// Steps 1..5 logged over 8 s: the span covers 4 of the 5 steps → 10 s.
	log := `{"step":1,"epoch":0.2,"loss":3,"time":"2026-01-02T10:00:00Z"}
{"step":3,"epoch":0.6,"loss":2.5,"time":"2026-01-02T10:00:04Z"}

{"step":5,"epoch":1,"loss":2,"time":"2026-01-02T10:00:08Z"}
`
	if err := os.WriteFile(filepath.Join(dir, "x-pretrain.log.jsonl"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := readPretrainCost(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil || c.Seconds != 10 || c.Steps != 5 || c.RunSteps != 5 || c.FinalLoss != 2 || c.Source != "log" {
		t.Fatalf("from log: %+v", c)
	}
	want := PretrainCost{Seconds: 12.5, Steps: 100, RunSteps: 40, Batch: 128, FlowsPerSec: 409.6, Threads: 2, FinalLoss: 0.5, Source: "measured"}
	if err := writePretrainCost(ckpt, &want); err != nil {
		t.Fatal(err)
	}
	if c, err = readPretrainCost(ckpt); err != nil || c == nil || *c != want {
		t.Fatalf("cost file: %+v, %v; want %+v", c, err, want)
	}
	if err := os.WriteFile(costPath(ckpt), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readPretrainCost(ckpt); err == nil || !strings.Contains(err.Error(), "x-pretrain.cost.json") {
		t.Fatalf("corrupt cost file: %v", err)
	}
}

// TestValidate checks that a grid that cannot run is refused up front.
func TestValidate(t *testing.T) {
	ok := Grid{Train: "a", Valid: "b", Test: "c", OutDir: "d", Variants: DefaultVariants(), Losses: []string{"ce"},
		Seeds: []uint64{0}, Fractions: []float64{1, 0.1}, Epochs: 1, Batch: 8, Jobs: 2}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(*Grid)
		want string
	}{
		"no seeds":      {func(g *Grid) { g.Seeds = nil }, "no seeds"},
		"no variants":   {func(g *Grid) { g.Variants = nil }, "no variants"},
		"bad loss":      {func(g *Grid) { g.Losses = []string{"focal"} }, `unknown loss "focal"`},
		"bad fraction":  {func(g *Grid) { g.Fractions = []float64{0} }, "fraction 0"},
		"negative jobs": {func(g *Grid) { g.Jobs = -1 }, "jobs"},
		"zero batch":    {func(g *Grid) { g.Batch = 0 }, "batch"},
		"twice":         {func(g *Grid) { g.Variants = append(g.Variants, g.Variants[0]) }, "twice"},
	} {
		g := ok
		tc.edit(&g)
		if err := g.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
	for _, tc := range []struct{ threads, jobs, want int }{{4, 1, 4}, {0, 1, 0}, {2, 2, 1}, {5, 2, 2}, {1, 3, 1}} {
		g := Grid{Threads: tc.threads, Jobs: tc.jobs}
		if got := g.RunThreads(); got != tc.want {
			t.Errorf("threads %d jobs %d: %d per run, want %d", tc.threads, tc.jobs, got, tc.want)
		}
	}
}

// A resumed pre-training's cost row says so, and gives the loop time over
// all its runs only when the earlier runs recorded theirs (LoopSeconds
// above this invocation's wall time).
func TestWriteCostResumedPretrain(t *testing.T) {
	for _, tc := range []struct {
		loop float64
		want string
	}{
		{30, "12.5 (last 40 steps; resumed; 30.0 s of training loop over all its runs)"},
		{11, "12.5 (last 40 steps; resumed)"},
	} {
		r := &Result{Grid: Grid{Variants: []Variant{{Name: "NetMamba"}}, PretrainData: []string{"p.nmds"}, PretrainSteps: 100},
			Pretrain: map[string]PretrainCost{"NetMamba": {Seconds: 12.5, Steps: 100, RunSteps: 40, LoopSeconds: tc.loop, Batch: 128, Source: "measured"}}}
		var b strings.Builder
		r.writeCost(&b)
		if !strings.Contains(b.String(), "| NetMamba | "+tc.want+" | 100 |") {
			t.Errorf("loop %g s: cost section lacks %q:\n%s", tc.loop, tc.want, b.String())
		}
	}
}
