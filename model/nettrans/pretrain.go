package nettrans

import (
	"fmt"

	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model/multimodal"
)

// Pre-training (Task "pretrain"), as the official net_fgt_base_pretrain
// (models_net_trans.py) and fuse3_fgt_base_pretrain
// (models_net_trans_fuse3.py):
//
//	full = embed(flow)                            // (fullL, D) as the classifier's, sizes/IATs masked first
//	keep = int(patches·(1−MaskRatio))             // 39 of 400 byte tokens at 0.9 (float64 as Python)
//	x    = [size seg, iat seg] ++ full[byte rows of a random keep-subset, in shuffle order] ++ byte CLS
//	h    = norm(blocks(x))                        // the classifier's encoder on L = fullL − patches + keep tokens
//	e    = h[byte rows]·Weᵀ + be                  // decoder_embed (keep+1, Dd)
//	z    = unshuffle(e, mask_token) + decoder_pos_embed   // (patches+1, Dd), CLS last
//	pred = decoder_blocks(z)·Wpᵀ + bp             // (patches+1, stride); no decoder norm (official)
//	byte loss = Σ_masked mean_j (pred − patch)² / #masked   // over the batch
//	size loss = CE(size_decoder_pred(h[size rows]), size id) over masked sizes   // fuse3 with sizes
//	iat loss  = Σ_masked (iat_decoder_pred(h[iat rows]) − iat)² / #masked       // fuse3 with IATs
//	total = byte + size + iat (unweighted)
//
// The decoder is NetTrans blocks (flash-gated) of width DecoderEmbedDim
// (128), DecoderDepth (2) blocks, the encoder's head count (8 heads of
// 16), with the same dropout. Sizes are masked with the MASK id (1502)
// and IATs with 0, int(SeqLen·0.85) = 17 of 20 kept, uniformly over all
// slots (padding included), before the embedding. Encoder parameter names
// equal the classifier's, so a pre-training checkpoint initialises a
// classifier by name.

// Official size / IAT mask ratios of the fuse3 pre-training.
const (
	sizeMaskRatio = 0.15
	iatMaskRatio  = 0.15
)

// Losses are the components of a pre-training loss (batch means).
type Losses struct {
	Total, Bytes, Sizes, IATs float64
}

// pretrainActs are one worker's pre-training buffers for one flow.
type pretrainActs struct {
	full   []float32 // (fullL, D) unmasked-position embedding
	perm   []int     // (patches) perm[r] = byte patch of shuffle rank r
	rank   []int     // (patches) rank[p] = shuffle rank of patch p (ids_restore)
	sMask  []bool    // (seqLen) size masked
	iMask  []bool    // (seqLen) IAT masked
	mSizes []float32 // (seqLen) masked size values
	mIATs  []float32 // (seqLen) masked IAT values
	e      []float32 // (keep+1, Dd) decoder_embed output
	z      []float32 // (patches+1, Dd) decoder input
	dec    []blockActs
	pred   []float32 // (patches+1, stride)
	slog   []float32 // (vocab) size logits of one row
	dfull  []float32 // (fullL, D)
	dz     []float32 // (patches+1, Dd)
	de     []float32 // (keep+1, Dd)
	loss   [3]float64
}

func (m *Model) newPretrainActs() *pretrainActs {
	d := m.d
	f := func(n int) []float32 { return make([]float32, n) }
	P, Dd := d.patches, d.decD
	a := &pretrainActs{full: f(d.fullL * d.D), perm: make([]int, P), rank: make([]int, P),
		sMask: make([]bool, d.seqLen), iMask: make([]bool, d.seqLen), mSizes: f(d.seqLen), mIATs: f(d.seqLen),
		e: f((d.keep + 1) * Dd), z: f((P + 1) * Dd), pred: f((P + 1) * d.stride), slog: f(max(d.sizeVocab, 1)),
		dfull: f(d.fullL * d.D), dz: f((P + 1) * Dd), de: f((d.keep + 1) * Dd)}
	a.dec = make([]blockActs, d.decDepth)
	for i := range a.dec {
		a.dec[i] = newBlockActs(m.dec, true)
	}
	return a
}

// byteStart is the first byte-token row (in the full embedding and in the
// encoder sequence: the byte segment is last).
func (m *Model) byteStart() int {
	if m.Layout != nil {
		return m.Layout.ByteStart
	}
	return 0
}

// drawPretrain draws flow i's masks from the generator seeded (Seed, i):
// the byte shuffle, the masked sizes and IATs, then the dropout masks of
// the encoder and decoder blocks.
func (wk *worker) drawPretrain(m *Model, opt TrainOptions, i int) {
	d, a := m.d, wk.pre
	wk.pcg.Seed(opt.Seed, uint64(i))
	for j := range a.perm {
		a.perm[j] = j
	}
	shuffle := func(p []int) {
		for j := len(p) - 1; j > 0; j-- {
			k := wk.rng.IntN(j + 1)
			p[j], p[k] = p[k], p[j]
		}
	}
	shuffle(a.perm)
	for r, p := range a.perm {
		a.rank[p] = r
	}
	// sizes / IATs: a uniform subset of SeqLen − keep masked slots
	pick := func(mask []bool, keep int) {
		for j := range mask {
			mask[j] = false
		}
		// a partial Fisher–Yates shuffle; Normalize bounds SeqLen by 64
		var buf [64]int
		s := buf[:len(mask)]
		for j := range s {
			s[j] = j
		}
		for j := len(s) - 1; j >= keep; j-- {
			k := wk.rng.IntN(j + 1)
			s[j], s[k] = s[k], s[j]
			mask[s[j]] = true
		}
	}
	if d.sizes {
		pick(a.sMask, d.sizeKeep)
	}
	if d.iats {
		pick(a.iMask, d.iatKeep)
	}
	wk.dropout = opt.Dropout
	if opt.Dropout == 0 {
		return
	}
	keepScale := 1 / float32(1-opt.Dropout)
	draw := func(blocks []blockActs) {
		for bi := range blocks {
			for _, mask := range [][]float32{blocks[bi].dropAttn, blocks[bi].dropFF} {
				for j := range mask {
					if wk.rng.Float64() < opt.Dropout {
						mask[j] = 0
					} else {
						mask[j] = keepScale
					}
				}
			}
		}
	}
	draw(wk.acts.blocks)
	draw(a.dec)
}

// ForwardBackwardPretrain runs the pre-training forward and backward of
// b.N flows (masks and dropout drawn from opt.Seed: flow i uses a
// generator seeded (Seed, i), so they do not depend on the thread count),
// returns the batch losses and OVERWRITES g with the gradient of
// Losses.Total. The loss normalisers are fixed by the batch size (every
// flow masks the same numbers of tokens), so each flow's backward runs
// right after its forward. Reproducible for a fixed ws.Threads.
func (m *Model) ForwardBackwardPretrain(b *Batch, opt TrainOptions, g *Params, ws *Workspace) (Losses, error) {
	d := m.d
	nb, sl := d.byteLen, d.seqLen
	switch {
	case !d.pretrain:
		return Losses{}, fmt.Errorf("nettrans: ForwardBackwardPretrain needs a model built with task \"pretrain\"")
	case ws == nil || ws.m != m || !ws.train:
		return Losses{}, fmt.Errorf("nettrans: workspace was not made by this model's NewWorkspace(threads, true)")
	case g == nil || len(g.buf) != len(m.P.buf):
		return Losses{}, fmt.Errorf("nettrans: gradient set was not made by this model's NewGrads")
	case b.N <= 0:
		return Losses{}, fmt.Errorf("nettrans: pre-training batch of %d flows", b.N)
	case len(b.Bytes) < b.N*nb:
		return Losses{}, fmt.Errorf("nettrans: %d input bytes for %d flows of %d", len(b.Bytes), b.N, nb)
	case d.sizes && len(b.Sizes) < b.N*sl:
		return Losses{}, fmt.Errorf("nettrans: %d sizes for %d flows of %d", len(b.Sizes), b.N, sl)
	case d.iats && len(b.IATs) < b.N*sl:
		return Losses{}, fmt.Errorf("nettrans: %d IATs for %d flows of %d", len(b.IATs), b.N, sl)
	case !(opt.Dropout >= 0 && opt.Dropout < 1):
		return Losses{}, fmt.Errorf("nettrans: dropout rate %g outside [0, 1)", opt.Dropout)
	}
	if d.sizes {
		for i, v := range b.Sizes[:b.N*sl] {
			if v != float32(int(v)) || v < 0 || int(v) >= d.sizeVocab {
				return Losses{}, fmt.Errorf("nettrans: size id %g of flow %d (slot %d) is not an integer in [0, %d)", v, i/sl, i%sl, d.sizeVocab)
			}
		}
	}
	if cap(ws.losses) < 3*b.N {
		ws.losses = make([]float64, 3*b.N)
	}
	losses := ws.losses[:3*b.N]
	for _, wk := range ws.workers {
		wk.grad.Zero()
		wk.held = -1
	}
	norm := [3]float64{1 / float64(b.N*(d.patches-d.keep))}
	if d.sizes {
		norm[1] = 1 / float64(b.N*(sl-d.sizeKeep))
	}
	if d.iats {
		norm[2] = 1 / float64(b.N*(sl-d.iatKeep))
	}
	ws.Pool.For(b.N, len(ws.workers), func(w, i int) {
		wk := ws.workers[w]
		in := m.flowInput(b, i)
		wk.drawPretrain(m, opt, i)
		m.pretrainFlow(in, wk, norm, wk.grad)
		copy(losses[3*i:3*i+3], wk.pre.loss[:])
	})
	g.Zero()
	for _, wk := range ws.workers {
		g.addFrom(wk.grad)
	}
	var l Losses
	for i := 0; i < b.N; i++ {
		l.Bytes += losses[3*i]
		l.Sizes += losses[3*i+1]
		l.IATs += losses[3*i+2]
	}
	l.Bytes *= norm[0]
	l.Sizes *= norm[1]
	l.IATs *= norm[2]
	l.Total = l.Bytes + l.Sizes + l.IATs
	return l, nil
}

// pretrainFlow runs one flow's pre-training forward and backward with the
// masks already drawn, accumulating into g the gradient of Σ_k norm[k]·
// loss_k and leaving the flow's unnormalised loss sums in wk.pre.loss.
func (m *Model) pretrainFlow(in multimodal.Input, wk *worker, norm [3]float64, g *Params) {
	d, p, a, acts, bw := m.d, m.P, wk.pre, wk.acts, wk.bw
	L, D, P, Dd, S, st := d.L, d.D, d.patches, d.decD, d.seqLen, d.stride
	bs, keep := m.byteStart(), d.keep
	sizes, iats := in.Sizes, in.IATs // unmasked: the targets
	// embedding of every position, sizes / IATs masked first
	if d.fuse3 {
		if d.sizes {
			for t := range S {
				a.mSizes[t] = sizes[t]
				if a.sMask[t] {
					a.mSizes[t] = multimodal.MaskID
				}
			}
			in.Sizes = a.mSizes
		}
		if d.iats {
			for t := range S {
				a.mIATs[t] = iats[t]
				if a.iMask[t] {
					a.mIATs[t] = 0
				}
			}
			in.IATs = a.mIATs
		}
		if err := m.Layout.Forward(a.full, &p.Embed, in); err != nil {
			panic("nettrans: " + err.Error()) // unreachable: the batch was checked
		}
	} else {
		m.bytesEmbedForward(a.full, in.Bytes)
	}
	// encoder input: leading segments, visible bytes in shuffle order, CLS
	x := acts.embed
	copy(x[:bs*D], a.full[:bs*D])
	for r := 0; r < keep; r++ {
		src := (bs + a.perm[r]) * D
		copy(x[(bs+r)*D:(bs+r+1)*D], a.full[src:src+D])
	}
	copy(x[(bs+keep)*D:(bs+keep+1)*D], a.full[(bs+P)*D:(bs+P+1)*D])
	for i := range p.Blocks {
		blockForward(m.enc, &p.Blocks[i], x, &acts.blocks[i], wk, nil)
		x = acts.blocks[i].out
	}
	h := acts.normOut
	kernels.LayerNormForward(h, acts.normMean, acts.normRstd, x, p.NormW, p.NormB, L, D, finalEps)

	// byte decoder forward
	hb := h[bs*D : (bs+keep+1)*D]
	fillRows(a.e, p.DecEmbedB, keep+1, Dd)
	wk.gemm(false, true, keep+1, Dd, D, hb, D, p.DecEmbedW, D, 1, a.e, Dd)
	for q := 0; q < P; q++ {
		row := a.z[q*Dd : (q+1)*Dd]
		if r := a.rank[q]; r < keep {
			copy(row, a.e[r*Dd:(r+1)*Dd])
		} else {
			copy(row, p.MaskToken)
		}
	}
	copy(a.z[P*Dd:], a.e[keep*Dd:(keep+1)*Dd])
	for j, v := range p.DecPosEmbed[:(P+1)*Dd] {
		a.z[j] += v
	}
	y := a.z
	for i := range p.DecBlocks {
		blockForward(m.dec, &p.DecBlocks[i], y, &a.dec[i], wk, nil)
		y = a.dec[i].out
	}
	fillRows(a.pred, p.DecPredB, P+1, st)
	wk.gemm(false, true, P+1, st, Dd, y, Dd, p.DecPredW, Dd, 1, a.pred, st)

	// byte loss and d pred (masked patches; the CLS row gets none)
	a.loss = [3]float64{}
	cb := 2 / float64(st) * norm[0]
	for q := 0; q < P; q++ {
		pr := a.pred[q*st : (q+1)*st]
		if a.rank[q] < keep {
			clear(pr)
			continue
		}
		var s float64
		for j := range pr {
			diff := float64(pr[j]) - float64(in.Bytes[q*st+j])
			s += diff * diff
			pr[j] = float32(cb * diff) // pred is dead: reuse it for d pred
		}
		a.loss[0] += s / float64(st)
	}
	clear(a.pred[P*st:])
	dpred := a.pred

	// byte decoder backward
	colSum(g.DecPredB, dpred, P+1, st)
	wk.gemm(true, false, st, Dd, P+1, dpred, st, y, Dd, 1, g.DecPredW, Dd)
	dy := bw.dx[:(P+1)*Dd]
	wk.gemm(false, false, P+1, Dd, st, dpred, st, p.DecPredW, Dd, 0, dy, Dd)
	for i := len(p.DecBlocks) - 1; i >= 0; i-- {
		xin := a.z
		if i > 0 {
			xin = a.dec[i-1].out
		}
		blockBackward(m.dec, &p.DecBlocks[i], &g.DecBlocks[i], xin, &a.dec[i], dy, wk, nil)
	}
	// dy is now d z
	for j, v := range dy {
		g.DecPosEmbed[j] += v
	}
	for q := 0; q < P; q++ {
		row := dy[q*Dd : (q+1)*Dd]
		if r := a.rank[q]; r < keep {
			copy(a.de[r*Dd:(r+1)*Dd], row)
		} else {
			for c, v := range row {
				g.MaskToken[c] += v
			}
		}
	}
	copy(a.de[keep*Dd:], dy[P*Dd:(P+1)*Dd])
	dn := bw.dn[:L*D]
	clear(dn)
	colSum(g.DecEmbedB, a.de, keep+1, Dd)
	wk.gemm(true, false, Dd, D, keep+1, a.de, Dd, hb, D, 1, g.DecEmbedW, D)
	wk.gemm(false, false, keep+1, D, Dd, a.de, Dd, p.DecEmbedW, D, 0, dn[bs*D:], D)

	// size and IAT heads on the masked slots
	if d.sizes && p.SizePredW != nil {
		V, s0 := d.sizeVocab, m.Layout.SizeStart
		for t := range S {
			if !a.sMask[t] {
				continue
			}
			hr := h[(s0+t)*D : (s0+t+1)*D]
			dh := dn[(s0+t)*D : (s0+t+1)*D]
			for c := range V {
				w := p.SizePredW[c*D : (c+1)*D]
				s := p.SizePredB[c]
				for j, v := range hr {
					s += w[j] * v
				}
				a.slog[c] = s
			}
			a.loss[1] += crossEntropy(a.slog[:V], int(sizes[t]), 0, a.slog[:V])
			for c := range V {
				gl := float32(float64(a.slog[c]) * norm[1])
				w := p.SizePredW[c*D : (c+1)*D]
				gw := g.SizePredW[c*D : (c+1)*D]
				g.SizePredB[c] += gl
				for j, v := range hr {
					gw[j] += gl * v
					dh[j] += gl * w[j]
				}
			}
		}
	}
	if d.iats && p.IATPredW != nil {
		i0 := m.Layout.IATStart
		for t := range S {
			if !a.iMask[t] {
				continue
			}
			hr := h[(i0+t)*D : (i0+t+1)*D]
			dh := dn[(i0+t)*D : (i0+t+1)*D]
			s := p.IATPredB[0]
			for j, v := range hr {
				s += p.IATPredW[j] * v
			}
			diff := float64(s) - float64(iats[t])
			a.loss[2] += diff * diff
			gl := float32(2 * diff * norm[2])
			g.IATPredB[0] += gl
			for j, v := range hr {
				g.IATPredW[j] += gl * v
				dh[j] += gl * p.IATPredW[j]
			}
		}
	}

	// encoder backward
	dx := bw.dx[:L*D]
	clear(dx)
	kernels.LayerNormBackward(dx, g.NormW, g.NormB, dn, x, acts.normMean, acts.normRstd, p.NormW, L, D)
	for i := d.depth - 1; i >= 0; i-- {
		xin := acts.embed
		if i > 0 {
			xin = acts.blocks[i-1].out
		}
		blockBackward(m.enc, &p.Blocks[i], &g.Blocks[i], xin, &acts.blocks[i], dx, wk, nil)
	}
	// scatter to the full embedding (masked byte tokens get 0)
	df := a.dfull
	clear(df)
	copy(df[:bs*D], dx[:bs*D])
	for r := 0; r < keep; r++ {
		dst := (bs + a.perm[r]) * D
		copy(df[dst:dst+D], dx[(bs+r)*D:(bs+r+1)*D])
	}
	copy(df[(bs+P)*D:(bs+P+1)*D], dx[(bs+keep)*D:(bs+keep+1)*D])
	if d.fuse3 {
		m.Layout.Backward(&g.Embed, df, in)
	} else {
		m.bytesEmbedBackward(g, df, in.Bytes)
	}
}
