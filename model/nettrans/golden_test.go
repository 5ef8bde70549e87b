package nettrans

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/internal/sharedtest"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/arch"
)

// goldenDir finds ../shared/golden next to the module root. The data is
// required: a missing file fails the test (CI has it).
func goldenDir(t testing.TB) string { return sharedtest.Path(t, "golden") }

func readGolden(t testing.TB, name string) map[string]*checkpoint.Tensor {
	t.Helper()
	f, err := checkpoint.ReadSafetensors(filepath.Join(goldenDir(t), name))
	if err != nil {
		t.Fatalf("golden data missing (CI has it): %v", err)
	}
	return f.Tensors
}

// compare checks |got − want| ≤ abs + rel·|want| element-wise and returns
// the largest |got − want|.
func compare(t *testing.T, name string, got, want []float32, abs, rel float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, golden %d", name, len(got), len(want))
	}
	var worst float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		worst = math.Max(worst, d)
		if d > abs+rel*math.Abs(float64(want[i])) || math.IsNaN(float64(got[i])) {
			t.Errorf("%s[%d] = %.8g, golden %.8g (|d| %.3g)", name, i, got[i], want[i], d)
			return worst
		}
	}
	return worst
}

// goldenRun is a model evaluated on the 4 golden flows, 4 workers so that
// worker i keeps flow i's activations.
type goldenRun struct {
	m      *Model
	ws     *Workspace
	g      *Params
	logits []float32
	loss   float64
	io     map[string]*checkpoint.Tensor
}

func runGolden(t *testing.T, cfg arch.Config, weights map[string]*checkpoint.Tensor, ioName, bytesKey string) *goldenRun {
	t.Helper()
	m, err := FromTensors(cfg, weights)
	if err != nil {
		t.Fatal(err)
	}
	io := readGolden(t, ioName)
	b := &Batch{N: 4, Bytes: io[bytesKey].F32}
	if m.d.fuse3 {
		b.Sizes, b.IATs = io["input_sizes"].F32, io["input_iats"].F32
	}
	var labels []int
	for _, y := range io["labels"].I64 {
		labels = append(labels, int(y))
	}
	r := &goldenRun{m: m, ws: m.NewWorkspace(4, true), g: m.NewGrads(), logits: make([]float32, 4*7), io: io}
	r.loss, err = m.ForwardBackward(b, labels, TrainOptions{}, r.logits, r.g, r.ws)
	if err != nil {
		t.Fatal(err)
	}
	// inference path gives the same logits
	inf := make([]float32, 4*7)
	if err := m.Forward(b, inf, m.NewWorkspace(2, false)); err != nil {
		t.Fatal(err)
	}
	for i := range inf {
		if inf[i] != r.logits[i] {
			t.Fatalf("Forward logit %d = %g, training forward %g", i, inf[i], r.logits[i])
		}
	}
	compare(t, "logits", r.logits, io["logits"].F32, 1e-5, 1e-4)
	if d := math.Abs(r.loss-float64(io["loss_ce"].F32[0])) / float64(io["loss_ce"].F32[0]); d > 1e-5 {
		t.Errorf("loss_ce %.8g, golden %.8g", r.loss, io["loss_ce"].F32[0])
	}
	var ls float64
	dl := make([]float32, 7)
	for i := 0; i < 4; i++ {
		ls += crossEntropy(r.logits[i*7:(i+1)*7], labels[i], 0.1, dl)
	}
	ls /= 4
	if d := math.Abs(ls-float64(io["loss_ce_ls0.1"].F32[0])) / float64(io["loss_ce_ls0.1"].F32[0]); d > 1e-5 {
		t.Errorf("loss_ce_ls0.1 %.8g, golden %.8g", ls, io["loss_ce_ls0.1"].F32[0])
	}
	t.Logf("loss_ce %.8g (golden %.8g), ls0.1 %.8g (golden %.8g)", r.loss, io["loss_ce"].F32[0], ls, io["loss_ce_ls0.1"].F32[0])
	return r
}

// acts returns flow i's activations (worker i ran flow i).
func (r *goldenRun) acts(i int) *activations { return r.ws.workers[i].acts }

// checkStates compares the per-layer states of flow 0 and the per-flow
// features.
func (r *goldenRun) checkStates(t *testing.T, blocks string) {
	t.Helper()
	m, io := r.m, r.io
	L, D := m.d.L, m.d.D
	a := r.acts(0)
	var worst float64
	up := func(d float64) { worst = math.Max(worst, d) }
	up(compare(t, "embed_out", a.embed, io["embed_out"].F32, 1e-5, 1e-4))
	for i := 0; i < m.d.depth; i++ {
		name := blocks + "." + string(rune('0'+i)) + ".out"
		if w, ok := io[name]; ok {
			up(compare(t, name, a.blocks[i].out, w.F32, 1e-5, 1e-4))
		}
	}
	if w, ok := io[blocks+".0.attn_ctx"]; ok {
		up(compare(t, "attn_ctx", a.blocks[0].ctx, w.F32, 1e-5, 1e-4))
	}
	up(compare(t, "norm_out", a.normOut, io["norm_out"].F32, 1e-5, 1e-4))
	// CLS softmax rows of block 0, rebuilt from q, k and the kernel's lse:
	// p_j = exp(q_i·k_j/√24 − lse_i).
	probs := io[blocks+".0.attn_probs_cls"]
	rows := probs.Shape[2]
	cls := []int{L - 1}
	if m.d.fuse3 {
		cls = []int{20, 41, L - 1}
	}
	b0 := &a.blocks[0]
	got := make([]float32, 0, len(probs.F32))
	for h := 0; h < m.d.H; h++ {
		for _, i := range cls[:rows] {
			for j := 0; j < L; j++ {
				var s float32
				for c := 0; c < m.d.dh; c++ {
					s += b0.qkv[i*3*D+h*m.d.dh+c] * b0.qkv[j*3*D+D+h*m.d.dh+c]
				}
				got = append(got, float32(math.Exp(float64(s*m.scale-b0.lse[h*L+i]))))
			}
		}
	}
	compare(t, "attn_probs_cls", got, probs.F32, 1e-9, 1e-4)
	// per-flow features
	feat := make([]float32, 0, 4*D)
	for i := 0; i < 4; i++ {
		feat = append(feat, r.acts(i).feat...)
	}
	up(compare(t, "cls_token", feat, io["cls_token"].F32, 1e-5, 1e-4))
	if m.d.fuse3 {
		for _, f := range []struct {
			name string
			row  int
		}{{"byte_feat", L - 1}, {"size_feat", 20}, {"iat_feat", 41}} {
			var v []float32
			for i := 0; i < 4; i++ {
				v = append(v, r.acts(i).normOut[f.row*D:(f.row+1)*D]...)
			}
			up(compare(t, f.name, v, io[f.name].F32, 1e-5, 1e-4))
		}
	}
	t.Logf("states max|d| %.3g", worst)
}

// checkGrads compares every stored gradient.
func (r *goldenRun) checkGrads(t *testing.T, grads map[string]*checkpoint.Tensor) {
	t.Helper()
	var worst, worstRatio float64
	for name, want := range grads {
		p := r.g.Get(name)
		if p == nil {
			t.Errorf("golden gradient %s has no parameter", name)
			continue
		}
		worst = math.Max(worst, compare(t, "grad "+name, p.Data, want.F32, 1e-6, 1e-3))
		for i, w := range want.F32 {
			worstRatio = math.Max(worstRatio, math.Abs(float64(p.Data[i]-w))/(1e-6+1e-3*math.Abs(float64(w))))
		}
	}
	t.Logf("%d gradients: max|d| %.3g, worst |d|/(1e-6+1e-3|g|) %.3g", len(grads), worst, worstRatio)
}

func TestGoldenFuse3NetTrans(t *testing.T) {
	cfg := arch.Config{Arch: ArchFuse3, NumClasses: 7}
	r := runGolden(t, cfg, readGolden(t, "fuse3_nettrans.weights.safetensors"), "fuse3_nettrans.io.safetensors", "input_bytes")
	r.checkStates(t, "encoder_blocks")
	r.checkGrads(t, readGolden(t, "fuse3_nettrans.grads.safetensors"))
}

// TestGoldenBytesNetTrans: nettrans_bytes stores only its own embedding and
// head; blocks.N.* and norm.* are fuse3_nettrans's encoder_blocks.N.* and
// norm.* (golden README).
func TestGoldenBytesNetTrans(t *testing.T) {
	w := readGolden(t, "nettrans_bytes.weights.safetensors")
	for name, v := range readGolden(t, "fuse3_nettrans.weights.safetensors") {
		switch {
		case strings.HasPrefix(name, "encoder_blocks."):
			w["blocks."+strings.TrimPrefix(name, "encoder_blocks.")] = v
		case strings.HasPrefix(name, "norm."):
			w[name] = v
		}
	}
	cfg := arch.Config{Arch: ArchBytes, NumClasses: 7}
	r := runGolden(t, cfg, w, "nettrans_bytes.io.safetensors", "input")
	r.checkStates(t, "blocks")
	r.checkGrads(t, readGolden(t, "nettrans_bytes.grads.safetensors"))
}
