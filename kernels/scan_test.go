package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// scanRef64 is an independent float64 scan (t-outer, as the official
// selective_scan_ref loops), returning the gated output (L, D).
func scanRef64(L, D, N int, u, delta, A, B, C, Dsk, z []float64) []float64 {
	h := make([]float64, D*N)
	y := make([]float64, L*D)
	for t := 0; t < L; t++ {
		for d := 0; d < D; d++ {
			var acc float64
			for n := 0; n < N; n++ {
				h[d*N+n] = math.Exp(delta[t*D+d]*A[d*N+n])*h[d*N+n] + delta[t*D+d]*B[t*N+n]*u[t*D+d]
				acc += h[d*N+n] * C[t*N+n]
			}
			v := acc + Dsk[d]*u[t*D+d]
			if z != nil {
				zv := z[t*D+d]
				v *= zv / (1 + math.Exp(-zv))
			}
			y[t*D+d] = v
		}
	}
	return y
}

type scanCase struct {
	L, D, N                       int
	u, delta, A, B, C, Dsk, z, dy []float64
}

func newScanCase(rng *rand.Rand, L, D, N int) *scanCase {
	f := func(n int, lo, hi float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = lo + (hi-lo)*rng.Float64()
		}
		return v
	}
	c := &scanCase{L: L, D: D, N: N,
		u: f(L*D, -1, 1), delta: f(L*D, 0.001, 0.5), A: f(D*N, -4, -0.5),
		B: f(L*N, -1, 1), C: f(L*N, -1, 1), Dsk: f(D, 0.5, 1.5), z: f(L*D, -2, 2), dy: f(L*D, -1, 1)}
	// Round the inputs to float32 so both implementations see the same values.
	for _, s := range [][]float64{c.u, c.delta, c.A, c.B, c.C, c.Dsk, c.z, c.dy} {
		for i := range s {
			s[i] = float64(float32(s[i]))
		}
	}
	return c
}

func to32(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = float32(x)
	}
	return o
}

func (c *scanCase) scan32() *Scan {
	return &Scan{L: c.L, D: c.D, N: c.N, U: to32(c.u), LdU: c.D, Delta: to32(c.delta), LdDel: c.D,
		A: to32(c.A), B: to32(c.B), LdB: c.N, C: to32(c.C), LdC: c.N, Dskip: to32(c.Dsk), Z: to32(c.z), LdZ: c.D}
}

func (c *scanCase) loss64() float64 {
	y := scanRef64(c.L, c.D, c.N, c.u, c.delta, c.A, c.B, c.C, c.Dsk, c.z)
	var s float64
	for i, v := range y {
		s += v * c.dy[i]
	}
	return s
}

func TestScanForwardMatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := newScanCase(rng, 401, 40, 16) // 2 AVX-512 blocks of 16 + 8 channels in Go
	want := scanRef64(c.L, c.D, c.N, c.u, c.delta, c.A, c.B, c.C, c.Dsk, c.z)
	s := c.scan32()
	y := make([]float32, c.L*c.D)
	s.Forward(y, c.D, nil)
	// Tolerance |d| <= 2e-6 + 1e-4·|want|: y is a sum of terms of size ~1
	// that often cancels, so a pure relative bound would be meaningless.
	worst, maxAbs := 0.0, 0.0
	for i, w := range want {
		d := math.Abs(float64(y[i]) - w)
		maxAbs = math.Max(maxAbs, d)
		worst = math.Max(worst, d/(2e-6+1e-4*math.Abs(w)))
	}
	t.Logf("scan forward vs float64: max|d| %.3g, worst ratio to tolerance %.3g", maxAbs, worst)
	if worst > 1 {
		t.Fatalf("scan forward: worst ratio to tolerance %g (max|d| %g)", worst, maxAbs)
	}
}

func TestScanStepEqualsForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	c := newScanCase(rng, 57, 38, 16)
	s := c.scan32()
	y := make([]float32, c.L*c.D)
	hFinal := make([]float32, c.D*c.N)
	s.Forward(y, c.D, hFinal)
	h := make([]float32, c.D*c.N)
	ys := make([]float32, c.D)
	for tk := 0; tk < c.L; tk++ {
		D, N := c.D, c.N
		s.Step(s.U[tk*D:tk*D+D], s.Delta[tk*D:tk*D+D], s.B[tk*N:tk*N+N], s.C[tk*N:tk*N+N], s.Z[tk*D:tk*D+D], ys, h)
		for d := 0; d < D; d++ {
			if ys[d] != y[tk*D+d] {
				t.Fatalf("t=%d d=%d: step %g != scan %g", tk, d, ys[d], y[tk*D+d])
			}
		}
	}
	for i := range h {
		if h[i] != hFinal[i] {
			t.Fatalf("final state %d: step %g != scan %g", i, h[i], hFinal[i])
		}
	}
}

// TestScanBackwardFiniteDifference checks every gradient of the float32
// scan against central differences of the float64 reference.
func TestScanBackwardFiniteDifference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	c := newScanCase(rng, 23, 5, 16)
	s := c.scan32()
	L, D, N := c.L, c.D, c.N
	g := &ScanGrad{DY: to32(c.dy), LdDY: D, DU: make([]float32, L*D), LdDU: D, DDelta: make([]float32, L*D), LdDDel: D,
		DZ: make([]float32, L*D), LdDZ: D, DA: make([]float32, D*N), DB: make([]float32, L*N), LdDB: N,
		DC: make([]float32, L*N), LdDC: N, DDskip: make([]float32, D)}
	yRe := make([]float32, L*D)
	s.Backward(g, make([]float32, BackwardScratch(L, N)), yRe, D)
	yFw := make([]float32, L*D)
	s.Forward(yFw, D, nil)
	for i := range yRe {
		if math.Abs(float64(yRe[i]-yFw[i])) > 1e-6 {
			t.Fatalf("recomputed y[%d] = %g, forward %g", i, yRe[i], yFw[i])
		}
	}
	check := func(name string, param []float64, grad []float32) {
		worst := 0.0
		for i := range param {
			old := param[i]
			const eps = 1e-6
			param[i] = old + eps
			lp := c.loss64()
			param[i] = old - eps
			lm := c.loss64()
			param[i] = old
			num := (lp - lm) / (2 * eps)
			if e := math.Abs(float64(grad[i])-num) / (1e-4 + math.Abs(num)); e > worst {
				worst = e
			}
		}
		t.Logf("%-6s max rel err %.3g", name, worst)
		if worst > 1e-3 {
			t.Errorf("%s: gradient max rel err %g vs finite differences", name, worst)
		}
	}
	check("u", c.u, g.DU)
	check("delta", c.delta, g.DDelta)
	check("A", c.A, g.DA)
	check("B", c.B, g.DB)
	check("C", c.C, g.DC)
	check("D", c.Dsk, g.DDskip)
	check("z", c.z, g.DZ)
}

// TestScanInitialState checks that a scan split in two halves, the second
// starting from the first's final state, equals the whole scan.
func TestScanInitialState(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	c := newScanCase(rng, 64, 32, 16)
	s := c.scan32()
	y := make([]float32, c.L*c.D)
	s.Forward(y, c.D, nil)
	h := make([]float32, c.D*c.N)
	y2 := make([]float32, c.L*c.D)
	for _, half := range [][2]int{{0, 30}, {30, 64}} {
		lo, hi := half[0], half[1]
		p := *s
		p.L = hi - lo
		p.U, p.Delta, p.Z = s.U[lo*c.D:], s.Delta[lo*c.D:], s.Z[lo*c.D:]
		p.B, p.C = s.B[lo*c.N:], s.C[lo*c.N:]
		p.Forward(y2[lo*c.D:], c.D, h)
	}
	for i := range y {
		if y[i] != y2[i] {
			t.Fatalf("split scan y[%d] = %g, whole %g", i, y2[i], y[i])
		}
	}
}

func TestCausalConv1d(t *testing.T) {
	// Hand-computed: D=1, K=3, w = [1,2,3], b = 0.5, x = [1,2,3,4].
	// y0 = .5+3·1, y1 = .5+2·1+3·2, y2 = .5+1+4+9, y3 = .5+2+6+12.
	y := make([]float32, 4)
	CausalConv1dForward(4, 1, 3, []float32{1, 2, 3, 4}, 1, []float32{1, 2, 3}, []float32{0.5}, y, 1)
	want := []float32{3.5, 8.5, 14.5, 20.5}
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("conv y = %v, want %v", y, want)
		}
	}
	// Step equals the parallel form; backward against finite differences.
	rng := rand.New(rand.NewPCG(9, 10))
	L, D, K := 9, 5, 4
	x := make([]float32, L*D)
	w := make([]float32, D*K)
	b := make([]float32, D)
	dy := make([]float32, L*D)
	for _, s := range [][]float32{x, w, b, dy} {
		for i := range s {
			s[i] = float32(rng.Float64()*2 - 1)
		}
	}
	y = make([]float32, L*D)
	CausalConv1dForward(L, D, K, x, D, w, b, y, D)
	win := make([]float32, (K-1)*D)
	ys := make([]float32, D)
	for tk := 0; tk < L; tk++ {
		CausalConv1dStep(D, K, win, x[tk*D:], w, b, ys)
		for d := range ys {
			if ys[d] != y[tk*D+d] {
				t.Fatalf("step t=%d d=%d %g != %g", tk, d, ys[d], y[tk*D+d])
			}
		}
	}
	dx := make([]float32, L*D)
	dw := make([]float32, D*K)
	db := make([]float32, D)
	CausalConv1dBackward(L, D, K, x, D, w, dy, D, dx, D, dw, db)
	loss := func() float64 {
		CausalConv1dForward(L, D, K, x, D, w, b, y, D)
		var s float64
		for i := range y {
			s += float64(y[i]) * float64(dy[i])
		}
		return s
	}
	for _, p := range []struct {
		name string
		v, g []float32
	}{{"x", x, dx}, {"w", w, dw}, {"b", b, db}} {
		for i := range p.v {
			old := p.v[i]
			p.v[i] = old + 1e-2
			lp := loss()
			p.v[i] = old - 1e-2
			lm := loss()
			p.v[i] = old
			num := (lp - lm) / 2e-2 // exact: the loss is linear in each parameter
			if math.Abs(num-float64(p.g[i])) > 1e-4*(1+math.Abs(num)) {
				t.Fatalf("conv d%s[%d] = %g, finite difference %g", p.name, i, p.g[i], num)
			}
		}
	}
}

func TestRMSNorm(t *testing.T) {
	// Hand-computed: x = [3, 4] → mean(x²) = 12.5, rstd = 1/sqrt(12.5+eps).
	y := make([]float32, 2)
	rstd := make([]float32, 1)
	out := make([]float32, 2)
	AddRMSNormForward(1, 2, []float32{1, 3}, []float32{2, 1}, 1, out, []float32{1, 2}, 1e-5, y, rstd)
	r := 1 / math.Sqrt(12.5+1e-5)
	if out[0] != 3 || out[1] != 4 || math.Abs(float64(y[0])-3*r) > 1e-7 || math.Abs(float64(y[1])-8*r) > 1e-7 {
		t.Fatalf("AddRMSNorm: resOut %v y %v", out, y)
	}
	// Backward against float64 finite differences.
	rng := rand.New(rand.NewPCG(11, 12))
	rows, dim := 3, 7
	x := make([]float64, rows*dim)
	w := make([]float64, dim)
	dy := make([]float64, rows*dim)
	for _, s := range [][]float64{x, w, dy} {
		for i := range s {
			s[i] = float64(float32(rng.Float64()*2 - 1))
		}
	}
	loss := func() float64 {
		var s float64
		for r := 0; r < rows; r++ {
			var ms float64
			for i := 0; i < dim; i++ {
				ms += x[r*dim+i] * x[r*dim+i]
			}
			rs := 1 / math.Sqrt(ms/float64(dim)+1e-5)
			for i := 0; i < dim; i++ {
				s += x[r*dim+i] * rs * w[i] * dy[r*dim+i]
			}
		}
		return s
	}
	x32, w32 := to32(x), to32(w)
	yy := make([]float32, rows*dim)
	rs := make([]float32, rows)
	AddRMSNormForward(rows, dim, x32, nil, 1, x32, w32, 1e-5, yy, rs)
	dx := make([]float32, rows*dim)
	dw := make([]float32, dim)
	RMSNormBackward(rows, dim, x32, w32, rs, to32(dy), dx, dw)
	for _, p := range []struct {
		name string
		v    []float64
		g    []float32
	}{{"x", x, dx}, {"w", w, dw}} {
		for i := range p.v {
			old := p.v[i]
			p.v[i] = old + 1e-6
			lp := loss()
			p.v[i] = old - 1e-6
			lm := loss()
			p.v[i] = old
			num := (lp - lm) / 2e-6
			if math.Abs(num-float64(p.g[i])) > 1e-4*(1e-2+math.Abs(num)) {
				t.Fatalf("rmsnorm d%s[%d] = %g, finite difference %g", p.name, i, p.g[i], num)
			}
		}
	}
}

func TestSoftplusBiasBackward(t *testing.T) {
	x := []float32{-3, 0.5, 25, -30}
	bias := []float32{0.1, -0.2}
	dy := []float32{1, 2, 3, 4}
	dx := make([]float32, 4)
	db := make([]float32, 2)
	SoftplusBiasBackward(2, 2, x, 2, bias, dy, 2, dx, 2, db)
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	want := []float64{1 * sig(-2.9), 2 * sig(0.3), 3 /* above threshold */, 4 * sig(-30.2)}
	for i := range want {
		if math.Abs(float64(dx[i])-want[i]) > 1e-6*math.Max(1, want[i]) {
			t.Fatalf("dx[%d] = %g, want %g", i, dx[i], want[i])
		}
	}
	if math.Abs(float64(db[0])-(want[0]+want[2])) > 1e-6 {
		t.Fatalf("dbias %v", db)
	}
}

func BenchmarkScanForward(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	c := newScanCase(rng, 401, 512, 16)
	s := c.scan32()
	y := make([]float32, c.L*c.D)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Forward(y, c.D, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.L*c.D*c.N), "ns/elem")
}

func BenchmarkScanBackward(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	c := newScanCase(rng, 401, 512, 16)
	s := c.scan32()
	L, D, N := c.L, c.D, c.N
	g := &ScanGrad{DY: to32(c.dy), LdDY: D, DU: make([]float32, L*D), LdDU: D, DDelta: make([]float32, L*D), LdDDel: D,
		DZ: make([]float32, L*D), LdDZ: D, DA: make([]float32, D*N), DB: make([]float32, L*N), LdDB: N,
		DC: make([]float32, L*N), LdDC: N, DDskip: make([]float32, D)}
	scratch := make([]float32, BackwardScratch(L, N))
	y := make([]float32, L*D)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(g.DB)
		clear(g.DC)
		s.Backward(g, scratch, y, D)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*L*D*N), "ns/elem")
}

func BenchmarkRMSNorm(b *testing.B) {
	rows, dim := 401, 256
	x := make([]float32, rows*dim)
	for i := range x {
		x[i] = float32(i%17) - 8
	}
	w := make([]float32, dim)
	for i := range w {
		w[i] = 1
	}
	y := make([]float32, rows*dim)
	out := make([]float32, rows*dim)
	rs := make([]float32, rows)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		AddRMSNormForward(rows, dim, x, x, 1, out, w, 1e-5, y, rs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows*dim), "ns/elem")
}

func BenchmarkCausalConv1d(b *testing.B) {
	L, D, K := 401, 512, 4
	x := make([]float32, L*2*D)
	w := make([]float32, D*K)
	bias := make([]float32, D)
	y := make([]float32, L*D)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		CausalConv1dForward(L, D, K, x, 2*D, w, bias, y, D)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*L*D), "ns/elem")
}

// TestCausalConv1dWide covers the vectorised path (D >= 16): forward
// against a float64 reference and the recurrent step against the forward.
func TestCausalConv1dWide(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	L, D, K := 11, 40, 4
	ldx := 2 * D // as inside in_proj's output
	x := make([]float32, L*ldx)
	w := make([]float32, D*K)
	b := make([]float32, D)
	for _, s := range [][]float32{x, w, b} {
		for i := range s {
			s[i] = float32(rng.Float64()*2 - 1)
		}
	}
	y := make([]float32, L*D)
	CausalConv1dForward(L, D, K, x, ldx, w, b, y, D)
	win := make([]float32, (K-1)*D)
	ys := make([]float32, D)
	for tk := 0; tk < L; tk++ {
		CausalConv1dStep(D, K, win, x[tk*ldx:], w, b, ys)
		for d := 0; d < D; d++ {
			want := float64(b[d])
			for k := 0; k < K; k++ {
				if s := tk - K + 1 + k; s >= 0 {
					want += float64(w[d*K+k]) * float64(x[s*ldx+d])
				}
			}
			if e := math.Abs(float64(y[tk*D+d]) - want); e > 1e-6 {
				t.Fatalf("t=%d d=%d: conv %g, float64 %g", tk, d, y[tk*D+d], want)
			}
			if ys[d] != y[tk*D+d] {
				t.Fatalf("t=%d d=%d: step %g, conv %g (must be bit-identical)", tk, d, ys[d], y[tk*D+d])
			}
		}
	}
}
