package model

import (
	"fmt"
	"math"
	"sort"

	"github.com/netmamba/netmamba/kernels"
)

// fuse3 multimodal pre-training (official fuse3_mamba_pretrain). Per flow:
//
//	bytes: keep K = int(T·(1−mask_ratio)) of the T byte tokens (the K
//	       smallest of a uniform noise), after adding pos_embed and
//	       byte_indicator; the byte CLS is appended after them.
//	sizes: the Ms = SeqLen − int(SeqLen·0.85) positions with the largest
//	       noise (padded slots included) read the MASK id.
//	iats:  likewise Ms positions read 0.
//
// Encoder input (82 tokens officially): [size 20 + CLS][iat 20 + CLS]
// [K visible byte tokens in noise order + byte CLS]. Then
//
//	byte loss = mean over masked strides of mean-over-stride (pred − x)²,
//	            pred from the NetMamba MAE decoder on the byte rows;
//	size loss = mean over masked size rows (all flows) of the
//	            cross-entropy of size_decoder_pred(h) against the original id;
//	iat loss  = mean over masked IAT rows of (iat_decoder_pred(h) − t)²;
//	total     = byte + size + iat (unweighted).
//
// h are the encoder's final-norm outputs. Dropped modalities contribute
// no tokens and no loss.

// Kept returns K, the number of visible byte tokens per flow.
func (m *Fuse3) Kept() int { return int(float64(m.Tokens) * (1 - m.Cfg.MaskRatio)) }

// SeqMasked returns Ms, the number of masked size (and IAT) positions per
// flow: SeqLen − int(SeqLen·(1 − Fuse3SeqMaskRatio)) (3 of 20).
func (m *Fuse3) SeqMasked() int {
	r := Fuse3SeqMaskRatio
	return m.Cfg.SeqLen - int(float64(m.Cfg.SeqLen)*(1-r))
}

// preEncTokens is the pre-training encoder's sequence length.
func (m *Fuse3) preEncTokens() int { return m.Layout.ByteStart + m.Kept() + 1 }

// Fuse3Noise is the masking noise of a pre-training forward (uniform in
// [0, 1) as torch.rand; the largest values are masked). A nil slice is
// drawn from TrainOptions.Rand.
type Fuse3Noise struct {
	Bytes []float32 // (N, Tokens)
	Sizes []float32 // (N, SeqLen)
	IATs  []float32 // (N, SeqLen)
}

// Fuse3Losses are the pre-training losses of one batch.
type Fuse3Losses struct {
	Total float32 // Bytes + Sizes + IATs
	Bytes float32 // byte MAE: mean squared error over masked strides
	Sizes float32 // size cross-entropy over masked positions (0 without sizes)
	IATs  float32 // IAT squared error over masked positions (0 without iats)
}

// fuse3PreFlow is one flow's saved pre-training state.
type fuse3PreFlow struct {
	keep     []int // (K) kept byte token ids, in noise order
	restore  []int // (T) rank of each byte token in the noise order (< K: kept)
	sizeMask []int // (Ms) masked size positions
	iatMask  []int // (Ms) masked IAT positions
	sizes    []float32
	iats     []float32 // (SeqLen) masked model inputs
	dec      *stackActs
	decScale []float32
	pred     []float32 // (T, stride) byte predictions
	sizeP    []float32 // (Ms, vocab) softmax of the size logits
	sizeY    []int     // (Ms) targets
	iatPred  []float32 // (Ms)
	iatY     []float32 // (Ms)
}

func (m *Fuse3) newPreFlow() *fuse3PreFlow {
	T, Ms, sl := m.Tokens, m.SeqMasked(), m.Cfg.SeqLen
	return &fuse3PreFlow{
		keep: make([]int, m.Kept()), restore: make([]int, T),
		sizeMask: make([]int, Ms), iatMask: make([]int, Ms),
		sizes: make([]float32, sl), iats: make([]float32, sl),
		dec:      newStackActs(decoderDims(m.Cfg), m.Cfg.DecoderDepth, T+1, true),
		decScale: make([]float32, m.Cfg.DecoderDepth),
		pred:     make([]float32, T*m.Cfg.Stride),
		sizeP:    make([]float32, Ms*m.Opt.SizeVocab()), sizeY: make([]int, Ms),
		iatPred: make([]float32, Ms), iatY: make([]float32, Ms),
	}
}

// fuse3PreScratch is one worker's pre-training buffers.
type fuse3PreScratch struct {
	dec    *stackScratch
	order  []int
	sorder []int
	encIn  []float32 // (Lenc, E)
	dEmb   []float32 // (K+1, Dd) decoder_embed output, then its gradient
	decIn  []float32 // (T+1, Dd)
	dDec   []float32 // (T+1, Dd)
	dEncIn []float32 // (Lenc, E)
	hs     []float32 // (Ms, E) encoder outputs at masked size rows
	dhs    []float32 // (Ms, E)
	dls    []float32 // (Ms, vocab) size logits gradient
}

func (m *Fuse3) newPreScratch(train bool) *fuse3PreScratch {
	T, K, E, Dd, Ms := m.Tokens, m.Kept(), m.Cfg.EmbedDim, m.Cfg.DecoderEmbedDim, m.SeqMasked()
	Lenc := m.preEncTokens()
	s := &fuse3PreScratch{dec: newStackScratch(decoderDims(m.Cfg), T+1, train), order: make([]int, T), sorder: make([]int, m.Cfg.SeqLen),
		encIn: make([]float32, Lenc*E), dEmb: make([]float32, (K+1)*Dd), decIn: make([]float32, (T+1)*Dd),
		hs: make([]float32, Ms*E), dhs: make([]float32, Ms*E)}
	if train {
		s.dDec = make([]float32, (T+1)*Dd)
		s.dEncIn = make([]float32, Lenc*E)
		s.dls = make([]float32, Ms*m.Opt.SizeVocab())
	}
	return s
}

// argsortInto writes argsort(noise) (ascending, stable) into order.
func argsortInto(order []int, noise []float32) {
	for j := range order {
		order[j] = j
	}
	sort.SliceStable(order, func(a, b int) bool { return noise[order[a]] < noise[order[b]] })
}

// maskedPositions writes into dst (len Ms) the positions of the Ms
// largest noise values (rank ≥ n − Ms in argsort order), in position order.
func maskedPositions(dst, order []int, noise []float32) {
	argsortInto(order, noise)
	keep := len(order) - len(dst)
	copy(dst, order[keep:])
	sort.Ints(dst)
}

func (m *Fuse3) checkPretrain(b *Fuse3Batch, noise *Fuse3Noise, ws *Fuse3Workspace, opt TrainOptions) error {
	if m.Cfg.Task != "pretrain" {
		return fmt.Errorf("model: fuse3: pre-training needs a pretrain model, this model's task is %q", m.Cfg.Task)
	}
	if err := m.checkInput(b, ws, true); err != nil {
		return err
	}
	T, sl := m.Tokens, m.Cfg.SeqLen
	var nz Fuse3Noise
	if noise != nil {
		nz = *noise
	}
	switch {
	case b.N < 1:
		return fmt.Errorf("model: fuse3: pre-training batch of %d flows", b.N)
	case nz.Bytes != nil && len(nz.Bytes) < b.N*T:
		return fmt.Errorf("model: fuse3: byte noise has %d values, want %d×%d", len(nz.Bytes), b.N, T)
	case nz.Sizes != nil && len(nz.Sizes) < b.N*sl:
		return fmt.Errorf("model: fuse3: size noise has %d values, want %d×%d", len(nz.Sizes), b.N, sl)
	case nz.IATs != nil && len(nz.IATs) < b.N*sl:
		return fmt.Errorf("model: fuse3: IAT noise has %d values, want %d×%d", len(nz.IATs), b.N, sl)
	case (nz.Bytes == nil || (m.Layout.Sizes && nz.Sizes == nil) || (m.Layout.IATs && nz.IATs == nil)) && opt.Rand == nil:
		return fmt.Errorf("model: fuse3: pre-training without injected noise needs TrainOptions.Rand")
	}
	if m.Layout.Sizes {
		V := m.Opt.SizeVocab()
		for i, v := range b.Sizes[:b.N*sl] {
			if !(v >= 0 && v < float32(V)) || v != float32(int(v)) {
				return fmt.Errorf("model: fuse3: flow %d size %d = %g is not an id in [0, %d)", i/sl, i%sl, v, V)
			}
		}
	}
	return nil
}

// ForwardPretrain runs the multimodal pre-training forward of b.N flows
// (training mode: drop-path and dropout from opt) and returns the losses.
// noise injects the masking noise (nil or nil fields: drawn from
// opt.Rand, bytes then sizes then IATs, flow by flow). BackwardPretrain
// may follow.
func (m *Fuse3) ForwardPretrain(b *Fuse3Batch, noise *Fuse3Noise, ws *Fuse3Workspace, opt TrainOptions) (Fuse3Losses, error) {
	if err := m.checkPretrain(b, noise, ws, opt); err != nil {
		return Fuse3Losses{}, err
	}
	B, T, K, E, sl, Ms := b.N, m.Tokens, m.Kept(), m.Cfg.EmbedDim, m.Cfg.SeqLen, m.SeqMasked()
	V, BS, Lenc := m.Opt.SizeVocab(), m.Layout.ByteStart, m.preEncTokens()
	seeds, err := ws.drawTrain(B, opt)
	if err != nil {
		return Fuse3Losses{}, err
	}
	var nz Fuse3Noise
	if noise != nil {
		nz = *noise
	}
	draw := func(v []float32) []float32 {
		for i := range v {
			v[i] = opt.Rand.Float32()
		}
		return v
	}
	if nz.Bytes == nil {
		nz.Bytes = draw(ws.noise.Bytes[:B*T])
	}
	if m.Layout.Sizes && nz.Sizes == nil {
		nz.Sizes = draw(ws.noise.Sizes[:B*sl])
	}
	if m.Layout.IATs && nz.IATs == nil {
		nz.IATs = draw(ws.noise.IATs[:B*sl])
	}
	decRates := DropPathRates(m.Cfg.DecoderDepth, opt.DropPath)
	for i := 0; i < B; i++ {
		for l := range ws.flows[i].pre.decScale {
			ws.flows[i].pre.decScale[l] = dropScale(decRates[l], opt.Rand)
		}
	}
	ws.copyInput(b)
	ws.n, ws.pre = B, true
	enc, dec := ws.trainStacks(m, true)
	byteSum, sizeSum, iatSum := ws.sums[:B], ws.sums[B:2*B], ws.sums[2*B:3*B]
	clear(ws.sums[:3*B])
	errs := ws.errs[:B]
	md := m.maeDecoder()
	ws.Pool.For(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		pf, s := f.pre, wk.pre
		in := m.flowInput(ws.in, i)
		// Masking.
		argsortInto(s.order, nz.Bytes[i*T:(i+1)*T])
		splitByRank(s.order, pf.keep, pf.restore)
		if m.Layout.Sizes {
			maskedPositions(pf.sizeMask, s.sorder, nz.Sizes[i*sl:(i+1)*sl])
			copy(pf.sizes, in.Sizes)
			for k, j := range pf.sizeMask {
				pf.sizeY[k] = int(in.Sizes[j])
				pf.sizes[j] = float32(m.Opt.MaskID())
			}
			in.Sizes = pf.sizes
		}
		if m.Layout.IATs {
			maskedPositions(pf.iatMask, s.sorder, nz.IATs[i*sl:(i+1)*sl])
			copy(pf.iats, in.IATs)
			for k, j := range pf.iatMask {
				pf.iatY[k] = in.IATs[j]
				pf.iats[j] = 0
			}
			in.IATs = pf.iats
		}
		// Tokens: the full layout, then [sequence segments | visible bytes | byte CLS].
		if errs[i] = m.Layout.Forward(wk.emb, &m.P.Emb, in); errs[i] != nil {
			return
		}
		copy(s.encIn[:BS*E], wk.emb[:BS*E])
		for r, j := range pf.keep {
			copy(s.encIn[(BS+r)*E:(BS+r+1)*E], wk.emb[(BS+j)*E:(BS+j+1)*E])
		}
		copy(s.encIn[(BS+K)*E:(BS+K+1)*E], wk.emb[(BS+T)*E:(BS+T+1)*E])
		f.dropMask.apply(s.encIn[:Lenc*E], opt.DropRate, seeds[i])
		enc.forward(Lenc, s.encIn, f.encScale, f.enc, wk.enc, 0)
		h := f.enc.Out
		// Byte decoder on the byte rows (visible tokens + byte CLS).
		md.input(pf.restore, h[BS*E:], s.dEmb, s.decIn)
		dec.forward(T+1, s.decIn, pf.decScale, pf.dec, s.dec, 0)
		byteSum[i] = md.predict(pf.restore, pf.dec.Out, in.Bytes, pf.pred)
		// Size head at the masked size rows: logits (Ms, V), softmax CE.
		if m.Layout.Sizes {
			for k, j := range pf.sizeMask {
				r := m.Layout.SizeStart + j
				copy(s.hs[k*E:(k+1)*E], h[r*E:(r+1)*E])
			}
			kernels.Gemm(false, true, Ms, V, E, s.hs, E, m.P.SizePredW, E, 0, pf.sizeP, V)
			var ce float64
			for k := 0; k < Ms; k++ {
				row := pf.sizeP[k*V : (k+1)*V]
				mx := float32(math.Inf(-1))
				for c := range row {
					row[c] += m.P.SizePredB[c]
					mx = max(mx, row[c])
				}
				var z float64
				for _, v := range row {
					z += math.Exp(float64(v - mx))
				}
				lse := float64(mx) + math.Log(z)
				ce += lse - float64(row[pf.sizeY[k]])
				for c, v := range row {
					row[c] = float32(math.Exp(float64(v) - lse))
				}
			}
			sizeSum[i] = ce
		}
		// IAT head at the masked IAT rows.
		if m.Layout.IATs {
			var se float64
			for k, j := range pf.iatMask {
				r := m.Layout.IATStart + j
				hr := h[r*E : (r+1)*E]
				v := m.P.IATPredB[0]
				for e, x := range hr {
					v += m.P.IATPredW[e] * x
				}
				pf.iatPred[k] = v
				d := float64(v - pf.iatY[k])
				se += d * d
			}
			iatSum[i] = se
		}
	})
	if err := firstFlowErr(errs); err != nil {
		return Fuse3Losses{}, err
	}
	var lb, ls, li float64
	for i := 0; i < B; i++ {
		lb += byteSum[i]
		ls += sizeSum[i]
		li += iatSum[i]
	}
	var out Fuse3Losses
	out.Bytes = float32(lb / float64(B*(T-K)))
	if m.Layout.Sizes && Ms > 0 {
		out.Sizes = float32(ls / float64(B*Ms))
	}
	if m.Layout.IATs && Ms > 0 {
		out.IATs = float32(li / float64(B*Ms))
	}
	out.Total = out.Bytes + out.Sizes + out.IATs
	return out, nil
}

// BackwardPretrain back-propagates the total loss of the last
// ForwardPretrain (d total = 1) and accumulates (+=) the parameter
// gradients into g.
func (m *Fuse3) BackwardPretrain(ws *Fuse3Workspace, g *Fuse3Params) error {
	if ws == nil || ws.m != m || !ws.train || !ws.pre {
		return fmt.Errorf("model: fuse3: BackwardPretrain needs a ForwardPretrain on this workspace first")
	}
	if g == nil || len(g.Flat()) != len(m.P.Flat()) {
		return fmt.Errorf("model: fuse3: gradient set was not made by this model's NewGrads")
	}
	B, T, K, E, S, Ms := ws.n, m.Tokens, m.Kept(), m.Cfg.EmbedDim, m.Cfg.Stride, m.SeqMasked()
	V, BS, Lenc, L := m.Opt.SizeVocab(), m.Layout.ByteStart, m.preEncTokens(), m.Layout.Tokens
	enc, dec := ws.trainStacks(m, true)
	nw := min(ws.Threads, B)
	for w := 0; w < nw; w++ {
		ws.workers[w].grad.Zero()
	}
	byteNorm := 2 / float32(S) / float32(B*(T-K))
	seqNorm := float32(0)
	if Ms > 0 {
		seqNorm = 1 / float32(B*Ms)
	}
	md := m.maeDecoder()
	ws.Pool.For(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		pf, s, gp := f.pre, wk.pre, wk.grad
		in := m.flowInput(ws.in, i)
		h := f.enc.Out
		dh := wk.dout[:Lenc*E]
		clear(dh)
		// Byte decoder: byte_decoder_pred (masked strides only), the
		// decoder, then byte_decoder_embed into the byte rows of dh.
		gd := gp.maeDec()
		md.predictBackward(pf.restore, pf.dec.Out, in.Bytes, pf.pred, byteNorm, gd, s.dDec)
		dec.backward(T+1, pf.decScale, pf.dec, s.dDec, m.decoder(gp), s.dec, s.dDec)
		md.inputBackward(pf.restore, h[BS*E:], s.dDec, gd, s.dEmb, dh[BS*E:])
		// Size head: dlogits = (softmax − onehot)/(B·Ms).
		if m.Layout.Sizes && Ms > 0 {
			for k, j := range pf.sizeMask {
				r := m.Layout.SizeStart + j
				copy(s.hs[k*E:(k+1)*E], h[r*E:(r+1)*E])
			}
			dl := s.dls
			copy(dl, pf.sizeP)
			for k := 0; k < Ms; k++ {
				row := dl[k*V : (k+1)*V]
				row[pf.sizeY[k]] -= 1
				for c := range row {
					row[c] *= seqNorm
					gp.SizePredB[c] += row[c]
				}
			}
			kernels.Gemm(true, false, V, E, Ms, dl, V, s.hs, E, 1, gp.SizePredW, E)
			kernels.Gemm(false, false, Ms, E, V, dl, V, m.P.SizePredW, E, 0, s.dhs, E)
			for k, j := range pf.sizeMask {
				r := m.Layout.SizeStart + j
				dr := dh[r*E : (r+1)*E]
				for e, v := range s.dhs[k*E : (k+1)*E] {
					dr[e] += v
				}
			}
		}
		// IAT head: d pred = 2(pred − t)/(B·Ms).
		if m.Layout.IATs && Ms > 0 {
			for k, j := range pf.iatMask {
				r := m.Layout.IATStart + j
				dp := 2 * (pf.iatPred[k] - pf.iatY[k]) * seqNorm
				gp.IATPredB[0] += dp
				hr := h[r*E : (r+1)*E]
				dr := dh[r*E : (r+1)*E]
				for e := range dr {
					gp.IATPredW[e] += dp * hr[e]
					dr[e] += dp * m.P.IATPredW[e]
				}
			}
		}
		enc.backward(Lenc, f.encScale, f.enc, dh, m.encoder(gp), wk.enc, s.dEncIn)
		f.dropMask.backward(s.dEncIn)
		// Scatter to the full layout and back through the embedding.
		demb := wk.demb[:L*E]
		clear(demb)
		copy(demb[:BS*E], s.dEncIn[:BS*E])
		for r, j := range pf.keep {
			copy(demb[(BS+j)*E:(BS+j+1)*E], s.dEncIn[(BS+r)*E:(BS+r+1)*E])
		}
		copy(demb[(BS+T)*E:(BS+T+1)*E], s.dEncIn[(BS+K)*E:(BS+K+1)*E])
		if m.Layout.Sizes {
			in.Sizes = pf.sizes
		}
		if m.Layout.IATs {
			in.IATs = pf.iats
		}
		m.Layout.Backward(&wk.gw, demb, in)
	})
	for w := 0; w < nw; w++ {
		g.core.addFrom(&ws.workers[w].grad.core)
	}
	return nil
}
