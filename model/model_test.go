package model

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/arch"
)

func randomInput(rng *rand.Rand, B, n int) []float32 {
	raw := make([]byte, B*n)
	for i := range raw {
		raw[i] = byte(rng.IntN(256))
	}
	x := make([]float32, B*n)
	NormalizeBytes(raw, x)
	return x
}

// stepAgainstParallel feeds flow 0 of x token by token and compares every
// per-layer output and the logits with the parallel training forward.
func stepAgainstParallel(t *testing.T, m *Model, x []float32, packed bool) {
	t.Helper()
	C, E, L, S := m.Cfg.NumClasses, m.Cfg.EmbedDim, m.Tokens+1, m.Cfg.Stride
	ws := m.NewWorkspace(1, 1, true)
	logits := make([]float32, C)
	if err := m.ForwardTrain(x, 1, logits, ws, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	a := ws.flows[0].enc
	st := m.NewStream()
	if packed {
		st = m.NewStreamPacked(m.PackWeights())
	}
	var maxd float64
	cmp := func(what string, got, want []float32) {
		for i := range want {
			d := math.Abs(float64(got[i] - want[i]))
			maxd = math.Max(maxd, d)
			if d > 1e-5+1e-4*math.Abs(float64(want[i])) {
				t.Fatalf("%s[%d]: step %g, parallel %g", what, i, got[i], want[i])
			}
		}
	}
	stepLogits := make([]float32, C)
	for tok := 0; tok < L; tok++ {
		if tok < m.Tokens {
			if err := st.StepBytes(x[tok*S : tok*S+S]); err != nil {
				t.Fatal(err)
			}
		} else {
			st.StepCLS(stepLogits)
		}
		for l := range st.Hid {
			cmp("mixer_out", st.Hid[l], a.Hid[l][tok*E:(tok+1)*E])
		}
		cmp("norm_f_out", st.Out, a.Out[tok*E:(tok+1)*E])
	}
	cmp("logits", stepLogits, logits)
	if err := st.StepBytes(x[:S]); err == nil {
		t.Error("StepBytes after all byte tokens: no error")
	}
	t.Logf("step vs parallel: max|d| %.3g over %d tokens × %d layers", maxd, L, len(st.Hid))
}

func TestStepEqualsForward(t *testing.T) {
	// Real (golden) tiny weights.
	w := readGolden(t, "netmamba_tiny.weights.safetensors")
	m, err := FromTensors(netmambaConfig(32, 2, 2), w)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	stepAgainstParallel(t, m, randomInput(rng, 1, 1600), false)
	stepAgainstParallel(t, m, randomInput(rng, 1, 1600), true)
	// A different shape: 400 bytes, width 24, depth 3, 5 classes.
	m2, err := NewRandom(arch.Config{ByteLength: 400, EmbedDim: 24, Depth: 3, NumClasses: 5}, 7)
	if err != nil {
		t.Fatal(err)
	}
	stepAgainstParallel(t, m2, randomInput(rng, 1, 400), true)
}

// TestGradientFiniteDifference checks the classifier's analytic gradients
// (with drop-path and dropout active, their draws fixed by a seeded Rand)
// against central differences of the loss on a tiny random model.
func TestGradientFiniteDifference(t *testing.T) {
	cfg := arch.Config{ByteLength: 48, Stride: 4, EmbedDim: 8, Depth: 2, DState: 4, NumClasses: 3}
	m, err := NewRandom(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Larger weights than the init so every path carries signal.
	rng := rand.New(rand.NewPCG(5, 6))
	for _, p := range m.P.List() {
		if strings.HasSuffix(p.Name, "A_log") {
			continue
		}
		for i := range p.Data {
			p.Data[i] += float32(rng.NormFloat64() * 0.3)
		}
	}
	B := 3
	x := randomInput(rng, B, cfg.ByteLength)
	labels := []int64{0, 2, 1}
	ws := m.NewWorkspace(B, 2, true)
	logits := make([]float32, B*3)
	opt := func() TrainOptions {
		return TrainOptions{DropPath: 0.4, DropRate: 0.1, Rand: rand.New(rand.NewPCG(9, 9))}
	}
	loss := func() float64 {
		if err := m.ForwardTrain(x, B, logits, ws, opt()); err != nil {
			t.Fatal(err)
		}
		l, _ := ce64(logits, labels, 3, 0)
		return l
	}
	loss()
	_, dl := ce64(logits, labels, 3, 0)
	g := m.NewGrads()
	if err := m.Backward(dl, ws, g); err != nil {
		t.Fatal(err)
	}
	var worst float64
	for pi, p := range m.P.List() {
		gp := g.List()[pi]
		for k := 0; k < 4; k++ {
			i := rng.IntN(len(p.Data))
			old := p.Data[i]
			const eps = 2e-3
			p.Data[i] = old + eps
			lp := loss()
			p.Data[i] = old - eps
			lm := loss()
			p.Data[i] = old
			num := (lp - lm) / (2 * eps)
			d := math.Abs(num - float64(gp.Data[i]))
			r := d / (3e-4 + 1e-2*math.Abs(num))
			worst = math.Max(worst, r)
			if r > 1 {
				t.Errorf("%s[%d]: analytic %g, finite difference %g", p.Name, i, gp.Data[i], num)
			}
		}
	}
	t.Logf("finite differences: worst |d|/(3e-4+1e-2|g|) = %.3g", worst)
}

func TestGradientsDeterministicAcrossRuns(t *testing.T) {
	m, err := NewRandom(arch.Config{ByteLength: 200, EmbedDim: 16, Depth: 2, NumClasses: 4}, 11)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	B := 5
	x := randomInput(rng, B, 200)
	dl := make([]float32, B*4)
	for i := range dl {
		dl[i] = float32(rng.NormFloat64())
	}
	run := func(threads int) *Params {
		ws := m.NewWorkspace(B, threads, true)
		logits := make([]float32, B*4)
		if err := m.ForwardTrain(x, B, logits, ws, TrainOptions{}); err != nil {
			t.Fatal(err)
		}
		g := m.NewGrads()
		if err := m.Backward(dl, ws, g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	a, b, c := run(2), run(2), run(1)
	for i := range a.Flat() {
		if a.Flat()[i] != b.Flat()[i] {
			t.Fatalf("2 threads, two runs: gradient %d differs (%g vs %g)", i, a.Flat()[i], b.Flat()[i])
		}
		if d := math.Abs(float64(a.Flat()[i] - c.Flat()[i])); d > 1e-6+1e-4*math.Abs(float64(c.Flat()[i])) {
			t.Fatalf("1 vs 2 threads: gradient %d %g vs %g", i, a.Flat()[i], c.Flat()[i])
		}
	}
}

func TestFromTensorsErrorsAndRoundTrip(t *testing.T) {
	cfg := arch.Config{NumClasses: 7}
	m, err := NewRandom(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.P.Count(), 1856512+257*7; got != want {
		t.Errorf("parameter count %d, want 1,856,512 + 257·7 = %d", got, want)
	}
	ts := m.Tensors()
	m2, err := FromTensors(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range m.P.Flat() {
		if m2.P.Flat()[i] != v {
			t.Fatalf("round trip: parameter %d differs", i)
		}
	}
	delete(ts, "blocks.2.mixer.D")
	ts["blocks.9.mixer.D"] = &checkpoint.Tensor{DType: "F32", Shape: []int{512}, F32: make([]float32, 512)}
	ts["head.weight"] = &checkpoint.Tensor{DType: "F32", Shape: []int{5, 256}, F32: make([]float32, 5*256)}
	_, err = FromTensors(cfg, ts)
	if err == nil {
		t.Fatal("FromTensors accepted missing, extra and mis-shaped tensors")
	}
	for _, s := range []string{"missing tensors (blocks.2.mixer.D)", "unexpected tensors (blocks.9.mixer.D)", "head.weight: F32[5 256], want F32[7 256]"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestInitFollowsOfficialScheme(t *testing.T) {
	m, err := NewRandom(arch.Config{NumClasses: 3, Task: "classify"}, 42)
	if err != nil {
		t.Fatal(err)
	}
	b := m.P.Blocks[1]
	for j, v := range b.ALog {
		if want := float32(math.Log(float64(j%16 + 1))); v != want {
			t.Fatalf("A_log[%d] = %g, want ln(%d)", j, v, j%16+1)
		}
	}
	for _, v := range b.DtProjB {
		dt := math.Log1p(math.Exp(float64(v)))
		if dt < 1e-3*0.999 || dt > 0.1*1.001 {
			t.Fatalf("softplus(dt bias) = %g outside [1e-3, 0.1]", dt)
		}
	}
	bound := 1 / math.Sqrt(512) / 2 // ÷ √depth = 2
	var maxOut float64
	for _, v := range b.OutProjW {
		maxOut = math.Max(maxOut, math.Abs(float64(v)))
	}
	if maxOut > bound || maxOut < 0.9*bound {
		t.Errorf("out_proj max |w| %g, want just under %g", maxOut, bound)
	}
	var s2 float64
	for _, v := range m.P.PosEmbed {
		s2 += float64(v) * float64(v)
	}
	if std := math.Sqrt(s2 / float64(len(m.P.PosEmbed))); math.Abs(std-0.02) > 0.001 {
		t.Errorf("pos_embed std %g, want 0.02", std)
	}
	if m.P.Blocks[0].D[5] != 1 || m.P.NormF[3] != 1 || m.P.HeadB[0] != 0 || m.P.PatchB[0] != 0 {
		t.Error("D, norm weights must be 1 and head/patch biases 0")
	}
	m2, _ := NewRandom(arch.Config{NumClasses: 3}, 42)
	for i, v := range m.P.Flat() {
		if m2.P.Flat()[i] != v {
			t.Fatal("same seed, different parameters")
		}
	}
}

func TestDropPathRates(t *testing.T) {
	r := DropPathRates(4, 0.1)
	want := []float64{0, 0.1 / 3, 0.2 / 3, 0.1}
	for i := range want {
		if math.Abs(r[i]-want[i]) > 1e-12 {
			t.Fatalf("rates %v, want %v", r, want)
		}
	}
	if r := DropPathRates(2, 0.1); r[0] != 0 || r[1] != 0.1 {
		t.Fatalf("decoder rates %v, want [0 0.1]", r)
	}
}

func BenchmarkForwardBatch64(b *testing.B) {
	benchForward(b, 64, 2)
}

func BenchmarkForwardBatch64Threads1(b *testing.B) {
	benchForward(b, 64, 1)
}

func benchForward(b *testing.B, B, threads int) {
	m, err := NewRandom(arch.Config{NumClasses: 7}, 1)
	if err != nil {
		b.Fatal(err)
	}
	x := randomInput(rand.New(rand.NewPCG(1, 1)), B, 1600)
	ws := m.NewWorkspace(B, threads, false)
	logits := make([]float32, B*7)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Forward(x, B, logits, ws); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*B)/b.Elapsed().Seconds(), "flows/s")
}

func BenchmarkTrainStepBatch16(b *testing.B) {
	m, err := NewRandom(arch.Config{NumClasses: 7}, 1)
	if err != nil {
		b.Fatal(err)
	}
	B := 16
	x := randomInput(rand.New(rand.NewPCG(1, 1)), B, 1600)
	ws := m.NewWorkspace(B, 2, true)
	logits := make([]float32, B*7)
	dl := make([]float32, B*7)
	for i := range dl {
		dl[i] = 0.01
	}
	g := m.NewGrads()
	opt := TrainOptions{DropPath: 0.1, Rand: rand.New(rand.NewPCG(2, 2))}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.ForwardTrain(x, B, logits, ws, opt); err != nil {
			b.Fatal(err)
		}
		if err := m.Backward(dl, ws, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*B)/b.Elapsed().Seconds(), "flows/s")
}

// BenchmarkStreamStep times one recurrent token step of the default
// classifier (per-packet streaming cost: 80 tokens per 320-byte packet).
func BenchmarkStreamStep(b *testing.B) {
	m, err := NewRandom(arch.Config{NumClasses: 7}, 1)
	if err != nil {
		b.Fatal(err)
	}
	st := m.NewStreamPacked(m.PackWeights())
	x := randomInput(rand.New(rand.NewPCG(1, 1)), 1, 1600)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st.Pos == m.Tokens {
			st.Reset()
		}
		if err := st.StepBytes(x[4*st.Pos : 4*st.Pos+4]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "µs/token")
}

// TestDropPathDraws checks the per-flow drop-path scales: layer i of a
// depth-4 stack is dropped with probability linspace(0, 0.3, 4)[i] and
// kept with scale 1/(1−p); layer 0 is never dropped.
func TestDropPathDraws(t *testing.T) {
	m, err := New(arch.Config{ByteLength: 16, EmbedDim: 8, Depth: 4, DState: 4, NumClasses: 2})
	if err != nil {
		t.Fatal(err)
	}
	ws := m.NewWorkspace(50, 1, true)
	rng := rand.New(rand.NewPCG(4, 4))
	drops := make([]int, 4)
	n := 0
	for it := 0; it < 200; it++ {
		if _, err := ws.drawTrain(4, 50, TrainOptions{DropPath: 0.3, Rand: rng}); err != nil {
			t.Fatal(err)
		}
		for _, f := range ws.flows {
			for l, s := range f.encScale {
				p := 0.1 * float64(l)
				switch {
				case s == 0:
					drops[l]++
				case math.Abs(float64(s)-1/(1-p)) > 1e-6:
					t.Fatalf("layer %d kept with scale %g, want %g", l, s, 1/(1-p))
				}
			}
			n++
		}
	}
	for l, d := range drops {
		got, want := float64(d)/float64(n), 0.1*float64(l)
		if math.Abs(got-want) > 0.02 {
			t.Errorf("layer %d dropped in %.3f of flows, want %.2f", l, got, want)
		}
	}
	if _, err := ws.drawTrain(4, 50, TrainOptions{DropPath: 0.1}); err == nil {
		t.Error("drop-path without a Rand accepted")
	}
}
