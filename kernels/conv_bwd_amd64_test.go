//go:build amd64 && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConvBackwardAsmMatchesGo checks each assembly K = 4 conv backward
// against a float64 evaluation of the definition and against the Go loop:
// dx overwritten (rows pre-filled with garbage), dw and db accumulated
// from non-zero starts, strided rows, channels left to Go on both widths
// (D = 44), and lengths with no, one and many interior rows.
func TestConvBackwardAsmMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	const D, K = 44, 4
	rnd := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.Float64()*2 - 1)
		}
		return s
	}
	for _, L := range []int{1, 3, 4, 5, 13, 40} {
		ldx, lddy, lddx := 2*D, D+5, 2*D+1
		x, w, dy := rnd(L*ldx), rnd(D*K), rnd(L*lddy)
		dw0, db0 := rnd(D*K), rnd(D)
		// float64 reference: y[t,d] = b[d] + Σ_k w[d,k]·x[t−3+k, d].
		dxW := make([]float64, L*D)
		dwW := make([]float64, D*K)
		dbW := make([]float64, D)
		for d := 0; d < D; d++ {
			dbW[d] = float64(db0[d])
			for k := 0; k < K; k++ {
				dwW[d*K+k] = float64(dw0[d*K+k])
			}
			for t := 0; t < L; t++ {
				g := float64(dy[t*lddy+d])
				dbW[d] += g
				for k := 0; k < K; k++ {
					if s := t - K + 1 + k; s >= 0 {
						dwW[d*K+k] += g * float64(x[s*ldx+d])
						dxW[s*D+d] += g * float64(w[d*K+k])
					}
				}
			}
		}
		run := func(l simdLevel) (dx, dw, db []float32) {
			dx = make([]float32, L*lddx)
			for i := range dx {
				dx[i] = 1e6 // garbage, must be overwritten
			}
			dw = append([]float32(nil), dw0...)
			db = append([]float32(nil), db0...)
			withSIMD(l, func() { CausalConv1dBackward(L, D, K, x, ldx, w, dy, lddy, dx, lddx, dw, db) })
			return dx, dw, db
		}
		dxGo, dwGo, dbGo := run(simdGo)
		for _, lvl := range append([]simdLevel{simdGo}, asmLevels(t)...) {
			dx, dw, db := run(lvl)
			check := func(what string, i int, got, goV float32, want float64, mag float64) {
				if math.Abs(float64(got)-want) > 1e-6*mag || math.Abs(float64(got-goV)) > 1e-6*mag {
					t.Fatalf("%s L=%d %s[%d] = %g, Go %g, float64 %g", lvl, L, what, i, got, goV, want)
				}
			}
			for s := 0; s < L; s++ {
				for d := 0; d < D; d++ {
					i := s*lddx + d
					check("dx", i, dx[i], dxGo[i], dxW[s*D+d], 4)
				}
				for d := D; d < lddx; d++ { // the gap between rows is untouched
					if dx[s*lddx+d] != 1e6 {
						t.Fatalf("%s L=%d: dx row %d written past D", lvl, L, s)
					}
				}
			}
			for i := range dw {
				check("dw", i, dw[i], dwGo[i], dwW[i], float64(L+1))
			}
			for i := range db {
				check("db", i, db[i], dbGo[i], dbW[i], float64(L+1))
			}
		}
	}
}
