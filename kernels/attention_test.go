package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// attnNaive64 is the textbook softmax(scale·QKᵀ)·V per head, in float64,
// materialising the whole probability matrix. It is the independent
// reference for the tiled kernel.
func attnNaive64(q, k, v []float64, L, H, dh, ld int, scale float64) []float64 {
	out := make([]float64, L*ld)
	p := make([]float64, L)
	for h := 0; h < H; h++ {
		co := h * dh
		for i := 0; i < L; i++ {
			mx := math.Inf(-1)
			for j := 0; j < L; j++ {
				var s float64
				for d := 0; d < dh; d++ {
					s += q[i*ld+co+d] * k[j*ld+co+d]
				}
				p[j] = s * scale
				mx = math.Max(mx, p[j])
			}
			var sum float64
			for j := range p {
				p[j] = math.Exp(p[j] - mx)
				sum += p[j]
			}
			for j := 0; j < L; j++ {
				for d := 0; d < dh; d++ {
					out[i*ld+co+d] += p[j] / sum * v[j*ld+co+d]
				}
			}
		}
	}
	return out
}

func attnRandSlice(r *rand.Rand, n int, std float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64() * std)
	}
	return s
}

func attnTo64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

func TestAttentionForwardMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sc := NewAttentionScratch()
	// Lengths that hit partial tiles (443 = 6·64 + 59, 401, 70) and a single tile (5).
	for _, L := range []int{5, 70, 401, 443} {
		H, dh := 8, 24
		ld := H*dh + 3 // a row stride wider than the heads
		q, k, v := attnRandSlice(r, L*ld, 1.5), attnRandSlice(r, L*ld, 1.5), attnRandSlice(r, L*ld, 1)
		ldo := H*dh + 1 // ctx has its own stride
		ctx := make([]float32, L*ldo)
		lse := make([]float32, H*L)
		scale := float32(1 / math.Sqrt(float64(dh)))
		AttentionForward(ctx, ldo, lse, q, k, v, ld, L, H, dh, scale, sc)
		want := attnNaive64(attnTo64(q), attnTo64(k), attnTo64(v), L, H, dh, ld, float64(scale))
		var worst float64
		for i := 0; i < L; i++ {
			for c := 0; c < H*dh; c++ {
				d := math.Abs(float64(ctx[i*ldo+c]) - want[i*ld+c])
				worst = math.Max(worst, d/(1e-6+math.Abs(want[i*ld+c])))
				if d > 1e-5+1e-4*math.Abs(want[i*ld+c]) {
					t.Fatalf("L=%d ctx[%d,%d] = %g, naive %g", L, i, c, ctx[i*ldo+c], want[i*ld+c])
				}
			}
		}
		// lse is checked through the probabilities it implies: Σ_j exp(s_ij − lse_i) = 1.
		for h := 0; h < H; h++ {
			for _, i := range []int{0, L / 2, L - 1} {
				var sum float64
				for j := 0; j < L; j++ {
					var s float64
					for d := 0; d < dh; d++ {
						s += float64(q[i*ld+h*dh+d]) * float64(k[j*ld+h*dh+d])
					}
					sum += math.Exp(s*float64(scale) - float64(lse[h*L+i]))
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Fatalf("L=%d head %d row %d: probabilities from lse sum to %g", L, h, i, sum)
				}
			}
		}
		t.Logf("L=%d worst relative error %.3g", L, worst)
	}
}

// TestAttentionBackwardFiniteDifferences checks dq, dk, dv against central
// differences of the float64 naive attention for the loss Σ dctx ∘ ctx.
func TestAttentionBackwardFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sc := NewAttentionScratch()
	L, H, dh := 140, 2, 5 // 140 rows: three query tiles and two key tiles
	ld := H * dh
	scale := float32(1 / math.Sqrt(float64(dh)))
	q, k, v := attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1)
	dctx := attnRandSlice(r, L*ld, 1)
	ctx := make([]float32, L*ld)
	lse := make([]float32, H*L)
	AttentionForward(ctx, ld, lse, q, k, v, ld, L, H, dh, scale, sc)
	dq, dk, dv := make([]float32, L*ld), make([]float32, L*ld), make([]float32, L*ld)
	for i := range dq { // garbage must be overwritten
		dq[i], dk[i], dv[i] = 7, 7, 7
	}
	AttentionBackward(dq, dk, dv, dctx, ctx, ld, lse, q, k, v, ld, L, H, dh, scale, sc)

	q64, k64, v64, d64 := attnTo64(q), attnTo64(k), attnTo64(v), attnTo64(dctx)
	loss := func() float64 {
		o := attnNaive64(q64, k64, v64, L, H, dh, ld, float64(scale))
		var s float64
		for i := range o {
			s += o[i] * d64[i]
		}
		return s
	}
	const eps = 1e-5
	for _, tc := range []struct {
		name string
		x    []float64
		g    []float32
	}{{"dq", q64, dq}, {"dk", k64, dk}, {"dv", v64, dv}} {
		for n := 0; n < 40; n++ {
			i := r.IntN(len(tc.x))
			old := tc.x[i]
			tc.x[i] = old + eps
			lp := loss()
			tc.x[i] = old - eps
			lm := loss()
			tc.x[i] = old
			num := (lp - lm) / (2 * eps)
			if d := math.Abs(float64(tc.g[i]) - num); d > 1e-4+1e-3*math.Abs(num) {
				t.Fatalf("%s[%d] = %g, finite difference %g", tc.name, i, tc.g[i], num)
			}
		}
	}
}

func TestAttnExpAccuracy(t *testing.T) {
	var worst float64
	for x := -87.0; x <= 88.0; x += 0.001 {
		got := float64(attnExp(float32(x)))
		want := math.Exp(float64(float32(x)))
		worst = math.Max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Fatalf("attnExp worst relative error %g", worst)
	}
	if attnExp(float32(math.Inf(-1))) != 0 || attnExp(-100) != 0 {
		t.Fatal("attnExp of a very negative argument is not 0")
	}
	t.Logf("attnExp worst relative error %.3g", worst)
}

func BenchmarkAttentionForward(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	L, H, dh := 443, 8, 24
	ld := H * dh
	q, k, v := attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1)
	ctx, lse := make([]float32, L*ld), make([]float32, H*L)
	sc := NewAttentionScratch()
	cpu0 := attnCPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		AttentionForward(ctx, ld, lse, q, k, v, ld, L, H, dh, 1/float32(math.Sqrt(24)), sc)
	}
	b.ReportMetric(AttentionFLOPs(L, H, dh)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := (attnCPUTime() - cpu0).Seconds(); cpu > 0 {
		b.ReportMetric(AttentionFLOPs(L, H, dh)*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
	}
}

func BenchmarkAttentionBackward(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	L, H, dh := 443, 8, 24
	ld := H * dh
	q, k, v := attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1)
	ctx, lse := make([]float32, L*ld), make([]float32, H*L)
	dq, dk, dv, dctx := make([]float32, L*ld), make([]float32, L*ld), make([]float32, L*ld), attnRandSlice(r, L*ld, 1)
	sc := NewAttentionScratch()
	scale := 1 / float32(math.Sqrt(24))
	AttentionForward(ctx, ld, lse, q, k, v, ld, L, H, dh, scale, sc)
	cpu0 := attnCPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		AttentionBackward(dq, dk, dv, dctx, ctx, ld, lse, q, k, v, ld, L, H, dh, scale, sc)
	}
	// recompute QKᵀ + 4 products = 2.5× the forward's two products
	b.ReportMetric(2.5*AttentionFLOPs(L, H, dh)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := (attnCPUTime() - cpu0).Seconds(); cpu > 0 {
		b.ReportMetric(2.5*AttentionFLOPs(L, H, dh)*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
	}
}

// TestAttnExpRow checks the (vector) exp row against math.Exp, including
// a tail that is not a multiple of 16 and very negative arguments.
func TestAttnExpRow(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	row := make([]float32, 16*5+7)
	for i := range row {
		row[i] = float32(r.Float64()*200 - 150)
	}
	row[3] = -1e6 // exp underflows
	orig := append([]float32(nil), row...)
	const scale, shift = 0.5, 3.25
	sum := attnExpRow(row, scale, shift)
	var want64 float64
	for i, x := range orig {
		arg := float64(x)*scale - shift
		w := math.Exp(arg)
		want64 += w
		// float32 rounding of the argument costs |arg|·2⁻²⁴ relative
		if d := math.Abs(float64(row[i]) - w); d > 1e-37+(3e-7+1.2e-7*math.Abs(arg))*w {
			t.Fatalf("exp row[%d]: %g, want %g", i, row[i], w)
		}
	}
	if math.Abs(float64(sum)-want64) > 1e-5*want64 {
		t.Fatalf("sum %g, want %g", sum, want64)
	}
}

// TestAttentionZeroAlloc: after the first call (GEMM packing scratch
// sized), forward and backward allocate nothing.
func TestAttentionZeroAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	L, H, dh := 100, 2, 8
	ld := H * dh
	q, k, v := attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1), attnRandSlice(r, L*ld, 1)
	ctx, lse := make([]float32, L*ld), make([]float32, H*L)
	dq, dk, dv, dctx := make([]float32, L*ld), make([]float32, L*ld), make([]float32, L*ld), attnRandSlice(r, L*ld, 1)
	sc := NewAttentionScratch()
	step := func() {
		AttentionForward(ctx, ld, lse, q, k, v, ld, L, H, dh, 0.3, sc)
		AttentionBackward(dq, dk, dv, dctx, ctx, ld, lse, q, k, v, ld, L, H, dh, 0.3, sc)
	}
	step()
	if n := testing.AllocsPerRun(3, step); n != 0 {
		t.Fatalf("%g allocations per forward+backward", n)
	}
}
