package nettrans

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
)

// tinyBatch draws a random batch for a (small) model.
func tinyBatch(m *Model, n int, r *rand.Rand) (*Batch, []int) {
	b := &Batch{N: n, Bytes: make([]float32, n*m.d.byteLen), Sizes: make([]float32, n*max(m.d.seqLen, 1)), IATs: make([]float32, n*max(m.d.seqLen, 1))}
	for i := range b.Bytes {
		b.Bytes[i] = float32(r.IntN(256))/127.5 - 1
	}
	for i := range b.Sizes {
		b.Sizes[i] = float32(r.IntN(1501))
		b.IATs[i] = 0.5 + 0.5*float32(r.Float64())
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = r.IntN(m.d.classes)
	}
	return b, labels
}

func tinyConfigs() []arch.Config {
	return []arch.Config{
		{Arch: ArchBytes, EmbedDim: 8, NumHeads: 2, Depth: 2, ByteLength: 24, Stride: 4, NumClasses: 3},
		{Arch: ArchFuse3, EmbedDim: 8, NumHeads: 2, Depth: 2, ByteLength: 24, Stride: 4, SeqLen: 3, NumClasses: 3},
		{Arch: ArchFuse3, EmbedDim: 8, NumHeads: 2, Depth: 2, ByteLength: 24, Stride: 4, SeqLen: 3, NumClasses: 3,
			Modalities: []string{"bytes", "sizes"}},
	}
}

// TestGradientsFiniteDifferences checks the gradient of every parameter
// tensor (including the 2-D block weights the golden files omit) against
// central differences of the loss along a random direction, on tiny
// models whose weights are all randomised (LayerNorm weights ≠ 1, biases
// ≠ 0) so every term of the backward is exercised.
func TestGradientsFiniteDifferences(t *testing.T) {
	for ci, cfg := range tinyConfigs() {
		r := rand.New(rand.NewPCG(11, 12))
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := range m.P.buf {
			m.P.buf[i] = float32(r.NormFloat64() * 0.5)
		}
		b, labels := tinyBatch(m, 3, r)
		ws := m.NewWorkspace(2, true)
		g := m.NewGrads()
		logits := make([]float32, 3*m.d.classes)
		opt := TrainOptions{LabelSmoothing: 0.1}
		if ci == 1 {
			// fixed masks (same seed and flow index) make the loss a
			// deterministic function of the weights
			opt.Dropout, opt.Seed = 0.2, 77
		}
		if _, err := m.ForwardBackward(b, labels, opt, logits, g, ws); err != nil {
			t.Fatal(err)
		}
		lossAt := func() float64 {
			l, err := m.ForwardBackward(b, labels, opt, logits, m.NewGrads(), ws)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		for pi, p := range m.P.List() {
			dir := make([]float32, len(p.Data))
			var analytic float64
			for i := range dir {
				dir[i] = float32(r.NormFloat64())
				analytic += float64(dir[i]) * float64(g.List()[pi].Data[i])
			}
			const eps = 1e-2
			orig := append([]float32(nil), p.Data...)
			for i := range p.Data {
				p.Data[i] = orig[i] + eps*dir[i]
			}
			lp := lossAt()
			for i := range p.Data {
				p.Data[i] = orig[i] - eps*dir[i]
			}
			lm := lossAt()
			copy(p.Data, orig)
			numeric := (lp - lm) / (2 * eps)
			if math.Abs(numeric-analytic) > 2e-3+2e-2*math.Abs(numeric) {
				t.Errorf("%s %v %s: gradient·v %.6g, finite difference %.6g", cfg.Arch, cfg.Modalities, p.Name, analytic, numeric)
			}
		}
	}
}

func TestThreadsDeterminismAndAgreement(t *testing.T) {
	cfg := tinyConfigs()[1]
	m, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	b, labels := tinyBatch(m, 7, r)
	run := func(threads int) ([]float32, *Params, float64) {
		lg := make([]float32, 7*3)
		g := m.NewGrads()
		l, err := m.ForwardBackward(b, labels, TrainOptions{}, lg, g, m.NewWorkspace(threads, true))
		if err != nil {
			t.Fatal(err)
		}
		return lg, g, l
	}
	l1, g1, loss1 := run(1)
	l3, g3, loss3 := run(3)
	l3b, g3b, loss3b := run(3)
	for i := range l1 {
		if l1[i] != l3[i] {
			t.Fatalf("logit %d differs between 1 and 3 threads: %g vs %g", i, l1[i], l3[i])
		}
	}
	if loss1 != loss3 || loss3 != loss3b {
		t.Fatalf("losses %g %g %g", loss1, loss3, loss3b)
	}
	for i := range g3.buf {
		if g3.buf[i] != g3b.buf[i] {
			t.Fatalf("gradient %d not reproducible with 3 threads", i)
		}
		if d := math.Abs(float64(g1.buf[i] - g3.buf[i])); d > 1e-6+1e-5*math.Abs(float64(g1.buf[i])) {
			t.Fatalf("gradient %d: 1 thread %g, 3 threads %g", i, g1.buf[i], g3.buf[i])
		}
	}
	_ = l3b
}

func TestParameterCountsAndNames(t *testing.T) {
	m, err := New(arch.Config{Arch: ArchFuse3, NumClasses: 7}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// hand count: pos 443·192 + 6·192 + conv 192·4+192 + 4 blocks ·
	// (4·192² + 192 + 4·192 + 1536·192 + 1536 + 192·768 + 192) + norm 384 + head 7·192
	want := 443*192 + 6*192 + 192*4 + 192 + 4*(4*192*192+192+4*192+1536*192+1536+192*768+192) + 384 + 7*192
	if m.P.Count() != want || want != 2458944 {
		t.Fatalf("fuse3 parameters %d, want %d", m.P.Count(), want)
	}
	golden := readGolden(t, "fuse3_nettrans.weights.safetensors")
	if len(golden) != len(m.P.List()) {
		t.Fatalf("%d parameters, golden state_dict has %d", len(m.P.List()), len(golden))
	}
	for _, p := range m.P.List() {
		gt, ok := golden[p.Name]
		if !ok || !sameShape(gt.Shape, p.Shape) || len(gt.Shape) != len(p.Shape) {
			t.Fatalf("%s %v not in the golden state_dict with that shape", p.Name, p.Shape)
		}
	}
	mb, err := New(arch.Config{Arch: ArchBytes, NumClasses: 7}, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantB := 401*192 + 192 + 192*4 + 192 + 4*(4*192*192+192+4*192+1536*192+1536+192*768+192) + 384 + 7*192 + 7
	if mb.P.Count() != wantB {
		t.Fatalf("bytes parameters %d, want %d", mb.P.Count(), wantB)
	}
	// fused q|k|v view really is to_q, to_k, to_v
	b := &m.P.Blocks[2]
	b.KW[5] = 42
	if b.QKVW[192*192+5] != 42 || &b.QKVW[0] != &b.QW[0] || &b.QKVW[2*192*192] != &b.VW[0] {
		t.Fatal("QKVW is not the stacked to_q, to_k, to_v")
	}
}

// TestOfficialInitStatistics checks the initial distributions: trunc
// normal(.02), lecun normal (std 1/√fan_in = 0.5 for the 4-byte conv),
// kaiming uniform (bound 1/√192) for the byte model's block Linears,
// LayerNorm 1/0, biases 0.
func TestOfficialInitStatistics(t *testing.T) {
	stats := func(s []float32) (mean, std, maxAbs float64) {
		for _, v := range s {
			mean += float64(v)
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		mean /= float64(len(s))
		for _, v := range s {
			std += (float64(v) - mean) * (float64(v) - mean)
		}
		return mean, math.Sqrt(std / float64(len(s))), maxAbs
	}
	f3, _ := New(arch.Config{Arch: ArchFuse3, NumClasses: 7}, 5)
	by, _ := New(arch.Config{Arch: ArchBytes, NumClasses: 7}, 5)
	check := func(name string, s []float32, wantStd, bound float64) {
		t.Helper()
		mean, std, mx := stats(s)
		if math.Abs(mean) > 0.1*wantStd || math.Abs(std-wantStd) > 0.05*wantStd || mx > bound {
			t.Errorf("%s: mean %.4g std %.4g max %.4g, want std %.4g, |x| ≤ %.4g", name, mean, std, mx, wantStd, bound)
		}
	}
	check("fuse3 pos_embed", f3.P.Embed.PosEmbed, .02, 2)
	check("fuse3 to_q", f3.P.Blocks[0].QW, .02, 2)
	check("fuse3 ff.net.0", f3.P.Blocks[3].FF1W, .02, 2)
	check("fuse3 byte conv", f3.P.Embed.ByteProjW, 0.5, 2*0.5/.87962566103423978)
	check("bytes to_q (kaiming)", by.P.Blocks[1].QW, 1/math.Sqrt(192)/math.Sqrt(3), 1/math.Sqrt(192))
	check("bytes ff.net.2 (kaiming)", by.P.Blocks[1].FF2W, 1/math.Sqrt(768)/math.Sqrt(3), 1/math.Sqrt(768))
	check("bytes head", by.P.HeadW, .02, 2)
	for _, p := range f3.P.List() {
		if strings.Contains(p.Name, "norm") && strings.HasSuffix(p.Name, "weight") {
			for _, v := range p.Data {
				if v != 1 {
					t.Fatalf("%s not 1", p.Name)
				}
			}
		}
		if strings.HasSuffix(p.Name, "bias") {
			for _, v := range p.Data {
				if v != 0 {
					t.Fatalf("%s not 0", p.Name)
				}
			}
		}
	}
	again, _ := New(arch.Config{Arch: ArchFuse3, NumClasses: 7}, 5)
	for i := range again.P.buf {
		if again.P.buf[i] != f3.P.buf[i] {
			t.Fatal("same seed gave different weights")
		}
	}
}

func TestLoadErrorsAndRoundTrip(t *testing.T) {
	cfg := arch.Config{Arch: ArchFuse3, NumClasses: 7}
	m, _ := New(cfg, 9)
	ts := m.Tensors()
	m2, err := FromTensors(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.P.buf {
		if m.P.buf[i] != m2.P.buf[i] {
			t.Fatal("export/import round trip changed a weight")
		}
	}
	delete(ts, "encoder_blocks.1.norm2.bias")
	ts["head.bias"] = ts["norm.bias"]
	ts["pos_embed"] = ts["norm.weight"]
	_, err = FromTensors(cfg, ts)
	if err == nil {
		t.Fatal("bad tensors accepted")
	}
	for _, want := range []string{"missing tensors (encoder_blocks.1.norm2.bias)", "wrong shape", "pos_embed", "unexpected tensors (head.bias)"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
	for _, bad := range []arch.Config{
		{Arch: "netmamba", NumClasses: 7},
		{Arch: ArchFuse3},
		{Arch: ArchFuse3, NumClasses: 2, EmbedDim: 100, NumHeads: 8},
		{Arch: ArchFuse3, NumClasses: 2, Modalities: []string{"sizes"}},
		{Arch: ArchBytes, NumClasses: 2, Modalities: []string{"bytes", "sizes"}},
	} {
		if _, err := New(bad, 0); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

func TestBatchErrors(t *testing.T) {
	m, _ := New(tinyConfigs()[1], 0)
	r := rand.New(rand.NewPCG(2, 2))
	b, labels := tinyBatch(m, 2, r)
	ws := m.NewWorkspace(1, false)
	lg := make([]float32, 2*3)
	if err := m.Forward(&Batch{N: 2, Bytes: b.Bytes[:10]}, lg, ws); err == nil {
		t.Fatal("short byte input accepted")
	}
	if err := m.Forward(&Batch{N: 2, Bytes: b.Bytes}, lg, ws); err == nil {
		t.Fatal("missing sizes accepted")
	}
	if _, err := m.ForwardBackward(b, labels, TrainOptions{}, lg, m.NewGrads(), ws); err == nil {
		t.Fatal("inference workspace accepted for training")
	}
	if _, err := m.ForwardBackward(b, []int{0, 3}, TrainOptions{}, lg, m.NewGrads(), m.NewWorkspace(1, true)); err == nil {
		t.Fatal("label 3 of 3 classes accepted")
	}
	other, _ := New(tinyConfigs()[1], 0)
	if err := m.Forward(b, lg, other.NewWorkspace(1, false)); err == nil {
		t.Fatal("another model's workspace accepted")
	}
}

// TestModalityAblation: dropping a modality must make the model blind to
// it, and keep the kept tokens' positions (a checkpoint of the full model
// loads into the ablated one).
func TestModalityAblation(t *testing.T) {
	full := tinyConfigs()[1]
	mf, _ := New(full, 4)
	abl := full
	abl.Modalities = []string{"bytes", "sizes"}
	ma, err := FromTensors(abl, mf.Tensors())
	if err != nil {
		t.Fatal(err)
	}
	if ma.Tokens() != 4+7 || mf.Tokens() != 4+4+7 {
		t.Fatalf("tokens %d / %d", ma.Tokens(), mf.Tokens())
	}
	r := rand.New(rand.NewPCG(3, 3))
	b, _ := tinyBatch(ma, 2, r)
	l1 := make([]float32, 6)
	l2 := make([]float32, 6)
	ws := ma.NewWorkspace(1, false)
	if err := ma.Forward(b, l1, ws); err != nil {
		t.Fatal(err)
	}
	for i := range b.IATs {
		b.IATs[i] = 0.5
	}
	if err := ma.Forward(b, l2, ws); err != nil {
		t.Fatal(err)
	}
	for i := range l1 {
		if l1[i] != l2[i] {
			t.Fatal("the bytes,sizes model reads IATs")
		}
	}
	b.Sizes[0]++
	if err := ma.Forward(b, l2, ws); err != nil {
		t.Fatal(err)
	}
	if l1[0] == l2[0] && l1[1] == l2[1] && l1[2] == l2[2] {
		t.Fatal("the bytes,sizes model ignores sizes")
	}
}

// TestDropout: masks change the training forward, depend only on (Seed,
// flow index) — not on the thread count — and a zero rate is eval mode.
func TestDropout(t *testing.T) {
	m, _ := New(tinyConfigs()[1], 6)
	r := rand.New(rand.NewPCG(5, 5))
	b, labels := tinyBatch(m, 5, r)
	run := func(threads int, opt TrainOptions) ([]float32, *Params) {
		lg := make([]float32, 5*3)
		g := m.NewGrads()
		if _, err := m.ForwardBackward(b, labels, opt, lg, g, m.NewWorkspace(threads, true)); err != nil {
			t.Fatal(err)
		}
		return lg, g
	}
	eval := make([]float32, 5*3)
	if err := m.Forward(b, eval, m.NewWorkspace(1, false)); err != nil {
		t.Fatal(err)
	}
	l0, _ := run(2, TrainOptions{})
	for i := range eval {
		if eval[i] != l0[i] {
			t.Fatal("dropout 0 differs from eval mode")
		}
	}
	opt := TrainOptions{Dropout: 0.1, Seed: 3}
	l1, g1 := run(1, opt)
	l2, g2 := run(2, opt)
	same := true
	for i := range l1 {
		if l1[i] != l2[i] {
			t.Fatalf("dropout logits depend on the thread count: %g vs %g", l1[i], l2[i])
		}
		same = same && l1[i] == eval[i]
	}
	if same {
		t.Fatal("dropout 0.1 left every logit unchanged")
	}
	for i := range g1.buf {
		if d := math.Abs(float64(g1.buf[i] - g2.buf[i])); d > 1e-6+1e-5*math.Abs(float64(g1.buf[i])) {
			t.Fatalf("dropout gradient %d depends on the thread count", i)
		}
	}
	if _, err := m.ForwardBackward(b, labels, TrainOptions{Dropout: 1}, l1, g1, m.NewWorkspace(1, true)); err == nil {
		t.Fatal("dropout 1 accepted")
	}
}

// TestFlowZeroAlloc: a flow's forward and backward allocate nothing once
// the workspace exists.
func TestFlowZeroAlloc(t *testing.T) {
	for _, cfg := range tinyConfigs() {
		m, _ := New(cfg, 2)
		r := rand.New(rand.NewPCG(6, 6))
		b, labels := tinyBatch(m, 1, r)
		ws := m.NewWorkspace(1, true)
		wk := ws.workers[0]
		g := m.NewGrads()
		lg := make([]float32, m.d.classes)
		in := m.flowInput(b, 0)
		opt := TrainOptions{Dropout: 0.1, Seed: 1}
		step := func() {
			wk.drawMasks(opt, 0)
			m.forwardFlow(in, wk.acts, wk, lg)
			crossEntropy(lg, labels[0], 0.1, wk.bw.dlogits)
			m.backwardFlow(in, wk.acts, wk.bw.dlogits, g, wk)
		}
		step()
		if n := testing.AllocsPerRun(3, step); n != 0 {
			t.Fatalf("%s: %g allocations per flow", cfg.Arch, n)
		}
	}
}
