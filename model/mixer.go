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
// (O(parameters) per batch instead of per flow).
type blockPacks struct {
	in, x, dt, out *kernels.PackedB
}

// repack packs block p's Linear weights into bp (reusing its memory).
func (bp *blockPacks) repack(d Dims, p *MambaParams) {
	pack := func(dst **kernels.PackedB, k, n int, w []float32) {
		if *dst == nil {
			*dst = kernels.PackB(true, k, n, w, k)
		} else {
			(*dst).Repack(true, k, n, w, k)
		}
	}
	pack(&bp.in, d.DModel, 2*d.DInner, p.InProjW)
	pack(&bp.x, d.DInner, d.XDbl(), p.XProjW)
	pack(&bp.dt, d.DtRank, d.DInner, p.DtProjW)
	pack(&bp.out, d.DInner, d.DModel, p.OutProjW)
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
	for i, v := range p.ALog[:di*N] {
		s.A[i] = -kernels.Exp32(v)
	}
	s.sc = kernels.Scan{L: L, D: di, N: N, U: s.xs, LdU: di, Delta: s.delta, LdDel: di, A: s.A,
		B: s.xdbl[R:], LdB: xd, C: s.xdbl[R+N:], LdC: xd, Dskip: p.D, Z: s.xz[di:], LdZ: 2 * di}
	s.sc.Forward(s.yg, di, nil)
	// out = y · out_projᵀ  (L, d_model)
	rows := L - outFrom
	s.linear(pout, rows, dm, di, s.yg[outFrom*di:], di, p.OutProjW, out[outFrom*dm:], dm)
}

// mixerBackward back-propagates dout (L, d_model) through the mixer whose
// input was in (L, d_model). It recomputes the forward activations into s
// (activation checkpointing at block granularity: nothing per layer is
// stored between the training forward and backward), accumulates the
// parameter gradients into g and writes din (L, d_model).
func mixerBackward(d Dims, p, g *MambaParams, L int, in, dout, din []float32, s *mixerScratch) {
	dm, di, N, R, xd := d.DModel, d.DInner, d.DState, d.DtRank, d.XDbl()
	// Recompute up to the scan input (the scan backward recomputes its own
	// states and the gated output yg).
	kernels.Gemm(false, true, L, 2*di, dm, in, dm, p.InProjW, dm, 0, s.xz, 2*di)
	kernels.CausalConv1dForward(L, di, d.DConv, s.xz, 2*di, p.ConvW, p.ConvB, s.xc, di)
	kernels.SiLUForward(L*di, s.xc, s.xs)
	kernels.Gemm(false, true, L, xd, di, s.xs, di, p.XProjW, di, 0, s.xdbl, xd)
	kernels.Gemm(false, true, L, di, R, s.xdbl, xd, p.DtProjW, R, 0, s.dtraw, di)
	kernels.SoftplusBiasForward(L, di, s.dtraw, di, p.DtProjB, s.delta, di)
	for i, v := range p.ALog[:di*N] {
		s.A[i] = -kernels.Exp32(v)
	}
	// dyg = dout · out_proj  (L, d_inner)
	kernels.Gemm(false, false, L, di, dm, dout, dm, p.OutProjW, di, 0, s.dyg, di)
	// Scan backward: du → dxs, dΔ, dz → dxz[:, d_inner:], dB, dC → dxdbl.
	clear(s.dxdbl[:L*xd])
	clear(s.dA)
	s.sc = kernels.Scan{L: L, D: di, N: N, U: s.xs, LdU: di, Delta: s.delta, LdDel: di, A: s.A,
		B: s.xdbl[R:], LdB: xd, C: s.xdbl[R+N:], LdC: xd, Dskip: p.D, Z: s.xz[di:], LdZ: 2 * di}
	s.sg = kernels.ScanGrad{DY: s.dyg, LdDY: di, DU: s.dxs, LdDU: di, DDelta: s.ddelta, LdDDel: di,
		DZ: s.dxz[di:], LdDZ: 2 * di, DA: s.dA, DB: s.dxdbl[R:], LdDB: xd, DC: s.dxdbl[R+N:], LdDC: xd, DDskip: g.D}
	s.sc.Backward(&s.sg, s.scan, s.yg, di)
	// out_proj weight: dW += doutᵀ · yg  (d_model, d_inner)
	kernels.Gemm(true, false, dm, di, L, dout, dm, s.yg, di, 1, g.OutProjW, di)
	// A = −exp(A_log) → dA_log = dA·A.
	for i, v := range s.dA {
		g.ALog[i] += v * s.A[i]
	}
	// Δ = softplus(dtraw + b): ddtraw (in place in ddelta), dbias.
	kernels.SoftplusBiasBackward(L, di, s.dtraw, di, p.DtProjB, s.ddelta, di, s.ddelta, di, g.DtProjB)
	// dtraw = dt_low · dt_projᵀ: dW_dt += ddtrawᵀ · dt_low; d dt_low = ddtraw · W_dt.
	kernels.Gemm(true, false, di, R, L, s.ddelta, di, s.xdbl, xd, 1, g.DtProjW, R)
	kernels.Gemm(false, false, L, R, di, s.ddelta, di, p.DtProjW, R, 0, s.dxdbl, xd)
	// x_dbl = xs · x_projᵀ: dW_x += dxdblᵀ · xs; dxs += dxdbl · W_x.
	kernels.Gemm(true, false, xd, di, L, s.dxdbl, xd, s.xs, di, 1, g.XProjW, di)
	kernels.Gemm(false, false, L, di, xd, s.dxdbl, xd, p.XProjW, di, 1, s.dxs, di)
	// xs = SiLU(xc) (dxc in place in dxs); conv backward → dxz[:, :d_inner].
	kernels.SiLUBackward(L*di, s.xc, s.dxs, s.dxs)
	kernels.CausalConv1dBackward(L, di, d.DConv, s.xz, 2*di, p.ConvW, s.dxs, di, s.dxz, 2*di, g.ConvW, g.ConvB)
	// xz = in · in_projᵀ: dW_in += dxzᵀ · in; din = dxz · W_in.
	kernels.Gemm(true, false, 2*di, dm, L, s.dxz, 2*di, in, dm, 1, g.InProjW, dm)
	kernels.Gemm(false, false, L, dm, 2*di, s.dxz, 2*di, p.InProjW, dm, 0, din, dm)
}
