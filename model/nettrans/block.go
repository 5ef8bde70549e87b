package nettrans

import (
	"math"

	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model/multimodal"
)

// blockActs are one block's saved activations for one flow.
type blockActs struct {
	ln1, ln1Mean, ln1Rstd []float32 // (L, D), (L), (L)
	qkv                   []float32 // (L, 3D): q | k | v
	ctx                   []float32 // (L, D) attention output before to_out
	lse                   []float32 // (H, L) softmax logsumexp per query row
	mid                   []float32 // (L, D) residual after the attention branch
	ln2, ln2Mean, ln2Rstd []float32 // (L, D), (L), (L)
	u                     []float32 // (L, 2F) ff.net.0.proj output
	g                     []float32 // (L, F) GeGLU output
	out                   []float32 // (L, D) block output
	// training with dropout: masks of the attention and FFN branch outputs
	dropAttn, dropFF []float32 // (L, D)
}

// activations are the intermediate states of one flow. With training
// activations every block's states are kept (the backward needs them);
// inference reuses a single block's buffers for all blocks.
type activations struct {
	embed    []float32 // (L, D) input of block 0 (golden embed_out)
	blocks   []blockActs
	normOut  []float32 // (L, D) final LayerNorm output
	normMean []float32 // (L)
	normRstd []float32 // (L)
	feat     []float32 // (D) head input (golden cls_token)
}

func (m *Model) newActivations(train bool) *activations {
	d := m.d
	L, D := d.L, d.D
	f := func(n int) []float32 { return make([]float32, n) }
	a := &activations{embed: f(L * D), normOut: f(L * D), normMean: f(L), normRstd: f(L), feat: f(D)}
	n := 1
	if train {
		n = d.depth
	}
	a.blocks = make([]blockActs, n)
	for i := range a.blocks {
		a.blocks[i] = newBlockActs(m.enc, train)
	}
	return a
}

// blockShape is the geometry of a transformer block run: L tokens of
// width D, H heads of dh, GeGLU hidden width F, attention scale dh^-½.
type blockShape struct {
	L, D, H, dh, F int
	scale          float32
}

func newBlockShape(L, D, H int) blockShape {
	dh := D / H
	return blockShape{L: L, D: D, H: H, dh: dh, F: 4 * D, scale: float32(1 / math.Sqrt(float64(dh)))}
}

// newBlockActs allocates one block's activations for shape s (dropout
// masks with train).
func newBlockActs(s blockShape, train bool) blockActs {
	L, D, F := s.L, s.D, s.F
	f := func(n int) []float32 { return make([]float32, n) }
	a := blockActs{
		ln1: f(L * D), ln1Mean: f(L), ln1Rstd: f(L),
		qkv: f(L * 3 * D), ctx: f(L * D), lse: f(s.H * L), mid: f(L * D),
		ln2: f(L * D), ln2Mean: f(L), ln2Rstd: f(L),
		u: f(L * 2 * F), g: f(L * F), out: f(L * D),
	}
	if train {
		a.dropAttn, a.dropFF = f(L*D), f(L*D)
	}
	return a
}

// backScratch is one worker's backward memory.
type backScratch struct {
	dlogits []float32 // (C)
	dfeat   []float32 // (D)
	dn      []float32 // (L, D) gradient of the final norm output
	dx      []float32 // (L, D) gradient of the residual stream
	dh      []float32 // (L, D) gradient of a LayerNorm output
	dqkv    []float32 // (L, 3D)
	dctx    []float32 // (L, D)
	du      []float32 // (L, 2F)
	dg      []float32 // (L, F)
	dbr     []float32 // (L, D) gradient of a dropped-out branch output
}

func (m *Model) newBackScratch() *backScratch {
	d := m.d
	// sized for the largest block run (encoder or pre-training decoder)
	LD, LF := m.enc.L*m.enc.D, m.enc.L*m.enc.F
	if d.pretrain {
		LD, LF = max(LD, m.dec.L*m.dec.D, d.fullL*d.D), max(LF, m.dec.L*m.dec.F)
	}
	f := func(n int) []float32 { return make([]float32, n) }
	return &backScratch{dlogits: f(max(d.classes, 1)), dfeat: f(d.D), dn: f(LD), dx: f(LD), dh: f(LD),
		dqkv: f(3 * LD), dctx: f(LD), du: f(2 * LF), dg: f(LF), dbr: f(LD)}
}

// gemm is kernels.GemmWS with the worker's packing scratch.
func (wk *worker) gemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	kernels.GemmWS(&wk.gemmWS, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// addRowBias adds bias (cols) to every row of x (rows, cols).
func addRowBias(x, bias []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := x[r*cols : (r+1)*cols]
		for c, b := range bias[:cols] {
			row[c] += b
		}
	}
}

// fillRows sets every row of x (rows, cols) to v.
func fillRows(x, v []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		copy(x[r*cols:(r+1)*cols], v[:cols])
	}
}

// colSum accumulates dst[c] += Σ_r x[r, c].
func colSum(dst, x []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := x[r*cols : (r+1)*cols]
		for c, v := range row {
			dst[c] += v
		}
	}
}

// bytesEmbedForward is the byte classifier's embedding: stride embedding
// + pos_embed[t] for the 400 byte tokens, then CLS = cls_token +
// pos_embed[400] appended last. out is (L, D).
func (m *Model) bytesEmbedForward(out, x []float32) {
	d, p := m.d, m.P
	D := d.D
	multimodal.StrideEmbedForward(out, D, x, p.PatchW, p.PatchB, d.patches, d.stride, D)
	copy(out[d.patches*D:(d.patches+1)*D], p.ClsToken)
	for i, pe := range p.PosEmbed[:d.fullL*D] {
		out[i] += pe
	}
}

// bytesEmbedBackward accumulates the byte embedding's gradients.
func (m *Model) bytesEmbedBackward(g *Params, dout, x []float32) {
	d := m.d
	D := d.D
	for i, v := range dout[:d.fullL*D] {
		g.PosEmbed[i] += v
	}
	for c, v := range dout[d.patches*D : (d.patches+1)*D] {
		g.ClsToken[c] += v
	}
	multimodal.StrideEmbedBackward(g.PatchW, g.PatchB, dout, D, x, d.patches, d.stride, D)
}

// blockForward runs one pre-norm block on x (L, D) into a.out. a.out may
// alias x: x is last read before a.out is first written.
func blockForward(s blockShape, p *BlockParams, x []float32, a *blockActs, wk *worker, pk *blockPacks) {
	L, D, F := s.L, s.D, s.F
	var none blockPacks // GemmWS on the weights
	if pk == nil {
		pk = &none
	}
	kernels.LayerNormForward(a.ln1, a.ln1Mean, a.ln1Rstd, x, p.Norm1W, p.Norm1B, L, D, blockEps)
	// (L, 3D) = ln1 · [Wq; Wk; Wv]ᵀ
	wk.gemmW(pk.qkv, true, L, 3*D, D, a.ln1, D, p.QKVW, D, 0, a.qkv, 3*D)
	kernels.AttentionForward(a.ctx, D, a.lse, a.qkv, a.qkv[D:], a.qkv[2*D:], 3*D, L, s.H, s.dh, s.scale, wk.attn)
	// mid = x + drop(ctx·Woᵀ + bo)
	if wk.dropout > 0 {
		wk.gemmW(pk.out, true, L, D, D, a.ctx, D, p.OutW, D, 0, a.mid, D)
		addRowBias(a.mid, p.OutB, L, D)
		for i, mk := range a.dropAttn {
			a.mid[i] = x[i] + mk*a.mid[i]
		}
	} else {
		copy(a.mid, x[:L*D])
		wk.gemmW(pk.out, true, L, D, D, a.ctx, D, p.OutW, D, 1, a.mid, D)
		addRowBias(a.mid, p.OutB, L, D)
	}
	kernels.LayerNormForward(a.ln2, a.ln2Mean, a.ln2Rstd, a.mid, p.Norm2W, p.Norm2B, L, D, blockEps)
	// u = ln2·W1ᵀ + b1 (L, 2F); g = u[:, :F] ⊙ GELU(u[:, F:])
	fillRows(a.u, p.FF1B, L, 2*F)
	wk.gemmW(pk.ff1, true, L, 2*F, D, a.ln2, D, p.FF1W, D, 1, a.u, 2*F)
	kernels.GeGLUForward(a.g, a.u, L, F)
	// out = mid + drop(g·W2ᵀ + b2)
	if wk.dropout > 0 { // training: a.out does not alias x
		wk.gemmW(pk.ff2, true, L, D, F, a.g, F, p.FF2W, F, 0, a.out, D)
		addRowBias(a.out, p.FF2B, L, D)
		for i, mk := range a.dropFF {
			a.out[i] = a.mid[i] + mk*a.out[i]
		}
	} else {
		copy(a.out, a.mid)
		wk.gemmW(pk.ff2, true, L, D, F, a.g, F, p.FF2W, F, 1, a.out, D)
		addRowBias(a.out, p.FF2B, L, D)
	}
}

// branchGrad returns the gradient of a branch output given the gradient
// dx of the residual sum: dx itself, or mask ⊙ dx under dropout.
func (wk *worker) branchGrad(dx, mask []float32) []float32 {
	if wk.dropout == 0 {
		return dx
	}
	dbr := wk.bw.dbr[:len(dx)]
	for i, mk := range mask {
		dbr[i] = mk * dx[i]
	}
	return dbr
}

// blockBackward: on entry dx holds dL/d(out); on return dL/d(x), with the
// parameter gradients accumulated into gp. x is the block's input.
func blockBackward(s blockShape, p, gp *BlockParams, x []float32, a *blockActs, dx []float32, wk *worker, pk *blockPacks) {
	bw := wk.bw
	var none blockPacks // GemmWS on the weights
	if pk == nil {
		pk = &none
	}
	L, D, F := s.L, s.D, s.F
	dx = dx[:L*D]
	// FFN: out = mid + drop(g·W2ᵀ + b2)
	dbr := wk.branchGrad(dx, a.dropFF)
	colSum(gp.FF2B, dbr, L, D)
	wk.gemm(true, false, D, F, L, dbr, D, a.g, F, 1, gp.FF2W, F)
	wk.gemmW(pk.ff2N, false, L, F, D, dbr, D, p.FF2W, F, 0, bw.dg, F)
	kernels.GeGLUBackward(bw.du, bw.dg, a.u, L, F)
	colSum(gp.FF1B, bw.du, L, 2*F)
	wk.gemm(true, false, 2*F, D, L, bw.du, 2*F, a.ln2, D, 1, gp.FF1W, D)
	wk.gemmW(pk.ff1N, false, L, D, 2*F, bw.du, 2*F, p.FF1W, D, 0, bw.dh, D)
	kernels.LayerNormBackward(dx, gp.Norm2W, gp.Norm2B, bw.dh, a.mid, a.ln2Mean, a.ln2Rstd, p.Norm2W, L, D)
	// attention: mid = x + drop(ctx·Woᵀ + bo)
	dbr = wk.branchGrad(dx, a.dropAttn)
	colSum(gp.OutB, dbr, L, D)
	wk.gemm(true, false, D, D, L, dbr, D, a.ctx, D, 1, gp.OutW, D)
	wk.gemmW(pk.outN, false, L, D, D, dbr, D, p.OutW, D, 0, bw.dctx, D)
	kernels.AttentionBackward(bw.dqkv, bw.dqkv[D:], bw.dqkv[2*D:], bw.dctx, a.ctx, D, a.lse,
		a.qkv, a.qkv[D:], a.qkv[2*D:], 3*D, L, s.H, s.dh, s.scale, wk.attn)
	wk.gemm(true, false, 3*D, D, L, bw.dqkv, 3*D, a.ln1, D, 1, gp.QKVW, D)
	wk.gemmW(pk.qkvN, false, L, D, 3*D, bw.dqkv, 3*D, p.QKVW, D, 0, bw.dh, D)
	kernels.LayerNormBackward(dx, gp.Norm1W, gp.Norm1B, bw.dh, x, a.ln1Mean, a.ln1Rstd, p.Norm1W, L, D)
}

// forwardFlow runs one flow through the embedding, the blocks, the final
// norm and the head, writing logits (C). The input sizes were checked by
// checkBatch.
func (m *Model) forwardFlow(in multimodal.Input, acts *activations, wk *worker, logits []float32) {
	d, p := m.d, m.P
	L, D := d.L, d.D
	if d.fuse3 {
		if err := m.Layout.Forward(acts.embed, &p.Embed, in); err != nil {
			panic("nettrans: " + err.Error()) // unreachable: checkBatch validated the input
		}
	} else {
		m.bytesEmbedForward(acts.embed, in.Bytes)
	}
	x := acts.embed
	for i := range p.Blocks {
		a := &acts.blocks[min(i, len(acts.blocks)-1)]
		blockForward(m.enc, &p.Blocks[i], x, a, wk, wk.blockPacks(i))
		x = a.out
	}
	kernels.LayerNormForward(acts.normOut, acts.normMean, acts.normRstd, x, p.NormW, p.NormB, L, D, finalEps)
	if d.fuse3 {
		m.Layout.CLSSum(acts.feat, acts.normOut)
	} else {
		copy(acts.feat, acts.normOut[(L-1)*D:L*D])
	}
	for c := range logits[:d.classes] {
		w := p.HeadW[c*D : (c+1)*D]
		var s float32
		for j, v := range acts.feat {
			s += w[j] * v
		}
		if p.HeadB != nil {
			s += p.HeadB[c]
		}
		logits[c] = s
	}
}

// backwardFlow accumulates into g the gradients of one flow given
// dlogits; acts must come from forwardFlow with training activations.
func (m *Model) backwardFlow(in multimodal.Input, acts *activations, dlogits []float32, g *Params, wk *worker) {
	d, p, bw := m.d, m.P, wk.bw
	L, D := d.L, d.D
	// head
	clear(bw.dfeat)
	for c, gl := range dlogits[:d.classes] {
		w := p.HeadW[c*D : (c+1)*D]
		gw := g.HeadW[c*D : (c+1)*D]
		for j, v := range acts.feat {
			bw.dfeat[j] += gl * w[j]
			gw[j] += gl * v
		}
		if g.HeadB != nil {
			g.HeadB[c] += gl
		}
	}
	clear(bw.dn)
	if d.fuse3 {
		m.Layout.CLSSumBackward(bw.dn, bw.dfeat)
	} else {
		copy(bw.dn[(L-1)*D:], bw.dfeat)
	}
	last := acts.blocks[len(acts.blocks)-1].out
	clear(bw.dx)
	kernels.LayerNormBackward(bw.dx, g.NormW, g.NormB, bw.dn, last, acts.normMean, acts.normRstd, p.NormW, L, D)
	for i := d.depth - 1; i >= 0; i-- {
		x := acts.embed
		if i > 0 {
			x = acts.blocks[i-1].out
		}
		blockBackward(m.enc, &p.Blocks[i], &g.Blocks[i], x, &acts.blocks[i], bw.dx, wk, wk.blockPacks(i))
	}
	if d.fuse3 {
		m.Layout.Backward(&g.Embed, bw.dx, in)
	} else {
		m.bytesEmbedBackward(g, bw.dx, in.Bytes)
	}
}

// blockPacks returns the packed weights of encoder block i, nil when the
// worker has none (a flow run outside the batched entry points).
func (wk *worker) blockPacks(i int) *blockPacks {
	if i < len(wk.packs) {
		return &wk.packs[i]
	}
	return nil
}
