package model

import "github.com/netmamba/netmamba/kernels"

// mixerScratch holds one worker's buffers for the mixer of one sequence
// of up to L tokens (token-major layouts, shape comments as (L, ·)).
// Forward buffers double as the recomputed activations in backward.
type mixerScratch struct {
	L, dm, di, n, xd int

	xz    []float32 // (L, 2·d_inner) in_proj output: x | z
	xc    []float32 // (L, d_inner) conv output before SiLU
	xs    []float32 // (L, d_inner) SiLU(conv): the scan input u
	xdbl  []float32 // (L, dt_rank+2N) x_proj output: dt_low | B | C
	dtraw []float32 // (L, d_inner) dt_proj.weight·dt_low (no bias)
	delta []float32 // (L, d_inner) softplus(dtraw + dt bias)
	yg    []float32 // (L, d_inner) gated scan output
	A     []float32 // (d_inner, N) −exp(A_log)

	// Backward only (nil when allocated for inference).
	dyg    []float32 // (L, d_inner)
	dxz    []float32 // (L, 2·d_inner)
	dxs    []float32 // (L, d_inner)
	ddelta []float32 // (L, d_inner)
	dxdbl  []float32 // (L, dt_rank+2N)
	dA     []float32 // (d_inner, N)
	scan   []float32 // scan backward scratch
	sc     kernels.Scan
	sg     kernels.ScanGrad

	gemm kernels.Workspace // GEMM packing scratch of this worker
}

// blockPacks are one block's mixer weights packed for kernels.GemmPacked
// (Y = X·Wᵀ), rebuilt from the current weights at every batched Forward
// (O(parameters) per batch instead of per flow), and A = −exp(A_log).
// A training workspace also packs the untransposed weights for the
// backward's input-gradient products (dX = dY·W). GemmPacked gives the
// same results as Gemm, so packing changes no number.
type blockPacks struct {
	in, x, dt, out     *kernels.PackedB // op(B) = Wᵀ (forward)
	inN, xN, dtN, outN *kernels.PackedB // op(B) = W (backward); nil unless training
	A                  []float32        // (d_inner, N) −exp(A_log)
}

// packInto packs op(w) (k×n) into *dst, reusing its memory.
func packInto(dst **kernels.PackedB, trans bool, k, n int, w []float32, ldw int) {
	if *dst == nil {
		*dst = kernels.PackB(trans, k, n, w, ldw)
	} else {
		(*dst).Repack(trans, k, n, w, ldw)
	}
}

// repack packs block p's Linear weights into bp (reusing its memory) and
// computes A.
func (bp *blockPacks) repack(d Dims, p *MambaParams) {
	packInto(&bp.in, true, d.DModel, 2*d.DInner, p.InProjW, d.DModel)
	packInto(&bp.x, true, d.DInner, d.XDbl(), p.XProjW, d.DInner)
	packInto(&bp.dt, true, d.DtRank, d.DInner, p.DtProjW, d.DtRank)
	packInto(&bp.out, true, d.DInner, d.DModel, p.OutProjW, d.DInner)
	n := d.DInner * d.DState
	if len(bp.A) != n {
		bp.A = make([]float32, n)
	}
	for i, v := range p.ALog[:n] {
		bp.A[i] = -kernels.Exp32(v)
	}
}

// repackTrain is repack plus the backward's untransposed packs.
func (bp *blockPacks) repackTrain(d Dims, p *MambaParams) {
	bp.repack(d, p)
	dm, di, R, xd := d.DModel, d.DInner, d.DtRank, d.XDbl()
	packInto(&bp.outN, false, dm, di, p.OutProjW, di) // dyg = dout · out_proj
	packInto(&bp.dtN, false, di, R, p.DtProjW, R)     // d dt_low = ddt · dt_proj
	packInto(&bp.xN, false, xd, di, p.XProjW, di)     // dxs += dx_dbl · x_proj
	packInto(&bp.inN, false, 2*di, dm, p.InProjW, dm) // din = dxz · in_proj
}

// repackBlocks packs every block of blocks into *packs (train: with the
// backward packs), growing *packs as needed.
func repackBlocks(packs *[]blockPacks, d Dims, blocks []MambaParams, train bool) {
	if len(*packs) != len(blocks) {
		*packs = make([]blockPacks, len(blocks))
	}
	for i := range blocks {
		if train {
			(*packs)[i].repackTrain(d, &blocks[i])
		} else {
			(*packs)[i].repack(d, &blocks[i])
		}
	}
}

// linear computes Y (m, n) = X (m, k) · Wᵀ with W [n, k] (PyTorch Linear
// layout), through the packed copy when there is one.
func (s *mixerScratch) linear(pb *kernels.PackedB, m, n, k int, x []float32, ldx int, w []float32, y []float32, ldy int) {
	if pb != nil {
		kernels.GemmPacked(&s.gemm, false, m, x, ldx, pb, 0, y, ldy)
		return
	}
	kernels.GemmWS(&s.gemm, false, true, m, n, k, x, ldx, w, k, 0, y, ldy)
}

func newMixerScratch(d Dims, L int, train bool) *mixerScratch {
	di, xd := d.DInner, d.XDbl()
	s := &mixerScratch{L: L, dm: d.DModel, di: di, n: d.DState, xd: xd}
	s.xz = make([]float32, L*2*di)
	s.xc = make([]float32, L*di)
	s.xs = make([]float32, L*di)
	s.xdbl = make([]float32, L*xd)
	s.dtraw = make([]float32, L*di)
	s.delta = make([]float32, L*di)
	s.yg = make([]float32, L*di)
	s.A = make([]float32, di*d.DState)
	if train {
		s.dyg = make([]float32, L*di)
		s.dxz = make([]float32, L*2*di)
		s.dxs = make([]float32, L*di)
		s.ddelta = make([]float32, L*di)
		s.dxdbl = make([]float32, L*xd)
		s.dA = make([]float32, di*d.DState)
		s.scan = make([]float32, kernels.BackwardScratch(L, d.DState))
	}
	return s
}

// mixerForward runs the Mamba-1 mixer on one sequence: in (L, d_model) →
// out (L, d_model). Only rows [outFrom, L) of out are computed (the
// classifier's last block needs only the CLS row); the internals stay in
// s for inspection and for mixerBackward.
func mixerForward(d Dims, p *MambaParams, L int, in []float32, out []float32, outFrom int, s *mixerScratch) {
	mixerForwardPacked(d, p, nil, L, in, out, outFrom, s)
}

// mixerForwardPacked is mixerForward with the Linear weights optionally
// pre-packed (bp nil: pack per call).
func mixerForwardPacked(d Dims, p *MambaParams, bp *blockPacks, L int, in []float32, out []float32, outFrom int, s *mixerScratch) {
	dm, di, N, R, xd := d.DModel, d.DInner, d.DState, d.DtRank, d.XDbl()
	var pin, px, pdt, pout *kernels.PackedB
	if bp != nil {
		pin, px, pdt, pout = bp.in, bp.x, bp.dt, bp.out
	}
	// xz = in · in_projᵀ  (L, 2·d_inner)
	s.linear(pin, L, 2*di, dm, in, dm, p.InProjW, s.xz, 2*di)
	// x = SiLU(causal depthwise conv(x) + b)  (L, d_inner)
	kernels.CausalConv1dForward(L, di, d.DConv, s.xz, 2*di, p.ConvW, p.ConvB, s.xc, di)
	kernels.SiLUForward(L*di, s.xc, s.xs)
	// x_dbl = x · x_projᵀ  (L, dt_rank+2N)
	s.linear(px, L, xd, di, s.xs, di, p.XProjW, s.xdbl, xd)
	// dt = dt_low · dt_projᵀ (L, d_inner); Δ = softplus(dt + bias)
	s.linear(pdt, L, di, R, s.xdbl, xd, p.DtProjW, s.dtraw, di)
	kernels.SoftplusBiasForward(L, di, s.dtraw, di, p.DtProjB, s.delta, di)
	A := s.negExpA(p, bp, di*N)
	s.sc = kernels.Scan{L: L, D: di, N: N, U: s.xs, LdU: di, Delta: s.delta, LdDel: di, A: A,
		B: s.xdbl[R:], LdB: xd, C: s.xdbl[R+N:], LdC: xd, Dskip: p.D, Z: s.xz[di:], LdZ: 2 * di}
	s.sc.Forward(s.yg, di, nil)
	// out = y · out_projᵀ  (L, d_model)
	rows := L - outFrom
	s.linear(pout, rows, dm, di, s.yg[outFrom*di:], di, p.OutProjW, out[outFrom*dm:], dm)
}

// negExpA returns A = −exp(A_log) (d_inner·N values): the packed copy
// when there is one, else computed into s.A.
func (s *mixerScratch) negExpA(p *MambaParams, bp *blockPacks, n int) []float32 {
	if bp != nil && len(bp.A) == n {
		return bp.A
	}
	for i, v := range p.ALog[:n] {
		s.A[i] = -kernels.Exp32(v)
	}
	return s.A
}

// linearN computes Y (m, n) = X (m, k) · W with W [k, n] (the
// input-gradient product of a Linear [k=out, n=in]), through the packed
// copy when there is one; beta 0 overwrites Y, 1 accumulates.
func (s *mixerScratch) linearN(pb *kernels.PackedB, m, n, k int, x []float32, ldx int, w []float32, beta float32, y []float32, ldy int) {
	if pb != nil {
		kernels.GemmPacked(&s.gemm, false, m, x, ldx, pb, beta, y, ldy)
		return
	}
	kernels.GemmWS(&s.gemm, false, false, m, n, k, x, ldx, w, n, beta, y, ldy)
}

// mixerBackward back-propagates dout (L, d_model) through the mixer whose
// input was in (L, d_model). It recomputes the forward activations into s
// (activation checkpointing at block granularity; mixerBackwardPacked can
// instead take the kept in_proj / x_proj outputs), accumulates the
// parameter gradients into g and writes din (L, d_model).
func mixerBackward(d Dims, p, g *MambaParams, L int, in, dout, din []float32, s *mixerScratch) {
	mixerBackwardPacked(d, p, g, nil, L, 0, in, nil, nil, dout, din, s)
}

// mixerBackwardPacked is mixerBackward with optional packed weights (bp
// from repackTrain, or nil) and with dout known to be zero in rows
// [0, from) (the classifier's last block, whose gradient enters through
// the CLS row only): out_proj's backward then runs on rows [from, L).
// Skipping exact zeros changes no result. keptXZ and keptXDbl are the
// forward's in_proj and x_proj outputs (stackActs.XZ/XDbl) or nil to
// recompute them; they are only read.
func mixerBackwardPacked(d Dims, p, g *MambaParams, bp *blockPacks, L, from int, in, keptXZ, keptXDbl, dout, din []float32, s *mixerScratch) {
	dm, di, N, R, xd := d.DModel, d.DInner, d.DState, d.DtRank, d.XDbl()
	var pin, px, pdt, pinN, pxN, pdtN, poutN *kernels.PackedB
	if bp != nil {
		pin, px, pdt = bp.in, bp.x, bp.dt
		pinN, pxN, pdtN, poutN = bp.inN, bp.xN, bp.dtN, bp.outN
	}
	if keptXZ != nil {
		xz, xdbl := s.xz, s.xdbl
		s.xz, s.xdbl = keptXZ, keptXDbl
		defer func() { s.xz, s.xdbl = xz, xdbl }()
	}
	// Recompute up to the scan input (the scan backward recomputes its own
	// states and the gated output yg).
	if keptXZ == nil {
		s.linear(pin, L, 2*di, dm, in, dm, p.InProjW, s.xz, 2*di)
	}
	kernels.CausalConv1dForward(L, di, d.DConv, s.xz, 2*di, p.ConvW, p.ConvB, s.xc, di)
	kernels.SiLUForward(L*di, s.xc, s.xs)
	if keptXZ == nil {
		s.linear(px, L, xd, di, s.xs, di, p.XProjW, s.xdbl, xd)
	}
	s.linear(pdt, L, di, R, s.xdbl, xd, p.DtProjW, s.dtraw, di)
	kernels.SoftplusBiasForward(L, di, s.dtraw, di, p.DtProjB, s.delta, di)
	A := s.negExpA(p, bp, di*N)
	// dyg = dout · out_proj  (L, d_inner); rows before from are zero.
	clear(s.dyg[:from*di])
	s.linearN(poutN, L-from, di, dm, dout[from*dm:], dm, p.OutProjW, 0, s.dyg[from*di:], di)
	// Scan backward: du → dxs, dΔ, dz → dxz[:, d_inner:], dB, dC → dxdbl.
	clear(s.dxdbl[:L*xd])
	clear(s.dA)
	s.sc = kernels.Scan{L: L, D: di, N: N, U: s.xs, LdU: di, Delta: s.delta, LdDel: di, A: A,
		B: s.xdbl[R:], LdB: xd, C: s.xdbl[R+N:], LdC: xd, Dskip: p.D, Z: s.xz[di:], LdZ: 2 * di}
	s.sg = kernels.ScanGrad{DY: s.dyg, LdDY: di, DU: s.dxs, LdDU: di, DDelta: s.ddelta, LdDDel: di,
		DZ: s.dxz[di:], LdDZ: 2 * di, DA: s.dA, DB: s.dxdbl[R:], LdDB: xd, DC: s.dxdbl[R+N:], LdDC: xd, DDskip: g.D}
	s.sc.Backward(&s.sg, s.scan, s.yg, di)
	// out_proj weight: dW += doutᵀ · yg  (d_model, d_inner)
	kernels.GemmWS(&s.gemm, true, false, dm, di, L-from, dout[from*dm:], dm, s.yg[from*di:], di, 1, g.OutProjW, di)
	// A = −exp(A_log) → dA_log = dA·A.
	for i, v := range s.dA {
		g.ALog[i] += v * A[i]
	}
	// Δ = softplus(dtraw + b): ddtraw (in place in ddelta), dbias.
	kernels.SoftplusBiasBackward(L, di, s.dtraw, di, p.DtProjB, s.ddelta, di, s.ddelta, di, g.DtProjB)
	// dtraw = dt_low · dt_projᵀ: dW_dt += ddtrawᵀ · dt_low; d dt_low = ddtraw · W_dt.
	kernels.GemmWS(&s.gemm, true, false, di, R, L, s.ddelta, di, s.xdbl, xd, 1, g.DtProjW, R)
	s.linearN(pdtN, L, R, di, s.ddelta, di, p.DtProjW, 0, s.dxdbl, xd)
	// x_dbl = xs · x_projᵀ: dW_x += dxdblᵀ · xs; dxs += dxdbl · W_x.
	kernels.GemmWS(&s.gemm, true, false, xd, di, L, s.dxdbl, xd, s.xs, di, 1, g.XProjW, di)
	s.linearN(pxN, L, di, xd, s.dxdbl, xd, p.XProjW, 1, s.dxs, di)
	// xs = SiLU(xc) (dxc in place in dxs); conv backward → dxz[:, :d_inner].
	kernels.SiLUBackward(L*di, s.xc, s.dxs, s.dxs)
	kernels.CausalConv1dBackward(L, di, d.DConv, s.xz, 2*di, p.ConvW, s.dxs, di, s.dxz, 2*di, g.ConvW, g.ConvB)
	// xz = in · in_projᵀ: dW_in += dxzᵀ · in; din = dxz · W_in.
	kernels.GemmWS(&s.gemm, true, false, 2*di, dm, L, s.dxz, 2*di, in, dm, 1, g.InProjW, dm)
	s.linearN(pinN, L, dm, 2*di, s.dxz, 2*di, p.InProjW, 0, din, dm)
}
