package model

import "github.com/netmamba/netmamba/kernels"

// The MAE byte decoder's input and output layers, shared by NetMamba MAE
// pre-training (mae.go: decoder_embed, mask_token, decoder_pos_embed,
// decoder_pred) and fuse3 pre-training (fuse3_pretrain.go: the same layers
// under byte_decoder_* names). Per flow, with T byte tokens of which K are
// visible:
//
//	emb   = decoder_embed(enc_out)                  // (K+1, Dd), CLS last
//	dec_in[j] = emb[restore[j]] if kept, else mask_token; dec_in[T] = emb[K]
//	dec_in   += decoder_pos_embed                   // (T+1, Dd)
//	pred  = decoder_pred(dec_out[:T])               // (T, S)
//	loss sum = Σ over masked j of mean_k (pred[j,k] − x[j,k])²

// splitByRank writes, from order (T) = argsort(noise), each token's rank
// into restore (T) and the first K = len(keep) token ids into keep: the
// visible tokens in noise order.
func splitByRank(order, keep, restore []int) {
	K := len(keep)
	for r, j := range order {
		restore[j] = r
		if r < K {
			keep[r] = j
		}
	}
}

// maeDecParams are views of the MAE decoder's input and output layer
// parameters, or of their gradients.
type maeDecParams struct {
	embedW    []float32 // decoder_embed.weight (Dd, E)
	embedB    []float32 // decoder_embed.bias (Dd)
	maskToken []float32 // mask_token (1, 1, Dd)
	posEmbed  []float32 // decoder_pos_embed (1, T+1, Dd)
	predW     []float32 // decoder_pred.weight (S, Dd)
	predB     []float32 // decoder_pred.bias (S)
}

// maeDec returns the MAE decoder views of a NetMamba parameter set.
func (p *Params) maeDec() maeDecParams {
	return maeDecParams{p.DecEmbedW, p.DecEmbedB, p.MaskToken, p.DecPosEmbed, p.DecPredW, p.DecPredB}
}

// maeDec returns the byte decoder views of a fuse3 parameter set.
func (p *Fuse3Params) maeDec() maeDecParams {
	return maeDecParams{p.DecEmbedW, p.DecEmbedB, p.MaskToken, p.DecPosEmbed, p.DecPredW, p.DecPredB}
}

// maeDecoder is the MAE decoder's input and output layers over one set of
// weights, with its sizes: T byte tokens, K visible, encoder width E,
// decoder width Dd, stride S.
type maeDecoder struct {
	T, K, E, Dd, S int
	w              maeDecParams
}

// maeDecoder returns the MAE decoder layers over m's weights.
func (m *Model) maeDecoder() *maeDecoder {
	return &maeDecoder{T: m.Tokens, K: m.Kept(), E: m.Cfg.EmbedDim, Dd: m.Cfg.DecoderEmbedDim, S: m.Cfg.Stride, w: m.P.maeDec()}
}

// maeDecoder returns the byte decoder layers over m's weights.
func (m *Fuse3) maeDecoder() *maeDecoder {
	return &maeDecoder{T: m.Tokens, K: m.Kept(), E: m.Cfg.EmbedDim, Dd: m.Cfg.DecoderEmbedDim, S: m.Cfg.Stride, w: m.P.maeDec()}
}

// input writes the decoder input decIn (T+1, Dd) from the encoder output
// rows encOut (K+1, E) of the visible tokens in noise order, CLS last.
// restore (T) is each token's rank in the noise order (< K: kept); emb
// (K+1, Dd) receives the decoder_embed output.
func (d *maeDecoder) input(restore []int, encOut, emb, decIn []float32) {
	T, K, E, Dd := d.T, d.K, d.E, d.Dd
	// decoder_embed (K+1, Dd)
	kernels.Gemm(false, true, K+1, Dd, E, encOut, E, d.w.embedW, E, 0, emb, Dd)
	for r := 0; r <= K; r++ {
		row := emb[r*Dd : (r+1)*Dd]
		for e := range row {
			row[e] += d.w.embedB[e]
		}
	}
	// Un-shuffle with mask tokens, CLS last, + decoder_pos_embed.
	for j := 0; j <= T; j++ {
		src := d.w.maskToken
		if j == T {
			src = emb[K*Dd : (K+1)*Dd]
		} else if r := restore[j]; r < K {
			src = emb[r*Dd : (r+1)*Dd]
		}
		row := decIn[j*Dd : (j+1)*Dd]
		pos := d.w.posEmbed[j*Dd : (j+1)*Dd]
		for e := range row {
			row[e] = src[e] + pos[e]
		}
	}
}

// inputBackward back-propagates dDec (T+1, Dd), the gradient of the
// decoder input, through input: it accumulates (+=) the gradients of
// decoder_pos_embed, mask_token and decoder_embed into g, uses dEmb
// (K+1, Dd) as scratch and writes (=) the encoder output gradient dEncOut
// (K+1, E). encOut (K+1, E) is the forward's encoder output.
func (d *maeDecoder) inputBackward(restore []int, encOut, dDec []float32, g maeDecParams, dEmb, dEncOut []float32) {
	T, K, E, Dd := d.T, d.K, d.E, d.Dd
	// Decoder input: pos embed, mask token, un-shuffle.
	clear(dEmb[:(K+1)*Dd])
	for j := 0; j <= T; j++ {
		row := dDec[j*Dd : (j+1)*Dd]
		pos := g.posEmbed[j*Dd : (j+1)*Dd]
		for e, v := range row {
			pos[e] += v
		}
		var dst []float32
		if j == T {
			dst = dEmb[K*Dd : (K+1)*Dd]
		} else if r := restore[j]; r < K {
			dst = dEmb[r*Dd : (r+1)*Dd]
		} else {
			dst = g.maskToken
		}
		for e, v := range row {
			dst[e] += v
		}
	}
	// decoder_embed: dW += dEmbᵀ·encOut, db, dEncOut = dEmb·W.
	kernels.Gemm(true, false, Dd, E, K+1, dEmb, Dd, encOut, E, 1, g.embedW, E)
	for r := 0; r <= K; r++ {
		for e, v := range dEmb[r*Dd : (r+1)*Dd] {
			g.embedB[e] += v
		}
	}
	kernels.Gemm(false, false, K+1, E, Dd, dEmb, Dd, d.w.embedW, E, 0, dEncOut, E)
}

// predict writes pred (T, S) = decoder_pred of the byte rows of the
// decoder output decOut (T+1, Dd) (CLS dropped) and returns the sum over
// masked tokens (restore[j] >= K) of the mean squared error against the
// target strides x (T·S).
func (d *maeDecoder) predict(restore []int, decOut, x, pred []float32) float64 {
	T, K, Dd, S := d.T, d.K, d.Dd, d.S
	kernels.Gemm(false, true, T, S, Dd, decOut, Dd, d.w.predW, Dd, 0, pred, S)
	var sum float64
	for j := 0; j < T; j++ {
		row := pred[j*S : (j+1)*S]
		var se float32
		for k := range row {
			row[k] += d.w.predB[k]
			diff := row[k] - x[j*S+k]
			se += diff * diff
		}
		if restore[j] >= K {
			sum += float64(se / float32(S))
		}
	}
	return sum
}

// predictBackward back-propagates norm·Σ (pred − x)² over the masked
// tokens through predict: it accumulates (+=) the decoder_pred gradients
// into g and writes (=) the decoder output gradient dDec (T+1, Dd), zero
// on kept tokens and CLS.
func (d *maeDecoder) predictBackward(restore []int, decOut, x, pred []float32, norm float32, g maeDecParams, dDec []float32) {
	T, K, Dd, S := d.T, d.K, d.Dd, d.S
	clear(dDec[:(T+1)*Dd])
	for j := 0; j < T; j++ {
		if restore[j] < K {
			continue
		}
		h := decOut[j*Dd : (j+1)*Dd]
		dh := dDec[j*Dd : (j+1)*Dd]
		for k := 0; k < S; k++ {
			dp := norm * (pred[j*S+k] - x[j*S+k])
			g.predB[k] += dp
			wr := d.w.predW[k*Dd : (k+1)*Dd]
			gw := g.predW[k*Dd : (k+1)*Dd]
			for e := range dh {
				gw[e] += dp * h[e]
				dh[e] += dp * wr[e]
			}
		}
	}
}
