package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestGELUValues(t *testing.T) {
	// Values of x·Φ(x) from the standard normal CDF table:
	// Φ(1) = 0.8413447460685429, Φ(−1) = 0.15865525393145707, Φ(2) = 0.9772498680518208.
	for _, c := range []struct{ x, want float64 }{
		{0, 0}, {1, 0.8413447460685429}, {-1, -0.15865525393145707}, {2, 2 * 0.9772498680518208},
	} {
		if got := GELU(float32(c.x)); math.Abs(float64(got)-c.want) > 2e-7*math.Max(1, math.Abs(c.x)) {
			t.Fatalf("GELU(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	x := []float32{-3, -0.5, 0.25, 4}
	out := make([]float32, 4)
	GELUForward(out, x)
	dx := make([]float32, 4)
	GELUBackward(dx, []float32{1, 1, 1, 1}, x)
	for i, v := range x {
		if out[i] != GELU(v) {
			t.Fatalf("GELUForward[%d] = %g, GELU = %g", i, out[i], GELU(v))
		}
		const h = 1e-3
		num := (float64(GELU(v+h)) - float64(GELU(v-h))) / (2 * h)
		if math.Abs(float64(dx[i])-num) > 1e-3 {
			t.Fatalf("GELU'(%g) = %g, finite difference %g", v, dx[i], num)
		}
	}
}

// TestGeluErfAccuracy: the A&S 7.1.26 erf stays within 1.5e-7 (+ float32
// rounding) of the exact erf.
func TestGeluErfAccuracy(t *testing.T) {
	var worst float64
	for x := -6.0; x <= 6.0; x += 1e-3 {
		worst = math.Max(worst, math.Abs(float64(geluErf(float32(x)))-math.Erf(float64(float32(x)))))
	}
	if worst > 5e-7 { // 1.5e-7 formula error + float32 rounding of 1 − r·t·e near x = 0
		t.Fatalf("geluErf worst error %g", worst)
	}
	t.Logf("geluErf worst absolute error %.3g", worst)
}

func TestGeGLUForwardBackward(t *testing.T) {
	for _, hidden := range []int{10, 37} { // 37: two 16-lane vector blocks and a tail
		testGeGLU(t, 3, hidden)
	}
}

func testGeGLU(t *testing.T, rows, hidden int) {
	r := rand.New(rand.NewPCG(7, 8))
	u := attnRandSlice(r, rows*2*hidden, 1.5)
	out := make([]float32, rows*hidden)
	GeGLUForward(out, u, rows, hidden)
	gelu64 := func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
	u64 := attnTo64(u)
	for r0 := 0; r0 < rows; r0++ {
		for j := 0; j < hidden; j++ {
			want := u64[r0*2*hidden+j] * gelu64(u64[r0*2*hidden+hidden+j])
			if math.Abs(float64(out[r0*hidden+j])-want) > 1e-6+1e-6*math.Abs(want)+3e-7*math.Abs(u64[r0*2*hidden+j]*u64[r0*2*hidden+hidden+j]) {
				t.Fatalf("out[%d,%d] = %g, want %g", r0, j, out[r0*hidden+j], want)
			}
		}
	}
	dout := attnRandSlice(r, rows*hidden, 1)
	du := make([]float32, len(u))
	GeGLUBackward(du, dout, u, rows, hidden)
	loss := func() float64 {
		var s float64
		for r0 := 0; r0 < rows; r0++ {
			for j := 0; j < hidden; j++ {
				s += float64(dout[r0*hidden+j]) * u64[r0*2*hidden+j] * gelu64(u64[r0*2*hidden+hidden+j])
			}
		}
		return s
	}
	const h = 1e-6
	for i := range u64 {
		old := u64[i]
		u64[i] = old + h
		lp := loss()
		u64[i] = old - h
		lm := loss()
		u64[i] = old
		num := (lp - lm) / (2 * h)
		if math.Abs(float64(du[i])-num) > 1e-5+1e-4*math.Abs(num) {
			t.Fatalf("du[%d] = %g, finite difference %g", i, du[i], num)
		}
	}
}
