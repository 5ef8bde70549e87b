package kernels

// Causal depthwise 1-D convolution of the Mamba mixer, token-major layout:
// x and y are (L, D) with row strides; w is (D, K) (PyTorch's
// conv1d.weight [D, 1, K] flattened), b is (D). Output token t sees inputs
// t−K+1 … t (zeros before the start):
//
//	y[t,d] = b[d] + Σ_{k<K} w[d,k]·x[t−K+1+k, d]

// CausalConv1dForward computes y from x (y must not alias x).
func CausalConv1dForward(L, D, K int, x []float32, ldx int, w, b, y []float32, ldy int) {
	w, b = w[:D*K], b[:D]
	if K == 4 {
		conv4Forward(L, D, x, ldx, w, b, y, ldy)
		return
	}
	for t := 0; t < L; t++ {
		yr := y[t*ldy : t*ldy+D]
		copy(yr, b)
		for k := 0; k < K; k++ {
			s := t - K + 1 + k
			if s < 0 {
				continue
			}
			xr := x[s*ldx : s*ldx+D]
			for d, v := range xr {
				yr[d] += w[d*K+k] * v
			}
		}
	}
}

// CausalConv1dBackward accumulates dw (D,K) and db (D) and writes dx (L,D)
// (overwritten) from dy (L,D).
func CausalConv1dBackward(L, D, K int, x []float32, ldx int, w, dy []float32, lddy int, dx []float32, lddx int, dw, db []float32) {
	w, dw, db = w[:D*K], dw[:D*K], db[:D]
	fast := 0
	if K == 4 {
		fast = conv4BwdFast(L, D, x, ldx, w, dy, lddy, dx, lddx, dw, db)
	}
	if fast > 0 {
		conv4BwdEdges(L, fast, x, ldx, w, dy, lddy, dx, lddx, dw, db)
	}
	// Channels fast…D−1 (all of them without assembly).
	for t := 0; t < L; t++ {
		clear(dx[t*lddx+fast : t*lddx+D])
	}
	for t := 0; t < L; t++ {
		gr := dy[t*lddy+fast : t*lddy+D]
		for j, g := range gr {
			db[fast+j] += g
		}
		for k := 0; k < K; k++ {
			s := t - K + 1 + k
			if s < 0 {
				continue
			}
			xr := x[s*ldx+fast : s*ldx+D]
			dr := dx[s*lddx+fast : s*lddx+D]
			for j, g := range gr {
				d := fast + j
				dw[d*K+k] += g * xr[j]
				dr[j] += g * w[d*K+k]
			}
		}
	}
}

// conv4BwdEdges completes conv4BwdFast for channels 0…D−1 (L > 3): the
// dw, db terms of dy rows 0…2 (whose early taps read the zero padding)
// and dx rows L−3…L−1 (whose late taps fall after the end).
func conv4BwdEdges(L, D int, x []float32, ldx int, w, dy []float32, lddy int, dx []float32, lddx int, dw, db []float32) {
	for t := 0; t < 3; t++ {
		gr := dy[t*lddy : t*lddy+D]
		for d, g := range gr {
			db[d] += g
		}
		for k := 3 - t; k < 4; k++ {
			xr := x[(t-3+k)*ldx : (t-3+k)*ldx+D]
			for d, g := range gr {
				dw[d*4+k] += g * xr[d]
			}
		}
	}
	for s := L - 3; s < L; s++ {
		dr := dx[s*lddx : s*lddx+D]
		clear(dr)
		for k := 3; k >= 0; k-- { // dy row t = s+3−k, in increasing t
			t := s + 3 - k
			if t >= L {
				break
			}
			gr := dy[t*lddy : t*lddy+D]
			for d, g := range gr {
				dr[d] += g * w[d*4+k]
			}
		}
	}
}

// CausalConv1dStep is the recurrent form for one new token x (D): window
// (K−1, D) holds the previous K−1 inputs, oldest first (zeros at the
// start of a sequence); y (D) = b + Σ_k w[·,k]·[window; x][k]; then window
// shifts by one and stores x.
func CausalConv1dStep(D, K int, window, x, w, b, y []float32) {
	w, b, x, y = w[:D*K], b[:D], x[:D], y[:D]
	window = window[:(K-1)*D]
	for d := range y {
		s := b[d]
		for k := 0; k < K-1; k++ {
			s += w[d*K+k] * window[k*D+d]
		}
		y[d] = s + w[d*K+K-1]*x[d]
	}
	if K > 1 {
		copy(window, window[D:])
		copy(window[(K-2)*D:], x)
	}
}

// conv4Forward is CausalConv1dForward for the Mamba width K = 4, one pass
// per output row (the same summation order as the general loop and as
// CausalConv1dStep: ((b + w0·x0) + w1·x1) + w2·x2) + w3·x3, missing taps
// read zeros).
func conv4Forward(L, D int, x []float32, ldx int, w, b, y []float32, ldy int) {
	fast := conv4Fast(L, D, x, ldx, w, b, y, ldy) // rows >= 3, channels < fast
	for t := 0; t < L; t++ {
		yr := y[t*ldy : t*ldy+D]
		if t < 3 { // missing taps: the general loop skips them
			copy(yr, b)
			for k := 3 - t; k < 4; k++ {
				xr := x[(t-3+k)*ldx : (t-3+k)*ldx+D]
				for d, v := range xr {
					yr[d] += w[d*4+k] * v
				}
			}
			continue
		}
		x0 := x[(t-3)*ldx : (t-3)*ldx+D]
		x1 := x[(t-2)*ldx : (t-2)*ldx+D]
		x2 := x[(t-1)*ldx : (t-1)*ldx+D]
		x3 := x[t*ldx : t*ldx+D]
		for d := fast; d < D; d++ {
			wd := w[4*d : 4*d+4 : 4*d+4]
			yr[d] = b[d] + wd[0]*x0[d] + wd[1]*x1[d] + wd[2]*x2[d] + wd[3]*x3[d]
		}
	}
}
