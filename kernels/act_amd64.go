//go:build amd64 && !purego

package kernels

// AVX-512 versions of the elementwise activations (act_amd64.s), with the
// same exp as the scan kernel, and their AVX2+FMA versions on 8 lanes
// (act_avx2_amd64.s). softplus uses max(v,0) + log1p(e^−|v|) and
// log1p(w) = 2·atanh(w/(2+w)), which needs no exponent manipulation and
// reproduces PyTorch's threshold-20 result (above 20 the log1p term is
// below half an ulp of v). The backward kernels compute SiLU' as
// s·(1 + x·e·s) with s = 1/(1+e), e = e^−x (1−s = e·s, no cancellation),
// and softplus' as sigmoid, which is exactly 1 in float32 above 16.7, so
// PyTorch's threshold needs no test; a NaN input gives a NaN gradient.

//go:noescape
func siluAVX512(n16 int, x, y *float32)

//go:noescape
func softplusBiasAVX512(n16 int, x, bias, y *float32)

//go:noescape
func siluAVX2(n8 int, x, y *float32)

//go:noescape
func softplusBiasAVX2(n8 int, x, bias, y *float32)

// siluFast handles the first multiple of 16 (AVX-512) or 8 (AVX2)
// elements and returns how many.
func siluFast(x, y []float32) int {
	switch scanSIMD {
	case simdAVX512:
		n16 := len(x) / 16
		if n16 == 0 {
			return 0
		}
		_ = y[16*n16-1]
		siluAVX512(n16, &x[0], &y[0])
		return 16 * n16
	case simdAVX2:
		n8 := len(x) / 8
		if n8 == 0 {
			return 0
		}
		_ = y[8*n8-1]
		siluAVX2(n8, &x[0], &y[0])
		return 8 * n8
	}
	return 0
}

// softplusBiasFast handles the first multiple of 16 (AVX-512) or 8
// (AVX2) elements of one row and returns how many.
func softplusBiasFast(x, bias, y []float32) int {
	switch scanSIMD {
	case simdAVX512:
		n16 := len(x) / 16
		if n16 == 0 {
			return 0
		}
		_ = y[16*n16-1]
		_ = bias[16*n16-1]
		softplusBiasAVX512(n16, &x[0], &bias[0], &y[0])
		return 16 * n16
	case simdAVX2:
		n8 := len(x) / 8
		if n8 == 0 {
			return 0
		}
		_ = y[8*n8-1]
		_ = bias[8*n8-1]
		softplusBiasAVX2(n8, &x[0], &bias[0], &y[0])
		return 8 * n8
	}
	return 0
}

//go:noescape
func siluBwdAVX512(n16 int, x, dy, dx *float32)

//go:noescape
func softplusBiasBwdAVX512(n16 int, x, bias, dy, dx, dbias *float32)

//go:noescape
func siluBwdAVX2(n8 int, x, dy, dx *float32)

//go:noescape
func softplusBiasBwdAVX2(n8 int, x, bias, dy, dx, dbias *float32)

// siluBwdFast does SiLUBackward for the first multiple of 16 (AVX-512)
// or 8 (AVX2) elements and returns how many.
func siluBwdFast(x, dy, dx []float32) int {
	lanes := 16
	if scanSIMD == simdAVX2 {
		lanes = 8
	}
	nb := len(x) / lanes
	if scanSIMD == simdGo || nb == 0 {
		return 0
	}
	_ = dy[lanes*nb-1]
	_ = dx[lanes*nb-1]
	if lanes == 16 {
		siluBwdAVX512(nb, &x[0], &dy[0], &dx[0])
	} else {
		siluBwdAVX2(nb, &x[0], &dy[0], &dx[0])
	}
	return lanes * nb
}

// softplusBiasBwdFast does one row of SoftplusBiasBackward for the first
// multiple of 16 (AVX-512) or 8 (AVX2) elements and returns how many.
func softplusBiasBwdFast(x, bias, dy, dx, dbias []float32) int {
	lanes := 16
	if scanSIMD == simdAVX2 {
		lanes = 8
	}
	nb := len(x) / lanes
	if scanSIMD == simdGo || nb == 0 {
		return 0
	}
	n := lanes * nb
	_, _, _, _ = bias[n-1], dy[n-1], dx[n-1], dbias[n-1]
	if lanes == 16 {
		softplusBiasBwdAVX512(nb, &x[0], &bias[0], &dy[0], &dx[0], &dbias[0])
	} else {
		softplusBiasBwdAVX2(nb, &x[0], &bias[0], &dy[0], &dx[0], &dbias[0])
	}
	return n
}
