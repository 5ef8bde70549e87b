package kernels

const (
	geluInvSqrt2   = 0.7071067811865476 // 1/√2
	geluInvSqrt2Pi = 0.3989422804014327 // 1/√(2π)
)

// GELU is the erf Gaussian error linear unit x·Φ(x), Φ(x) = ½(1 +
// erf(x/√2)) (PyTorch's F.gelu with approximate='none', not the tanh
// form). erf is evaluated as PyTorch's vectorised CPU kernel does
// (geluErf), within 1.5e−7 of the exact value.
func GELU(x float32) float32 {
	return 0.5 * x * (1 + geluErf(x*geluInvSqrt2))
}

// geluGrad returns GELU(x) and dGELU/dx = Φ(x) + x·φ(x).
func geluGrad(x float32) (y, dy float32) {
	cdf := 0.5 * (1 + geluErf(x*geluInvSqrt2))
	pdf := geluInvSqrt2Pi * attnExp(-0.5*x*x)
	return x * cdf, cdf + x*pdf
}

// geluErf is erf by Abramowitz & Stegun 7.1.26 — erf(x) = 1 − r(t)·t·e^(−x²),
// t = 1/(1 + 0.3275911·|x|), odd in x — the formula of PyTorch's
// Vectorized<float>::erf, which its CPU GELU uses. |error| ≤ 1.5e−7 (≤ 4.2e−7
// in float32, as in PyTorch); about
// 4× faster than math.Erf in float64.
func geluErf(x float32) float32 {
	ax := x
	if ax < 0 {
		ax = -ax
	}
	t := 1 / (0.3275911*ax + 1)
	r := (((1.061405429*t-1.453152027)*t+1.421413741)*t-0.284496736)*t + 0.254829592
	y := 1 - r*t*attnExp(-ax*ax)
	if x < 0 {
		return -y
	}
	return y
}

// GELUForward sets out[i] = GELU(x[i]). out may alias x.
func GELUForward(out, x []float32) {
	out = out[:len(x)]
	for i, v := range x {
		out[i] = GELU(v)
	}
}

// GELUBackward accumulates dx[i] += dout[i]·GELU'(x[i]).
func GELUBackward(dx, dout, x []float32) {
	dx = dx[:len(x)]
	dout = dout[:len(x)]
	for i, v := range x {
		_, g := geluGrad(v)
		dx[i] += dout[i] * g
	}
}

// GeGLUForward computes the gated GELU unit of a feed-forward block:
// u is (rows, 2·hidden) (the projection output), out is (rows, hidden) with
// out[r, j] = u[r, j] · GELU(u[r, hidden+j]): the first half is the value,
// the second half the gate.
func GeGLUForward(out, u []float32, rows, hidden int) {
	for r := 0; r < rows; r++ {
		ur := u[r*2*hidden : (r+1)*2*hidden]
		val, gate := ur[:hidden], ur[hidden:]
		or := out[r*hidden : (r+1)*hidden]
		for j := gelugluFwdFast(val, gate, or); j < hidden; j++ {
			or[j] = val[j] * GELU(gate[j])
		}
	}
}

// GeGLUBackward is the backward pass of GeGLUForward: given dout (rows,
// hidden) it OVERWRITES du (rows, 2·hidden) with dL/du.
func GeGLUBackward(du, dout, u []float32, rows, hidden int) {
	for r := 0; r < rows; r++ {
		ur := u[r*2*hidden : (r+1)*2*hidden]
		dur := du[r*2*hidden : (r+1)*2*hidden]
		val, gate := ur[:hidden], ur[hidden:]
		dval, dgate := dur[:hidden], dur[hidden:]
		dor := dout[r*hidden : (r+1)*hidden]
		for j := gelugluBwdFast(val, gate, dor, dval, dgate); j < hidden; j++ {
			g := dor[j]
			y, dy := geluGrad(gate[j])
			dval[j] = g * y
			dgate[j] = g * val[j] * dy
		}
	}
}
