package model

import (
	"cmp"
	"fmt"
	"slices"
)

// MAE pre-training (official net_mamba_pretrain): per flow, keep
// K = int(T·(1−mask_ratio)) of the T byte tokens (the K smallest of a
// uniform noise vector), encode them + CLS (appended last), embed into the
// decoder width, restore the masked positions with mask_token, add
// decoder_pos_embed, decode, and predict the stride bytes of every token.
// loss = mean over masked tokens of the mean squared error over the stride.

// Kept returns K, the number of visible byte tokens per flow.
func (m *Model) Kept() int { return int(float64(m.Tokens) * (1 - m.Cfg.MaskRatio)) }

// maeFlow is one flow's saved MAE state.
type maeFlow struct {
	keep     []int // (K) kept token ids, in noise order
	restore  []int // (T) rank of each token in the noise order (< K: kept)
	enc      *stackActs
	dec      *stackActs
	decScale []float32
	pred     []float32 // (T, stride)
}

func newMAEFlow(m *Model) *maeFlow {
	T, K := m.Tokens, m.Kept()
	return &maeFlow{
		keep: make([]int, K), restore: make([]int, T),
		enc:      newStackActs(encoderDims(m.Cfg), m.Cfg.Depth, K+1, true),
		dec:      newStackActs(decoderDims(m.Cfg), m.Cfg.DecoderDepth, T+1, true),
		decScale: make([]float32, m.Cfg.DecoderDepth),
		pred:     make([]float32, T*m.Cfg.Stride),
	}
}

// maeScratch is one worker's MAE buffers.
type maeScratch struct {
	order  []int
	encIn  []float32 // (K+1, E)
	dEmb   []float32 // (K+1, Dd) decoder_embed output, then its gradient
	decIn  []float32 // (T+1, Dd)
	dDec   []float32 // (T+1, Dd) gradient of the decoder output, then input
	dEnc   []float32 // (K+1, E)
	dEncIn []float32 // (K+1, E)
}

func newMAEScratch(m *Model, train bool) *maeScratch {
	T, K, E, Dd := m.Tokens, m.Kept(), m.Cfg.EmbedDim, m.Cfg.DecoderEmbedDim
	s := &maeScratch{order: make([]int, T), encIn: make([]float32, (K+1)*E), dEmb: make([]float32, (K+1)*Dd), decIn: make([]float32, (T+1)*Dd)}
	if train {
		s.dDec = make([]float32, (T+1)*Dd)
		s.dEnc = make([]float32, (K+1)*E)
		s.dEncIn = make([]float32, (K+1)*E)
	}
	return s
}

// ForwardMAE runs the MAE on B flows: x (B, ByteLength) normalised
// inputs; noise (B, Tokens) the masking noise (ids_keep = argsort(noise)[:K],
// as torch.rand in the official random_masking), or nil to draw it from
// opt.Rand. It returns the loss and, if pred is non-nil, writes the
// predictions (B, Tokens, Stride). The workspace must be a training one;
// BackwardMAE may follow.
func (m *Model) ForwardMAE(x, noise []float32, B int, ws *Workspace, opt TrainOptions, pred []float32) (float32, error) {
	T, K, E, S, nb := m.Tokens, m.Kept(), m.Cfg.EmbedDim, m.Cfg.Stride, m.Cfg.ByteLength
	switch {
	case m.Cfg.Task != "pretrain":
		return 0, fmt.Errorf("model: ForwardMAE needs a pretrain model, task is %q", m.Cfg.Task)
	case !ws.train:
		return 0, fmt.Errorf("model: ForwardMAE needs a training workspace")
	case B < 1 || B > ws.Batch:
		return 0, fmt.Errorf("model: batch %d outside the workspace's [1, %d]", B, ws.Batch)
	case len(x) < B*nb:
		return 0, fmt.Errorf("model: input has %d values, want %d×%d", len(x), B, nb)
	case noise != nil && len(noise) < B*T:
		return 0, fmt.Errorf("model: noise has %d values, want %d×%d", len(noise), B, T)
	case noise == nil && opt.Rand == nil:
		return 0, fmt.Errorf("model: ForwardMAE without noise needs TrainOptions.Rand")
	case pred != nil && len(pred) < B*T*S:
		return 0, fmt.Errorf("model: pred has %d values, want %d×%d×%d", len(pred), B, T, S)
	}
	seeds, err := ws.drawTrain(m.Cfg.Depth, B, opt)
	if err != nil {
		return 0, err
	}
	decRates := DropPathRates(m.Cfg.DecoderDepth, opt.DropPath)
	if noise == nil {
		if len(ws.noise) < B*T {
			ws.noise = make([]float32, ws.Batch*T)
		}
		noise = ws.noise[:B*T]
		for i := range noise {
			noise[i] = opt.Rand.Float32()
		}
	}
	for i := 0; i < B; i++ {
		for l := range ws.flows[i].mae.decScale {
			ws.flows[i].mae.decScale[l] = dropScale(decRates[l], opt.Rand)
		}
	}
	ws.n, ws.mae = B, true
	copy(ws.x, x[:B*nb])
	enc, dec := ws.trainStacks(m)
	if len(ws.sums) < B {
		ws.sums = make([]float64, ws.Batch)
	}
	sums := ws.sums[:B]
	md := m.maeDecoder()
	ws.Pool.For(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		mf, s := f.mae, wk.mae
		xi := ws.x[i*nb : (i+1)*nb]
		// Masking: ids_shuffle = argsort(noise) (ascending), keep the first K.
		nz := noise[i*T : (i+1)*T]
		for j := range s.order {
			s.order[j] = j
		}
		slices.SortStableFunc(s.order, func(a, b int) int { return cmp.Compare(nz[a], nz[b]) })
		splitByRank(s.order, mf.keep, mf.restore)
		// Encoder input: visible tokens in noise order, CLS last (only
		// these are embedded).
		for r, j := range mf.keep {
			m.embedToken(xi, j, s.encIn[r*E:(r+1)*E])
		}
		m.embedToken(xi, T, s.encIn[K*E:(K+1)*E])
		f.dropMask.apply(s.encIn, opt.DropRate, seeds[i])
		enc.forward(K+1, s.encIn, f.encScale, mf.enc, wk.enc, 0)
		// Decoder: embed + un-shuffle, decode, decoder_pred + loss on
		// the byte tokens (CLS dropped).
		md.input(mf.restore, mf.enc.Out, s.dEmb, s.decIn)
		dec.forward(T+1, s.decIn, mf.decScale, mf.dec, wk.dec, 0)
		sums[i] = md.predict(mf.restore, mf.dec.Out, xi, mf.pred)
	})
	var total float64
	for i := 0; i < B; i++ {
		total += sums[i]
		if pred != nil {
			copy(pred[i*T*S:(i+1)*T*S], ws.flows[i].mae.pred)
		}
	}
	return float32(total / float64(B*(T-K))), nil
}

// BackwardMAE back-propagates the loss of the last ForwardMAE (d loss = 1)
// and accumulates (+=) the parameter gradients into g.
func (m *Model) BackwardMAE(ws *Workspace, g *Params) error {
	if !ws.train || !ws.mae {
		return fmt.Errorf("model: BackwardMAE needs a ForwardMAE on this workspace first")
	}
	T, K, E, S, nb, B := m.Tokens, m.Kept(), m.Cfg.EmbedDim, m.Cfg.Stride, m.Cfg.ByteLength, ws.n
	enc, dec := ws.trainStacks(m)
	nw := min(ws.Threads, B)
	for w := 0; w < nw; w++ {
		ws.workers[w].grad.Zero()
	}
	norm := 2 / float32(S) / float32(B*(T-K))
	md := m.maeDecoder()
	ws.Pool.For(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		mf, s, gp := f.mae, wk.mae, wk.grad
		xi := ws.x[i*nb : (i+1)*nb]
		// decoder_pred (masked tokens only), the decoder, then its input
		// back to the encoder output.
		gd := gp.maeDec()
		md.predictBackward(mf.restore, mf.dec.Out, xi, mf.pred, norm, gd, s.dDec)
		dec.backward(T+1, mf.decScale, mf.dec, s.dDec, m.decoder(gp), wk.dec, s.dDec)
		md.inputBackward(mf.restore, mf.enc.Out, s.dDec, gd, s.dEmb, s.dEnc)
		enc.backward(K+1, f.encScale, mf.enc, s.dEnc, m.encoder(gp), wk.enc, s.dEncIn)
		f.dropMask.backward(s.dEncIn)
		// Back through the embedding of the visible tokens and CLS, in
		// token order (masked tokens have no gradient).
		for j := 0; j <= T; j++ {
			r := K
			if j < T {
				if r = mf.restore[j]; r >= K {
					continue
				}
			}
			m.embedTokenBackward(xi, j, s.dEncIn[r*E:(r+1)*E], gp)
		}
	})
	for w := 0; w < nw; w++ {
		g.addFrom(ws.workers[w].grad)
	}
	return nil
}
