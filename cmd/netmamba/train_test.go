package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
)

// TestPretrainInit: pretrain --init starts from the checkpoint's weights.
// With a zero learning rate (AdamW then moves nothing, weight decay
// included) the output must hold exactly the checkpoint's tensors: every
// encoder and decoder tensor of a pre-training output, although the run
// uses another seed and takes its width and depth from the file; from a
// classifier, its encoder tensors, with the decoder at its initialisation
// (reported). A decoder of non-default size is continued as it is. Data
// built with other prep settings than the checkpoint's are warned about. A
// checkpoint of another width or depth is refused, and so are training
// datasets built with different representations.
func TestPretrainInit(t *testing.T) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "valid.nmds")
	runCLI(t, "prep", "-q", "-o", ds, prepNdpiApp+"/valid")
	tiny := []string{"--data", ds, "--batch", "16", "--threads", "1", "--quiet"}
	pre := filepath.Join(dir, "pre.safetensors")
	runCLI(t, append([]string{"pretrain", "--steps", "2", "--embed-dim", "8", "--depth", "1", "--seed", "1", "-o", pre}, tiny...)...)
	load := func(path string) map[string]*checkpoint.Tensor {
		t.Helper()
		f, err := checkpoint.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return f.Tensors
	}
	// equalTensors reports how many of want's tensors got holds unchanged.
	equalTensors := func(got, want map[string]*checkpoint.Tensor) (same int, differ []string) {
		for name, w := range want {
			g := got[name]
			if g != nil && slices.Equal(g.F32, w.F32) {
				same++
			} else {
				differ = append(differ, name)
			}
		}
		return same, differ
	}

	cont := filepath.Join(dir, "cont.safetensors")
	_, errs := runCLIErr(t, append([]string{"pretrain", "--init", pre, "--steps", "1", "--blr", "0", "--seed", "2", "-o", cont}, tiny...)...)
	want := load(pre)
	got := load(cont)
	if same, differ := equalTensors(got, want); len(differ) > 0 || len(got) != len(want) {
		t.Errorf("continued from a pre-training output with lr 0: %d of %d tensors unchanged, %d tensors written; differ: %v", same, len(want), len(got), differ)
	}
	if note := "pretrain: --init " + pre + ": " + strconv.Itoa(len(want)) + " tensors loaded, 0 left at their initialisation, 0 unused"; !strings.Contains(errs, note) {
		t.Errorf("stderr %q, want %q", errs, note)
	}

	cls := filepath.Join(dir, "cls.safetensors")
	runCLI(t, append([]string{"finetune", "--init", pre, "--valid", ds, "--epochs", "1", "-o", cls}, tiny...)...)
	fromCls := filepath.Join(dir, "fromcls.safetensors")
	_, errs = runCLIErr(t, append([]string{"pretrain", "--init", cls, "--steps", "1", "--blr", "0", "-o", fromCls}, tiny...)...)
	clsT, got := load(cls), load(fromCls)
	encoder := map[string]*checkpoint.Tensor{}
	var decoder int
	for name, tn := range clsT {
		if !strings.HasPrefix(name, "head.") {
			encoder[name] = tn
		}
	}
	for name := range got {
		if clsT[name] == nil {
			decoder++
		}
	}
	if same, differ := equalTensors(got, encoder); len(differ) > 0 || decoder == 0 {
		t.Errorf("continued from a classifier with lr 0: %d of %d encoder tensors unchanged (differ: %v), %d tensors not in the classifier", same, len(encoder), differ, decoder)
	}
	if note := strconv.Itoa(len(encoder)) + " tensors loaded, " + strconv.Itoa(decoder) + " left at their initialisation, 2 unused"; !strings.Contains(errs, note) {
		t.Errorf("stderr %q, want %q (the head's 2 tensors unused)", errs, note)
	}

	if strings.Contains(errs, "warning") {
		t.Errorf("same representation: stderr %q, want no warning", errs)
	}
	// Data built with other prep settings than the checkpoint's: one warning
	// from pretrain and from finetune.
	other := filepath.Join(dir, "other.nmds")
	runCLI(t, "prep", "-q", "--debias", modelDebias, "-o", other, prepNdpiApp+"/valid")
	for _, cmd := range []string{"pretrain", "finetune"} {
		args := []string{cmd, "--init", pre, "--data", other, "--batch", "16", "--threads", "1", "--quiet", "-o", filepath.Join(dir, cmd+"-other.safetensors")}
		if cmd == "pretrain" {
			args = append(args, "--steps", "1")
		} else {
			args = append(args, "--epochs", "1", "--valid", other)
		}
		_, errs := runCLIErr(t, args...)
		want := cmd + ": warning: --init " + pre + " was trained on byte views with direction bi, debias zero_ip, size mode unsigned, " + other + " was built with direction bi, debias "
		if !strings.Contains(errs, want) || strings.Count(errs, "warning") != 1 {
			t.Errorf("%s on data built with --debias %s: stderr %q, want one warning %q…", cmd, modelDebias, errs, want)
		}
	}

	// A pre-training checkpoint with a decoder unlike the default (width 16,
	// 3 blocks, mask ratio 0.75) continues with its own decoder, and
	// finetune --init leaves all of its decoder unused.
	m, err := model.NewRandom(arch.Config{Task: "pretrain", EmbedDim: 8, Depth: 1, DecoderEmbedDim: 16, DecoderDepth: 3, MaskRatio: 0.75}, 3)
	if err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small-decoder.safetensors")
	if err := checkpoint.WriteSafetensors(small, &checkpoint.File{Tensors: m.Tensors(), Metadata: (&checkpoint.Meta{Config: &m.Cfg}).Map()}, checkpoint.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	fromSmall := filepath.Join(dir, "from-small.safetensors")
	runCLI(t, append([]string{"pretrain", "--init", small, "--steps", "1", "--blr", "0", "-o", fromSmall}, tiny...)...)
	if same, differ := equalTensors(load(fromSmall), m.Tensors()); len(differ) > 0 {
		t.Errorf("continued from a width-16 decoder with lr 0: %d tensors unchanged, differ: %v", same, differ)
	}
	f, err := checkpoint.Load(fromSmall)
	if err != nil {
		t.Fatal(err)
	}
	if meta, err := checkpoint.ParseMeta(f.Metadata); err != nil || meta.Config == nil || meta.Config.DecoderEmbedDim != 16 || meta.Config.DecoderDepth != 3 || meta.Config.MaskRatio != 0.75 {
		t.Errorf("continued model's config %+v (error %v), want decoder 16 × 3 blocks, mask ratio 0.75", meta.Config, err)
	}
	runCLI(t, append([]string{"finetune", "--init", small, "--valid", ds, "--epochs", "1", "-o", filepath.Join(dir, "cls-small.safetensors")}, tiny...)...)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--init", pre, "--embed-dim", "16"}, "the model wants F32"},
		{[]string{"--init", pre, "--depth", "2"}, "no tensor blocks.1."},
		{[]string{"--init", cls, "--depth", "2"}, "no tensor blocks.1."},
		{[]string{"--data", other}, "one model cannot learn both representations"},
	} {
		args := append([]string{"pretrain", "--steps", "1", "-o", filepath.Join(dir, "x.safetensors")}, tiny...)
		err := runCLIFail(t, append(args, c.args...)...)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("pretrain %v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestStopAfterAndResume: a run stopped by --stop-after (between state
// checkpoints: --checkpoint-every is larger than the run) writes no model,
// says how to continue, and `--resume` then ends with exactly the model and
// the log (step, lr, loss) of the uninterrupted run with the same seed and
// threads — for pretrain from scratch, pretrain --init (the state, not the
// init file, supplies the weights on resume) and finetune --init with
// validation. The resumed run's summary says how many steps it took itself
// and reports pretrain's final epoch loss of the uninterrupted run although
// the stop fell inside that epoch.
func TestStopAfterAndResume(t *testing.T) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "valid.nmds")
	runCLI(t, "prep", "-q", "-o", ds, prepNdpiApp+"/valid")
	common := []string{"--data", ds, "--batch", "16", "--threads", "1", "--quiet", "--checkpoint-every", "100", "--seed", "3"}
	pre := filepath.Join(dir, "pre.safetensors")
	runCLI(t, append([]string{"pretrain", "--steps", "2", "--embed-dim", "8", "--depth", "1", "-o", pre}, common...)...)

	logSteps := func(path string) []string {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			delete(rec, "time")
			b, _ := json.Marshal(rec)
			out = append(out, string(b))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stop  string
		total int
	}{
		{"pretrain", []string{"pretrain", "--steps", "7", "--embed-dim", "8", "--depth", "1"}, "6", 7}, // 5 steps per epoch: stops in the last one
		{"pretrain-init", []string{"pretrain", "--init", pre, "--steps", "6"}, "2", 6},
		{"finetune-init", []string{"finetune", "--init", pre, "--valid", ds, "--epochs", "2"}, "7", 10}, // 5 steps per epoch
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole := filepath.Join(dir, tc.name+"-whole.safetensors")
			_, wholeErr := runCLIErr(t, append(append(slices.Clone(tc.args), "-o", whole), common...)...)
			cut := filepath.Join(dir, tc.name+"-cut.safetensors")
			_, errs := runCLIErr(t, append(append(slices.Clone(tc.args), "-o", cut, "--stop-after", tc.stop), common...)...)
			if !strings.Contains(errs, "stopped after "+tc.stop+" steps of this process") || !strings.Contains(errs, "--resume") {
				t.Errorf("stopped run's stderr: %q", errs)
			}
			if _, err := os.Stat(cut); err == nil {
				t.Errorf("a stopped run wrote the model %s", cut)
			}
			steps := 0
			for _, rec := range logSteps(strings.TrimSuffix(cut, ".safetensors") + ".log.jsonl") {
				if strings.Contains(rec, `"lr":`) { // a step record (epoch records hold validation figures)
					steps++
				}
			}
			if got := steps; strconv.Itoa(got) != tc.stop {
				t.Errorf("stopped run logged %d steps, want %s", got, tc.stop)
			}
			_, errs = runCLIErr(t, append(append(slices.Clone(tc.args), "-o", cut, "--resume"), common...)...)
			// The summary's figures (the final epoch's mean loss) are the uninterrupted run's.
			if i, j := strings.Index(wholeErr, "final epoch loss"), strings.Index(errs, "final epoch loss"); (i >= 0) != (j >= 0) ||
				(i >= 0 && strings.Fields(wholeErr[i:])[3] != strings.Fields(errs[j:])[3]) {
				t.Errorf("resumed summary %q, uninterrupted %q", errs, wholeErr)
			}
			stop, _ := strconv.Atoi(tc.stop)
			if want := fmt.Sprintf("(%d of them in this process", tc.total-stop); !strings.Contains(errs, want) {
				t.Errorf("resumed run's stderr %q lacks %q", errs, want)
			}
			a, err := checkpoint.Load(whole)
			if err != nil {
				t.Fatal(err)
			}
			b, err := checkpoint.Load(cut)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Tensors) != len(b.Tensors) {
				t.Fatalf("%d tensors vs %d", len(b.Tensors), len(a.Tensors))
			}
			for name, ta := range a.Tensors {
				if tb := b.Tensors[name]; tb == nil || !slices.Equal(ta.F32, tb.F32) {
					t.Errorf("tensor %s differs from the uninterrupted run's", name)
				}
			}
			la, lb := logSteps(strings.TrimSuffix(whole, ".safetensors")+".log.jsonl"), logSteps(strings.TrimSuffix(cut, ".safetensors")+".log.jsonl")
			if !slices.Equal(la, lb) {
				t.Errorf("resumed log differs from the uninterrupted one:\n%v\n%v", lb, la)
			}
		})
	}
}
