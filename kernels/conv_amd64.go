//go:build amd64 && !purego

package kernels

// conv4AVX512 is the K = 4 causal conv for rows whose four taps all exist
// (conv_amd64.s): x points at the first input row of output row 0.
//
//go:noescape
func conv4AVX512(rows int, x *float32, ldx int, wt *float32, ldw int, b *float32, y *float32, ldy int, nbytes int)

// conv4AVX2 is conv4AVX512 on 8 lanes (conv_avx2_amd64.s); nbytes is a
// multiple of 32.
//
//go:noescape
func conv4AVX2(rows int, x *float32, ldx int, wt *float32, ldw int, b *float32, y *float32, ldy int, nbytes int)

// maxConvFastD bounds the tap-major weight copy kept on the stack.
const maxConvFastD = 2048

// conv4Fast handles output rows 3…L−1 and the first multiple of 16
// channels with AVX-512 (of 8 with AVX2) and returns how many channels it
// did (0: none).
// It multiplies and adds separately (no FMA) in the Go loop's order, so
// its results are bit-identical to the Go loop and to CausalConv1dStep.
func conv4Fast(L, D int, x []float32, ldx int, w, b, y []float32, ldy int) int {
	lanes := 16
	if scanSIMD == simdAVX2 {
		lanes = 8
	}
	dFast := D / lanes * lanes
	if scanSIMD == simdGo || dFast == 0 || L <= 3 || D > maxConvFastD {
		return 0
	}
	_ = x[(L-1)*ldx+D-1]
	_ = y[(L-1)*ldy+D-1]
	var wt [4 * maxConvFastD]float32
	for d := 0; d < dFast; d++ {
		wt[d] = w[4*d]
		wt[D+d] = w[4*d+1]
		wt[2*D+d] = w[4*d+2]
		wt[3*D+d] = w[4*d+3]
	}
	if lanes == 16 {
		conv4AVX512(L-3, &x[0], ldx, &wt[0], D, &b[0], &y[3*ldy], ldy, 4*dFast)
	} else {
		conv4AVX2(L-3, &x[0], ldx, &wt[0], D, &b[0], &y[3*ldy], ldy, 4*dFast)
	}
	return dFast
}

// conv4BwdAVX512 is the K = 4 causal conv backward for the rows where
// every tap exists (conv_amd64.s): with j < rows, dx row j gets
// w3⊙dy[j] + w2⊙dy[j+1] + w1⊙dy[j+2] + w0⊙dy[j+3], and dwt (tap-major)
// and db accumulate dy[j+3]⊙x[j+k] and dy[j+3].
//
//go:noescape
func conv4BwdAVX512(rows int, x *float32, ldx int, dy *float32, lddy int, dx *float32, lddx int, wt, dwt *float32, ldw int, db *float32, nbytes int)

// conv4BwdAVX2 is conv4BwdAVX512 on 8 lanes (conv_avx2_amd64.s).
//
//go:noescape
func conv4BwdAVX2(rows int, x *float32, ldx int, dy *float32, lddy int, dx *float32, lddx int, wt, dwt *float32, ldw int, db *float32, nbytes int)

// conv4BwdFast does the interior of the K = 4 conv backward for the
// first multiple of 16 channels with AVX-512 (of 8 with AVX2): dx rows
// 0…L−4, and the dw, db terms of dy rows 3…L−1. It returns how many
// channels it did (0: none); the caller does the edge rows of those.
// The sums use FMA, so they differ from the Go loop by rounding only.
func conv4BwdFast(L, D int, x []float32, ldx int, w, dy []float32, lddy int, dx []float32, lddx int, dw, db []float32) int {
	lanes := 16
	if scanSIMD == simdAVX2 {
		lanes = 8
	}
	dFast := D / lanes * lanes
	if scanSIMD == simdGo || dFast == 0 || L <= 3 || D > maxConvFastD {
		return 0
	}
	_ = x[(L-1)*ldx+D-1]
	_ = dy[(L-1)*lddy+D-1]
	_ = dx[(L-1)*lddx+D-1]
	_ = db[D-1]
	var wt, dwt [4 * maxConvFastD]float32
	for d := 0; d < dFast; d++ {
		wt[d] = w[4*d]
		wt[D+d] = w[4*d+1]
		wt[2*D+d] = w[4*d+2]
		wt[3*D+d] = w[4*d+3]
	}
	if lanes == 16 {
		conv4BwdAVX512(L-3, &x[0], ldx, &dy[0], lddy, &dx[0], lddx, &wt[0], &dwt[0], D, &db[0], 4*dFast)
	} else {
		conv4BwdAVX2(L-3, &x[0], ldx, &dy[0], lddy, &dx[0], lddx, &wt[0], &dwt[0], D, &db[0], 4*dFast)
	}
	for d := 0; d < dFast; d++ {
		dw[4*d] += dwt[d]
		dw[4*d+1] += dwt[D+d]
		dw[4*d+2] += dwt[2*D+d]
		dw[4*d+3] += dwt[3*D+d]
	}
	return dFast
}
