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
