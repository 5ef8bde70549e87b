package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
)

func relClose(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(b), 1e-30)
}

// TestCrossEntropyHand checks a 2×2 batch computed by hand: logits (0, ln 3)
// give p = (1/4, 3/4).
func TestCrossEntropyHand(t *testing.T) {
	l3 := float32(math.Log(3))
	logits := []float32{0, l3, l3, 0}
	labels := []int{0, 0}
	d := make([]float32, 4)
	loss, err := CrossEntropy(logits, labels, 2, 2, nil, 0, d)
	if err != nil {
		t.Fatal(err)
	}
	// Sample 0: −ln(1/4); sample 1: −ln(3/4).
	want := (math.Log(4) + math.Log(4.0/3)) / 2
	if !relClose(float64(loss), want, 1e-6) {
		t.Errorf("loss %v, want %v", loss, want)
	}
	// d/dx = (p − onehot)/N.
	wantD := []float64{(0.25 - 1) / 2, 0.75 / 2, (0.75 - 1) / 2, 0.25 / 2}
	for k := range d {
		if math.Abs(float64(d[k])-wantD[k]) > 1e-7 {
			t.Errorf("dlogits[%d] = %v, want %v", k, d[k], wantD[k])
		}
	}
	// Weighted and smoothed, PyTorch formula with w = (2, 1), ε = 0.2, C = 2:
	// [(1−ε)(w0·ln4 + w0·ln(4/3)) + ε/2·Σ_i(w0·(−log p_i0) + w1·(−log p_i1))] / (w0 + w0).
	w := []float32{2, 1}
	loss, err = CrossEntropy(logits, labels, 2, 2, w, 0.2, nil)
	if err != nil {
		t.Fatal(err)
	}
	s0 := 2*math.Log(4) + 1*math.Log(4.0/3)
	s1 := 2*math.Log(4.0/3) + 1*math.Log(4)
	want = (0.8*(2*math.Log(4)+2*math.Log(4.0/3)) + 0.1*(s0+s1)) / 4
	if !relClose(float64(loss), want, 1e-6) {
		t.Errorf("weighted smoothed loss %v, want %v", loss, want)
	}
}

func readLDAMGolden(t *testing.T) *checkpoint.File {
	t.Helper()
	f, err := checkpoint.ReadSafetensors("../../shared/golden/ldam.io.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestLDAMGolden compares loss and gradient with the official NetMamba+
// LDAMLoss (golden ldam case) for label smoothing 0 and 0.1.
func TestLDAMGolden(t *testing.T) {
	f := readLDAMGolden(t)
	x := f.Tensors["logits"]
	n, c := x.Shape[0], x.Shape[1]
	labels := make([]int, n)
	for i, v := range f.Tensors["labels"].I64 {
		labels[i] = int(v)
	}
	counts := make([]int, c)
	cn := f.Tensors["cls_num_list"]
	for k := range counts {
		if cn.I64 != nil {
			counts[k] = int(cn.I64[k])
		} else {
			counts[k] = int(cn.F32[k])
		}
	}
	m, err := LDAMMargins(counts, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range f.Tensors["m_list"].F32 {
		if m[k] != v {
			t.Errorf("margin %d: %v, official %v", k, m[k], v)
		}
	}
	for _, tc := range []struct {
		eps  float64
		name string
	}{{0, "0.0"}, {0.1, "0.1"}} {
		l := &LDAM{Margins: m, Scale: 30, Smoothing: tc.eps}
		d := make([]float32, n*c)
		loss, err := l.Loss(x.F32, labels, n, c, d)
		if err != nil {
			t.Fatal(err)
		}
		want := float64(f.Tensors["loss_ls"+tc.name].F32[0])
		t.Logf("ε=%s: loss %v, official %v", tc.name, loss, want)
		if !relClose(float64(loss), want, 1e-5) {
			t.Errorf("ε=%s: loss %v, official %v", tc.name, loss, want)
		}
		g := f.Tensors["grad_logits_ls"+tc.name].F32
		for k := range g {
			if math.Abs(float64(d[k]-g[k])) > 1e-6+1e-5*math.Abs(float64(g[k])) {
				t.Errorf("ε=%s: dlogits[%d] = %v, official %v", tc.name, k, d[k], g[k])
			}
		}
		// LDA really changes the gradient: plain CE on the same logits differs.
		dce := make([]float32, n*c)
		if _, err := CrossEntropy(x.F32, labels, n, c, nil, tc.eps, dce); err != nil {
			t.Fatal(err)
		}
		maxDiff := 0.0
		for k := range dce {
			maxDiff = math.Max(maxDiff, math.Abs(float64(dce[k]-d[k])))
		}
		if maxDiff < 1e-2 {
			t.Errorf("ε=%s: LDAM gradient within %g of plain CE", tc.name, maxDiff)
		}
	}
}

// TestLossFiniteDifference checks dlogits of CE and LDAM+CB+smoothing with
// central differences on float64-exact evaluations of the loss.
func TestLossFiniteDifference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, c = 5, 4
	x := make([]float32, n*c)
	for k := range x {
		x[k] = float32(rng.NormFloat64())
	}
	labels := []int{0, 1, 3, 3, 2}
	counts := []int{500, 40, 7, 120}
	cb, err := ClassBalancedWeights(counts, 0.999)
	if err != nil {
		t.Fatal(err)
	}
	ldam, err := NewLDAM(counts, true, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	ldam.Scale = 2 // a small scale keeps float32 logits well-conditioned for differences
	losses := map[string]func(x, d []float32) float32{
		"ce": func(x, d []float32) float32 {
			v, err := CrossEntropy(x, labels, n, c, nil, 0, d)
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		"ce_weighted_smoothed": func(x, d []float32) float32 {
			v, err := CrossEntropy(x, labels, n, c, cb, 0.1, d)
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		"ldam_cb_smoothed": func(x, d []float32) float32 {
			v, err := ldam.Loss(x, labels, n, c, d)
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
	}
	for name, f := range losses {
		d := make([]float32, n*c)
		f(x, d)
		xp := append([]float32(nil), x...)
		const h = 1e-2
		for k := range x {
			xp[k] = x[k] + h
			up := float64(f(xp, nil))
			xp[k] = x[k] - h
			dn := float64(f(xp, nil))
			xp[k] = x[k]
			fd := (up - dn) / (2 * h)
			if math.Abs(fd-float64(d[k])) > 2e-4+1e-3*math.Abs(fd) {
				t.Errorf("%s: dlogits[%d] = %v, finite difference %v", name, k, d[k], fd)
			}
		}
	}
}

func TestClassBalancedWeightsHand(t *testing.T) {
	// β = 0.5, counts (1, 2): raw (0.5/0.5, 0.5/0.75) = (1, 2/3); normalised to
	// sum 2: (1.2, 0.8).
	w, err := ClassBalancedWeights([]int{1, 2}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if !relClose(float64(w[0]), 1.2, 1e-6) || !relClose(float64(w[1]), 0.8, 1e-6) {
		t.Errorf("weights %v, want [1.2 0.8]", w)
	}
	// Margins for counts (1, 16): n^-1/4 = (1, 0.5) → (0.5, 0.25).
	m, err := LDAMMargins([]int{1, 16}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if m[0] != 0.5 || m[1] != 0.25 {
		t.Errorf("margins %v, want [0.5 0.25]", m)
	}
	if _, err := ClassBalancedWeights([]int{3, 0}, 0.999); err == nil {
		t.Error("zero count: want error")
	}
}

func TestCrossEntropyErrors(t *testing.T) {
	x := []float32{1, 2, 3, 4}
	cases := []struct {
		name   string
		labels []int
		w      []float32
		eps    float64
		d      []float32
	}{
		{"label out of range", []int{0, 2}, nil, 0, nil},
		{"negative label", []int{-1, 0}, nil, 0, nil},
		{"short labels", []int{0}, nil, 0, nil},
		{"weights length", []int{0, 1}, []float32{1}, 0, nil},
		{"smoothing", []int{0, 1}, nil, 1, nil},
		{"grad buffer", []int{0, 1}, nil, 0, make([]float32, 3)},
		{"zero weights", []int{0, 0}, []float32{0, 1}, 0, nil},
	}
	for _, tc := range cases {
		if _, err := CrossEntropy(x, tc.labels, 2, 2, tc.w, tc.eps, tc.d); err == nil {
			t.Errorf("%s: want error", tc.name)
		}
	}
}

func TestLossZeroAlloc(t *testing.T) {
	const n, c = 64, 17
	x := make([]float32, n*c)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % c
		x[i*c+i%c] = 1
	}
	counts := make([]int, c)
	for k := range counts {
		counts[k] = 10 + k*k
	}
	l, err := NewLDAM(counts, true, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	d := make([]float32, n*c)
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := l.Loss(x, labels, n, c, d); err != nil {
			t.Fatal(err)
		}
		if _, err := CrossEntropy(x, labels, n, c, nil, 0.1, d); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per loss call, want 0", allocs)
	}
}

func BenchmarkLDAMLoss(b *testing.B) {
	const n, c = 128, 17
	x := make([]float32, n*c)
	labels := make([]int, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for k := range x {
		x[k] = float32(rng.NormFloat64())
	}
	counts := make([]int, c)
	for k := range counts {
		labels[k%n] = k
		counts[k] = 5 + 3*k
	}
	l, err := NewLDAM(counts, true, 0.1)
	if err != nil {
		b.Fatal(err)
	}
	d := make([]float32, n*c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Loss(x, labels, n, c, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// TestLDAMIsAdjustedCE: with class-balanced weights and smoothing, LDAM
// equals weighted, smoothed CE on logits adjusted by hand,
// 30·(x − m_y·onehot(y)), and its gradient is 30 times CE's.
func TestLDAMIsAdjustedCE(t *testing.T) {
	counts := []int{1000, 100, 10}
	l, err := NewLDAM(counts, true, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.2, -0.1, 0.05, 0.0, 0.3, -0.2, 0.1, 0.1, 0.4}
	labels := []int{0, 1, 2}
	var crit Criterion = l
	d := make([]float32, 9)
	got, err := crit.Loss(x, labels, 3, 3, d)
	if err != nil {
		t.Fatal(err)
	}
	z := make([]float32, 9)
	for i := range 3 {
		for k := range 3 {
			v := x[i*3+k]
			if k == labels[i] {
				v -= l.Margins[k]
			}
			z[i*3+k] = 30 * v
		}
	}
	dz := make([]float32, 9)
	crit = &CrossEntropyLoss{Weights: l.Weights, Smoothing: 0.1}
	want, err := crit.Loss(z, labels, 3, 3, dz)
	if err != nil {
		t.Fatal(err)
	}
	if !relClose(float64(got), float64(want), 1e-6) {
		t.Errorf("LDAM %v, CE on adjusted logits %v", got, want)
	}
	for k := range d {
		if math.Abs(float64(d[k]-30*dz[k])) > 1e-6+1e-6*math.Abs(float64(30*dz[k])) {
			t.Errorf("dlogits[%d] = %v, 30·dCE/dz = %v", k, d[k], 30*dz[k])
		}
	}
	// Class-balanced weights favour the rare class and sum to C.
	w := l.Weights
	if !(w[2] > w[1] && w[1] > w[0]) || !relClose(float64(w[0]+w[1]+w[2]), 3, 1e-6) {
		t.Errorf("class-balanced weights %v", w)
	}
}
