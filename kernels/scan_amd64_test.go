//go:build amd64 && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestScanAVX512MatchesGo compares the assembly scan with the Go loop.
func TestScanAVX512MatchesGo(t *testing.T) {
	if !scanHasAVX512 {
		t.Log("no AVX-512 on this CPU: the Go scan is the only path")
		return
	}
	rng := rand.New(rand.NewPCG(21, 22))
	c := newScanCase(rng, 401, 48, 16)
	// Include large Δ·A (exp underflow) and large |z| (gate saturation).
	c.delta[5] = 30
	c.z[7], c.z[9] = 60, -60
	s := c.scan32()
	fast := make([]float32, c.L*c.D)
	s.Forward(fast, c.D, nil)
	slow := make([]float32, c.L*c.D)
	scanHasAVX512 = false
	s.Forward(slow, c.D, nil)
	scanHasAVX512 = true
	var worst, maxAbs float64
	for i := range fast {
		d := math.Abs(float64(fast[i] - slow[i]))
		maxAbs = math.Max(maxAbs, d)
		worst = math.Max(worst, d/(1e-6+1e-5*math.Abs(float64(slow[i]))))
	}
	t.Logf("AVX-512 vs Go scan: max|d| %.3g, worst ratio to tolerance %.3g", maxAbs, worst)
	if worst > 1 {
		t.Fatalf("AVX-512 scan differs from Go: max|d| %g, worst ratio %g", maxAbs, worst)
	}
}

// TestScanBackwardAVX512MatchesGo compares every gradient of the assembly
// backward (2 blocks of 16 channels + 8 in Go) with the Go loop.
func TestScanBackwardAVX512MatchesGo(t *testing.T) {
	if !scanHasAVX512 {
		t.Log("no AVX-512 on this CPU: the Go scan backward is the only path")
		return
	}
	rng := rand.New(rand.NewPCG(31, 32))
	c := newScanCase(rng, 57, 40, 16)
	c.delta[3] = 30
	c.z[11], c.z[12] = 40, -40
	s := c.scan32()
	L, D, N := c.L, c.D, c.N
	run := func() (*ScanGrad, []float32) {
		g := &ScanGrad{DY: to32(c.dy), LdDY: D, DU: make([]float32, L*D), LdDU: D, DDelta: make([]float32, L*D), LdDDel: D,
			DZ: make([]float32, L*D), LdDZ: D, DA: make([]float32, D*N), DB: make([]float32, L*N), LdDB: N,
			DC: make([]float32, L*N), LdDC: N, DDskip: make([]float32, D)}
		y := make([]float32, L*D)
		s.Backward(g, make([]float32, BackwardScratch(L, N)), y, D)
		return g, y
	}
	fast, yf := run()
	scanHasAVX512 = false
	slow, ys := run()
	scanHasAVX512 = true
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
		t.Logf("%-6s max|fast−go| %.3g (max|go| %.3g)", p.name, maxd, scale)
		if maxd > 2e-5*scale+1e-6 {
			t.Errorf("%s: AVX-512 backward differs from Go by %g (scale %g)", p.name, maxd, scale)
		}
	}
}
