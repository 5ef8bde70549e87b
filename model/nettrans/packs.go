package nettrans

import "github.com/netmamba/netmamba/kernels"

// blockPacks are one encoder block's Linear weights packed for
// kernels.GemmPacked, rebuilt from the current weights at the start of
// every batched call (O(parameters) per batch instead of packing every
// weight in every flow's GEMMs). GemmPacked gives the same results as
// Gemm, so packing changes no number.
type blockPacks struct {
	qkv, out, ff1, ff2     *kernels.PackedB // op(B) = Wᵀ: forward Y = X·Wᵀ
	qkvN, outN, ff1N, ff2N *kernels.PackedB // op(B) = W: backward dX = dY·W (training only)
}

// packInto packs op(w) (k×n) into *dst, reusing its memory.
func packInto(dst **kernels.PackedB, trans bool, k, n int, w []float32, ldw int) {
	if *dst == nil {
		*dst = kernels.PackB(trans, k, n, w, ldw)
	} else {
		(*dst).Repack(trans, k, n, w, ldw)
	}
}

// repack packs the encoder blocks' weights into ws.packs (the backward's
// untransposed packs too with train) and hands them to the workers.
func (ws *Workspace) repack(m *Model, train bool) {
	D, F := m.enc.D, m.enc.F
	if len(ws.packs) != len(m.P.Blocks) {
		ws.packs = make([]blockPacks, len(m.P.Blocks))
	}
	for i := range m.P.Blocks {
		p, bp := &m.P.Blocks[i], &ws.packs[i]
		packInto(&bp.qkv, true, D, 3*D, p.QKVW, D)
		packInto(&bp.out, true, D, D, p.OutW, D)
		packInto(&bp.ff1, true, D, 2*F, p.FF1W, D)
		packInto(&bp.ff2, true, F, D, p.FF2W, F)
		if train {
			packInto(&bp.qkvN, false, 3*D, D, p.QKVW, D)
			packInto(&bp.outN, false, D, D, p.OutW, D)
			packInto(&bp.ff1N, false, 2*F, D, p.FF1W, D)
			packInto(&bp.ff2N, false, D, F, p.FF2W, F)
		}
	}
	for _, wk := range ws.workers {
		wk.packs = ws.packs
	}
}

// gemmW computes c (m, pb.N()) = a (m, pb.K())·op(B) + beta·c with the
// packed weight pb when there is one, else with GemmWS on the weight w
// (op(w) = wᵀ with transB).
func (wk *worker) gemmW(pb *kernels.PackedB, transB bool, m, n, k int, a []float32, lda int, w []float32, ldw int, beta float32, c []float32, ldc int) {
	if pb != nil {
		kernels.GemmPacked(&wk.gemmWS, false, m, a, lda, pb, beta, c, ldc)
		return
	}
	wk.gemm(false, transB, m, n, k, a, lda, w, ldw, beta, c, ldc)
}
