//go:build amd64 && !purego

package kernels

// AVX-512 GeGLU rows (gelu_amd64.s); same formulas as GELU / geluGrad.

//go:noescape
func gelugluFwdAVX512(n16 int, val, gate, out *float32)

//go:noescape
func gelugluBwdAVX512(n16 int, val, gate, dout, dval, dgate *float32)

// gelugluFwdFast handles the first multiple of 16 elements of one row
// (val, gate and out of equal length) and returns how many.
func gelugluFwdFast(val, gate, out []float32) int {
	n16 := len(out) / 16
	if !attnHasAVX512 {
		return gelugluFwd8(val, gate, out)
	}
	if n16 == 0 {
		return 0
	}
	_ = val[16*n16-1]
	_ = gate[16*n16-1]
	gelugluFwdAVX512(n16, &val[0], &gate[0], &out[0])
	return 16 * n16
}

// gelugluFwd8 is gelugluFwdFast on AVX2+FMA (whole 8-lane blocks).
func gelugluFwd8(val, gate, out []float32) int {
	n8 := len(out) / 8
	if !attnHasAVX2 || n8 == 0 {
		return 0
	}
	_ = val[8*n8-1]
	_ = gate[8*n8-1]
	gelugluFwdAVX2(n8, &val[0], &gate[0], &out[0])
	return 8 * n8
}

// gelugluBwdFast is the backward counterpart of gelugluFwdFast.
func gelugluBwdFast(val, gate, dout, dval, dgate []float32) int {
	n16 := len(dout) / 16
	if !attnHasAVX512 {
		return gelugluBwd8(val, gate, dout, dval, dgate)
	}
	if n16 == 0 {
		return 0
	}
	_ = val[16*n16-1]
	_ = gate[16*n16-1]
	_ = dval[16*n16-1]
	_ = dgate[16*n16-1]
	gelugluBwdAVX512(n16, &val[0], &gate[0], &dout[0], &dval[0], &dgate[0])
	return 16 * n16
}

// gelugluBwd8 is gelugluBwdFast on AVX2+FMA (whole 8-lane blocks).
func gelugluBwd8(val, gate, dout, dval, dgate []float32) int {
	n8 := len(dout) / 8
	if !attnHasAVX2 || n8 == 0 {
		return 0
	}
	_ = val[8*n8-1]
	_ = gate[8*n8-1]
	_ = dval[8*n8-1]
	_ = dgate[8*n8-1]
	gelugluBwdAVX2(n8, &val[0], &gate[0], &dout[0], &dval[0], &dgate[0])
	return 8 * n8
}
