package model

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/netmamba/netmamba/internal/sharedtest"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/arch"
)

// goldenDir locates ../shared/golden next to the module root.
func goldenDir(t testing.TB) string { return sharedtest.Path(t, "golden") }

func readGolden(t testing.TB, name string) map[string]*checkpoint.Tensor {
	t.Helper()
	f, err := checkpoint.ReadSafetensors(filepath.Join(goldenDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return f.Tensors
}

// errStats compares got with golden want: |got−want| <= abs + rel·|want|.
type errStats struct {
	maxAbs, maxRel, worst float64 // worst = max |d|/(abs+rel|want|)
}

func compare(t *testing.T, name string, got []float32, want []float32, abs, rel float64) errStats {
	t.Helper()
	var s errStats
	if len(got) != len(want) {
		t.Errorf("%s: %d values, golden has %d", name, len(got), len(want))
		return s
	}
	bad := -1
	for i, w := range want {
		d := math.Abs(float64(got[i]) - float64(w))
		s.maxAbs = math.Max(s.maxAbs, d)
		if aw := math.Abs(float64(w)); aw > 1e-3 {
			s.maxRel = math.Max(s.maxRel, d/aw)
		}
		if r := d / (abs + rel*math.Abs(float64(w))); r > s.worst {
			s.worst = r
			if r > 1 {
				bad = i
			}
		}
	}
	if bad >= 0 {
		t.Errorf("%s: element %d = %g, golden %g (max|d| %.3g, worst ratio to tolerance %.3g)", name, bad, got[bad], want[bad], s.maxAbs, s.worst)
	}
	return s
}

// transposeCL turns a channels-first golden [C, L] block into (L, C).
func transposeCL(v []float32, C, L int) []float32 {
	o := make([]float32, C*L)
	for c := 0; c < C; c++ {
		for l := 0; l < L; l++ {
			o[l*C+c] = v[c*L+l]
		}
	}
	return o
}

// ce64 is an independent float64 cross-entropy (mean) with label
// smoothing eps; it also returns d loss/d logits.
func ce64(logits []float32, labels []int64, C int, eps float64) (float64, []float32) {
	B := len(labels)
	var loss float64
	grad := make([]float32, B*C)
	for i := 0; i < B; i++ {
		row := logits[i*C : (i+1)*C]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(z)
		for c, v := range row {
			lp := float64(v) - lse
			tgt := eps / float64(C)
			if int64(c) == labels[i] {
				tgt += 1 - eps
			}
			loss -= tgt * lp
			grad[i*C+c] = float32((math.Exp(lp) - tgt) / float64(B))
		}
	}
	return loss / float64(B), grad
}

func netmambaConfig(embed, depth, dtRank int) arch.Config {
	return arch.Config{Arch: "netmamba", Task: "classify", ByteLength: 1600, Stride: 4, EmbedDim: embed, Depth: depth,
		DState: 16, DConv: 4, Expand: 2, DtRank: dtRank, NumClasses: 7}
}

// runClassifierGolden checks logits, losses, states and gradients of a
// classifier case. allFlows says whether the per-layer states are stored
// for all 4 flows (tiny) or flow 0 only (default size).
func runClassifierGolden(t *testing.T, cfg arch.Config, name string, allFlows bool, gradAbs float64) {
	w := readGolden(t, name+".weights.safetensors")
	io := readGolden(t, name+".io.safetensors")
	gr := readGolden(t, name+".grads.safetensors")
	m, err := FromTensors(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	B, C, L, E := 4, 7, m.Tokens+1, m.Cfg.EmbedDim
	x := make([]float32, B*1600)
	NormalizeBytes(io["bytes_u8"].U8, x)
	compare(t, "input", x, io["input"].F32, 0, 0)

	// Inference path, 2 threads.
	logits := make([]float32, B*C)
	if err := m.Forward(x, B, logits, m.NewWorkspace(B, 2, false)); err != nil {
		t.Fatal(err)
	}
	s := compare(t, "logits", logits, io["logits"].F32, 1e-5, 1e-4)
	t.Logf("%s logits: max|d| %.3g max rel %.3g", name, s.maxAbs, s.maxRel)

	// Training path (no drop-path): states, losses, gradients.
	ws := m.NewWorkspace(B, 2, true)
	logits2 := make([]float32, B*C)
	if err := m.ForwardTrain(x, B, logits2, ws, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range logits {
		if logits[i] != logits2[i] {
			t.Fatalf("ForwardTrain logits[%d] %g != Forward %g", i, logits2[i], logits[i])
		}
	}
	nf := 1
	if allFlows {
		nf = B
	}
	gather := func(f func(i int) []float32) []float32 {
		var o []float32
		for i := 0; i < nf; i++ {
			o = append(o, f(i)[:L*E]...)
		}
		return o
	}
	worstState := errStats{}
	check := func(key string, got []float32) {
		want := io[key].F32
		s := compare(t, key, got, want, 1e-5, 1e-4)
		worstState.maxAbs = math.Max(worstState.maxAbs, s.maxAbs)
		worstState.maxRel = math.Max(worstState.maxRel, s.maxRel)
	}
	check("embed_out", gather(func(i int) []float32 { return ws.flows[i].enc.Res[0] }))
	for l := 0; l < cfg.Depth; l++ {
		check(fmt.Sprintf("blocks.%d.mixer_out", l), gather(func(i int) []float32 { return ws.flows[i].enc.Hid[l] }))
		if _, ok := io[fmt.Sprintf("blocks.%d.residual", l)]; ok {
			check(fmt.Sprintf("blocks.%d.residual", l), gather(func(i int) []float32 { return ws.flows[i].enc.Res[l] }))
		}
	}
	check("norm_f_out", gather(func(i int) []float32 { return ws.flows[i].enc.Out }))
	t.Logf("%s states: max|d| %.3g max rel %.3g", name, worstState.maxAbs, worstState.maxRel)

	labels := io["labels"].I64
	loss, dl := ce64(logits, labels, C, 0)
	lossLS, _ := ce64(logits, labels, C, 0.1)
	for _, c := range []struct {
		key string
		v   float64
	}{{"loss_ce", loss}, {"loss_ce_ls0.1", lossLS}} {
		want := float64(io[c.key].F32[0])
		rel := math.Abs(c.v-want) / math.Abs(want)
		t.Logf("%s %s: %.7g golden %.7g rel %.2g", name, c.key, c.v, want, rel)
		if rel > 1e-5 {
			t.Errorf("%s: %g, golden %g", c.key, c.v, want)
		}
	}

	g := m.NewGrads()
	if err := m.Backward(dl, ws, g); err != nil {
		t.Fatal(err)
	}
	checkGrads(t, name, g, gr, gradAbs)
}

func checkGrads(t *testing.T, name string, g *Params, gr map[string]*checkpoint.Tensor, gradAbs float64) {
	t.Helper()
	var worst errStats
	worstName := ""
	for key, want := range gr {
		p := g.Get(key)
		if p == nil {
			t.Errorf("golden gradient %s has no parameter", key)
			continue
		}
		s := compare(t, "grad "+key, p.Data, want.F32, gradAbs, 1e-3)
		worst.maxAbs = math.Max(worst.maxAbs, s.maxAbs)
		worst.maxRel = math.Max(worst.maxRel, s.maxRel)
		if s.worst > worst.worst {
			worst.worst, worstName = s.worst, key
		}
	}
	t.Logf("%s gradients (%d tensors): max|d| %.3g, max rel (|g|>1e-3) %.3g, worst ratio to tolerance %.3g (%s)",
		name, len(gr), worst.maxAbs, worst.maxRel, worst.worst, worstName)
}

func TestGoldenNetMambaTiny(t *testing.T) {
	cfg := netmambaConfig(32, 2, 2)
	runClassifierGolden(t, cfg, "netmamba_tiny", true, 1e-6)

	// Block-0 mixer internals, flow 0.
	w := readGolden(t, "netmamba_tiny.weights.safetensors")
	io := readGolden(t, "netmamba_tiny.io.safetensors")
	m, err := FromTensors(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	L, E := m.Tokens+1, 32
	d := encoderDims(m.Cfg)
	x := make([]float32, 1600)
	NormalizeBytes(io["bytes_u8"].U8[:1600], x)
	emb := make([]float32, L*E)
	m.embed(x, emb)
	ss := newStackScratch(d, L, false)
	rs := make([]float32, L*E)
	for i := 0; i < 4; i++ { // blocks.0.norm_out holds all flows
		NormalizeBytes(io["bytes_u8"].U8[i*1600:(i+1)*1600], x)
		m.embed(x, emb)
		kernelsNorm(L, E, emb, m.P.Blocks[0].NormW, rs, ss.rstd)
		compare(t, fmt.Sprintf("blocks.0.norm_out[%d]", i), rs, io["blocks.0.norm_out"].F32[i*L*E:(i+1)*L*E], 1e-5, 1e-4)
		if i == 0 {
			copy(ss.nrm, rs)
		}
	}
	out := make([]float32, L*E)
	mixerForward(d, &m.P.Blocks[0], L, ss.nrm, out, 0, ss.mix)
	mx := ss.mix
	di, R, N, xd := d.DInner, d.DtRank, d.DState, d.XDbl()
	col := func(src []float32, ld, off, n int) []float32 {
		o := make([]float32, L*n)
		for l := 0; l < L; l++ {
			copy(o[l*n:(l+1)*n], src[l*ld+off:l*ld+off+n])
		}
		return o
	}
	internal := []struct {
		key  string
		got  []float32
		rows int
	}{
		{"blocks.0.mixer.xz", mx.xz, 2 * di},
		{"blocks.0.mixer.x_conv_silu", mx.xs, di},
		{"blocks.0.mixer.dt_raw", mx.dtraw, di},
		{"blocks.0.mixer.delta", mx.delta, di},
		{"blocks.0.mixer.B", col(mx.xdbl, xd, R, N), N},
		{"blocks.0.mixer.C", col(mx.xdbl, xd, R+N, N), N},
		{"blocks.0.mixer.y_gated", mx.yg, di},
	}
	for _, c := range internal {
		s := compare(t, c.key, c.got[:L*c.rows], transposeCL(io[c.key].F32, c.rows, L), 1e-5, 1e-4)
		t.Logf("%s: max|d| %.3g", c.key, s.maxAbs)
	}
	compare(t, "blocks.0.mixer.A", mx.A, io["blocks.0.mixer.A"].F32, 1e-6, 1e-6)
	compare(t, "blocks.0.mixer.out", out, io["blocks.0.mixer.out"].F32, 1e-5, 1e-4)
}

func TestGoldenNetMambaDefault(t *testing.T) {
	runClassifierGolden(t, netmambaConfig(256, 4, 16), "netmamba_cls", false, 1e-6)
}

func TestGoldenNetMambaMAE(t *testing.T) {
	enc := readGolden(t, "netmamba_cls.weights.safetensors")
	dec := readGolden(t, "netmamba_mae.weights.safetensors")
	io := readGolden(t, "netmamba_mae.io.safetensors")
	gr := readGolden(t, "netmamba_mae.grads.safetensors")
	ts := map[string]*checkpoint.Tensor{}
	for k, v := range enc {
		if k != "head.weight" && k != "head.bias" {
			ts[k] = v
		}
	}
	for k, v := range dec {
		ts[k] = v
	}
	cfg := arch.Config{Arch: "netmamba", Task: "pretrain"}
	m, err := FromTensors(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	B, T, K, S := 4, m.Tokens, m.Kept(), 4
	if K != 39 {
		t.Fatalf("kept tokens %d, want 39", K)
	}
	x := make([]float32, B*1600)
	NormalizeBytes(io["bytes_u8"].U8, x)
	ws := m.NewWorkspace(B, 2, true)
	pred := make([]float32, B*T*S)
	loss, err := m.ForwardMAE(x, io["noise"].F32, B, ws, TrainOptions{}, pred)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < B; i++ {
		for r := 0; r < K; r++ {
			if int64(ws.flows[i].mae.keep[r]) != io["ids_keep"].I64[i*K+r] {
				t.Fatalf("flow %d ids_keep[%d] = %d, golden %d", i, r, ws.flows[i].mae.keep[r], io["ids_keep"].I64[i*K+r])
			}
		}
	}
	want := float64(io["loss"].F32[0])
	rel := math.Abs(float64(loss)-want) / want
	t.Logf("mae loss %.7g golden %.7g rel %.2g", loss, want, rel)
	if rel > 1e-5 {
		t.Errorf("mae loss %g, golden %g", loss, want)
	}
	s := compare(t, "pred", pred, io["pred"].F32, 1e-5, 1e-4)
	t.Logf("mae pred: max|d| %.3g max rel %.3g", s.maxAbs, s.maxRel)
	E, Dd := 256, 128
	all := func(f func(i int) []float32, n int) []float32 {
		var o []float32
		for i := 0; i < B; i++ {
			o = append(o, f(i)[:n]...)
		}
		return o
	}
	n := (K + 1) * E
	var worst errStats
	keep := func(s errStats) {
		worst.maxAbs = math.Max(worst.maxAbs, s.maxAbs)
		worst.maxRel = math.Max(worst.maxRel, s.maxRel)
	}
	keep(compare(t, "enc.embed_out", all(func(i int) []float32 { return ws.flows[i].mae.enc.Res[0] }, n), io["enc.embed_out"].F32, 1e-5, 1e-4))
	for l := 0; l < 4; l++ {
		key := fmt.Sprintf("enc.blocks.%d.mixer_out", l)
		keep(compare(t, key, all(func(i int) []float32 { return ws.flows[i].mae.enc.Hid[l] }, n), io[key].F32, 1e-5, 1e-4))
	}
	keep(compare(t, "enc.norm_f_out", all(func(i int) []float32 { return ws.flows[i].mae.enc.Out }, n), io["enc.norm_f_out"].F32, 1e-5, 1e-4))
	f0 := ws.flows[0].mae.dec
	nd := (T + 1) * Dd
	keep(compare(t, "dec.embed_out", f0.Res[0][:nd], io["dec.embed_out"].F32, 1e-5, 1e-4))
	for l := 0; l < 2; l++ {
		key := fmt.Sprintf("dec.blocks.%d.mixer_out", l)
		keep(compare(t, key, f0.Hid[l][:nd], io[key].F32, 1e-5, 1e-4))
	}
	t.Logf("mae states: max|d| %.3g max rel %.3g", worst.maxAbs, worst.maxRel)
	g := m.NewGrads()
	if err := m.BackwardMAE(ws, g); err != nil {
		t.Fatal(err)
	}
	checkGrads(t, "netmamba_mae", g, gr, 1e-6)
}
