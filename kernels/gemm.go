// Package kernels holds the float32 numeric kernels the models run on:
// GEMM, normalisation, convolution, activations and the selective scan.
// Every kernel is single-threaded; callers parallelise across flows.
package kernels

// Gemm computes C = op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ. op(A) is m×k, op(B) is k×n, C is m×n.
// lda, ldb, ldc are the row strides of A, B and C as stored.
// beta is usually 0 (overwrite; C is not read) or 1 (accumulate).
// It runs single-threaded on the fastest micro-kernel this CPU supports
// (AVX-512, AVX2+FMA, or portable Go with the purego tag or off amd64),
// borrowing packing scratch from a pool; GemmWS takes the scratch
// explicitly. It panics if a slice is too short for its shape and stride.
func Gemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	GemmWS(nil, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// gemmDefault is the configuration Gemm uses, chosen once from the CPU's
// features and never changed.
var gemmDefault = gemmKernels()[0]

// gemmGeneric is the portable reference implementation.
func gemmGeneric(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		if beta == 0 {
			for j := range crow {
				crow[j] = 0
			}
		} else if beta != 1 {
			for j := range crow {
				crow[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			if av == 0 {
				continue
			}
			if transB {
				for j := 0; j < n; j++ {
					crow[j] += av * b[j*ldb+p]
				}
			} else {
				brow := b[p*ldb : p*ldb+n]
				for j, bv := range brow {
					crow[j] += av * bv
				}
			}
		}
	}
}
