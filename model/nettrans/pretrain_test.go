package nettrans

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
)

func tinyPretrainConfigs() []arch.Config {
	var out []arch.Config
	for _, c := range tinyConfigs() {
		c.Task, c.NumClasses = "pretrain", 0
		c.DecoderEmbedDim, c.DecoderDepth = 6, 1
		c.MaskRatio = 0.5
		c.SeqLen = map[string]int{ArchBytes: 0, ArchFuse3: 7}[c.Arch]
		out = append(out, c)
	}
	return out
}

// pretrainBatch draws n random flows with valid size ids.
func pretrainBatch(m *Model, n int, r *rand.Rand) *Batch {
	sl := max(m.d.seqLen, 1)
	b := &Batch{N: n, Bytes: make([]float32, n*m.d.byteLen), Sizes: make([]float32, n*sl), IATs: make([]float32, n*sl)}
	for i := range b.Bytes {
		b.Bytes[i] = float32(r.IntN(256))/127.5 - 1
	}
	for i := range b.Sizes {
		b.Sizes[i] = float32(r.IntN(1502))
		b.IATs[i] = 0.5 + 0.5*float32(r.Float64())
	}
	return b
}

// TestPretrainGradientsFiniteDifferences checks every parameter's
// gradient of the total pre-training loss (byte MAE + size CE + IAT MSE)
// against central differences along a random direction, with fixed masks
// (same seed), dropout on for one config.
func TestPretrainGradientsFiniteDifferences(t *testing.T) {
	for ci, cfg := range tinyPretrainConfigs() {
		r := rand.New(rand.NewPCG(21, 22))
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := range m.P.buf {
			m.P.buf[i] = float32(r.NormFloat64() * 0.3)
		}
		b := pretrainBatch(m, 3, r)
		ws := m.NewWorkspace(2, true)
		g := m.NewGrads()
		opt := TrainOptions{Seed: 5}
		if ci == 1 {
			opt.Dropout = 0.2
		}
		l0, err := m.ForwardBackwardPretrain(b, opt, g, ws)
		if err != nil {
			t.Fatal(err)
		}
		if m.d.fuse3 && (l0.Sizes <= 0 || (m.d.iats && l0.IATs <= 0)) || l0.Bytes <= 0 {
			t.Fatalf("%v: a loss term is zero: %+v", cfg.Modalities, l0)
		}
		lossAt := func() float64 {
			l, err := m.ForwardBackwardPretrain(b, opt, m.NewGrads(), ws)
			if err != nil {
				t.Fatal(err)
			}
			return l.Total
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

// TestPretrainLossByHand: with zero prediction weights the heads output
// their biases, so on flows whose patches are all equal the losses do
// not depend on the masks: byte loss mean_j (b_j − v_j)², size loss
// log(1503), IAT loss (c − t)².
func TestPretrainLossByHand(t *testing.T) {
	cfg := tinyPretrainConfigs()[1]
	m, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	p := m.P
	clear(p.DecPredW)
	clear(p.SizePredW)
	clear(p.SizePredB)
	clear(p.IATPredW)
	bias := []float32{0.1, -0.2, 0.3, 0.05}
	copy(p.DecPredB, bias)
	p.IATPredB[0] = 0.25
	patch := []float32{-1, 0.5, 0.2, 0.9}
	const n = 4
	b := &Batch{N: n, Bytes: make([]float32, n*m.d.byteLen), Sizes: make([]float32, n*m.d.seqLen), IATs: make([]float32, n*m.d.seqLen)}
	for i := range b.Bytes {
		b.Bytes[i] = patch[i%4]
	}
	for i := range b.Sizes {
		b.Sizes[i] = float32(i * 37 % 1501)
		b.IATs[i] = 0.75
	}
	l, err := m.ForwardBackwardPretrain(b, TrainOptions{Dropout: 0.1, Seed: 9}, m.NewGrads(), m.NewWorkspace(3, true))
	if err != nil {
		t.Fatal(err)
	}
	var wantB float64
	for j := range bias {
		d := float64(bias[j]) - float64(patch[j])
		wantB += d * d / 4
	}
	wantS := math.Log(1503)
	wantI := (0.25 - 0.75) * (0.25 - 0.75)
	for _, c := range [][3]float64{{l.Bytes, wantB}, {l.Sizes, wantS}, {l.IATs, wantI}, {l.Total, wantB + wantS + wantI}} {
		if math.Abs(c[0]-c[1]) > 1e-5*math.Max(1, c[1]) {
			t.Fatalf("losses %+v, want bytes %.6g sizes %.6g iats %.6g", l, wantB, wantS, wantI)
		}
	}
}

// TestPretrainShapesNamesAndInit: the official pre-training encoder sees
// 82 tokens (fuse3) / 40 (bytes); every classifier parameter but head.*
// exists in the pre-training model under the same name and shape; the
// decoder has the official names.
func TestPretrainShapesNamesAndInit(t *testing.T) {
	for _, c := range []struct {
		arch   string
		tokens int
		names  []string
	}{
		{ArchBytes, 40, []string{"decoder_embed.weight", "mask_token", "decoder_pos_embed", "decoder_blocks.1.ff.net.2.weight", "decoder_pred.bias"}},
		{ArchFuse3, 82, []string{"byte_decoder_embed.weight", "byte_mask_token", "byte_decoder_pos_embed", "byte_decoder_blocks.1.attn.to_q.weight",
			"byte_decoder_pred.weight", "size_decoder_pred.weight", "iat_decoder_pred.bias"}},
	} {
		pre, err := New(arch.Config{Arch: c.arch, Task: "pretrain"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if pre.Tokens() != c.tokens {
			t.Errorf("%s: encoder tokens %d, want %d", c.arch, pre.Tokens(), c.tokens)
		}
		cls, err := New(arch.Config{Arch: c.arch, NumClasses: 5}, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range cls.P.List() {
			if strings.HasPrefix(q.Name, "head.") {
				if pre.P.Get(q.Name) != nil {
					t.Errorf("%s: pre-training model has %s", c.arch, q.Name)
				}
				continue
			}
			pq := pre.P.Get(q.Name)
			if pq == nil || !sameShape(pq.Shape, q.Shape) {
				t.Errorf("%s: classifier parameter %s%v missing from the pre-training model", c.arch, q.Name, q.Shape)
			}
		}
		for _, n := range c.names {
			if pre.P.Get(n) == nil {
				t.Errorf("%s: no %s", c.arch, n)
			}
		}
		dp := pre.P.Get(map[string]string{ArchBytes: "decoder_pos_embed", ArchFuse3: "byte_decoder_pos_embed"}[c.arch])
		if dp.Shape[1] != 401 || dp.Shape[2] != 128 {
			t.Errorf("%s: decoder_pos_embed %v", c.arch, dp.Shape)
		}
		var ss float64
		for _, v := range dp.Data {
			ss += float64(v) * float64(v)
		}
		if std := math.Sqrt(ss / float64(len(dp.Data))); math.Abs(std-0.02) > 0.002 {
			t.Errorf("%s: decoder_pos_embed std %.4f, want ≈ 0.02", c.arch, std)
		}
		if err := pre.Forward(&Batch{}, nil, pre.NewWorkspace(1, false)); err == nil {
			t.Errorf("%s: classifier Forward on a pre-training model accepted", c.arch)
		}
	}
}

// TestPretrainThreads: masks and losses do not depend on the thread
// count; gradients agree to rounding; a rerun is bit-identical.
func TestPretrainThreads(t *testing.T) {
	m, _ := New(tinyPretrainConfigs()[1], 2)
	b := pretrainBatch(m, 5, rand.New(rand.NewPCG(3, 3)))
	opt := TrainOptions{Dropout: 0.1, Seed: 17}
	run := func(threads int) (Losses, *Params) {
		g := m.NewGrads()
		l, err := m.ForwardBackwardPretrain(b, opt, g, m.NewWorkspace(threads, true))
		if err != nil {
			t.Fatal(err)
		}
		return l, g
	}
	l1, g1 := run(1)
	l3, g3 := run(3)
	l3b, g3b := run(3)
	if math.Abs(l1.Total-l3.Total) > 1e-9*l1.Total || l3 != l3b {
		t.Fatalf("losses %+v %+v %+v", l1, l3, l3b)
	}
	for i := range g1.buf {
		if g3.buf[i] != g3b.buf[i] {
			t.Fatalf("gradient %d not reproducible", i)
		}
		if d := math.Abs(float64(g1.buf[i] - g3.buf[i])); d > 1e-6+1e-5*math.Abs(float64(g1.buf[i])) {
			t.Fatalf("gradient %d: 1 thread %g, 3 threads %g", i, g1.buf[i], g3.buf[i])
		}
	}
	bad := *b
	bad.Sizes = append([]float32(nil), b.Sizes...)
	bad.Sizes[3] = 1503
	if _, err := m.ForwardBackwardPretrain(&bad, opt, m.NewGrads(), m.NewWorkspace(1, true)); err == nil {
		t.Fatal("size id 1503 accepted")
	}
}

// TestPretrainFlowZeroAlloc: a pre-training flow's masks, forward and
// backward allocate nothing once the workspace exists.
func TestPretrainFlowZeroAlloc(t *testing.T) {
	for _, cfg := range tinyPretrainConfigs() {
		m, _ := New(cfg, 2)
		b := pretrainBatch(m, 1, rand.New(rand.NewPCG(6, 6)))
		ws := m.NewWorkspace(1, true)
		wk := ws.workers[0]
		g := m.NewGrads()
		in := m.flowInput(b, 0)
		opt := TrainOptions{Dropout: 0.1, Seed: 1}
		step := func() {
			wk.drawPretrain(m, opt, 0)
			m.pretrainFlow(in, wk, [3]float64{1, 1, 1}, g)
		}
		step()
		if n := testing.AllocsPerRun(3, step); n != 0 {
			t.Fatalf("%s %v: %g allocations per flow", cfg.Arch, cfg.Modalities, n)
		}
	}
}
