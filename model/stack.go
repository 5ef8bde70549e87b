package model

import "github.com/netmamba/netmamba/kernels"

// normEps is the RMSNorm epsilon of every NetMamba block and final norm.
const normEps = 1e-5

// Stack is a sequence of Mamba blocks followed by the final add + RMSNorm,
// as the official encoder (and MAE decoder) runs them:
//
//	residual_0 = x;  residual_i = residual_{i−1} + dp_{i−1}(hidden_{i−1})
//	hidden_i   = Mixer_i(RMSNorm_i(residual_i))
//	out        = RMSNorm_f(residual_{depth−1} + dp_{depth−1}(hidden_{depth−1}))
//
// where dp_i is mixer i's drop-path (a per-sequence scale: 1 in eval, 0 or
// 1/(1−p) in training). It is independent of the token layout, so
// models with other token counts and CLS positions (fuse3) reuse it.
type Stack struct {
	Dims   Dims
	Blocks []MambaParams
	NormF  []float32

	packs []blockPacks // optional packed weights of Blocks (repackBlocks); nil: pack per product
}

// stackActs holds one sequence's saved activations for backward:
// Res[i] (L, d_model) for i ≤ depth (Res[depth] is the input of the final
// norm), Hid[i] (L, d_model) the mixer outputs, Out (L, d_model) the final
// norm output and RstdF (L) its reciprocal RMS. In inference all Res[i]
// alias one buffer and all Hid[i] another. Training also keeps each
// mixer's in_proj output XZ[i] (L, 2·d_inner) and x_proj output XDbl[i]
// (L, dt_rank+2N), so that backward does not recompute the largest
// product (in_proj is ⅗ of a block's forward FLOPs).
type stackActs struct {
	Res   [][]float32
	Hid   [][]float32
	Out   []float32
	RstdF []float32
	XZ    [][]float32 // training only
	XDbl  [][]float32 // training only
}

func newStackActs(d Dims, depth, L int, train bool) *stackActs {
	a := &stackActs{Res: make([][]float32, depth+1), Hid: make([][]float32, depth)}
	n := L * d.DModel
	if train {
		buf := make([]float32, (2*depth+2)*n)
		for i := range a.Res {
			a.Res[i], buf = buf[:n:n], buf[n:]
		}
		for i := range a.Hid {
			a.Hid[i], buf = buf[:n:n], buf[n:]
		}
		a.Out = buf[:n:n]
		nz, nd := L*2*d.DInner, L*d.XDbl()
		mb := make([]float32, depth*(nz+nd))
		a.XZ, a.XDbl = make([][]float32, depth), make([][]float32, depth)
		for i := 0; i < depth; i++ {
			a.XZ[i], mb = mb[:nz:nz], mb[nz:]
			a.XDbl[i], mb = mb[:nd:nd], mb[nd:]
		}
	} else {
		res, hid := make([]float32, n), make([]float32, n)
		for i := range a.Res {
			a.Res[i] = res
		}
		for i := range a.Hid {
			a.Hid[i] = hid
		}
		a.Out = make([]float32, n)
	}
	a.RstdF = make([]float32, L)
	return a
}

// stackScratch is one worker's scratch for a Stack over up to L tokens.
type stackScratch struct {
	mix   *mixerScratch
	nrm   []float32 // (L, d_model) block input after RMSNorm
	rstd  []float32 // (L)
	dres  []float32 // (L, d_model) gradient of the residual stream
	dhid  []float32 // (L, d_model)
	dnrm  []float32 // (L, d_model)
	train bool
}

func newStackScratch(d Dims, L int, train bool) *stackScratch {
	n := L * d.DModel
	s := &stackScratch{mix: newMixerScratch(d, L, train), nrm: make([]float32, n), rstd: make([]float32, L), train: train}
	if train {
		s.dres, s.dhid, s.dnrm = make([]float32, n), make([]float32, n), make([]float32, n)
	}
	return s
}

// forward runs the stack on x (L, d_model) (x may alias a.Res[0]).
// scales[i] is mixer i's drop-path scale (nil: all 1). If lastRows > 0
// only the last lastRows rows of the final output are computed, and the
// last mixer's out_proj only for those rows (inference on a CLS token).
func (st *Stack) forward(L int, x []float32, scales []float32, a *stackActs, s *stackScratch, lastRows int) {
	st.forwardPacked(L, x, scales, a, s, lastRows, st.packs)
}

// forwardPacked is forward with optional pre-packed weights (one
// blockPacks per block, or nil).
func (st *Stack) forwardPacked(L int, x []float32, scales []float32, a *stackActs, s *stackScratch, lastRows int, packs []blockPacks) {
	dm := st.Dims.DModel
	n := L * dm
	depth := len(st.Blocks)
	if &a.Res[0][0] != &x[0] {
		copy(a.Res[0][:n], x[:n])
	}
	from := 0
	if lastRows > 0 {
		from = L - lastRows
	}
	for i := range st.Blocks {
		b := &st.Blocks[i]
		if i == 0 {
			kernels.AddRMSNormForward(L, dm, a.Res[0], nil, 1, a.Res[0], b.NormW, normEps, s.nrm, s.rstd)
		} else {
			kernels.AddRMSNormForward(L, dm, a.Res[i-1], a.Hid[i-1], scale(scales, i-1), a.Res[i], b.NormW, normEps, s.nrm, s.rstd)
		}
		outFrom := 0
		if i == depth-1 {
			outFrom = from
		}
		var bp *blockPacks
		if packs != nil {
			bp = &packs[i]
		}
		if a.XZ != nil {
			// Write the kept products straight into the saved activations.
			xz, xdbl := s.mix.xz, s.mix.xdbl
			s.mix.xz, s.mix.xdbl = a.XZ[i], a.XDbl[i]
			mixerForwardPacked(st.Dims, b, bp, L, s.nrm, a.Hid[i], outFrom, s.mix)
			s.mix.xz, s.mix.xdbl = xz, xdbl
		} else {
			mixerForwardPacked(st.Dims, b, bp, L, s.nrm, a.Hid[i], outFrom, s.mix)
		}
	}
	r := from * dm
	kernels.AddRMSNormForward(L-from, dm, a.Res[depth-1][r:], a.Hid[depth-1][r:], scale(scales, depth-1), a.Res[depth][r:], st.NormF, normEps, a.Out[r:], a.RstdF[from:])
}

func scale(scales []float32, i int) float32 {
	if scales == nil {
		return 1
	}
	return scales[i]
}

// backward back-propagates dout (L, d_model), the gradient of a.Out, to
// dx (L, d_model), accumulating parameter gradients into g (same layout as
// st). a must come from a training forward of the same input.
func (st *Stack) backward(L int, scales []float32, a *stackActs, dout []float32, g *Stack, s *stackScratch, dx []float32) {
	st.backwardRows(L, scales, a, dout, g, s, dx, 0)
}

// backwardRows is backward for a dout that is zero except in its last
// lastRows rows (lastRows <= 0: all rows), as in a classifier whose loss
// reads the CLS row only: the final norm and the last mixer's out_proj
// then back-propagate only those rows. Skipping exact zeros changes no
// result.
func (st *Stack) backwardRows(L int, scales []float32, a *stackActs, dout []float32, g *Stack, s *stackScratch, dx []float32, lastRows int) {
	dm := st.Dims.DModel
	n := L * dm
	depth := len(st.Blocks)
	from := 0
	if lastRows > 0 && lastRows < L {
		from = L - lastRows
	}
	dres := s.dres[:n]
	clear(dres)
	r := from * dm
	kernels.RMSNormBackward(L-from, dm, a.Res[depth][r:], st.NormF, a.RstdF[from:], dout[r:], dres[r:], g.NormF)
	for i := depth - 1; i >= 0; i-- {
		// residual_{i+1} = residual_i + scale_i·hidden_i: dres carries over
		// unchanged; dhidden_i = scale_i·dres.
		sc := scale(scales, i)
		if sc == 0 {
			continue // dropped mixer: no gradient through it
		}
		dh := s.dhid[:n]
		for j, v := range dres {
			dh[j] = sc * v
		}
		b, gb := &st.Blocks[i], &g.Blocks[i]
		kernels.AddRMSNormForward(L, dm, a.Res[i], nil, 1, a.Res[i], b.NormW, normEps, s.nrm, s.rstd)
		var bp *blockPacks
		if st.packs != nil {
			bp = &st.packs[i]
		}
		rows := 0 // dout rows known to be zero before the last block's mixer
		if i == depth-1 {
			rows = from
		}
		var xz, xdbl []float32
		if a.XZ != nil {
			xz, xdbl = a.XZ[i], a.XDbl[i]
		}
		mixerBackwardPacked(st.Dims, b, gb, bp, L, rows, s.nrm, xz, xdbl, dh, s.dnrm, s.mix)
		kernels.RMSNormBackward(L, dm, a.Res[i], b.NormW, s.rstd, s.dnrm, dres, gb.NormW)
	}
	copy(dx[:n], dres)
}
