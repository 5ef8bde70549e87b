package model

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/multimodal"
)

// fuse3NameFromNetMamba maps an official NetMamba MAE parameter name to
// the fuse3 pre-training name of the same layer ("" for pos_embed, whose
// rows move).
func fuse3NameFromNetMamba(n string) string {
	switch {
	case n == "cls_token":
		return "byte_cls_token"
	case n == "mask_token":
		return "byte_mask_token"
	case n == "decoder_pos_embed":
		return "byte_decoder_pos_embed"
	case n == "pos_embed":
		return ""
	case strings.HasPrefix(n, "patch_embed."):
		return "byte_embed." + strings.TrimPrefix(n, "patch_embed.")
	case strings.HasPrefix(n, "blocks."):
		return "encoder_" + n
	case strings.HasPrefix(n, "decoder_blocks."), strings.HasPrefix(n, "decoder_embed."), strings.HasPrefix(n, "decoder_pred."):
		return "byte_" + n
	}
	return n // norm_f.weight, decoder_norm_f.weight
}

// TestFuse3PretrainByteMAEGolden checks the byte branch of fuse3
// pre-training against the official NetMamba MAE golden (netmamba_mae):
// with only the byte modality, byte_indicator = 0 and the NetMamba
// weights under their fuse3 names (pos_embed in rows 42..442), fuse3's
// byte MAE is exactly NetMamba's, so loss, predictions and gradients must
// match the official tensors.
func TestFuse3PretrainByteMAEGolden(t *testing.T) {
	enc := f3Golden(t, "netmamba_cls.weights.safetensors")
	decW := f3Golden(t, "netmamba_mae.weights.safetensors")
	io := f3Golden(t, "netmamba_mae.io.safetensors")
	gg := f3Golden(t, "netmamba_mae.grads.safetensors")
	m, err := NewFuse3(arch.Config{Arch: ArchFuse3, Task: "pretrain", Modalities: []string{"bytes"}}, Fuse3Options{})
	if err != nil {
		t.Fatal(err)
	}
	E, P0 := 256, 42
	set := func(name string, v []float32) {
		if name == "" {
			copy(m.P.Emb.PosEmbed[P0*E:], v)
			return
		}
		p := m.P.Get(name)
		if p == nil || len(p.Data) != len(v) {
			t.Fatalf("no fuse3 parameter %s of %d values", name, len(v))
		}
		copy(p.Data, v)
	}
	for n, ts := range enc {
		if !strings.HasPrefix(n, "head.") {
			set(fuse3NameFromNetMamba(n), ts.F32)
		}
	}
	for n, ts := range decW {
		set(fuse3NameFromNetMamba(n), ts.F32)
	}
	B, T := 4, 400
	b := m.NewFuse3Batch(B)
	multimodal.NormalizeBytes(b.Bytes, io["bytes_u8"].U8)
	ws := m.NewWorkspace(B, 2, true)
	losses, err := m.ForwardPretrain(b, &Fuse3Noise{Bytes: io["noise"].F32}, ws, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := io["loss"].F32[0]
	if r := math.Abs(float64(losses.Bytes-want)) / float64(want); r > 1e-5 || losses.Total != losses.Bytes || losses.Sizes != 0 || losses.IATs != 0 {
		t.Errorf("losses %+v, golden byte loss %.8g (rel %.3g)", losses, want, r)
	} else {
		t.Logf("byte loss %.8g, golden %.8g (rel %.3g)", losses.Bytes, want, r)
	}
	for i := 0; i < B; i++ {
		for r, j := range ws.flows[i].pre.keep {
			if int64(j) != io["ids_keep"].I64[i*39+r] {
				t.Fatalf("flow %d: kept token %d is %d, golden %d", i, r, j, io["ids_keep"].I64[i*39+r])
			}
		}
	}
	pred := make([]float32, 0, B*T*4)
	for i := 0; i < B; i++ {
		pred = append(pred, ws.flows[i].pre.pred...)
	}
	d, w := f3Cmp(t, "pred", pred, io["pred"].F32, 1e-5, 1e-4)
	t.Logf("pred: max|d| %.3g, worst/tol %.3g", d, w)
	d, w = f3Cmp(t, "enc.norm_f_out flow 0", ws.flows[0].enc.Out[:40*E], io["enc.norm_f_out"].F32[:40*E], 1e-5, 1e-4)
	t.Logf("enc.norm_f_out: max|d| %.3g, worst/tol %.3g", d, w)

	g := m.NewGrads()
	if err := m.BackwardPretrain(ws, g); err != nil {
		t.Fatal(err)
	}
	var worst, maxD float64
	var worstName string
	for n, want := range gg {
		var got []float32
		if fn := fuse3NameFromNetMamba(n); fn == "" {
			got = g.Emb.PosEmbed[P0*E:]
		} else {
			got = g.Get(fn).Data
		}
		d, w := f3Cmp(t, "grad "+n, got, want.F32, 1e-6, 1e-3)
		maxD = math.Max(maxD, d)
		if w > worst {
			worst, worstName = w, n
		}
	}
	t.Logf("%d gradients: max|d| %.3g, worst/tol %.3g (%s)", len(gg), maxD, worst, worstName)
	// byte_indicator is added to every byte token: its gradient is the
	// sum of the byte rows' pos_embed gradients.
	sum := make([]float32, E)
	gp := gg["pos_embed"].F32
	for r := 0; r <= T; r++ {
		for e := 0; e < E; e++ {
			sum[e] += gp[r*E+e]
		}
	}
	f3Cmp(t, "grad byte_indicator", g.Emb.ByteInd, sum, 1e-5, 1e-3)
	for _, v := range g.Emb.PosEmbed[:P0*E] {
		if v != 0 {
			t.Fatal("byte-only pre-training put a gradient on the size/IAT pos_embed rows")
		}
	}
}

// tinyFuse3Pretrain is a small full-modality pre-training model with
// non-trivial weights (official init plus N(0, 0.1²) noise).
func tinyFuse3Pretrain(t *testing.T, mods []string) *Fuse3 {
	t.Helper()
	cfg := arch.Config{Arch: ArchFuse3, Task: "pretrain", EmbedDim: 8, Depth: 2, DState: 4, ByteLength: 32, Stride: 4,
		SeqLen: 20, DecoderEmbedDim: 8, DecoderDepth: 2, MaskRatio: 0.5, Modalities: mods}
	m, err := NewFuse3Random(cfg, Fuse3Options{}, 5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(6, 7))
	for _, p := range m.P.List() {
		if strings.HasSuffix(p.Name, "A_log") {
			continue
		}
		for i := range p.Data {
			p.Data[i] += float32(0.1 * rng.NormFloat64())
		}
	}
	return m
}

// tinyBatch draws inputs: bytes, sizes (ids, padded slots 1500) and
// transformed IATs (padding 1).
func tinyBatch(m *Fuse3, n int, seed uint64) *Fuse3Batch {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := m.NewFuse3Batch(n)
	for i := range b.Bytes {
		b.Bytes[i] = float32(rng.IntN(256))/127.5 - 1
	}
	for i := 0; i < n; i++ {
		np := 3 + rng.IntN(18)
		for j := 0; j < m.Cfg.SeqLen; j++ {
			k := i*m.Cfg.SeqLen + j
			if j >= np {
				b.Sizes[k], b.IATs[k] = 1500, 1
				continue
			}
			b.Sizes[k] = float32(40 + rng.IntN(1461))
			b.IATs[k] = multimodal.IATTransform(rng.ExpFloat64() * 0.05)
		}
	}
	return b
}

func tinyNoise(m *Fuse3, n int, seed uint64) *Fuse3Noise {
	rng := rand.New(rand.NewPCG(seed, 2))
	f := func(k int) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = rng.Float32()
		}
		return v
	}
	return &Fuse3Noise{Bytes: f(n * m.Tokens), Sizes: f(n * m.Cfg.SeqLen), IATs: f(n * m.Cfg.SeqLen)}
}

// TestFuse3PretrainMasking checks the masking counts and positions
// (exactly 3 of 20 sizes and IATs, the largest noise values, padded slots
// included) and, against an independent path, the size and IAT losses:
// the encoder is causal, so the pre-training encoder's first 42 rows equal
// the classifier's on the same masked sequences, and the losses follow
// from those rows and the prediction heads.
func TestFuse3PretrainMasking(t *testing.T) {
	m := tinyFuse3Pretrain(t, nil)
	B, sl, E := 3, 20, 8
	b := tinyBatch(m, B, 11)
	noise := tinyNoise(m, B, 12)
	ws := m.NewWorkspace(B, 2, true)
	losses, err := m.ForwardPretrain(b, noise, ws, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.SeqMasked() != 3 || m.preEncTokens() != 42+4+1 {
		t.Fatalf("masked %d, encoder tokens %d", m.SeqMasked(), m.preEncTokens())
	}
	// The classifier over the same encoder weights.
	ccfg := m.Cfg
	ccfg.Task, ccfg.NumClasses = "classify", 2
	cm, err := NewFuse3(ccfg, Fuse3Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cm.LoadEncoder(m.Tensors()); err != nil {
		t.Fatal(err)
	}
	cb := cm.NewFuse3Batch(B)
	copy(cb.Bytes, b.Bytes)
	var wantSize, wantIAT float64
	for i := 0; i < B; i++ {
		pf := ws.flows[i].pre
		for _, c := range []struct {
			mask  []int
			noise []float32
		}{{pf.sizeMask, noise.Sizes[i*sl : (i+1)*sl]}, {pf.iatMask, noise.IATs[i*sl : (i+1)*sl]}} {
			idx := make([]int, sl)
			for j := range idx {
				idx[j] = j
			}
			sort.Slice(idx, func(a, b int) bool { return c.noise[idx[a]] > c.noise[idx[b]] })
			top := append([]int(nil), idx[:3]...)
			sort.Ints(top)
			for k := range top {
				if c.mask[k] != top[k] {
					t.Fatalf("flow %d: masked %v, the 3 largest noise values are at %v", i, c.mask, top)
				}
			}
		}
		for j := 0; j < sl; j++ {
			cb.Sizes[i*sl+j], cb.IATs[i*sl+j] = b.Sizes[i*sl+j], b.IATs[i*sl+j]
		}
		for _, j := range pf.sizeMask {
			cb.Sizes[i*sl+j] = 1502
		}
		for _, j := range pf.iatMask {
			cb.IATs[i*sl+j] = 0
		}
	}
	cws := cm.NewWorkspace(B, 1, true)
	if err := cm.ForwardTrain(cb, make([]float32, B*2), cws, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < B; i++ {
		h := cws.flows[i].enc.Out
		f3Cmp(t, "encoder rows 0-41", ws.flows[i].enc.Out[:42*E], h[:42*E], 1e-6, 1e-5)
		pf := ws.flows[i].pre
		for _, j := range pf.sizeMask {
			hr := h[j*E : (j+1)*E]
			lg := make([]float64, 1503)
			mx := math.Inf(-1)
			for c := range lg {
				v := float64(m.P.SizePredB[c])
				for e, x := range hr {
					v += float64(m.P.SizePredW[c*E+e]) * float64(x)
				}
				lg[c], mx = v, math.Max(mx, v)
			}
			var z float64
			for _, v := range lg {
				z += math.Exp(v - mx)
			}
			y := int(b.Sizes[i*sl+j])
			wantSize += mx + math.Log(z) - lg[y]
		}
		for _, j := range pf.iatMask {
			hr := h[(21+j)*E : (22+j)*E]
			v := float64(m.P.IATPredB[0])
			for e, x := range hr {
				v += float64(m.P.IATPredW[e]) * float64(x)
			}
			d := v - float64(b.IATs[i*sl+j])
			wantIAT += d * d
		}
	}
	wantSize /= float64(3 * B)
	wantIAT /= float64(3 * B)
	if math.Abs(float64(losses.Sizes)-wantSize) > 1e-5*wantSize || math.Abs(float64(losses.IATs)-wantIAT) > 1e-5*wantIAT+1e-7 {
		t.Errorf("losses %+v; independent size CE %.7g, IAT MSE %.7g", losses, wantSize, wantIAT)
	}
	if losses.Total != losses.Bytes+losses.Sizes+losses.IATs || !(losses.Bytes > 0) {
		t.Errorf("total %g ≠ %g + %g + %g", losses.Total, losses.Bytes, losses.Sizes, losses.IATs)
	}
}

// TestFuse3PretrainGradCheck compares BackwardPretrain with central finite
// differences of the total loss on a tiny model (fixed masking noise,
// no drop-path), for sampled entries of every parameter tensor, for the
// full model and the byte+size ablation.
func TestFuse3PretrainGradCheck(t *testing.T) {
	for _, mods := range [][]string{nil, {"bytes", "sizes"}} {
		m := tinyFuse3Pretrain(t, mods)
		B := 2
		b := tinyBatch(m, B, 21)
		noise := tinyNoise(m, B, 22)
		ws := m.NewWorkspace(B, 2, true)
		loss := func() float64 {
			l, err := m.ForwardPretrain(b, noise, ws, TrainOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return float64(l.Total)
		}
		loss()
		g := m.NewGrads()
		if err := m.BackwardPretrain(ws, g); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(9, 9))
		const h = 1e-2
		var worst float64
		var worstName string
		checked := 0
		for pi, p := range m.P.List() {
			gd := g.List()[pi].Data
			for k := 0; k < 3; k++ {
				j := rng.IntN(len(p.Data))
				if p.Name == "pos_embed" && k == 0 {
					j = 3 * 8 // a size row
				}
				old := p.Data[j]
				p.Data[j] = old + h
				lp := loss()
				p.Data[j] = old - h
				lm := loss()
				p.Data[j] = old
				fd := (lp - lm) / (2 * h)
				an := float64(gd[j])
				r := math.Abs(fd-an) / (3e-4 + 1e-2*math.Abs(an))
				if r > worst {
					worst, worstName = r, p.Name
				}
				if r > 1 {
					t.Errorf("%v %s[%d]: analytic %.6g, finite difference %.6g", mods, p.Name, j, an, fd)
				}
				checked++
			}
		}
		t.Logf("%v: %d entries, worst |fd−an|/(3e-4+1e-2|an|) = %.3g (%s)", mods, checked, worst, worstName)
	}
}

// TestFuse3PretrainToClassifier checks that a pre-trained model's encoder
// loads into the classifier by name (decoder tensors ignored, head kept)
// and that loading the whole pre-training state as a classifier fails
// with a clear error.
func TestFuse3PretrainToClassifier(t *testing.T) {
	m := tinyFuse3Pretrain(t, nil)
	ts := m.Tensors()
	ccfg := m.Cfg
	ccfg.Task, ccfg.NumClasses = "classify", 4
	c, err := NewFuse3Random(ccfg, Fuse3Options{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	head := append([]float32(nil), c.P.HeadW...)
	if err := c.LoadEncoder(ts); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range c.P.List() {
		if p.Name == "head.weight" {
			for i, v := range p.Data {
				if v != head[i] {
					t.Fatal("LoadEncoder changed the head")
				}
			}
			continue
		}
		src := ts[p.Name]
		for i, v := range p.Data {
			if v != src.F32[i] {
				t.Fatalf("%s[%d] = %g, pre-trained %g", p.Name, i, v, src.F32[i])
			}
		}
		n++
	}
	if n != len(c.P.List())-1 {
		t.Fatalf("%d encoder tensors loaded", n)
	}
	if _, err := Fuse3FromTensors(ccfg, ts); err == nil || !strings.Contains(err.Error(), "unexpected tensors") {
		t.Errorf("loading a pre-training state as a classifier: %v", err)
	}
	delete(ts, "encoder_blocks.1.mixer.D")
	if err := c.LoadEncoder(ts); err == nil || !strings.Contains(err.Error(), "encoder_blocks.1.mixer.D") {
		t.Errorf("missing encoder tensor: %v", err)
	}
	// Training mode with drop-path and drawn noise runs and is seeded.
	b := tinyBatch(m, 2, 5)
	ws := m.NewWorkspace(2, 2, true)
	l1, err := m.ForwardPretrain(b, nil, ws, TrainOptions{DropPath: 0.1, DropRate: 0.1, Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.BackwardPretrain(ws, m.NewGrads()); err != nil {
		t.Fatal(err)
	}
	l2, _ := m.ForwardPretrain(b, nil, ws, TrainOptions{DropPath: 0.1, DropRate: 0.1, Rand: rand.New(rand.NewPCG(1, 2))})
	if l1 != l2 || !(l1.Total > 0) {
		t.Errorf("seeded pre-training losses %+v then %+v", l1, l2)
	}
	if _, err := m.ForwardPretrain(b, nil, ws, TrainOptions{}); err == nil {
		t.Error("pre-training without noise or Rand accepted")
	}
	b.Sizes[3] = 1503
	if _, err := m.ForwardPretrain(b, tinyNoise(m, 2, 1), ws, TrainOptions{}); err == nil {
		t.Error("size id 1503 accepted")
	}
}

// TestFuse3PretrainCheckpoint saves a signed-size pre-training model
// without netmamba metadata and reloads it: the architecture (task,
// decoder, sequence length) is inferred from the tensors, the signed size
// vocabulary from size_decoder_pred, and every value survives.
func TestFuse3PretrainCheckpoint(t *testing.T) {
	cfg := arch.Config{Arch: ArchFuse3, Task: "pretrain", EmbedDim: 8, Depth: 2, DState: 4, ByteLength: 32, Stride: 4,
		SeqLen: 20, DecoderEmbedDim: 8, DecoderDepth: 1}
	m, err := NewFuse3Random(cfg, Fuse3Options{SignedSizes: true}, 4)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pre.safetensors")
	if err := checkpoint.WriteSafetensors(path, &checkpoint.File{Tensors: m.Tensors()}, checkpoint.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _, err := LoadFuse3(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cfg.Task != "pretrain" || got.Cfg.DecoderDepth != 1 || got.Cfg.SeqLen != 20 || got.Cfg.ByteLength != 32 || !got.Opt.SignedSizes || got.Opt.MaskID() != 3002 {
		t.Fatalf("reloaded config %+v, options %+v", got.Cfg, got.Opt)
	}
	for i, v := range m.P.Flat() {
		if got.P.Flat()[i] != v {
			t.Fatalf("value %d changed", i)
		}
	}
}
