package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/internal/sharedtest"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/multimodal"
	"github.com/netmamba/netmamba/repr"
)

// f3Golden reads ../shared/golden/name (located from the module root);
// missing data fails the test.
func f3Golden(t testing.TB, name string) map[string]*checkpoint.Tensor {
	t.Helper()
	f, err := checkpoint.ReadSafetensors(f3GoldenPath(t, name))
	if err != nil {
		t.Fatalf("golden tensors missing (CI provides ../shared/golden): %v", err)
	}
	return f.Tensors
}

// f3GoldenPath is the path of ../shared/golden/name from the module root.
func f3GoldenPath(t testing.TB, name string) string { return sharedtest.Path(t, "golden", name) }

// f3Cmp checks |got − want| ≤ abs + rel·|want| element-wise and returns
// the maximum absolute error and the worst ratio to the tolerance.
func f3Cmp(t *testing.T, name string, got, want []float32, abs, rel float64) (maxAbs, worst float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, golden has %d", name, len(got), len(want))
		return math.Inf(1), math.Inf(1)
	}
	bad := -1
	for i, w := range want {
		d := math.Abs(float64(got[i]) - float64(w))
		maxAbs = math.Max(maxAbs, d)
		if r := d / (abs + rel*math.Abs(float64(w))); r > worst {
			worst = r
			if r > 1 && bad < 0 {
				bad = i
			}
		}
	}
	if bad >= 0 {
		t.Errorf("%s: element %d = %g, golden %g (max|d| %.3g, worst ratio to tolerance %.3g)", name, bad, got[bad], want[bad], maxAbs, worst)
	}
	return maxAbs, worst
}

// f3CE is an independent float64 mean cross-entropy with label smoothing
// eps; it also returns d loss / d logits.
func f3CE(logits []float32, labels []int, C int, eps float64) (float64, []float32) {
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
			if c == labels[i] {
				tgt += 1 - eps
			}
			loss -= tgt * lp
			grad[i*C+c] = float32((math.Exp(lp) - tgt) / float64(B))
		}
	}
	return loss / float64(B), grad
}

// fuse3GoldenBatch builds the golden fuse3 input batch from the raw bytes
// (checked against the stored normalised input) and the stored sizes and
// IATs.
func fuse3GoldenBatch(t *testing.T, m *Fuse3, io map[string]*checkpoint.Tensor) (*Fuse3Batch, []int) {
	t.Helper()
	raw := io["bytes_u8"]
	B := raw.Shape[0]
	b := m.NewFuse3Batch(B)
	multimodal.NormalizeBytes(b.Bytes, raw.U8)
	for i, v := range io["input_bytes"].F32 {
		if b.Bytes[i] != v {
			t.Fatalf("normalised byte %d = %g, golden input %g", i, b.Bytes[i], v)
		}
	}
	copy(b.Sizes, io["input_sizes"].F32)
	copy(b.IATs, io["input_iats"].F32)
	labels := make([]int, B)
	for i, y := range io["labels"].I64 {
		labels[i] = int(y)
	}
	return b, labels
}

// TestFuse3Golden checks the fuse3 classifier against the official
// fuse3_mamba_classifier (golden fuse3_cls): logits, CLS sum, flow-0
// states, loss and every stored gradient.
func TestFuse3Golden(t *testing.T) {
	io := f3Golden(t, "fuse3_cls.io.safetensors")
	gg := f3Golden(t, "fuse3_cls.grads.safetensors")
	// The golden file has no netmamba.config: the architecture is inferred.
	m, _, err := LoadFuse3(f3GoldenPath(t, "fuse3_cls.weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Cfg.NumClasses != 7 || m.Cfg.Depth != 4 || m.Cfg.EmbedDim != 256 || m.Cfg.SeqLen != 20 || m.Cfg.Task != "classify" {
		t.Fatalf("inferred config %+v", m.Cfg)
	}
	if m.Layout.Tokens != 443 || m.P.Count() != 1868544+7*256 {
		t.Fatalf("tokens %d, parameters %d", m.Layout.Tokens, m.P.Count())
	}
	b, labels := fuse3GoldenBatch(t, m, io)
	B, C, E, L := b.N, 7, 256, 443
	const fa, fr = 1e-5, 1e-4

	// Eval forward (inference workspace, 2 workers).
	logits := make([]float32, B*C)
	if err := m.Forward(b, logits, m.NewWorkspace(B, 2, false)); err != nil {
		t.Fatal(err)
	}
	d, w := f3Cmp(t, "logits (eval)", logits, io["logits"].F32, fa, fr)
	t.Logf("logits (eval): max|d| %.3g, worst/tol %.3g", d, w)

	// Training forward without drop-path: same logits, saved states.
	tws := m.NewWorkspace(B, 2, true)
	tl := make([]float32, B*C)
	if err := m.ForwardTrain(b, tl, tws, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	f3Cmp(t, "logits (train)", tl, io["logits"].F32, fa, fr)
	cls := make([]float32, B*E)
	for i := 0; i < B; i++ {
		m.Layout.CLSSum(cls[i*E:(i+1)*E], tws.flows[i].enc.Out)
	}
	f0 := tws.flows[0].enc
	for _, c := range []struct {
		name string
		got  []float32
	}{
		{"cls_token", cls},
		{"embed_out", f0.Res[0][:L*E]},
		{"encoder_blocks.0.mixer_out", f0.Hid[0][:L*E]},
		{"encoder_blocks.3.mixer_out", f0.Hid[3][:L*E]},
		{"norm_f_out", f0.Out[:L*E]},
	} {
		d, w := f3Cmp(t, c.name, c.got, io[c.name].F32, fa, fr)
		t.Logf("%s: max|d| %.3g, worst/tol %.3g", c.name, d, w)
	}

	loss, dl := f3CE(tl, labels, C, 0)
	want := float64(io["loss_ce"].F32[0])
	if r := math.Abs(loss-want) / want; r > 1e-5 {
		t.Errorf("loss_ce %.8g, golden %.8g (rel %.3g)", loss, want, r)
	} else {
		t.Logf("loss_ce %.8g, golden %.8g (rel %.3g)", loss, want, r)
	}
	if ls, ok := io["loss_ce_ls0.1"]; ok {
		l, _ := f3CE(tl, labels, C, 0.1)
		if r := math.Abs(l-float64(ls.F32[0])) / float64(ls.F32[0]); r > 1e-5 {
			t.Errorf("loss_ce_ls0.1 %.8g, golden %.8g", l, ls.F32[0])
		}
	}

	g := m.NewGrads()
	if err := m.Backward(dl, tws, g); err != nil {
		t.Fatal(err)
	}
	var worstName string
	var worstAll, maxAll float64
	n := 0
	for _, p := range g.List() {
		want, ok := gg[p.Name]
		if !ok {
			if !strings.HasPrefix(p.Name, "encoder_blocks.") || strings.HasPrefix(p.Name, "encoder_blocks.3.") {
				t.Errorf("golden gradient %s missing", p.Name)
			}
			continue
		}
		n++
		d, w := f3Cmp(t, "grad "+p.Name, p.Data, want.F32, 1e-6, 1e-3)
		maxAll = math.Max(maxAll, d)
		if w > worstAll {
			worstAll, worstName = w, p.Name
		}
	}
	if n != len(gg) {
		t.Errorf("compared %d gradients, golden has %d", n, len(gg))
	}
	t.Logf("%d gradients: max|d| %.3g, worst/tol %.3g (%s)", n, maxAll, worstAll, worstName)
}

// TestFuse3Modalities checks the ablation layouts: the byte-only and
// byte+size models run on the same weights, their token counts, and that
// dropping a modality changes the logits exactly by removing its segment
// (the byte-only model equals the full model's byte segment run alone).
func TestFuse3Modalities(t *testing.T) {
	base := arch.Config{Arch: ArchFuse3, NumClasses: 3, EmbedDim: 16, Depth: 2, DState: 4, ByteLength: 32, Stride: 4, SeqLen: 5}
	full, err := NewFuse3Random(base, Fuse3Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ts := full.Tensors()
	for _, c := range []struct {
		mods   []string
		tokens int
		cls    []int
	}{
		{[]string{"bytes", "sizes", "iats"}, 2*6 + 9, []int{20, 5, 11}},
		{[]string{"bytes", "sizes"}, 6 + 9, []int{14, 5}},
		{[]string{"bytes", "iats"}, 6 + 9, []int{14, 5}},
		{[]string{"bytes"}, 9, []int{8}},
	} {
		cfg := base
		cfg.Modalities = c.mods
		m, err := Fuse3FromTensors(cfg, ts)
		if err != nil {
			t.Fatalf("%v: %v", c.mods, err)
		}
		if m.Layout.Tokens != c.tokens || len(m.Layout.CLS) != len(c.cls) {
			t.Fatalf("%v: %d tokens, CLS %v; want %d, %v", c.mods, m.Layout.Tokens, m.Layout.CLS, c.tokens, c.cls)
		}
		for i, r := range c.cls {
			if m.Layout.CLS[i] != r {
				t.Fatalf("%v: CLS rows %v, want %v", c.mods, m.Layout.CLS, c.cls)
			}
		}
	}
	if _, err := NewFuse3(arch.Config{Arch: ArchFuse3, NumClasses: 3, Modalities: []string{"sizes"}}, Fuse3Options{}); err == nil {
		t.Error("a model without bytes was accepted")
	}
	if _, err := NewFuse3(arch.Config{Arch: ArchFuse3, NumClasses: 3, Modalities: []string{"bytes", "pkts"}}, Fuse3Options{}); err == nil {
		t.Error("an unknown modality was accepted")
	}
}

// TestFuse3ByteOnlyMatchesHandAssembly runs the byte-only ablation and an
// explicit assembly of the same tokens through the same stack: the byte
// tokens are conv + pos_embed[42+t] + byte_indicator, CLS last.
func TestFuse3ByteOnlyMatchesHandAssembly(t *testing.T) {
	cfg := arch.Config{Arch: ArchFuse3, NumClasses: 3, EmbedDim: 16, Depth: 2, DState: 4, ByteLength: 32, Stride: 4, SeqLen: 5, Modalities: []string{"bytes"}}
	m, err := NewFuse3Random(cfg, Fuse3Options{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	E, T, S := 16, 8, 4
	rng := rand.New(rand.NewPCG(3, 4))
	b := m.NewFuse3Batch(2)
	for i := range b.Bytes {
		b.Bytes[i] = float32(rng.IntN(256))/127.5 - 1
	}
	logits := make([]float32, 2*3)
	if err := m.Forward(b, logits, m.NewWorkspace(2, 1, false)); err != nil {
		t.Fatal(err)
	}
	p := m.P
	for i := 0; i < 2; i++ {
		x := make([]float32, (T+1)*E)
		for tk := 0; tk <= T; tk++ {
			for e := 0; e < E; e++ {
				var v float32
				if tk < T {
					v = p.Emb.ByteProjB[e]
					for k := 0; k < S; k++ {
						v += p.Emb.ByteProjW[e*S+k] * b.Bytes[i*32+tk*S+k]
					}
				} else {
					v = p.Emb.ByteCLS[e]
				}
				x[tk*E+e] = v + p.Emb.PosEmbed[(12+tk)*E+e] + p.Emb.ByteInd[e]
			}
		}
		st := m.encoder(p)
		a := newStackActs(st.Dims, 2, T+1, false)
		st.forward(T+1, x, nil, a, newStackScratch(st.Dims, T+1, false), 0)
		h := a.Out[T*E:]
		for c := 0; c < 3; c++ {
			var v float64
			for e := 0; e < E; e++ {
				v += float64(p.HeadW[c*E+e]) * float64(h[e])
			}
			if math.Abs(v-float64(logits[i*3+c])) > 1e-5 {
				t.Errorf("flow %d class %d: logit %g, hand-assembled %g", i, c, logits[i*3+c], v)
			}
		}
	}
}

// TestFuse3Init checks the official fuse3 initialisation statistics and
// its reproducibility.
func TestFuse3Init(t *testing.T) {
	cfg := arch.Config{Arch: ArchFuse3, NumClasses: 7, Task: "classify"}
	m, err := NewFuse3Random(cfg, Fuse3Options{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := NewFuse3Random(cfg, Fuse3Options{}, 7)
	for i, v := range m.P.Flat() {
		if m2.P.Flat()[i] != v {
			t.Fatal("same seed, different parameters")
		}
	}
	std := func(v []float32) (float64, float64) {
		var s, s2, mx float64
		for _, x := range v {
			s += float64(x)
			s2 += float64(x) * float64(x)
			mx = math.Max(mx, math.Abs(float64(x)))
		}
		n := float64(len(v))
		return math.Sqrt(s2/n - (s/n)*(s/n)), mx
	}
	b := m.P.Blocks[0]
	for _, c := range []struct {
		name string
		v    []float32
		std  float64
	}{
		{"in_proj", b.InProjW, 0.02}, {"x_proj", b.XProjW, 0.02}, {"dt_proj", b.DtProjW, 0.02},
		{"out_proj", b.OutProjW, 0.02}, {"head", m.P.HeadW, 0.02}, {"pos_embed", m.P.Emb.PosEmbed, 0.02},
		// lecun_normal: fan_in 4 → std 0.5 (truncation at ±2σ after the 0.8796 correction).
		{"conv1d", b.ConvW, 0.5}, {"byte_embed", m.P.Emb.ByteProjW, 0.5},
	} {
		s, mx := std(c.v)
		if math.Abs(s-c.std)/c.std > 0.1 {
			t.Errorf("%s: std %.4g, want ≈ %.4g", c.name, s, c.std)
		}
		if c.std == 0.5 && mx > 2*0.5/0.8796+1e-6 {
			t.Errorf("%s: |x| max %.4g beyond the ±2σ cut", c.name, mx)
		}
	}
	for _, v := range append(append([]float32{}, b.DtProjB...), b.ConvB...) {
		if v != 0 {
			t.Fatal("fuse3 init: dt_proj.bias and conv1d.bias must be 0")
		}
	}
	if b.ALog[3] != float32(math.Log(4)) || b.D[0] != 1 || b.NormW[0] != 1 || m.P.NormF[0] != 1 {
		t.Error("A_log, D or norm weights not initialised as Mamba")
	}
}

// TestFuse3TensorsErrors checks FromTensors' error reporting and the
// Tensors round trip.
func TestFuse3TensorsErrors(t *testing.T) {
	cfg := arch.Config{Arch: ArchFuse3, NumClasses: 3, EmbedDim: 16, Depth: 1, DState: 4, ByteLength: 16, Stride: 4, SeqLen: 3}
	m, err := NewFuse3Random(cfg, Fuse3Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ts := m.Tensors()
	m2, err := Fuse3FromTensors(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range m.P.Flat() {
		if m2.P.Flat()[i] != v {
			t.Fatal("Tensors/FromTensors round trip changed a value")
		}
	}
	delete(ts, "iat_indicator")
	ts["head.bias"] = &checkpoint.Tensor{DType: "F32", Shape: []int{3}, F32: make([]float32, 3)}
	ts["pos_embed"] = &checkpoint.Tensor{DType: "F32", Shape: []int{1, 5, 16}, F32: make([]float32, 80)}
	_, err = Fuse3FromTensors(cfg, ts)
	if err == nil {
		t.Fatal("bad tensors accepted")
	}
	for _, s := range []string{"iat_indicator", "head.bias", "pos_embed"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

// TestFuse3SetFlow checks the inputs built from a flow view against
// hand-computed values (SPEC §2): frame sizes clamped to [0, 1500] with
// padding 1500, signed sizes x·dir + 1500 clamped to [0, 3000] with
// padding 3000, IATs (1+t)/(2+t) with padding 1.
func TestFuse3SetFlow(t *testing.T) {
	cfg := arch.Config{Arch: ArchFuse3, NumClasses: 2, EmbedDim: 8, Depth: 1, DState: 4, ByteLength: 8, Stride: 4}
	var v repr.View
	v.Bytes[0], v.Bytes[1], v.Bytes[7] = 0, 255, 128
	v.NPackets = 3
	v.Sizes[0], v.Sizes[1], v.Sizes[2] = 60, 1514, 2000
	v.Dirs[0], v.Dirs[1], v.Dirs[2] = 1, -1, -1
	v.IATs[1], v.IATs[2] = 0.5, 3
	for _, signed := range []bool{false, true} {
		m, err := NewFuse3(cfg, Fuse3Options{SignedSizes: signed})
		if err != nil {
			t.Fatal(err)
		}
		b := m.NewFuse3Batch(2)
		if err := m.SetFlow(b, 1, &v); err != nil {
			t.Fatal(err)
		}
		wantSizes := []float32{60, 1500, 1500, 1500}
		if signed {
			wantSizes = []float32{1560, 0, 0, 3000}
		}
		for j, w := range wantSizes {
			if got := b.Sizes[20+j]; got != w {
				t.Errorf("signed %v: size %d = %g, want %g", signed, j, got, w)
			}
		}
		if b.Sizes[39] != wantSizes[3] {
			t.Errorf("signed %v: last padded size %g", signed, b.Sizes[39])
		}
		for j, w := range []float32{0.5, 1.5 / 2.5, 4.0 / 5.0, 1} {
			if math.Abs(float64(b.IATs[20+j]-w)) > 1e-7 {
				t.Errorf("IAT %d = %g, want %g", j, b.IATs[20+j], w)
			}
		}
		if b.Bytes[8] != -1 || b.Bytes[9] != 1 || b.Bytes[15] != float32(128)/255*2-1 || b.Bytes[0] != 0 {
			t.Errorf("bytes %v", b.Bytes)
		}
	}
	cfg.SeqLen = 50
	m, _ := NewFuse3(cfg, Fuse3Options{})
	if err := m.SetFlow(m.NewFuse3Batch(1), 0, &v); err == nil {
		t.Error("sequence length 50 filled from a 20-packet view")
	}
}

// TestFuse3ClassifierGradCheck compares Backward with central finite
// differences of a fixed linear functional of the logits, Σ r·logits, on
// tiny models of every modality choice (the golden case covers only the
// full layout), and checks that eval logits do not depend on the thread
// count.
func TestFuse3ClassifierGradCheck(t *testing.T) {
	for k, mods := range [][]string{{"bytes"}, {"bytes", "sizes"}, {"bytes", "iats"}, nil, nil} {
		depth := 2
		if k == 4 {
			depth = 1 // the eval path special-cases the last block
		}
		cfg := arch.Config{Arch: ArchFuse3, NumClasses: 3, EmbedDim: 8, Depth: depth, DState: 4, ByteLength: 32, Stride: 4, SeqLen: 6, Modalities: mods}
		m, err := NewFuse3Random(cfg, Fuse3Options{}, 3)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(8, 8))
		for _, p := range m.P.List() {
			if !strings.HasSuffix(p.Name, "A_log") {
				for i := range p.Data {
					p.Data[i] += float32(0.1 * rng.NormFloat64())
				}
			}
		}
		B, C := 3, 3
		b := m.NewFuse3Batch(B)
		for i := range b.Bytes {
			b.Bytes[i] = float32(rng.IntN(256))/127.5 - 1
		}
		for i := range b.Sizes {
			b.Sizes[i] = float32(rng.IntN(1501))
			b.IATs[i] = 0.5 + 0.5*rng.Float32()
		}
		r := make([]float32, B*C)
		for i := range r {
			r[i] = float32(rng.NormFloat64())
		}
		ws := m.NewWorkspace(B, 2, true)
		logits := make([]float32, B*C)
		f := func() float64 {
			if err := m.ForwardTrain(b, logits, ws, TrainOptions{}); err != nil {
				t.Fatal(err)
			}
			var s float64
			for i, v := range logits {
				s += float64(r[i]) * float64(v)
			}
			return s
		}
		f()
		e1, e2 := make([]float32, B*C), make([]float32, B*C)
		if err := m.Forward(b, e1, m.NewWorkspace(B, 1, false)); err != nil {
			t.Fatal(err)
		}
		if err := m.Forward(b, e2, m.NewWorkspace(B, 3, false)); err != nil {
			t.Fatal(err)
		}
		for i := range e1 {
			if e1[i] != e2[i] || e1[i] != logits[i] {
				t.Fatalf("%v: logit %d: 1 thread %g, 3 threads %g, training forward %g", mods, i, e1[i], e2[i], logits[i])
			}
		}
		g := m.NewGrads()
		if err := m.Backward(r, ws, g); err != nil {
			t.Fatal(err)
		}
		// Central differences with Richardson extrapolation over h and h/2
		// (O(h⁴) error): byte_indicator and pos_embed shift many tokens at once.
		const h = 1e-2
		cd := func(v *float32, h float32) float64 {
			old := *v
			*v = old + h
			lp := f()
			*v = old - h
			lm := f()
			*v = old
			return (lp - lm) / (2 * float64(h))
		}
		var worst float64
		var worstName string
		for pi, p := range m.P.List() {
			gd := g.List()[pi].Data
			for k := 0; k < 3; k++ {
				j := rng.IntN(len(p.Data))
				fd := (4*cd(&p.Data[j], h/2) - cd(&p.Data[j], h)) / 3
				an := float64(gd[j])
				rr := math.Abs(fd-an) / (3e-4 + 1e-2*math.Abs(an))
				if rr > worst {
					worst, worstName = rr, fmt.Sprintf("%s[%d] an %.4g fd %.4g", p.Name, j, an, fd)
				}
				if rr > 1 {
					t.Errorf("%v %s[%d]: analytic %.6g, finite difference %.6g", mods, p.Name, j, an, fd)
				}
			}
		}
		t.Logf("%v: worst |fd−an|/(3e-4+1e-2|an|) = %.3g (%s)", mods, worst, worstName)
	}
}
