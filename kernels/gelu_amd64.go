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
	if !attnHasAVX512 || n16 == 0 {
		return 0
	}
	_ = val[16*n16-1]
	_ = gate[16*n16-1]
	gelugluFwdAVX512(n16, &val[0], &gate[0], &out[0])
	return 16 * n16
}

// gelugluBwdFast is the backward counterpart of gelugluFwdFast.
func gelugluBwdFast(val, gate, dout, dval, dgate []float32) int {
	n16 := len(dout) / 16
	if !attnHasAVX512 || n16 == 0 {
		return 0
	}
	_ = val[16*n16-1]
	_ = gate[16*n16-1]
	_ = dval[16*n16-1]
	_ = dgate[16*n16-1]
	gelugluBwdAVX512(n16, &val[0], &gate[0], &dout[0], &dval[0], &dgate[0])
	return 16 * n16
}
