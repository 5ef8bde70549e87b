package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/eval"

	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/repr"
)

// synthData makes n flows of C classes whose byte views differ by class in
// the second packet's header (bytes 320..400, the last tokens the 400-byte
// test models read before their CLS), so a tiny model can learn them.
func synthData(n, C int, seed uint64) *Data {
	r := rand.New(rand.NewPCG(seed, 1))
	d := &Data{N: n}
	for c := 0; c < C; c++ {
		d.Classes = append(d.Classes, string(rune('A'+c)))
	}
	for i := 0; i < n; i++ {
		y := i % C
		var v repr.View
		for j := 0; j < 80; j++ {
			v.Bytes[j] = byte(r.IntN(256))
		}
		for j := 320; j < 400; j++ {
			v.Bytes[j] = byte(40*y + r.IntN(20))
		}
		d.Bytes = append(d.Bytes, v.Bytes[:]...)
		d.Labels = append(d.Labels, y)
		d.Sources = append(d.Sources, "synthetic")
		d.Views = append(d.Views, v)
	}
	return d
}

// withPayloads fills the payload of packet slots 0 and 1 (bytes 80..320
// and 400..640) of every view in d with seeded random bytes, keeping
// d.Views in step with d.Bytes, and returns d.
func withPayloads(d *Data, seed uint64) *Data {
	r := rand.New(rand.NewPCG(seed, 2))
	for i := 0; i < d.N; i++ {
		row := d.Bytes[i*repr.ViewBytes : (i+1)*repr.ViewBytes]
		for _, lo := range []int{repr.HeaderBytes, repr.SlotBytes + repr.HeaderBytes} {
			for j := lo; j < lo+repr.SlotBytes-repr.HeaderBytes; j++ {
				row[j] = byte(r.IntN(256))
			}
		}
		copy(d.Views[i].Bytes[:], row)
	}
	return d
}

func tinyClassifier(t *testing.T, C int) *NetMambaClassifier {
	t.Helper()
	m, err := model.NewRandom(arch.Config{EmbedDim: 16, Depth: 2, ByteLength: 400, NumClasses: C}, 7)
	if err != nil {
		t.Fatal(err)
	}
	return NewNetMambaClassifier(m, 8, 2, 0.1)
}

func tinyOptions(dir string) FinetuneOptions {
	o := DefaultFinetune()
	o.Epochs, o.WarmupEpochs, o.Batch = 4, 1, 8
	o.Seed, o.Threads = 3, 2
	o.StatePath = filepath.Join(dir, "state.safetensors")
	o.CheckpointEvery = 2
	return o
}

// A run interrupted mid-epoch and resumed from its last checkpoint ends
// with bit-identical weights to an uninterrupted run.
// With --ema the average is part of the state, so the same holds; with
// --shift-aug the shifts come from the step's seeded generator, so they do
// too (payloads filled in, or the shifts would move zeros).
func TestFinetuneResumeIsExact(t *testing.T) {
	for _, c := range []struct {
		ema   float64
		shift int
	}{{0, 0}, {0.9, 0}, {0, 3}} {
		t.Run(fmt.Sprintf("ema=%g,shift=%d", c.ema, c.shift), func(t *testing.T) { checkResumeIsExact(t, c.ema, c.shift) })
	}
}

func checkResumeIsExact(t *testing.T, ema float64, shift int) {
	td, vd := withPayloads(synthData(40, 3, 1), 9), synthData(12, 3, 2)
	full := tinyClassifier(t, 3)
	fo := tinyOptions(t.TempDir())
	fo.EMA, fo.ShiftAug = ema, shift
	fo.LogPath = filepath.Join(t.TempDir(), "full.jsonl")
	if _, err := Finetune(full, td, vd, fo); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := tinyOptions(dir)
	o.EMA, o.ShiftAug = ema, shift
	o.LogPath = filepath.Join(dir, "run.jsonl")
	o.StopAfterSteps = 7 // mid-epoch 1 (5 steps per epoch); last checkpoint at step 6
	// The interrupted process takes at least 25 ms per step, so its 6 saved
	// steps took at least 150 ms: the resumed run's loop time must include them.
	o.Progress = func(Progress) { time.Sleep(25 * time.Millisecond) }
	first := tinyClassifier(t, 3)
	if _, err := Finetune(first, td, vd, o); !errors.Is(err, ErrStopped) {
		t.Fatalf("interrupted run: %v", err)
	}
	o.StopAfterSteps, o.Resume = 0, true
	var progress []Progress
	o.Progress = func(p Progress) { progress = append(progress, p) }
	resumed := tinyClassifier(t, 3) // fresh process: weights come from the state file
	res, err := Finetune(resumed, td, vd, o)
	if err != nil {
		t.Fatal(err)
	}
	// Progress counts this process's steps apart from the run's (the ETA's rate).
	if len(progress) != 14 || progress[0].Step != 7 || progress[0].RunSteps != 1 || progress[13].Step != 20 || progress[13].RunSteps != 14 {
		t.Errorf("resumed progress: %d reports, first %+v", len(progress), progress[:min(1, len(progress))])
	}
	if res.Steps != 20 {
		t.Fatalf("steps %d, want 20", res.Steps)
	}
	if res.RunSteps != 14 || res.Seconds < 0.15 {
		t.Fatalf("resumed run: %d steps in this process (want 14), loop time %.3f s in all (want >= 0.15 s: the first process's 6 saved steps)", res.RunSteps, res.Seconds)
	}
	for i, p := range full.Params() {
		q := resumed.Params()[i]
		for j := range p.Data {
			if p.Data[j] != q.Data[j] {
				t.Fatalf("%s[%d]: uninterrupted %v, resumed %v", p.Name, j, p.Data[j], q.Data[j])
			}
		}
	}
	// The resumed log holds every step once, with the uninterrupted run's losses.
	want, got := readLog(t, fo.LogPath), readLog(t, o.LogPath)
	if len(got) != len(want) {
		t.Fatalf("log: %d records after resume, %d uninterrupted", len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("log record %d: uninterrupted %s, resumed %s", i, want[i], got[i])
		}
	}
}

// Resuming with another thread count works but warns that the result is no
// longer bit-identical; the same count does not warn.
func TestResumeWarnsOnOtherThreadCount(t *testing.T) {
	td, vd := synthData(40, 3, 1), synthData(12, 3, 2)
	for _, tc := range []struct {
		threads int
		warn    bool
	}{{2, false}, {1, true}} {
		dir := t.TempDir()
		o := tinyOptions(dir) // saved with 2 threads
		o.StopAfterSteps = 7
		if _, err := Finetune(tinyClassifier(t, 3), td, vd, o); !errors.Is(err, ErrStopped) {
			t.Fatalf("interrupted run: %v", err)
		}
		var warnings []string
		o.StopAfterSteps, o.Resume, o.Threads = 0, true, tc.threads
		o.Warn = func(msg string) { warnings = append(warnings, msg) }
		if _, err := Finetune(tinyClassifier(t, 3), td, vd, o); err != nil {
			t.Fatal(err)
		}
		if got := len(warnings) > 0; got != tc.warn {
			t.Fatalf("resume with %d threads (saved with 2): warnings %q, want warning %v", tc.threads, warnings, tc.warn)
		}
		if tc.warn && !strings.Contains(warnings[0], "--threads 2") {
			t.Fatalf("warning does not say how to reproduce: %q", warnings[0])
		}
	}
}

// readLog returns a log's records without their wall-clock time.
func readLog(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := eval.ReadTrainLog(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		r.Time = ""
		b, _ := json.Marshal(r)
		out = append(out, string(b))
	}
	return out
}

// Resuming with different settings is refused.
func TestResumeRefusesOtherRun(t *testing.T) {
	td := synthData(40, 3, 1)
	dir := t.TempDir()
	o := tinyOptions(dir)
	o.StopAfterSteps = 3
	if _, err := Finetune(tinyClassifier(t, 3), td, nil, o); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	o.StopAfterSteps, o.Resume, o.BLR = 0, true, 1e-2
	if _, err := Finetune(tinyClassifier(t, 3), td, nil, o); err == nil {
		t.Fatal("resuming with another learning rate: want an error")
	}
}

// Fine-tuning learns a separable synthetic task well above chance.
func TestFinetuneLearns(t *testing.T) {
	td, vd := synthData(96, 3, 1), synthData(30, 3, 2)
	net := tinyClassifier(t, 3)
	before, _, err := Evaluate(net, vd, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := tinyOptions(t.TempDir())
	o.Epochs, o.WarmupEpochs, o.BLR, o.LayerDecay = 12, 1, 2e-2, 0
	res, err := Finetune(net, td, vd, o)
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := Evaluate(net, vd, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accuracy before %.3f after %.3f (best epoch %d)", before.Accuracy, after.Accuracy, res.BestEpoch)
	if after.Accuracy < 0.9 {
		t.Fatalf("validation accuracy %.3f after training, want ≥ 0.9", after.Accuracy)
	}
}

// MAE pre-training lowers the reconstruction loss.
func TestPretrainLowersLoss(t *testing.T) {
	d := synthData(32, 3, 1)
	m, err := model.NewRandom(arch.Config{Task: "pretrain", EmbedDim: 16, Depth: 1, ByteLength: 400, DecoderEmbedDim: 16, DecoderDepth: 1}, 5)
	if err != nil {
		t.Fatal(err)
	}
	p := NewNetMambaMAE(m, 8, 2, 0)
	o := DefaultPretrain()
	o.Batch, o.Epochs, o.BLR, o.Seed = 8, 1, 5e-2, 1
	first, err := Pretrain(p, d, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Epochs = 15
	last, err := Pretrain(p, d, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MAE loss: first epoch %.4f, after 15 more %.4f", first.FinalLoss, last.FinalLoss)
	if !(last.FinalLoss < 0.8*first.FinalLoss) {
		t.Fatalf("MAE loss %.4f → %.4f: want a drop of at least 20%%", first.FinalLoss, last.FinalLoss)
	}
}

func TestEMADecay(t *testing.T) {
	for _, c := range []struct {
		decay float64
		t     int
		want  float64
	}{{0.99, 0, 0.1}, {0.99, 8, 0.5}, {0.99, 90, 0.91}, {0.99, 10000, 0.99}, {0.5, 0, 0.1}, {0.5, 100, 0.5}} {
		if got := emaDecay(c.decay, c.t); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("emaDecay(%g, %d) = %g, want %g", c.decay, c.t, got, c.want)
		}
	}
}

// The EMA does not touch the training trajectory (validation swaps the
// average in and the raw weights back), and the weights a run without
// validation ends with are the average of that trajectory, computed here
// independently from the raw weights after every step of a run without EMA.
func TestFinetuneEMAIsTheAverageOfTheTrajectory(t *testing.T) {
	td := synthData(40, 3, 1)
	const decay = 0.8
	plain := tinyClassifier(t, 3)
	// a constant, large lr, so the weights still move at the end and the
	// average differs clearly from the last weights
	constLR := func(o *FinetuneOptions) {
		o.StatePath, o.WarmupEpochs, o.BLR = "", 0, 0.1
		o.MinLR = AbsoluteLR(o.BLR, o.Batch)
	}
	po := tinyOptions(t.TempDir())
	constLR(&po)
	var want map[string][]float64
	steps := 0
	po.Progress = func(Progress) {
		d := math.Min(decay, float64(1+steps)/float64(10+steps))
		for _, p := range plain.Params() {
			w := want[p.Name]
			for i, v := range p.Data {
				w[i] = d*w[i] + (1-d)*float64(v)
			}
		}
		steps++
	}
	// The average starts at the weights before step 1: those of a fresh
	// classifier (same seed, same initial weights).
	init := tinyClassifier(t, 3)
	want = map[string][]float64{}
	for _, p := range init.Params() {
		w := make([]float64, len(p.Data))
		for i, v := range p.Data {
			w[i] = float64(v)
		}
		want[p.Name] = w
	}
	if _, err := Finetune(plain, td, nil, po); err != nil {
		t.Fatal(err)
	}
	avg := tinyClassifier(t, 3)
	ao := tinyOptions(t.TempDir())
	constLR(&ao)
	ao.EMA = decay
	if _, err := Finetune(avg, td, nil, ao); err != nil {
		t.Fatal(err)
	}
	maxDiff, moved := 0.0, 0.0
	for i, p := range avg.Params() {
		w := want[p.Name]
		for j, v := range p.Data {
			maxDiff = math.Max(maxDiff, math.Abs(float64(v)-w[j]))
			moved = math.Max(moved, math.Abs(float64(v)-float64(plain.Params()[i].Data[j])))
		}
	}
	t.Logf("EMA vs the independent average: max difference %g; EMA vs the last raw weights: %g", maxDiff, moved)
	if maxDiff > 1e-5 {
		t.Errorf("EMA weights differ from the average of the raw trajectory by %g", maxDiff)
	}
	if moved < 1e-3 {
		t.Errorf("EMA weights equal the raw final weights (max difference %g): the average is not used", moved)
	}

	// With validation, the raw trajectory (the per-step losses) is the same
	// with and without EMA.
	vd := synthData(12, 3, 2)
	var logs [2]string
	for k, e := range []float64{0, decay} {
		o := tinyOptions(t.TempDir())
		o.StatePath, o.EMA = "", e
		o.LogPath = filepath.Join(t.TempDir(), "log.jsonl")
		if _, err := Finetune(tinyClassifier(t, 3), td, vd, o); err != nil {
			t.Fatal(err)
		}
		logs[k] = o.LogPath
	}
	var losses [2][]float64
	for k := range logs {
		for _, r := range readLog(t, logs[k]) {
			var rec struct{ Loss *float64 }
			if err := json.Unmarshal([]byte(r), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Loss != nil {
				losses[k] = append(losses[k], *rec.Loss)
			}
		}
	}
	if len(losses[0]) == 0 || len(losses[0]) != len(losses[1]) {
		t.Fatalf("%d and %d step losses", len(losses[0]), len(losses[1]))
	}
	for i := range losses[0] {
		if losses[0][i] != losses[1][i] {
			t.Fatalf("step %d: loss %v without EMA, %v with: validation with the average changed the training", i+1, losses[0][i], losses[1][i])
		}
	}
}

// TestShiftPayload checks one slot shifted by hand: the 80 header bytes
// stay, the payload moves right by r with r zeros in front and its last r
// bytes dropped.
func TestShiftPayload(t *testing.T) {
	for _, r := range []int{0, 1, 3, 239} {
		slot := make([]byte, repr.SlotBytes)
		for i := range slot {
			slot[i] = byte(i%250 + 1) // no zero, so every moved byte is visible
		}
		orig := append([]byte(nil), slot...)
		shiftPayload(slot, r)
		for i := 0; i < repr.SlotBytes; i++ {
			var want byte
			switch {
			case i < repr.HeaderBytes:
				want = orig[i]
			case i < repr.HeaderBytes+r:
				want = 0
			default:
				want = orig[i-r]
			}
			if slot[i] != want {
				t.Fatalf("shift %d: byte %d = %d, want %d", r, i, slot[i], want)
			}
		}
	}
}

// TestFinetuneShiftAug: payload-alignment augmentation is deterministic
// for a seed and really changes training: with drop-path off, the shifts
// are the generator's only use, so other weights than without them mean
// the shifted bytes reached the model.
func TestFinetuneShiftAug(t *testing.T) {
	run := func(shift int) []*Param {
		td, vd := withPayloads(synthData(40, 3, 1), 9), synthData(12, 3, 2)
		net := tinyClassifier(t, 3)
		net.DropPath = 0
		o := tinyOptions(t.TempDir())
		o.ShiftAug = shift
		if _, err := Finetune(net, td, vd, o); err != nil {
			t.Fatal(err)
		}
		return net.Params()
	}
	a, b, off := run(3), run(3), run(0)
	same := func(x, y []*Param) bool {
		for i, p := range x {
			for j := range p.Data {
				if p.Data[j] != y[i].Data[j] {
					return false
				}
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("two runs with --shift-aug 3 and one seed differ")
	}
	if same(a, off) {
		t.Error("--shift-aug 3 trains the same weights as no augmentation: the shifts were not applied")
	}
	for _, bad := range []int{-1, repr.SlotBytes - repr.HeaderBytes} {
		o := tinyOptions(t.TempDir())
		o.ShiftAug = bad
		if _, err := Finetune(tinyClassifier(t, 3), synthData(8, 2, 1), nil, o); err == nil {
			t.Errorf("--shift-aug %d: no error", bad)
		}
	}
}

// TestFinetuneLDACounts: --lda-counts labelled leaves the pseudo-labelled
// flows out of LDA's counts (after the few-shot subset), which changes the
// trained weights; "all" counts every flow.
func TestFinetuneLDACounts(t *testing.T) {
	td := synthData(24, 3, 1) // labels i%3: 8 flows per class
	td.Pseudo = make([]bool, td.N)
	for i := range td.Pseudo {
		td.Pseudo[i] = i%3 == 2 && i >= 6 // six class-2 flows: 8, 11, ..., 23
	}
	run := func(counts string, fraction float64) (*FinetuneResult, []*Param) {
		net := tinyClassifier(t, 3)
		net.DropPath = 0
		o := tinyOptions(t.TempDir())
		o.Epochs, o.WarmupEpochs, o.Loss, o.LDACounts, o.Fraction = 1, 0, "lda", counts, fraction
		res, err := Finetune(net, td, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		return res, net.Params()
	}
	resAll, all := run("all", 1)
	resLab, lab := run("labelled", 1)
	if !slices.Equal(resAll.Counts, []int{8, 8, 8}) {
		t.Errorf("--lda-counts all: counts %v, want [8 8 8]", resAll.Counts)
	}
	if !slices.Equal(resLab.Counts, []int{8, 8, 2}) {
		t.Errorf("--lda-counts labelled: counts %v, want [8 8 2]", resLab.Counts)
	}
	differ := false
	for i, p := range all {
		differ = differ || !slices.Equal(p.Data, lab[i].Data)
	}
	if !differ {
		t.Error("--lda-counts labelled trained the same weights as all: the counts did not reach the loss")
	}
	// with a few-shot subset the counts are of the kept flows
	want := make([]int, 3)
	for _, i := range FewShot(td.N, 0.5) {
		if !td.Pseudo[i] {
			want[td.Labels[i]]++
		}
	}
	if res, _ := run("labelled", 0.5); !slices.Equal(res.Counts, want) {
		t.Errorf("--lda-counts labelled --fraction 0.5: counts %v, want %v", res.Counts, want)
	}
	// a class with no flow of its own keeps its pseudo-labelled count
	allPseudo := td.Subset(FewShot(td.N, 1))
	for i, y := range allPseudo.Labels {
		allPseudo.Pseudo[i] = y == 2 || allPseudo.Pseudo[i]
	}
	o := tinyOptions(t.TempDir())
	o.Epochs, o.WarmupEpochs, o.Loss, o.LDACounts = 1, 0, "lda", "labelled"
	if res, err := Finetune(tinyClassifier(t, 3), allPseudo, nil, o); err != nil || !slices.Equal(res.Counts, []int{8, 8, 8}) {
		t.Errorf("class 2 all pseudo-labelled: counts %v (err %v), want [8 8 8]", res.Counts, err)
	}
	o = tinyOptions(t.TempDir())
	o.LDACounts = "pseudo"
	if _, err := Finetune(tinyClassifier(t, 3), td, nil, o); err == nil {
		t.Error("--lda-counts pseudo: no error")
	}
	// a run cannot resume with other LDA counts
	o = tinyOptions(t.TempDir())
	o.Loss, o.LDACounts, o.StopAfterSteps = "lda", "all", 2
	if _, err := Finetune(tinyClassifier(t, 3), td, nil, o); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	o.LDACounts, o.StopAfterSteps, o.Resume = "labelled", 0, true
	if _, err := Finetune(tinyClassifier(t, 3), td, nil, o); err == nil {
		t.Error("resuming an --lda-counts all run with labelled: want an error")
	}
}

// TestShiftedBatchFill: the batch holds the chosen flows with each packet's
// payload shifted by the generator's draws (replayed here from the same
// seed), views agreeing with the bytes, and the source data untouched.
func TestShiftedBatchFill(t *testing.T) {
	src := withPayloads(synthData(10, 2, 1), 4)
	orig := append([]byte(nil), src.Bytes...)
	idx := []int{7, 2, 7}
	b := newShiftedBatch(src, 4)
	got, gotIdx := b.fill(src, idx, 3, rand.New(rand.NewPCG(5, 6)))
	if string(src.Bytes) != string(orig) {
		t.Fatal("fill modified the source data")
	}
	if got.N != len(idx) || len(gotIdx) != len(idx) {
		t.Fatalf("batch of %d rows, %d indices, want %d", got.N, len(gotIdx), len(idx))
	}
	replay := rand.New(rand.NewPCG(5, 6))
	shifted := 0
	for j, i := range idx {
		want := append([]byte(nil), orig[i*repr.ViewBytes:(i+1)*repr.ViewBytes]...)
		for p := range repr.ViewPackets {
			r := replay.IntN(4)
			if r > 0 {
				shifted++
			}
			slot := want[p*repr.SlotBytes : (p+1)*repr.SlotBytes]
			pay := append([]byte(nil), slot[repr.HeaderBytes:]...)
			for k := range pay {
				slot[repr.HeaderBytes+k] = 0
				if k >= r {
					slot[repr.HeaderBytes+k] = pay[k-r]
				}
			}
		}
		row := got.Bytes[gotIdx[j]*repr.ViewBytes : (gotIdx[j]+1)*repr.ViewBytes]
		if string(row) != string(want) {
			t.Errorf("row %d (flow %d) is not the hand-shifted view", j, i)
		}
		if string(got.Views[gotIdx[j]].Bytes[:]) != string(want) || got.Labels[gotIdx[j]] != src.Labels[i] {
			t.Errorf("row %d: view bytes or label disagree with flow %d", j, i)
		}
	}
	if shifted == 0 {
		t.Fatal("no packet was shifted: the check is vacuous")
	}
}

// TestInitChecksTensorSets: pretrain --init (ContinueFrom) and finetune
// --init (InitFrom) load only checkpoints that fit the model: from a
// pre-training checkpoint every parameter, from a classifier exactly the
// encoder (the decoder, PretrainOnly, stays initialised); a tensor the
// model does not have (another depth), a missing encoder tensor, or
// another shape of the same size is refused.
func TestInitChecksTensorSets(t *testing.T) {
	cfg := arch.Config{EmbedDim: 16, Depth: 1, ByteLength: 400, DecoderEmbedDim: 16, DecoderDepth: 1, NumClasses: 3}
	pre, _, err := NewPretrainer(cfg, 5, 8, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	cls, _, err := NewClassifier(cfg, 6, 8, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	only, err := PretrainOnly(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !only["mask_token"] || !only["decoder_embed.weight"] || only["blocks.0.mixer.A_log"] || len(only) != len(pre.Params())-len(cls.Params())+2 {
		t.Fatalf("PretrainOnly: %d names %v; want the decoder and mask token (%d pre-training, %d classifier parameters, 2 of them the head)",
			len(only), only, len(pre.Params()), len(cls.Params()))
	}
	preTS, clsTS := ParamTensors(pre.Params()), ParamTensors(cls.Params())
	without := func(ts map[string]*checkpoint.Tensor, name string) map[string]*checkpoint.Tensor {
		out := maps.Clone(ts)
		delete(out, name)
		return out
	}
	with := func(ts map[string]*checkpoint.Tensor, name string, tn *checkpoint.Tensor) map[string]*checkpoint.Tensor {
		out := maps.Clone(ts)
		out[name] = tn
		return out
	}
	deeper := &checkpoint.Tensor{DType: "F32", Shape: []int{16}, F32: make([]float32, 16)}
	inProj := preTS["blocks.0.mixer.in_proj.weight"]
	transposed := &checkpoint.Tensor{DType: "F32", Shape: []int{inProj.Shape[1], inProj.Shape[0]}, F32: inProj.F32}

	if rep, err := ContinueFrom(pre.Params(), preTS, nil); err != nil || len(rep.Kept)+len(rep.Skipped) != 0 {
		t.Errorf("pre-training checkpoint: report %+v, error %v; want every tensor loaded", rep, err)
	}
	if rep, err := ContinueFrom(pre.Params(), clsTS, only); err != nil || len(rep.Kept) != len(only) || !slices.Equal(rep.Skipped, []string{"head.bias", "head.weight"}) {
		t.Errorf("classifier checkpoint: report %+v, error %v; want the decoder kept and the head unused", rep, err)
	}
	for _, c := range []struct {
		name string
		ts   map[string]*checkpoint.Tensor
		only map[string]bool
		want string
	}{
		{"pre-training checkpoint without mask_token", without(preTS, "mask_token"), nil, "no tensor mask_token"},
		{"classifier checkpoint read as a pre-training one", clsTS, nil, "no tensor"},
		{"classifier checkpoint without an encoder tensor", without(clsTS, "norm_f.weight"), only, "no tensor norm_f.weight"},
		{"pre-training checkpoint of depth 2", with(preTS, "blocks.1.norm.weight", deeper), nil, "blocks.1.norm.weight is not part of this model"},
		{"classifier checkpoint of depth 2", with(clsTS, "blocks.1.norm.weight", deeper), only, "blocks.1.norm.weight is not part of this model"},
		{"transposed in_proj", with(preTS, "blocks.0.mixer.in_proj.weight", transposed), nil, "the model wants F32"},
		{"empty checkpoint", nil, only, "no tensor cls_token"},
	} {
		if _, err := ContinueFrom(pre.Params(), c.ts, c.only); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ContinueFrom, %s: error %v, want %q", c.name, err, c.want)
		}
	}

	if rep, err := InitFrom(cls.Params(), preTS, 1, only); err != nil || len(rep.Skipped) != len(only) {
		t.Errorf("InitFrom a pre-training checkpoint: report %+v, error %v; want the decoder unused", rep, err)
	}
	if _, err := InitFrom(cls.Params(), clsTS, 1, only); err != nil {
		t.Errorf("InitFrom a classifier checkpoint: %v", err)
	}
	if _, err := InitFrom(cls.Params(), with(preTS, "blocks.1.norm.weight", deeper), 1, only); err == nil || !strings.Contains(err.Error(), "blocks.1.norm.weight is not part of this model") {
		t.Errorf("InitFrom a checkpoint of depth 2: error %v, want a refusal", err)
	}
	if _, err := InitFrom(cls.Params(), with(preTS, "blocks.0.mixer.in_proj.weight", transposed), 1, only); err == nil || !strings.Contains(err.Error(), "the model wants F32") {
		t.Errorf("InitFrom a transposed in_proj: error %v, want a refusal", err)
	}
}

// TestProgressETA: the time left is this process's rate times the steps
// left, so a resumed run (step 6 of 10 after 2 steps of its own in 10 s)
// expects 20 s, not the 6.7 s that counting the resumed steps would give.
func TestProgressETA(t *testing.T) {
	p := Progress{Step: 6, TotalSteps: 10, RunSteps: 2, Elapsed: 10 * time.Second}
	if got := p.ETA(); got != 20*time.Second {
		t.Errorf("ETA %v, want 20s", got)
	}
	if got := (Progress{Step: 0, TotalSteps: 10}).ETA(); got != 0 {
		t.Errorf("ETA before any step %v, want 0", got)
	}
}

// TestDataAppend: Append keeps every per-flow slice in step, and Pseudo
// false for the flows of data without pseudo-labels, on either side.
func TestDataAppend(t *testing.T) {
	a, b, c := synthData(4, 2, 1), synthData(3, 2, 2), synthData(2, 2, 3)
	b.Pseudo = []bool{true, false, true}
	a.Append(b) // plain + pseudo
	a.Append(c) // + plain
	if a.N != 9 || len(a.Labels) != 9 || len(a.Sources) != 9 || len(a.Views) != 9 || len(a.Bytes) != 9*repr.ViewBytes {
		t.Fatalf("N %d, %d labels, %d sources, %d views, %d bytes: want 9 flows", a.N, len(a.Labels), len(a.Sources), len(a.Views), len(a.Bytes))
	}
	if want := []bool{false, false, false, false, true, false, true, false, false}; !slices.Equal(a.Pseudo, want) {
		t.Errorf("Pseudo %v, want %v", a.Pseudo, want)
	}
	if !slices.Equal(a.Bytes[5*repr.ViewBytes:6*repr.ViewBytes], b.Bytes[repr.ViewBytes:2*repr.ViewBytes]) || a.Views[8] != c.Views[1] || a.Labels[6] != b.Labels[2] {
		t.Error("appended flows are not b's and c's, in order")
	}
	// labels i%2: a 0,1,0,1; b 0,1,0 (its two 0s pseudo-labelled); c 0,1
	if got := a.LabelledClassCounts(); !slices.Equal(got, []int{3, 4}) {
		t.Errorf("labelled counts %v, want [3 4]", got)
	}
}
