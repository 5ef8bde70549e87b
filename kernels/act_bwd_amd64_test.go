//go:build amd64 && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestActBackwardAsmMatchesGo checks each assembly SiLUBackward and
// SoftplusBiasBackward against float64 and against the Go loop, over
// [−95, 95] plus edge values, with tails left to Go and dx aliasing dy.
func TestActBackwardAsmMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 16*300 + 13
	x := make([]float32, n)
	bias := make([]float32, n)
	dy := make([]float32, n)
	for i := range x {
		x[i] = -95 + 190*float32(i)/float32(n)
		bias[i] = float32(i%7) * 0.01
		dy[i] = float32(rng.Float64()*4 - 2)
	}
	copy(x, []float32{0, -0.0, 1e-30, -1e-30, -87.3, -87.4, -88.5, 88.3, 20, 20.5, -20, 1e20, -1e20, -1.2785, 16.7, 19.99})
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for _, lvl := range asmLevels(t) {
		t.Run(lvl.String(), func(t *testing.T) {
			dx, dxgo := make([]float32, n), make([]float32, n)
			withSIMD(lvl, func() { SiLUBackward(n, x, dy, dx) })
			withSIMD(simdGo, func() { SiLUBackward(n, x, dy, dxgo) })
			worst, worstGo := 0.0, 0.0
			for i, v := range x {
				xv, g := float64(v), float64(dy[i])
				s := sig(xv)
				want := g * s * (1 + xv*(1-s))
				// SiLU' vanishes near x = −1.28: scale by its terms' size.
				scale := math.Abs(g) * s * (1 + math.Abs(xv)*(1-s))
				// Below x ≈ −87.3 the kernels flush e^x·(1+x) (< 1e-36) to 0.
				worst = math.Max(worst, math.Abs(float64(dx[i])-want)/(1e-36+4e-7*scale))
				worstGo = math.Max(worstGo, math.Abs(float64(dx[i]-dxgo[i]))/(1e-36+8e-7*scale))
			}
			t.Logf("SiLUBackward %s: worst error / (4e-7·scale) = %.3g, vs Go / (8e-7·scale) = %.3g", lvl, worst, worstGo)
			if worst > 1 || worstGo > 1 {
				t.Errorf("SiLUBackward %s: error ratio %g against float64, %g against Go", lvl, worst, worstGo)
			}

			// Softplus backward over 3 rows (row stride n+3), dbias from a
			// non-zero start, and in place (dx aliases dy) at the same time.
			const rows = 3
			ld := n + 3
			xs := make([]float32, rows*ld)
			gs := make([]float32, rows*ld)
			for r := 0; r < rows; r++ {
				copy(xs[r*ld:], x)
				for i := range n {
					gs[r*ld+i] = dy[(i+r*101)%n]
				}
			}
			db, dbgo := make([]float32, n), make([]float32, n)
			for i := range db {
				db[i] = float32(i%5) - 2
				dbgo[i] = db[i]
			}
			inPlace := append([]float32(nil), gs...)
			sgo := make([]float32, rows*ld)
			withSIMD(lvl, func() { SoftplusBiasBackward(rows, n, xs, ld, bias, inPlace, ld, inPlace, ld, db) })
			withSIMD(simdGo, func() { SoftplusBiasBackward(rows, n, xs, ld, bias, gs, ld, sgo, ld, dbgo) })
			worst, worstGo = 0, 0
			for r := 0; r < rows; r++ {
				for i := range n {
					v := float64(xs[r*ld+i] + bias[i])
					want := float64(gs[r*ld+i])
					if v <= 20 {
						want *= sig(v)
					}
					got := float64(inPlace[r*ld+i])
					if v > 20 && got != float64(gs[r*ld+i]) {
						t.Fatalf("softplus' %s above the threshold: row %d, %d: %g, want dy = %g", lvl, r, i, got, gs[r*ld+i])
					}
					worst = math.Max(worst, math.Abs(got-want)/(1e-37+3e-7*math.Abs(want)))
					worstGo = math.Max(worstGo, math.Abs(got-float64(sgo[r*ld+i]))/(1e-37+6e-7*math.Abs(want)))
				}
			}
			for i := range db {
				if d := math.Abs(float64(db[i] - dbgo[i])); d > 1e-6*(math.Abs(float64(dbgo[i]))+6) {
					t.Fatalf("softplus dbias %s [%d] = %g, Go %g", lvl, i, db[i], dbgo[i])
				}
			}
			t.Logf("SoftplusBiasBackward %s: worst error / (3e-7·|want|) = %.3g, vs Go / (6e-7·|want|) = %.3g", lvl, worst, worstGo)
			if worst > 1 || worstGo > 1 {
				t.Errorf("SoftplusBiasBackward %s: error ratio %g against float64, %g against Go", lvl, worst, worstGo)
			}

			// A NaN input gives a NaN gradient on every path.
			nan := float32(math.NaN())
			xn := []float32{1, 2, nan, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, nan}
			gn := make([]float32, 16)
			for i := range gn {
				gn[i] = 1
			}
			dn, dbn := make([]float32, 16), make([]float32, 16)
			withSIMD(lvl, func() { SoftplusBiasBackward(1, 16, xn, 16, make([]float32, 16), gn, 16, dn, 16, dbn) })
			if dn[2] == dn[2] || dn[15] == dn[15] || dbn[2] == dbn[2] || dn[0] != dn[0] {
				t.Errorf("softplus' %s of NaN: dx %v, dbias %v", lvl, dn, dbn)
			}
			withSIMD(lvl, func() { SiLUBackward(16, xn, gn, dn) })
			if dn[2] == dn[2] || dn[15] == dn[15] || dn[0] != dn[0] {
				t.Errorf("SiLU' %s of NaN: dx %v", lvl, dn)
			}

			// Short rows: tail only, odd and even block counts.
			for _, m := range []int{7, 8, 9, 16, 24, 31, 40} {
				a, ago := make([]float32, m), make([]float32, m)
				b, bgo := make([]float32, m), make([]float32, m)
				dbm, dbmgo := make([]float32, m), make([]float32, m)
				withSIMD(lvl, func() {
					SiLUBackward(m, x[200:], dy, a)
					SoftplusBiasBackward(1, m, x[200:], m, bias, dy, m, b, m, dbm)
				})
				withSIMD(simdGo, func() {
					SiLUBackward(m, x[200:], dy, ago)
					SoftplusBiasBackward(1, m, x[200:], m, bias, dy, m, bgo, m, dbmgo)
				})
				for i := range a {
					if math.Abs(float64(a[i]-ago[i])) > 1e-6*math.Abs(float64(dy[i]))+1e-37 ||
						math.Abs(float64(b[i]-bgo[i])) > 6e-7*math.Abs(float64(bgo[i]))+1e-37 || b[i] != dbm[i] {
						t.Fatalf("%s, length %d, element %d: SiLU' %g (Go %g), softplus' %g (Go %g), dbias %g", lvl, m, i, a[i], ago[i], b[i], bgo[i], dbm[i])
					}
				}
			}
		})
	}
}

// BenchmarkActBackwardPaths reports ns/element of the element-wise
// backward kernels on every path this CPU runs, in one run.
func BenchmarkActBackwardPaths(b *testing.B) {
	L, D := 401, 512
	x := make([]float32, L*D)
	dy := make([]float32, L*D)
	for i := range x {
		x[i] = float32(i%200)*0.05 - 8
		dy[i] = float32(i%13)*0.1 - 0.6
	}
	dx := make([]float32, L*D)
	bias := make([]float32, D)
	dbias := make([]float32, D)
	w := make([]float32, 4*D)
	dw := make([]float32, 4*D)
	for i := range w {
		w[i] = float32(i%9)*0.1 - 0.4
	}
	levels := append([]simdLevel{simdGo}, asmLevels(b)...)
	for _, k := range []struct {
		name string
		run  func()
	}{
		{"silubwd", func() { SiLUBackward(L*D, x, dy, dx) }},
		{"softplusbwd", func() { SoftplusBiasBackward(L, D, x, D, bias, dy, D, dx, D, dbias) }},
		{"conv4bwd", func() { CausalConv1dBackward(L, D, 4, x, D, w, dy, D, dx, D, dw, dbias) }},
	} {
		for _, lvl := range levels {
			b.Run(k.name+"/"+lvl.String(), func(b *testing.B) {
				withSIMD(lvl, func() {
					for i := 0; i < b.N; i++ {
						k.run()
					}
				})
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*L*D), "ns/elem")
			})
		}
	}
}
