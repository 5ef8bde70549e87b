package kernels

import "math"

// Fast float32 elementary functions and the activations the Mamba mixer
// uses (SiLU, softplus). The exponential is the hot spot of the selective
// scan (L·d_inner·d_state calls per layer), so it is a range reduction plus
// a degree-7 polynomial in float32 instead of float64 math.Exp.

const (
	log2e    = 1.44269504088896341
	ln2Hi    = 0.693359375    // ln 2 rounded to 9 bits, so k·ln2Hi is exact
	ln2Lo    = -2.12194440e-4 // ln 2 − ln2Hi
	roundMag = 12582912.0     // 1.5·2²³: x + roundMag − roundMag rounds x to an integer
	expMaxX  = 88.72283       // above: +Inf
	expMinX  = -87.33654      // below: 0 (results would be subnormal)
	sqrtHalf = 0.70710678118654752
)

// Exp32 returns e^x in float32 with a relative error below 2e-7 against
// math.Exp for x in [-87.3, 88.7]. Results that would be subnormal
// (x < -87.34) are flushed to 0; x > 88.72 gives +Inf; NaN gives NaN.
func Exp32(x float32) float32 {
	if !(x >= expMinX) { // also true for NaN
		if x != x {
			return x
		}
		return 0
	}
	if x > expMaxX {
		return float32(math.Inf(1))
	}
	// x = k·ln2 + r, |r| <= ln2/2.
	t := x*log2e + roundMag
	k := t - roundMag
	r := x - k*ln2Hi - k*ln2Lo
	// e^r by Taylor to degree 7 (truncation < 6e-9 relative on |r| <= 0.347).
	p := float32(1.0 / 5040)
	p = p*r + 1.0/720
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	// k is in [-126, 128]; 2^k is built from its exponent bits (k = 128
	// only for x within rounding of expMaxX: split the scale).
	ki := int32(k)
	if ki > 127 {
		return p * 2 * math.Float32frombits(uint32(ki-1+127)<<23)
	}
	return p * math.Float32frombits(uint32(ki+127)<<23)
}

// Log32 returns ln(x) in float32 (relative error below 3e-7 for normal
// positive x). x <= 0 gives -Inf (0) or NaN (negative); +Inf gives +Inf.
func Log32(x float32) float32 {
	if !(x > 0) || x > math.MaxFloat32 {
		return float32(math.Log(float64(x)))
	}
	bits := math.Float32bits(x)
	e := int32(bits>>23) - 127
	if e == -127 { // subnormal: scale up
		return float32(math.Log(float64(x)))
	}
	m := math.Float32frombits(bits&0x007fffff | 0x3f800000) // [1, 2)
	if m > sqrtHalf*2 {
		m *= 0.5
		e++
	}
	// ln m = 2·atanh(s), s = (m−1)/(m+1), |s| <= 0.1716.
	s := (m - 1) / (m + 1)
	s2 := s * s
	q := float32(2.0 / 9)
	q = q*s2 + 2.0/7
	q = q*s2 + 2.0/5
	q = q*s2 + 2.0/3
	q = q*s2 + 2
	fe := float32(e)
	return fe*ln2Hi + (s*q + fe*ln2Lo)
}

// Log1p32 returns ln(1+x) in float32, accurate for small x (Kahan's
// trick: ln(u)·x/(u−1) with u = 1+x rounded).
func Log1p32(x float32) float32 {
	u := 1 + x
	if u == 1 {
		return x
	}
	if x > 1e30 || x != x {
		return Log32(u)
	}
	return Log32(u) * (x / (u - 1))
}

// Softplus returns ln(1+e^x) with PyTorch's threshold semantics
// (beta 1, threshold 20: x > 20 returns x).
func Softplus(x float32) float32 {
	if x > 20 {
		return x
	}
	return Log1p32(Exp32(x))
}

// SoftplusGrad returns d softplus(x)/dx as PyTorch computes it: 1 above
// the threshold 20, otherwise e^x/(e^x+1) = sigmoid(x).
func SoftplusGrad(x float32) float32 {
	if x > 20 {
		return 1
	}
	return Sigmoid(x)
}

// Sigmoid returns 1/(1+e^−x).
func Sigmoid(x float32) float32 {
	return 1 / (1 + Exp32(-x))
}

// SiLU returns x·sigmoid(x).
func SiLU(x float32) float32 {
	return x / (1 + Exp32(-x))
}

// SiLUGrad returns d SiLU(x)/dx = σ(x)·(1 + x·(1−σ(x))), with
// 1−σ(x) = e^−x·σ(x) (no cancellation for large x).
func SiLUGrad(x float32) float32 {
	e := Exp32(-x)
	s := 1 / (1 + e)
	t := e * s
	if !(t <= 1) { // e = +Inf: 1−σ = 1 (and s = 0)
		t = 1
	}
	return s * (1 + x*t)
}

// SiLUForward sets y[i] = SiLU(x[i]) for i < n (x and y may alias).
func SiLUForward(n int, x, y []float32) {
	x, y = x[:n], y[:n]
	for i := siluFast(x, y); i < n; i++ {
		y[i] = SiLU(x[i])
	}
}

// SiLUBackward sets dx[i] = dy[i]·SiLU'(x[i]) for i < n (dx may alias dy).
func SiLUBackward(n int, x, dy, dx []float32) {
	x, dy, dx = x[:n], dy[:n], dx[:n]
	for i := siluBwdFast(x, dy, dx); i < n; i++ {
		dx[i] = dy[i] * SiLUGrad(x[i])
	}
}

// SoftplusBiasForward computes y[t,d] = softplus(x[t,d] + bias[d]) for an
// (rows, dim) matrix with row strides ldx and ldy (the Mamba Δ).
func SoftplusBiasForward(rows, dim int, x []float32, ldx int, bias, y []float32, ldy int) {
	bias = bias[:dim]
	for t := 0; t < rows; t++ {
		xr := x[t*ldx : t*ldx+dim]
		yr := y[t*ldy : t*ldy+dim]
		for d := softplusBiasFast(xr, bias, yr); d < dim; d++ {
			yr[d] = Softplus(xr[d] + bias[d])
		}
	}
}

// SoftplusBiasBackward computes dx[t,d] = dy[t,d]·softplus'(x[t,d]+bias[d])
// and accumulates dbias[d] += Σ_t dx[t,d]. dx may alias dy.
func SoftplusBiasBackward(rows, dim int, x []float32, ldx int, bias, dy []float32, lddy int, dx []float32, lddx int, dbias []float32) {
	bias, dbias = bias[:dim], dbias[:dim]
	for t := 0; t < rows; t++ {
		xr := x[t*ldx : t*ldx+dim]
		gr := dy[t*lddy : t*lddy+dim]
		dr := dx[t*lddx : t*lddx+dim]
		for d := softplusBiasBwdFast(xr, bias, gr, dr, dbias); d < dim; d++ {
			g := gr[d] * SoftplusGrad(xr[d]+bias[d])
			dr[d] = g
			dbias[d] += g
		}
	}
}
