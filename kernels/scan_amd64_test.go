//go:build amd64 && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// asmLevels returns the assembly paths this CPU can run, widest first
// (on an AVX-512 machine both AVX-512 and AVX2 are tested).
func asmLevels(t testing.TB) []simdLevel {
	var ls []simdLevel
	for l := detectSIMD(); l > simdGo; l-- {
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		t.Log("no AVX2+FMA or AVX-512 on this CPU: the Go kernels are the only path")
	}
	return ls
}

// withSIMD runs f with the kernels dispatched at level l, the test-only
// override of the init-time CPU decision.
func withSIMD(l simdLevel, f func()) {
	old := scanSIMD
	scanSIMD = l
	defer func() { scanSIMD = old }()
	f()
}

// TestScanAsmMatchesGo compares each assembly scan with the Go loop, from
// zeros and from a given initial state (which also receives the final
// state). D = 44 leaves channels to the Go loop on both widths.
func TestScanAsmMatchesGo(t *testing.T) {
	for _, lvl := range asmLevels(t) {
		t.Run(lvl.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 22))
			c := newScanCase(rng, 401, 44, 16)
			// Include large Δ·A (exp underflow) and large |z| (gate saturation).
			c.delta[5] = 30
			c.z[7], c.z[9] = 60, -60
			s := c.scan32()
			h0 := make([]float32, c.D*c.N)
			for i := range h0 {
				h0[i] = float32(rng.Float64()*2 - 1)
			}
			for _, withState := range []bool{false, true} {
				run := func(l simdLevel) ([]float32, []float32) {
					y := make([]float32, c.L*c.D)
					var h []float32
					if withState {
						h = append([]float32(nil), h0...)
					}
					withSIMD(l, func() { s.Forward(y, c.D, h) })
					return y, h
				}
				fast, hf := run(lvl)
				slow, hs := run(simdGo)
				var worst, maxAbs float64
				for i := range fast {
					d := math.Abs(float64(fast[i] - slow[i]))
					maxAbs = math.Max(maxAbs, d)
					worst = math.Max(worst, d/(1e-6+1e-5*math.Abs(float64(slow[i]))))
				}
				for i := range hf {
					d := math.Abs(float64(hf[i] - hs[i]))
					worst = math.Max(worst, d/(1e-6+1e-5*math.Abs(float64(hs[i]))))
				}
				t.Logf("%s vs Go scan (initial state %v): max|d| %.3g, worst ratio to tolerance %.3g", lvl, withState, maxAbs, worst)
				if worst > 1 {
					t.Fatalf("%s scan differs from Go: max|d| %g, worst ratio %g", lvl, maxAbs, worst)
				}
			}
		})
	}
}

// TestScanAsmStridedMatchesGo runs each assembly forward on operands laid
// out as the mixer passes them: u, Δ and z column blocks of wider rows, B
// and C interleaved in x_proj's output, y with its own stride; it must
// equal the Go loop on the same layout and leave the padding untouched.
func TestScanAsmStridedMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	L, D, N := 37, 24, 16
	fill := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return v
	}
	xz := fill(L*2*D, -2, 2) // (L, 2D): u | z
	dbc := fill(L*(D+2*N+3), -1, 1)
	ld := D + 2*N + 3 // x_proj-like rows: Δ | B | C | 3 spare
	for tk := 0; tk < L; tk++ {
		for d := 0; d < D; d++ {
			dbc[tk*ld+d] = float32(0.001 + 0.5*rng.Float64())
		}
	}
	s := &Scan{L: L, D: D, N: N, U: xz, LdU: 2 * D, Delta: dbc, LdDel: ld, A: fill(D*N, -4, -0.5),
		B: dbc[D:], LdB: ld, C: dbc[D+N:], LdC: ld, Dskip: fill(D, 0.5, 1.5), Z: xz[D:], LdZ: 2 * D}
	ldy := D + 5
	run := func(l simdLevel) []float32 {
		y := make([]float32, L*ldy)
		for i := range y {
			y[i] = 7
		}
		withSIMD(l, func() { s.Forward(y, ldy, nil) })
		return y
	}
	slow := run(simdGo)
	for _, lvl := range asmLevels(t) {
		fast := run(lvl)
		var worst float64
		for i := range fast {
			if i%ldy >= D && fast[i] != 7 {
				t.Fatalf("%s: padding y[%d] overwritten (%g)", lvl, i, fast[i])
			}
			d := math.Abs(float64(fast[i] - slow[i]))
			worst = math.Max(worst, d/(1e-6+1e-5*math.Abs(float64(slow[i]))))
		}
		t.Logf("%s strided scan vs Go: worst ratio to tolerance %.3g", lvl, worst)
		if worst > 1 {
			t.Errorf("%s strided scan differs from Go (worst ratio %g)", lvl, worst)
		}
	}
}

// TestScanBackwardAsmMatchesGo compares every gradient of each assembly
// backward (AVX-512: 2 blocks of 16 + 8 channels in Go; AVX2: 5 blocks
// of 8) with the Go loop.
func TestScanBackwardAsmMatchesGo(t *testing.T) {
	for _, lvl := range asmLevels(t) {
		t.Run(lvl.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(31, 32))
			c := newScanCase(rng, 57, 40, 16)
			c.delta[3] = 30
			c.z[11], c.z[12] = 40, -40
			s := c.scan32()
			L, D, N := c.L, c.D, c.N
			run := func(l simdLevel) (*ScanGrad, []float32) {
				g := &ScanGrad{DY: to32(c.dy), LdDY: D, DU: make([]float32, L*D), LdDU: D, DDelta: make([]float32, L*D), LdDDel: D,
					DZ: make([]float32, L*D), LdDZ: D, DA: make([]float32, D*N), DB: make([]float32, L*N), LdDB: N,
					DC: make([]float32, L*N), LdDC: N, DDskip: make([]float32, D)}
				y := make([]float32, L*D)
				withSIMD(l, func() { s.Backward(g, make([]float32, BackwardScratch(L, N)), y, D) })
				return g, y
			}
			fast, yf := run(lvl)
			slow, ys := run(simdGo)
			for _, p := range []struct {
				name string
				a, b []float32
			}{{"y", yf, ys}, {"du", fast.DU, slow.DU}, {"ddelta", fast.DDelta, slow.DDelta}, {"dz", fast.DZ, slow.DZ},
				{"dA", fast.DA, slow.DA}, {"dB", fast.DB, slow.DB}, {"dC", fast.DC, slow.DC}, {"dD", fast.DDskip, slow.DDskip}} {
				var scale float64
				for _, v := range p.b {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				var maxd float64
				for i := range p.a {
					maxd = math.Max(maxd, math.Abs(float64(p.a[i]-p.b[i])))
				}
				t.Logf("%-6s max|%s−go| %.3g (max|go| %.3g)", p.name, lvl, maxd, scale)
				if maxd > 2e-5*scale+1e-6 {
					t.Errorf("%s: %s backward differs from Go by %g (scale %g)", p.name, lvl, maxd, scale)
				}
			}
		})
	}
}

// TestActivationsAsmMatchGo checks each assembly SiLU and softplus(x+bias)
// against float64 (the tolerances of TestVectorActivations) and against
// the Go path, over [-95, 95] plus special values (±1e20 made the
// unclamped AVX-512 exp return NaN); the odd tail runs in Go.
func TestActivationsAsmMatchGo(t *testing.T) {
	n := 16*700 + 13
	x := make([]float32, n)
	bias := make([]float32, n)
	for i := range x {
		x[i] = -95 + 190*float32(i)/float32(n)
		bias[i] = float32(i%7) * 0.01
	}
	copy(x, []float32{0, -0.0, 1e-30, -1e-30, -87.3, -87.4, -88.5, 88.3, 20, 20.5, -20, 1e20, -1e20})
	for _, lvl := range asmLevels(t) {
		t.Run(lvl.String(), func(t *testing.T) {
			y := make([]float32, n)
			ygo := make([]float32, n)
			withSIMD(lvl, func() { SiLUForward(n, x, y) })
			withSIMD(simdGo, func() { SiLUForward(n, x, ygo) })
			worst, worstGo := 0.0, 0.0
			for i, v := range x {
				want := float64(v) / (1 + math.Exp(-float64(v)))
				worst = math.Max(worst, math.Abs(float64(y[i])-want)/(1e-30+2e-7*math.Abs(want)))
				worstGo = math.Max(worstGo, math.Abs(float64(y[i]-ygo[i]))/(1e-30+4e-7*math.Abs(float64(ygo[i]))))
			}
			t.Logf("SiLU %s: worst error / (2e-7·|want|) = %.3g, vs Go / (4e-7·|go|) = %.3g", lvl, worst, worstGo)
			if worst > 1 || worstGo > 1 {
				t.Errorf("SiLU %s: error ratio %g against float64, %g against Go", lvl, worst, worstGo)
			}
			withSIMD(lvl, func() { SoftplusBiasForward(1, n, x, n, bias, y, n) })
			withSIMD(simdGo, func() { SoftplusBiasForward(1, n, x, n, bias, ygo, n) })
			worst, worstGo = 0, 0
			for i, v := range x {
				s := float64(v + bias[i])
				want := s
				if s <= 20 {
					want = math.Log1p(math.Exp(s))
				}
				worst = math.Max(worst, math.Abs(float64(y[i])-want)/(1e-38+3e-7*want))
				worstGo = math.Max(worstGo, math.Abs(float64(y[i]-ygo[i]))/(2e-38+6e-7*float64(ygo[i]))) // Go flushes e^x to 0 below −87.34
			}
			t.Logf("softplus %s: worst error / (3e-7·|want|) = %.3g, vs Go / (6e-7·|go|) = %.3g", lvl, worst, worstGo)
			if worst > 1 || worstGo > 1 {
				t.Errorf("softplus %s: error ratio %g against float64, %g against Go", lvl, worst, worstGo)
			}
			// Short rows: one block (tail only), odd and even block counts.
			for _, m := range []int{7, 8, 9, 16, 24, 31, 40} {
				a, ago := make([]float32, m), make([]float32, m)
				sp, spgo := make([]float32, m), make([]float32, m)
				withSIMD(lvl, func() { SiLUForward(m, x[100:], a); SoftplusBiasForward(1, m, x[100:], m, bias, sp, m) })
				withSIMD(simdGo, func() { SiLUForward(m, x[100:], ago); SoftplusBiasForward(1, m, x[100:], m, bias, spgo, m) })
				for i := range a {
					if math.Abs(float64(a[i]-ago[i])) > 4e-7*math.Abs(float64(ago[i]))+1e-30 ||
						math.Abs(float64(sp[i]-spgo[i])) > 6e-7*float64(spgo[i])+2e-38 {
						t.Fatalf("%s, length %d, element %d: SiLU %g (Go %g), softplus %g (Go %g)", lvl, m, i, a[i], ago[i], sp[i], spgo[i])
					}
				}
			}
		})
	}
}

// TestConvAsmMatchesGo checks that each assembly K = 4 conv is
// bit-identical to the Go loop (same multiply-then-add order), with
// channels left to Go on both widths.
func TestConvAsmMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	L, D, K := 13, 44, 4
	ldx := 2 * D
	x := make([]float32, L*ldx)
	w := make([]float32, D*K)
	b := make([]float32, D)
	for _, s := range [][]float32{x, w, b} {
		for i := range s {
			s[i] = float32(rng.Float64()*2 - 1)
		}
	}
	ygo := make([]float32, L*D)
	withSIMD(simdGo, func() { CausalConv1dForward(L, D, K, x, ldx, w, b, ygo, D) })
	for _, lvl := range asmLevels(t) {
		y := make([]float32, L*D)
		withSIMD(lvl, func() { CausalConv1dForward(L, D, K, x, ldx, w, b, y, D) })
		for i := range y {
			if y[i] != ygo[i] {
				t.Fatalf("%s conv: y[%d] = %g, Go %g (must be bit-identical)", lvl, i, y[i], ygo[i])
			}
		}
	}
}

// BenchmarkKernelPaths reports ns/element of the scan forward and backward
// (per L·D·N) and of the activations (per element) for every path this CPU
// runs, in one run so the ratios are comparable.
func BenchmarkKernelPaths(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	c := newScanCase(rng, 401, 512, 16)
	s := c.scan32()
	L, D, N := c.L, c.D, c.N
	y := make([]float32, L*D)
	g := &ScanGrad{DY: to32(c.dy), LdDY: D, DU: make([]float32, L*D), LdDU: D, DDelta: make([]float32, L*D), LdDDel: D,
		DZ: make([]float32, L*D), LdDZ: D, DA: make([]float32, D*N), DB: make([]float32, L*N), LdDB: N,
		DC: make([]float32, L*N), LdDC: N, DDskip: make([]float32, D)}
	scratch := make([]float32, BackwardScratch(L, N))
	x := make([]float32, L*D)
	for i := range x {
		x[i] = float32(i%200)*0.05 - 8
	}
	bias := make([]float32, D)
	w := make([]float32, D*4)
	levels := append([]simdLevel{simdGo}, asmLevels(b)...)
	for _, k := range []struct {
		name  string
		elems int
		run   func()
	}{
		{"scanfwd", L * D * N, func() { s.Forward(y, D, nil) }},
		{"scanbwd", L * D * N, func() { clear(g.DB); clear(g.DC); s.Backward(g, scratch, y, D) }},
		{"silu", L * D, func() { SiLUForward(L*D, x, y) }},
		{"softplus", L * D, func() { SoftplusBiasForward(L, D, x, D, bias, y, D) }},
		{"conv4", L * D, func() { CausalConv1dForward(L, D, 4, x, D, w, bias, y, D) }},
	} {
		for _, lvl := range levels {
			b.Run(k.name+"/"+lvl.String(), func(b *testing.B) {
				withSIMD(lvl, func() {
					for i := 0; i < b.N; i++ {
						k.run()
					}
				})
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k.elems), "ns/elem")
			})
		}
	}
}
