package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// lnNaive64 is nn.LayerNorm in float64 (biased variance).
func lnNaive64(x, w, b []float64, rows, d int, eps float64) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		var mu, v float64
		for i := 0; i < d; i++ {
			mu += x[r*d+i]
		}
		mu /= float64(d)
		for i := 0; i < d; i++ {
			v += (x[r*d+i] - mu) * (x[r*d+i] - mu)
		}
		v /= float64(d)
		for i := 0; i < d; i++ {
			out[r*d+i] = (x[r*d+i]-mu)/math.Sqrt(v+eps)*w[i] + b[i]
		}
	}
	return out
}

func TestLayerNormHandValues(t *testing.T) {
	// x = [1 2 3 4]: μ = 2.5, σ² = 1.25; w = 1, b = 0, eps = 0.
	x := []float32{1, 2, 3, 4}
	out := make([]float32, 4)
	mean, rstd := make([]float32, 1), make([]float32, 1)
	LayerNormForward(out, mean, rstd, x, []float32{1, 1, 1, 1}, []float32{0, 0, 0, 0}, 1, 4, 0)
	s := 1 / math.Sqrt(1.25)
	for i, want := range []float64{-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s} {
		if math.Abs(float64(out[i])-want) > 1e-6 {
			t.Fatalf("out[%d] = %g, want %g", i, out[i], want)
		}
	}
	if mean[0] != 2.5 || math.Abs(float64(rstd[0])-s) > 1e-6 {
		t.Fatalf("mean %g rstd %g", mean[0], rstd[0])
	}
}

func TestLayerNormForwardBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	rows, d := 7, 192
	for _, eps := range []float32{1e-5, 1e-6} {
		x := attnRandSlice(r, rows*d, 2)
		for i := range x {
			x[i] += 0.7
		}
		w, b := attnRandSlice(r, d, 1), attnRandSlice(r, d, 1)
		out := make([]float32, rows*d)
		mean, rstd := make([]float32, rows), make([]float32, rows)
		LayerNormForward(out, mean, rstd, x, w, b, rows, d, eps)
		x64, w64, b64 := attnTo64(x), attnTo64(w), attnTo64(b)
		want := lnNaive64(x64, w64, b64, rows, d, float64(eps))
		for i := range out {
			if math.Abs(float64(out[i])-want[i]) > 1e-5+1e-5*math.Abs(want[i]) {
				t.Fatalf("out[%d] = %g, want %g", i, out[i], want[i])
			}
		}
		dout := attnRandSlice(r, rows*d, 1)
		dx := make([]float32, rows*d)
		dw, db := make([]float32, d), make([]float32, d)
		dx[3] = 1 // accumulation: this 1 must survive
		LayerNormBackward(dx, dw, db, dout, x, mean, rstd, w, rows, d)
		dx[3]--
		d64 := attnTo64(dout)
		loss := func() float64 {
			o := lnNaive64(x64, w64, b64, rows, d, float64(eps))
			var s float64
			for i := range o {
				s += o[i] * d64[i]
			}
			return s
		}
		const h = 1e-6
		for _, tc := range []struct {
			name string
			p    []float64
			g    []float32
		}{{"dx", x64, dx}, {"dw", w64, dw}, {"db", b64, db}} {
			for n := 0; n < 30; n++ {
				i := r.IntN(len(tc.p))
				old := tc.p[i]
				tc.p[i] = old + h
				lp := loss()
				tc.p[i] = old - h
				lm := loss()
				tc.p[i] = old
				num := (lp - lm) / (2 * h)
				if diff := math.Abs(float64(tc.g[i]) - num); diff > 1e-4+1e-3*math.Abs(num) {
					t.Fatalf("eps %g %s[%d] = %g, finite difference %g", eps, tc.name, i, tc.g[i], num)
				}
			}
		}
	}
}
