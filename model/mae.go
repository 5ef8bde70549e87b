package model

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/netmamba/netmamba/kernels"
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
	T, K, E, Dd, S, nb := m.Tokens, m.Kept(), m.Cfg.EmbedDim, m.Cfg.DecoderEmbedDim, m.Cfg.Stride, m.Cfg.ByteLength
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
	kernels.ParallelFor(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		mf, s := f.mae, wk.mae
		xi := ws.x[i*nb : (i+1)*nb]
		// Masking: ids_shuffle = argsort(noise) (ascending), keep the first K.
		nz := noise[i*T : (i+1)*T]
		for j := range s.order {
			s.order[j] = j
		}
		slices.SortStableFunc(s.order, func(a, b int) int { return cmp.Compare(nz[a], nz[b]) })
		for r, j := range s.order {
			mf.restore[j] = r
			if r < K {
				mf.keep[r] = j
			}
		}
		// Encoder input: visible tokens in noise order, CLS last (only
		// these are embedded).
		for r, j := range mf.keep {
			m.embedToken(xi, j, s.encIn[r*E:(r+1)*E])
		}
		m.embedToken(xi, T, s.encIn[K*E:(K+1)*E])
		f.applyDropout(s.encIn, opt.DropRate, seeds[i])
		enc.forward(K+1, s.encIn, f.encScale, mf.enc, wk.enc, 0)
		// decoder_embed (K+1, Dd)
		kernels.Gemm(false, true, K+1, Dd, E, mf.enc.Out, E, m.P.DecEmbedW, E, 0, s.dEmb, Dd)
		for r := 0; r <= K; r++ {
			row := s.dEmb[r*Dd : (r+1)*Dd]
			for e := range row {
				row[e] += m.P.DecEmbedB[e]
			}
		}
		// Un-shuffle with mask tokens, CLS last, + decoder_pos_embed.
		for j := 0; j <= T; j++ {
			src := m.P.MaskToken
			if j == T {
				src = s.dEmb[K*Dd : (K+1)*Dd]
			} else if r := mf.restore[j]; r < K {
				src = s.dEmb[r*Dd : (r+1)*Dd]
			}
			row := s.decIn[j*Dd : (j+1)*Dd]
			pos := m.P.DecPosEmbed[j*Dd : (j+1)*Dd]
			for e := range row {
				row[e] = src[e] + pos[e]
			}
		}
		dec.forward(T+1, s.decIn, mf.decScale, mf.dec, wk.dec, 0)
		// decoder_pred on the byte tokens (CLS dropped).
		kernels.Gemm(false, true, T, S, Dd, mf.dec.Out, Dd, m.P.DecPredW, Dd, 0, mf.pred, S)
		var sum float64
		for j := 0; j < T; j++ {
			row := mf.pred[j*S : (j+1)*S]
			var se float32
			for k := range row {
				row[k] += m.P.DecPredB[k]
				d := row[k] - xi[j*S+k]
				se += d * d
			}
			if mf.restore[j] >= K {
				sum += float64(se / float32(S))
			}
		}
		sums[i] = sum
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
	T, K, E, Dd, S, nb, B := m.Tokens, m.Kept(), m.Cfg.EmbedDim, m.Cfg.DecoderEmbedDim, m.Cfg.Stride, m.Cfg.ByteLength, ws.n
	enc, dec := ws.trainStacks(m)
	nw := min(ws.Threads, B)
	for w := 0; w < nw; w++ {
		ws.workers[w].grad.Zero()
	}
	norm := 2 / float32(S) / float32(B*(T-K))
	kernels.ParallelFor(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		mf, s, gp := f.mae, wk.mae, wk.grad
		xi := ws.x[i*nb : (i+1)*nb]
		// dpred → decoder_pred grads and d decoder output.
		clear(s.dDec)
		for j := 0; j < T; j++ {
			if mf.restore[j] < K {
				continue
			}
			h := mf.dec.Out[j*Dd : (j+1)*Dd]
			dh := s.dDec[j*Dd : (j+1)*Dd]
			for k := 0; k < S; k++ {
				dp := norm * (mf.pred[j*S+k] - xi[j*S+k])
				gp.DecPredB[k] += dp
				wr := m.P.DecPredW[k*Dd : (k+1)*Dd]
				gw := gp.DecPredW[k*Dd : (k+1)*Dd]
				for e := range dh {
					gw[e] += dp * h[e]
					dh[e] += dp * wr[e]
				}
			}
		}
		dec.backward(T+1, mf.decScale, mf.dec, s.dDec, m.decoder(gp), wk.dec, s.dDec)
		// Decoder input: pos embed, mask token, un-shuffle.
		clear(s.dEmb)
		for j := 0; j <= T; j++ {
			row := s.dDec[j*Dd : (j+1)*Dd]
			pos := gp.DecPosEmbed[j*Dd : (j+1)*Dd]
			for e, v := range row {
				pos[e] += v
			}
			var dst []float32
			if j == T {
				dst = s.dEmb[K*Dd : (K+1)*Dd]
			} else if r := mf.restore[j]; r < K {
				dst = s.dEmb[r*Dd : (r+1)*Dd]
			} else {
				dst = gp.MaskToken
			}
			for e, v := range row {
				dst[e] += v
			}
		}
		// decoder_embed: dW += dEmbᵀ·encOut, db, dEncOut = dEmb·W.
		kernels.Gemm(true, false, Dd, E, K+1, s.dEmb, Dd, mf.enc.Out, E, 1, gp.DecEmbedW, E)
		for r := 0; r <= K; r++ {
			for e, v := range s.dEmb[r*Dd : (r+1)*Dd] {
				gp.DecEmbedB[e] += v
			}
		}
		kernels.Gemm(false, false, K+1, E, Dd, s.dEmb, Dd, m.P.DecEmbedW, E, 0, s.dEnc, E)
		enc.backward(K+1, f.encScale, mf.enc, s.dEnc, m.encoder(gp), wk.enc, s.dEncIn)
		if len(f.dropMask) > 0 {
			for j, v := range f.dropMask {
				s.dEncIn[j] *= v
			}
		}
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
