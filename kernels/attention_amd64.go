//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// attnHasAVX512 and attnHasAVX2 select the vector exp / GeGLU kernels
// (attention_amd64.s, gelu_amd64.s: AVX-512; attention_avx2_amd64.s:
// AVX2+FMA); set once from the CPU features.
var (
	attnHasAVX512 = cpu.X86.HasAVX512F
	attnHasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)

//go:noescape
func attnExpRowAVX2(n8 int, row *float32, scale, shift float32, acc *[8]float32)

//go:noescape
func gelugluFwdAVX2(n8 int, val, gate, out *float32)

//go:noescape
func gelugluBwdAVX2(n8 int, val, gate, dout, dval, dgate *float32)

// attnExpRowAVX512 sets row[j] = exp(row[j]·scale − shift) for the first
// 16·n16 elements (arguments below −87.3 are clamped there, giving
// ≈1e−38 instead of 0) and stores the 16 lane-wise partial sums in acc.
//
//go:noescape
func attnExpRowAVX512(n16 int, row *float32, scale, shift float32, acc *[16]float32)

// attnExpRowFast handles the first multiple of 16 elements of row on
// AVX-512 and returns how many it did and their sum.
func attnExpRowFast(row []float32, scale, shift float32) (int, float32) {
	n16 := len(row) / 16
	if !attnHasAVX512 {
		return attnExpRow8(row, scale, shift)
	}
	if n16 == 0 {
		return 0, 0
	}
	var acc [16]float32
	attnExpRowAVX512(n16, &row[0], scale, shift, &acc)
	var s float32
	for _, v := range acc {
		s += v
	}
	return 16 * n16, s
}

// attnExpRow8 is attnExpRowFast on AVX2+FMA (whole 8-lane blocks).
func attnExpRow8(row []float32, scale, shift float32) (int, float32) {
	n8 := len(row) / 8
	if !attnHasAVX2 || n8 == 0 {
		return 0, 0
	}
	var acc [8]float32
	attnExpRowAVX2(n8, &row[0], scale, shift, &acc)
	var s float32
	for _, v := range acc {
		s += v
	}
	return 8 * n8, s
}
