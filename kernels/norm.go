package kernels

import "math"

// AddRMSNormForward is the fused "add + RMSNorm" of the Mamba block
// (pre-norm, residual kept in float32), over rows of length dim:
//
//	resOut = res + scale·h          (h nil: resOut = res; res nil: resOut = scale·h)
//	rstd   = 1/sqrt(mean(resOut²) + eps)
//	y      = resOut·rstd·w
//
// res, h, resOut and y are (rows, dim) contiguous; rstd is (rows). resOut
// may alias res or h. y must not alias resOut.
func AddRMSNormForward(rows, dim int, res, h []float32, scale float32, resOut, w []float32, eps float32, y, rstd []float32) {
	w = w[:dim]
	for t := 0; t < rows; t++ {
		o := resOut[t*dim : t*dim+dim]
		switch {
		case h == nil:
			if &res[0] != &resOut[0] {
				copy(o, res[t*dim:t*dim+dim])
			}
		case res == nil:
			hr := h[t*dim : t*dim+dim]
			for i, v := range hr {
				o[i] = scale * v
			}
		default:
			rr := res[t*dim : t*dim+dim]
			hr := h[t*dim : t*dim+dim]
			if scale == 1 {
				for i, v := range rr {
					o[i] = v + hr[i]
				}
			} else {
				for i, v := range rr {
					o[i] = v + scale*hr[i]
				}
			}
		}
		rstd[t] = RMSNormRow(o, w, eps, y[t*dim:t*dim+dim])
	}
}

// RMSNormRow normalises one row: y = x·rstd·w, and returns
// rstd = 1/sqrt(mean(x²)+eps). The sum of squares is accumulated in float32
// (as PyTorch does on CPU for float32 tensors, up to summation order).
func RMSNormRow(x, w []float32, eps float32, y []float32) float32 {
	n := len(x)
	w, y = w[:n], y[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += x[i] * x[i]
		s1 += x[i+1] * x[i+1]
		s2 += x[i+2] * x[i+2]
		s3 += x[i+3] * x[i+3]
	}
	for ; i < n; i++ {
		s0 += x[i] * x[i]
	}
	ms := (s0 + s1) + (s2 + s3)
	r := float32(1 / math.Sqrt(float64(ms/float32(n)+eps)))
	for i, v := range x {
		y[i] = v * r * w[i]
	}
	return r
}

// RMSNormBackward back-propagates y = x·rstd·w over (rows, dim) contiguous
// rows, given x (the normalised input, i.e. resOut of the forward), w,
// rstd from the forward and dy:
//
//	dx += rstd·(w⊙dy − x·rstd²·mean(x⊙w⊙dy))
//	dw += Σ_rows dy⊙x·rstd
//
// dx is accumulated (+=) so the residual stream's gradient can be summed in
// place; dw is accumulated.
func RMSNormBackward(rows, dim int, x, w, rstd, dy, dx, dw []float32) {
	w, dw = w[:dim], dw[:dim]
	inv := 1 / float32(dim)
	for t := 0; t < rows; t++ {
		xr := x[t*dim : t*dim+dim]
		gr := dy[t*dim : t*dim+dim]
		dr := dx[t*dim : t*dim+dim]
		r := rstd[t]
		var dot float32
		for i, v := range xr {
			g := gr[i]
			dot += v * w[i] * g
			dw[i] += g * v * r
		}
		c := dot * inv * r * r
		for i, v := range xr {
			dr[i] += r * (w[i]*gr[i] - v*c)
		}
	}
}
