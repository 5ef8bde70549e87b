package kernels

import "math"

// Tile sizes of the memory-efficient attention: attnBr query rows against
// attnBc keys at a time. The score tile (attnBr×attnBc floats, 32 KiB)
// stays in L1/L2; only the per-row logsumexp is kept between forward and
// backward. (Measured on the 443-token, 8×24 shape, CPU-time GFLOP/s,
// two runs each: 64×64 fwd 17.8/19.1 bwd 26.3/32.1; 64×128 fwd 18.7/17.2
// bwd 33.8/36.5; 128×128 fwd 18.2/21.7 bwd 30.2/41.3.)
const (
	attnBr = 64
	attnBc = 128
)

// AttentionScratch is the per-goroutine working memory of AttentionForward
// and AttentionBackward. Its size does not depend on the sequence length.
type AttentionScratch struct {
	s    []float32 // (attnBr, attnBc) scores, then probabilities
	dp   []float32 // (attnBr, attnBc) dP, then dS
	m, l []float32 // (attnBr) running max and normaliser
	dvec []float32 // (attnBr) rowsum(dO ∘ O)
	gemm Workspace // packing scratch of the tile products
}

// NewAttentionScratch allocates the scratch for one goroutine.
func NewAttentionScratch() *AttentionScratch {
	return &AttentionScratch{
		s:    make([]float32, attnBr*attnBc),
		dp:   make([]float32, attnBr*attnBc),
		m:    make([]float32, attnBr),
		l:    make([]float32, attnBr),
		dvec: make([]float32, attnBr),
	}
}

// AttentionForward computes non-causal, unmasked multi-head attention
// ctx_h = softmax(scale · q_h·k_hᵀ) · v_h for every head h, flash-attention
// style: tiles of keys are streamed with an online softmax, so the
// seqLen×seqLen probability matrix is never stored.
//
// q, k, v are (seqLen, ld) row-major and ctx is (seqLen, ldo); head h
// occupies columns [h·dHead, (h+1)·dHead) (the layout of a Linear output
// viewed as (L, heads, d_head)), so q, k, v may be column blocks of one
// fused (L, 3·D) projection. lse (nHeads, seqLen) receives the per-row
// logsumexp of the scaled scores, which AttentionBackward needs.
func AttentionForward(ctx []float32, ldo int, lse, q, k, v []float32, ld, seqLen, nHeads, dHead int, scale float32, sc *AttentionScratch) {
	L := seqLen
	for h := 0; h < nHeads; h++ {
		co := h * dHead
		for i0 := 0; i0 < L; i0 += attnBr {
			br := min(attnBr, L-i0)
			m, l := sc.m[:br], sc.l[:br]
			for r := 0; r < br; r++ {
				m[r] = float32(math.Inf(-1))
				l[r] = 0
				clear(ctx[(i0+r)*ldo+co : (i0+r)*ldo+co+dHead])
			}
			for j0 := 0; j0 < L; j0 += attnBc {
				bc := min(attnBc, L-j0)
				s := sc.s
				// (br, bc) = Q_i · K_jᵀ
				GemmWS(&sc.gemm, false, true, br, bc, dHead, q[i0*ld+co:], ld, k[j0*ld+co:], ld, 0, s, attnBc)
				for r := 0; r < br; r++ {
					row := s[r*attnBc : r*attnBc+bc]
					mx := row[0]
					for _, x := range row[1:] {
						mx = max(mx, x)
					}
					mnew := max(m[r], mx*scale)
					sum := attnExpRow(row, scale, mnew)
					corr := attnExp(m[r] - mnew) // 0 on the first tile (m = −∞)
					l[r] = l[r]*corr + sum
					m[r] = mnew
					if corr != 1 {
						cr := ctx[(i0+r)*ldo+co : (i0+r)*ldo+co+dHead]
						for d := range cr {
							cr[d] *= corr
						}
					}
				}
				// (br, dHead) += P · V_j
				GemmWS(&sc.gemm, false, false, br, dHead, bc, s, attnBc, v[j0*ld+co:], ld, 1, ctx[i0*ldo+co:], ldo)
			}
			for r := 0; r < br; r++ {
				inv := 1 / l[r]
				cr := ctx[(i0+r)*ldo+co : (i0+r)*ldo+co+dHead]
				for d := range cr {
					cr[d] *= inv
				}
				lse[h*L+i0+r] = m[r] + float32(math.Log(float64(l[r])))
			}
		}
	}
}

// AttentionBackward is the backward pass of AttentionForward. Given dctx
// (the gradient of ctx; dctx and ctx have stride ldo) and the forward's
// lse, it recomputes the probabilities tile by tile and OVERWRITES the
// head columns [0, nHeads·dHead) of dq, dk and dv (stride ld, as q, k, v).
func AttentionBackward(dq, dk, dv []float32, dctx, ctx []float32, ldo int, lse, q, k, v []float32, ld, seqLen, nHeads, dHead int, scale float32, sc *AttentionScratch) {
	L := seqLen
	width := nHeads * dHead
	for r := 0; r < L; r++ {
		clear(dq[r*ld : r*ld+width])
		clear(dk[r*ld : r*ld+width])
		clear(dv[r*ld : r*ld+width])
	}
	for h := 0; h < nHeads; h++ {
		co := h * dHead
		for i0 := 0; i0 < L; i0 += attnBr {
			br := min(attnBr, L-i0)
			dvec := sc.dvec[:br]
			for r := 0; r < br; r++ {
				o := ctx[(i0+r)*ldo+co : (i0+r)*ldo+co+dHead]
				do := dctx[(i0+r)*ldo+co : (i0+r)*ldo+co+dHead]
				var s float32
				for d := range o {
					s += o[d] * do[d]
				}
				dvec[r] = s
			}
			lseRow := lse[h*L+i0 : h*L+i0+br]
			for j0 := 0; j0 < L; j0 += attnBc {
				bc := min(attnBc, L-j0)
				s, dp := sc.s, sc.dp
				GemmWS(&sc.gemm, false, true, br, bc, dHead, q[i0*ld+co:], ld, k[j0*ld+co:], ld, 0, s, attnBc)
				for r := 0; r < br; r++ {
					attnExpRow(s[r*attnBc:r*attnBc+bc], scale, lseRow[r])
				}
				// dV_j += Pᵀ · dO_i
				GemmWS(&sc.gemm, true, false, bc, dHead, br, s, attnBc, dctx[i0*ldo+co:], ldo, 1, dv[j0*ld+co:], ld)
				// dP = dO_i · V_jᵀ
				GemmWS(&sc.gemm, false, true, br, bc, dHead, dctx[i0*ldo+co:], ldo, v[j0*ld+co:], ld, 0, dp, attnBc)
				// dS = scale · P ∘ (dP − D)
				for r := 0; r < br; r++ {
					prow := s[r*attnBc : r*attnBc+bc]
					drow := dp[r*attnBc : r*attnBc+bc]
					dr := dvec[r]
					for j, p := range prow {
						drow[j] = scale * p * (drow[j] - dr)
					}
				}
				// dQ_i += dS · K_j ; dK_j += dSᵀ · Q_i
				GemmWS(&sc.gemm, false, false, br, dHead, bc, dp, attnBc, k[j0*ld+co:], ld, 1, dq[i0*ld+co:], ld)
				GemmWS(&sc.gemm, true, false, bc, dHead, br, dp, attnBc, q[i0*ld+co:], ld, 1, dk[j0*ld+co:], ld)
			}
		}
	}
}

// AttentionFLOPs is the floating-point operation count of one
// AttentionForward call (two matrix products per head), for benchmarks.
func AttentionFLOPs(seqLen, nHeads, dHead int) float64 {
	return 4 * float64(seqLen) * float64(seqLen) * float64(nHeads) * float64(dHead)
}

// attnExpRow sets row[j] = exp(row[j]·scale − shift) and returns Σ row
// (AVX-512 for whole 16-lane blocks where available).
func attnExpRow(row []float32, scale, shift float32) float32 {
	n, sum := attnExpRowFast(row, scale, shift)
	for j := n; j < len(row); j++ {
		p := attnExp(row[j]*scale - shift)
		row[j] = p
		sum += p
	}
	return sum
}

// attnExp is a float32 exp (Cephes expf: Cody–Waite range reduction and a
// degree-6 polynomial, relative error ≲ 2 ulp). It returns 0 below −87.3,
// which covers −∞.
func attnExp(x float32) float32 {
	if x < -87.3 {
		return 0
	}
	if x > 88.7 {
		return float32(math.Inf(1))
	}
	t := x * 1.44269504088896341 // log2(e)
	var n int32
	if t < 0 {
		n = int32(t - 0.5)
	} else {
		n = int32(t + 0.5)
	}
	fn := float32(n)
	r := x - fn*0.693359375 - fn*(-2.12194440e-4)
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(n+127)<<23)
}
