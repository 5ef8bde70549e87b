package kernels

import "math"

// LayerNormForward normalises each of the rows×d rows of x (row-major,
// contiguous) to zero mean and unit biased variance, then applies the
// affine map: out = (x − μ)/√(σ² + eps) · w + b (PyTorch nn.LayerNorm).
// mean and rstd (length rows) receive μ and 1/√(σ² + eps) per row for the
// backward pass. out may alias x.
func LayerNormForward(out, mean, rstd, x, w, b []float32, rows, d int, eps float32) {
	_ = w[d-1]
	_ = b[d-1]
	invD := 1 / float64(d)
	for r := 0; r < rows; r++ {
		xr := x[r*d : r*d+d]
		var s float64
		for _, v := range xr {
			s += float64(v)
		}
		mu := float32(s * invD)
		var ss float64
		for _, v := range xr {
			dv := float64(v - mu)
			ss += dv * dv
		}
		rs := float32(1 / math.Sqrt(ss*invD+float64(eps)))
		mean[r], rstd[r] = mu, rs
		or := out[r*d : r*d+d]
		for i, v := range xr {
			or[i] = (v-mu)*rs*w[i] + b[i]
		}
	}
}

// LayerNormBackward is the backward pass of LayerNormForward. Given dout
// (rows, d) it ACCUMULATES dL/dx into dx (rows, d), and dL/dw, dL/db into
// dw and db (length d). x, mean, rstd and w are the forward inputs and
// saved statistics. dw and db may be nil when the affine gradients are not
// wanted.
func LayerNormBackward(dx, dw, db, dout, x, mean, rstd, w []float32, rows, d int) {
	_ = w[d-1]
	invD := 1 / float32(d)
	for r := 0; r < rows; r++ {
		xr := x[r*d : r*d+d]
		dor := dout[r*d : r*d+d]
		dxr := dx[r*d : r*d+d]
		mu, rs := mean[r], rstd[r]
		// dnorm = dout·w; dx = rs·(dnorm − mean(dnorm) − x̂·mean(dnorm·x̂))
		var sumD, sumDX float32
		for i, g := range dor {
			xh := (xr[i] - mu) * rs
			dn := g * w[i]
			sumD += dn
			sumDX += dn * xh
		}
		sumD *= invD
		sumDX *= invD
		for i, g := range dor {
			xh := (xr[i] - mu) * rs
			dn := g * w[i]
			dxr[i] += rs * (dn - sumD - xh*sumDX)
		}
		if dw != nil {
			for i, g := range dor {
				dw[i] += g * (xr[i] - mu) * rs
			}
		}
		if db != nil {
			for i, g := range dor {
				db[i] += g
			}
		}
	}
}
