//go:build amd64 && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttnVectorPathsAgree runs the AVX2 kernels directly (this CPU may
// prefer AVX-512) and compares exp rows and GeGLU rows with the scalar Go
// formulas.
func TestAttnVectorPathsAgree(t *testing.T) {
	if !attnHasAVX2 {
		t.Skip("no AVX2+FMA on this CPU") // the portable path is covered by the other tests
	}
	r := rand.New(rand.NewPCG(10, 10))
	n := 8*9 + 3
	row := make([]float32, n)
	for i := range row {
		row[i] = float32(r.Float64()*120 - 100)
	}
	row[2] = -1e6
	ref := append([]float32(nil), row...)
	got := append([]float32(nil), row...)
	const scale, shift = 0.7, 1.5
	k, sum := attnExpRow8(got, scale, shift)
	if k != 72 {
		t.Fatalf("AVX2 exp row handled %d of %d", k, n)
	}
	var want float64
	for i := 0; i < k; i++ {
		arg := float64(ref[i])*scale - shift
		w := math.Exp(arg)
		want += w
		// float32 rounding of the argument costs |arg|·2⁻²⁴ relative
		if math.Abs(float64(got[i])-w) > 1e-37+(3e-7+1.2e-7*math.Abs(arg))*w {
			t.Fatalf("AVX2 exp[%d] = %g, scalar %g", i, got[i], w)
		}
	}
	if math.Abs(float64(sum)-want) > 1e-5*want {
		t.Fatalf("AVX2 exp sum %g, scalar %g", sum, want)
	}
	val, gate, dout := attnRandSlice(r, n, 1), attnRandSlice(r, n, 2), attnRandSlice(r, n, 1)
	out, dval, dgate := make([]float32, n), make([]float32, n), make([]float32, n)
	if gelugluFwd8(val, gate, out) != 72 || gelugluBwd8(val, gate, dout, dval, dgate) != 72 {
		t.Fatal("AVX2 GeGLU did not handle the 8-lane blocks")
	}
	for i := 0; i < 72; i++ {
		y, dy := geluGrad(gate[i])
		for _, c := range []struct {
			name      string
			got, want float32
		}{{"out", out[i], val[i] * y}, {"dval", dval[i], dout[i] * y}, {"dgate", dgate[i], dout[i] * val[i] * dy}} {
			if math.Abs(float64(c.got-c.want)) > 1e-6+1e-5*math.Abs(float64(c.want)) {
				t.Fatalf("AVX2 %s[%d] = %g, scalar %g", c.name, i, c.got, c.want)
			}
		}
	}
}

// TestAttentionAVX2MatchesAVX512 runs the whole attention forward and
// backward with the AVX2 kernels (as on a CPU without AVX-512) and
// compares them with the default path.
func TestAttentionAVX2MatchesAVX512(t *testing.T) {
	if !attnHasAVX2 || !attnHasAVX512 {
		t.Skip("needs both AVX2 and AVX-512 to compare")
	}
	r := rand.New(rand.NewPCG(12, 12))
	L, H, dh := 150, 2, 24
	ld := H * dh
	q, k, v, dctx := attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1)
	run := func() [][]float32 {
		ctx, lse := make([]float32, L*ld), make([]float32, H*L)
		dq, dk, dv := make([]float32, L*ld), make([]float32, L*ld), make([]float32, L*ld)
		sc := NewAttentionScratch()
		AttentionForward(ctx, ld, lse, q, k, v, ld, L, H, dh, 0.2, sc)
		AttentionBackward(dq, dk, dv, dctx, ctx, ld, lse, q, k, v, ld, L, H, dh, 0.2, sc)
		return [][]float32{ctx, lse, dq, dk, dv}
	}
	fast := run()
	attnHasAVX512 = false
	defer func() { attnHasAVX512 = true }()
	slow := run()
	for i := range fast {
		for j := range fast[i] {
			if d := math.Abs(float64(fast[i][j] - slow[i][j])); d > 1e-6+1e-5*math.Abs(float64(fast[i][j])) {
				t.Fatalf("output %d[%d]: AVX-512 %g, AVX2 %g", i, j, fast[i][j], slow[i][j])
			}
		}
	}
}
