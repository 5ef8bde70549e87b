package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExp32Accuracy(t *testing.T) {
	worst, at := 0.0, 0.0
	check := func(x float32) {
		want := math.Exp(float64(x))
		got := float64(Exp32(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst, at = rel, float64(x)
		}
	}
	for x := float32(-87.3); x <= 88.7; x += 0.00037 {
		check(x)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1_000_000; i++ {
		check(float32(rng.Float64()*20 - 10))
	}
	t.Logf("Exp32 max relative error %.3g at x=%g", worst, at)
	if worst > 2e-7 {
		t.Fatalf("Exp32 max relative error %.3g at x=%g, want <= 2e-7", worst, at)
	}
	if v := Exp32(-100); v != 0 {
		t.Errorf("Exp32(-100) = %g, want 0", v)
	}
	if v := Exp32(100); !math.IsInf(float64(v), 1) {
		t.Errorf("Exp32(100) = %g, want +Inf", v)
	}
	if v := Exp32(float32(math.NaN())); v == v {
		t.Errorf("Exp32(NaN) = %g, want NaN", v)
	}
	if v := Exp32(0); v != 1 {
		t.Errorf("Exp32(0) = %g, want 1", v)
	}
}

func TestLogAndSoftplus(t *testing.T) {
	worst := 0.0
	for x := float32(1e-30); x < 1e30; x *= 1.0013 {
		want := math.Log(float64(x))
		if math.Abs(want) < 0.5 {
			continue // ill-conditioned near 1: checked absolutely below
		}
		if rel := math.Abs(float64(Log32(x))-want) / math.Abs(want); rel > worst {
			worst = rel
		}
	}
	// Around 1 the relative error of ln is ill-conditioned; compare absolutely.
	for x := float32(0.5); x < 2; x += 1e-4 {
		if d := math.Abs(float64(Log32(x)) - math.Log(float64(x))); d > 1.2e-7 {
			t.Fatalf("Log32(%g) abs error %g", x, d)
		}
	}
	if worst > 3e-7 {
		t.Fatalf("Log32 max relative error %g", worst)
	}
	// Softplus against float64, PyTorch threshold semantics.
	worst = 0
	for x := float32(-80); x < 30; x += 0.0007 {
		var want float64
		if x > 20 {
			want = float64(x)
		} else {
			want = math.Log1p(math.Exp(float64(x)))
		}
		got := float64(Softplus(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	t.Logf("Softplus max relative error %.3g", worst)
	if worst > 5e-7 {
		t.Fatalf("Softplus max relative error %g", worst)
	}
	if Softplus(20.5) != 20.5 || SoftplusGrad(20.5) != 1 {
		t.Errorf("softplus threshold semantics broken")
	}
	// Hand-computed values: softplus(0) = ln 2, softplus'(0) = 1/2, SiLU(1) = 1/(1+1/e).
	if d := math.Abs(float64(Softplus(0)) - math.Ln2); d > 1e-7 {
		t.Errorf("Softplus(0) = %g", Softplus(0))
	}
	if SoftplusGrad(0) != 0.5 {
		t.Errorf("SoftplusGrad(0) = %g", SoftplusGrad(0))
	}
	if d := math.Abs(float64(SiLU(1)) - 1/(1+math.Exp(-1))); d > 1e-7 {
		t.Errorf("SiLU(1) = %g", SiLU(1))
	}
	// SiLU' by central differences in float64.
	for _, x := range []float64{-6, -1.5, -0.2, 0, 0.3, 2, 7} {
		f := func(v float64) float64 { return v / (1 + math.Exp(-v)) }
		want := (f(x+1e-6) - f(x-1e-6)) / 2e-6
		if d := math.Abs(float64(SiLUGrad(float32(x))) - want); d > 1e-6 {
			t.Errorf("SiLUGrad(%g) = %g, want %g", x, SiLUGrad(float32(x)), want)
		}
	}
}

func BenchmarkExp32(b *testing.B) {
	xs := make([]float32, 1024)
	for i := range xs {
		xs[i] = -float32(i) * 0.01
	}
	var s float32
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, x := range xs {
			s += Exp32(x)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(xs)), "ns/elem")
	_ = s
}

func BenchmarkSoftplus(b *testing.B) {
	xs := make([]float32, 1024)
	for i := range xs {
		xs[i] = -6 + float32(i)*0.005
	}
	var s float32
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, x := range xs {
			s += Softplus(x)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(xs)), "ns/elem")
	_ = s
}

// TestVectorActivations checks the slice forms (assembly where available)
// of SiLU and softplus(x+bias) against float64 over a wide range.
func TestVectorActivations(t *testing.T) {
	n := 16*700 + 5 // odd tail goes through the scalar path
	x := make([]float32, n)
	bias := make([]float32, n)
	for i := range x {
		x[i] = -90 + 125*float32(i)/float32(n) // [-90, 35]
		bias[i] = float32(i%7) * 0.01
	}
	y := make([]float32, n)
	SiLUForward(n, x, y)
	worst := 0.0
	for i, v := range x {
		want := float64(v) / (1 + math.Exp(-float64(v)))
		d := math.Abs(float64(y[i]) - want)
		worst = math.Max(worst, d/(1e-30+2e-7*math.Abs(want)))
	}
	t.Logf("SiLUForward: worst error / (2e-7·|want|) = %.3g", worst)
	if worst > 1 {
		t.Fatalf("SiLUForward relative error above 2e-7 (ratio %g)", worst)
	}
	SoftplusBiasForward(1, n, x, n, bias, y, n)
	worst = 0
	for i, v := range x {
		s := float64(v + bias[i])
		want := s
		if s <= 20 {
			want = math.Log1p(math.Exp(s))
		}
		d := math.Abs(float64(y[i]) - want)
		worst = math.Max(worst, d/(1e-38+3e-7*want)) // absolute 1e-38 in the subnormal range
	}
	t.Logf("SoftplusBiasForward: worst error / (3e-7·|want|) = %.3g", worst)
	if worst > 1 {
		t.Fatalf("SoftplusBiasForward relative error above 3e-7 (ratio %g)", worst)
	}
}

func BenchmarkSiLUForward(b *testing.B) {
	x := make([]float32, 401*512)
	for i := range x {
		x[i] = float32(i%200)*0.05 - 5
	}
	y := make([]float32, len(x))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		SiLUForward(len(x), x, y)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
}

func BenchmarkSoftplusBiasForward(b *testing.B) {
	L, D := 401, 512
	x := make([]float32, L*D)
	for i := range x {
		x[i] = float32(i%200)*0.05 - 8
	}
	bias := make([]float32, D)
	y := make([]float32, L*D)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		SoftplusBiasForward(L, D, x, D, bias, y, D)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*L*D), "ns/elem")
}
