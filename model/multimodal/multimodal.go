// Package multimodal is the input side shared by the NetMamba+ fuse3
// models (Mamba and NetTrans backbones): the byte stride embedding, the
// fixed cosine embedding of packet sizes and inter-arrival times, the
// modality indicators, CLS tokens and position embedding that assemble the
// token sequence, and the CLS-sum head input. Every layer has an explicit
// forward and backward; the package holds no parameters itself, it works
// on caller-owned weight slices (Weights) so that each model keeps its
// parameters in one flat buffer.
//
// Token layout (official fuse3, all three modalities, SeqLen 20, 400 byte
// patches) — 443 tokens, token index = position in pos_embed:
//
//	0..19   FixedCosineEmbed(size_t) + size_indicator + pos_embed[t]
//	20      size_cls_token           + size_indicator + pos_embed[20]
//	21..40  FixedCosineEmbed(iat_t)  + iat_indicator  + pos_embed[t]
//	41      iat_cls_token            + iat_indicator  + pos_embed[41]
//	42..441 StrideEmbed(bytes)_t     + pos_embed[t]   + byte_indicator
//	442     byte_cls_token           + pos_embed[442] + byte_indicator
//
// and the head reads h[442] + h[20] + h[41] (the "add" fusion).
//
// Ablations drop whole segments (tokens and CLS) but keep the full
// pos_embed [1, 2·(SeqLen+1)+patches+1, D] and each kept token's position
// index, so the same weights serve every modality choice:
//
//	bytes,sizes,iats  443 tokens  [size 0-19, CLS 20, iat 21-40, CLS 41, byte 42-441, CLS 442]  head h442+h20+h41
//	bytes,sizes       422 tokens  [size 0-19, CLS 20, byte 21-420, CLS 421] (positions 0-20, 42-442)  head h421+h20
//	bytes             401 tokens  [byte 0-399, CLS 400] (positions 42-442)  head h400
//
// (the token indices above are rows of the assembled sequence; position
// indices are unchanged from the full layout).
package multimodal

import (
	"fmt"
	"math"
)

// Modality names accepted by NewLayout (arch.Config.Modalities).
const (
	ModBytes = "bytes"
	ModSizes = "sizes"
	ModIATs  = "iats"
)

// Weights are views of the embedding parameters (official names in
// brackets). For gradients the same struct holds the gradient buffers.
type Weights struct {
	ByteProjW []float32 // [byte_embed.proj.weight] (D, 1, stride)
	ByteProjB []float32 // [byte_embed.proj.bias] (D)
	PosEmbed  []float32 // [pos_embed] (1, PosTokens, D)
	ByteCLS   []float32 // [byte_cls_token] (1, 1, D)
	SizeCLS   []float32 // [size_cls_token] (1, 1, D)
	IATCLS    []float32 // [iat_cls_token] (1, 1, D)
	ByteInd   []float32 // [byte_indicator] (1, 1, D)
	SizeInd   []float32 // [size_indicator] (1, 1, D)
	IATInd    []float32 // [iat_indicator] (1, 1, D)
}

// Layout is the token arrangement of one model configuration. It is
// immutable after NewLayout and safe for concurrent use.
type Layout struct {
	D           int // embedding width (d_model)
	SeqLen      int // size / IAT tokens per flow (20)
	BytePatches int // byte tokens (ByteLength / Stride)
	Stride      int // bytes per byte token (4)
	Sizes, IATs bool
	// Tokens is the length of the assembled sequence.
	Tokens int
	// SizeStart, IATStart, ByteStart are the token rows where each
	// segment starts (its CLS is the segment's last row); -1 if dropped.
	SizeStart, IATStart, ByteStart int
	// CLS lists the token rows summed into the head input, in the
	// official summation order byte, size, iat.
	CLS   []int
	omega []float32 // (D/2) FixedCosineEmbed frequencies
}

// NewLayout checks a configuration and returns its token layout. The byte
// modality is required; sizes and iats are optional.
func NewLayout(d, seqLen, byteLength, stride int, modalities []string) (*Layout, error) {
	if d <= 0 || d%2 != 0 {
		return nil, fmt.Errorf("multimodal: embedding width %d must be positive and even", d)
	}
	if stride <= 0 || byteLength <= 0 || byteLength%stride != 0 {
		return nil, fmt.Errorf("multimodal: byte length %d is not a positive multiple of the stride %d", byteLength, stride)
	}
	if seqLen <= 0 {
		return nil, fmt.Errorf("multimodal: sequence length %d must be positive", seqLen)
	}
	l := &Layout{D: d, SeqLen: seqLen, BytePatches: byteLength / stride, Stride: stride,
		SizeStart: -1, IATStart: -1, ByteStart: -1}
	if len(modalities) == 0 {
		modalities = []string{ModBytes, ModSizes, ModIATs}
	}
	var bytes bool
	for _, m := range modalities {
		switch m {
		case ModBytes:
			bytes = true
		case ModSizes:
			l.Sizes = true
		case ModIATs:
			l.IATs = true
		default:
			return nil, fmt.Errorf("multimodal: unknown modality %q (want %s, %s or %s)", m, ModBytes, ModSizes, ModIATs)
		}
	}
	if !bytes {
		return nil, fmt.Errorf("multimodal: modalities %v lack %q, which every model needs", modalities, ModBytes)
	}
	t := 0
	if l.Sizes {
		l.SizeStart = t
		t += seqLen + 1
	}
	if l.IATs {
		l.IATStart = t
		t += seqLen + 1
	}
	l.ByteStart = t
	t += l.BytePatches + 1
	l.Tokens = t
	l.CLS = append(l.CLS, l.ByteStart+l.BytePatches)
	if l.Sizes {
		l.CLS = append(l.CLS, l.SizeStart+seqLen)
	}
	if l.IATs {
		l.CLS = append(l.CLS, l.IATStart+seqLen)
	}
	l.omega = CosineFrequencies(d)
	return l, nil
}

// PosTokens is the number of rows of pos_embed: the full three-modality
// layout, whatever modalities are kept.
func (l *Layout) PosTokens() int { return 2*(l.SeqLen+1) + l.BytePatches + 1 }

// posSize, posIAT and posByte are the pos_embed rows of each segment's
// first token in the full layout.
func (l *Layout) posSize() int { return 0 }
func (l *Layout) posIAT() int  { return l.SeqLen + 1 }
func (l *Layout) posByte() int { return 2 * (l.SeqLen + 1) }

// CosineFrequencies returns FixedCosineEmbed's ω_k = exp(2k·(−ln 10000/D)),
// k = 0..D/2−1, rounded exactly as the official float32 code computes
// them: the product 2k·c in float32, then PyTorch's vectorised float32 exp
// (SLEEF expf_u10, see sleefExpf). The rounding matters: sizes reach 1500,
// so one ulp of ω_k moves sin(v·ω_k) by up to 1e-4, ten times the
// golden tolerance; correctly rounded exp differs from PyTorch's for 7 of
// the 128 frequencies of width 256 that visibly change embed_out.
func CosineFrequencies(d int) []float32 {
	c := float32(-math.Log(10000.0) / float64(d))
	w := make([]float32, d/2)
	for k := range w {
		w[k] = sleefExpf(float32(2*k) * c)
	}
	return w
}

// sleefExpf reproduces SLEEF's expf_u10 (the vectorised float32 exp of
// PyTorch's CPU kernels, with fused multiply-adds): round-to-nearest
// q = rint(d/ln 2), two-step Cody–Waite reduction, degree-6 polynomial,
// scaling by 2^q. Accurate to 1 ulp, but not always correctly rounded.
func sleefExpf(d float32) float32 {
	fma := func(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }
	q := int32(math.RoundToEven(float64(d * 1.442695040888963407359924681001892137426645954152985934135449406931)))
	qf := float32(q)
	s := fma(qf, -0.693145751953125, d)
	s = fma(qf, -1.428606765330187045e-06, s)
	u := float32(0.000198527617612853646278381)
	u = fma(u, s, 0.00139304355252534151077271)
	u = fma(u, s, 0.00833336077630519866943359)
	u = fma(u, s, 0.0416664853692054748535156)
	u = fma(u, s, 0.166666671633720397949219)
	u = fma(u, s, 0.5)
	u = 1 + fma(s*s, u, s)
	return u * float32(math.Ldexp(1, int(q)))
}

// CosineEmbed writes FixedCosineEmbed(v) into dst (length 2·len(omega)):
// dst[2k] = sin(v·ω_k), dst[2k+1] = cos(v·ω_k), with the argument rounded
// to float32 as in the official code.
func CosineEmbed(dst []float32, v float32, omega []float32) {
	dst = dst[:2*len(omega)]
	for k, w := range omega {
		a := float64(v * w)
		dst[2*k] = float32(math.Sin(a))
		dst[2*k+1] = float32(math.Cos(a))
	}
}

// StrideEmbedForward is the Conv1d(1, D, k=stride, s=stride) patch
// embedding: out[t·ldOut + c] = b[c] + Σ_s w[c·stride+s]·x[t·stride+s] for
// t < patches. x holds patches·stride normalised bytes.
func StrideEmbedForward(out []float32, ldOut int, x, w, b []float32, patches, stride, d int) {
	for t := 0; t < patches; t++ {
		xs := x[t*stride : t*stride+stride]
		o := out[t*ldOut : t*ldOut+d]
		for c := range o {
			wc := w[c*stride : c*stride+stride]
			acc := b[c]
			for s, xv := range xs {
				acc += wc[s] * xv
			}
			o[c] = acc
		}
	}
}

// StrideEmbedBackward accumulates the weight and bias gradients of
// StrideEmbedForward from dout (patches rows of stride ldOut).
func StrideEmbedBackward(dw, db []float32, dout []float32, ldOut int, x []float32, patches, stride, d int) {
	for t := 0; t < patches; t++ {
		xs := x[t*stride : t*stride+stride]
		g := dout[t*ldOut : t*ldOut+d]
		for c, gv := range g {
			if gv == 0 {
				continue
			}
			db[c] += gv
			dwc := dw[c*stride : c*stride+stride]
			for s, xv := range xs {
				dwc[s] += gv * xv
			}
		}
	}
}

// Input is one flow as the fuse3 models read it.
type Input struct {
	Bytes []float32 // (BytePatches·Stride) normalised bytes in [−1, 1] (FillInput)
	Sizes []float32 // (SeqLen) size ids as floats (FillInput); ignored without the sizes modality
	IATs  []float32 // (SeqLen) transformed IATs (FillInput); ignored without the iats modality
}

// Forward assembles the token sequence into out (Tokens, D).
func (l *Layout) Forward(out []float32, w *Weights, in Input) error {
	D := l.D
	if len(out) < l.Tokens*D {
		return fmt.Errorf("multimodal: output of %d floats for %d tokens of width %d", len(out), l.Tokens, D)
	}
	if len(in.Bytes) < l.BytePatches*l.Stride {
		return fmt.Errorf("multimodal: %d input bytes, want %d", len(in.Bytes), l.BytePatches*l.Stride)
	}
	if l.Sizes && len(in.Sizes) < l.SeqLen {
		return fmt.Errorf("multimodal: %d sizes, want %d", len(in.Sizes), l.SeqLen)
	}
	if l.IATs && len(in.IATs) < l.SeqLen {
		return fmt.Errorf("multimodal: %d IATs, want %d", len(in.IATs), l.SeqLen)
	}
	seg := func(start, pos0 int, vals, cls, ind []float32) {
		// (cos(v) | cls) + indicator + pos_embed, in the official order.
		for t := 0; t <= l.SeqLen; t++ {
			o := out[(start+t)*D : (start+t+1)*D]
			if t < l.SeqLen {
				CosineEmbed(o, vals[t], l.omega)
			} else {
				copy(o, cls[:D])
			}
			pe := w.PosEmbed[(pos0+t)*D : (pos0+t+1)*D]
			for c := range o {
				o[c] = (o[c] + ind[c]) + pe[c]
			}
		}
	}
	if l.Sizes {
		seg(l.SizeStart, l.posSize(), in.Sizes, w.SizeCLS, w.SizeInd)
	}
	if l.IATs {
		seg(l.IATStart, l.posIAT(), in.IATs, w.IATCLS, w.IATInd)
	}
	// bytes: (conv + pos) + indicator; CLS: (cls + pos) + indicator.
	bo := out[l.ByteStart*D:]
	StrideEmbedForward(bo, D, in.Bytes, w.ByteProjW, w.ByteProjB, l.BytePatches, l.Stride, D)
	p0 := l.posByte()
	for t := 0; t <= l.BytePatches; t++ {
		o := bo[t*D : (t+1)*D]
		if t == l.BytePatches {
			copy(o, w.ByteCLS[:D])
		}
		pe := w.PosEmbed[(p0+t)*D : (p0+t+1)*D]
		for c := range o {
			o[c] = (o[c] + pe[c]) + w.ByteInd[c]
		}
	}
	return nil
}

// Backward accumulates into g the gradients of every embedding parameter
// given dout (Tokens, D), the gradient of Forward's output. The size and
// IAT values are fixed features and get no gradient.
func (l *Layout) Backward(g *Weights, dout []float32, in Input) {
	D := l.D
	seg := func(start, pos0 int, cls, ind []float32) {
		for t := 0; t <= l.SeqLen; t++ {
			d := dout[(start+t)*D : (start+t+1)*D]
			pe := g.PosEmbed[(pos0+t)*D : (pos0+t+1)*D]
			for c, v := range d {
				pe[c] += v
				ind[c] += v
			}
			if t == l.SeqLen {
				for c, v := range d {
					cls[c] += v
				}
			}
		}
	}
	if l.Sizes {
		seg(l.SizeStart, l.posSize(), g.SizeCLS, g.SizeInd)
	}
	if l.IATs {
		seg(l.IATStart, l.posIAT(), g.IATCLS, g.IATInd)
	}
	bd := dout[l.ByteStart*D:]
	p0 := l.posByte()
	for t := 0; t <= l.BytePatches; t++ {
		d := bd[t*D : (t+1)*D]
		pe := g.PosEmbed[(p0+t)*D : (p0+t+1)*D]
		for c, v := range d {
			pe[c] += v
			g.ByteInd[c] += v
		}
	}
	cd := bd[l.BytePatches*D : (l.BytePatches+1)*D]
	for c, v := range cd {
		g.ByteCLS[c] += v
	}
	StrideEmbedBackward(g.ByteProjW, g.ByteProjB, bd, D, in.Bytes, l.BytePatches, l.Stride, D)
}

// CLSSum writes the head input Σ h[CLS rows] (official order byte, size,
// iat) into dst (D) from the final hidden states h (Tokens, D).
func (l *Layout) CLSSum(dst, h []float32) {
	D := l.D
	copy(dst[:D], h[l.CLS[0]*D:(l.CLS[0]+1)*D])
	for _, r := range l.CLS[1:] {
		row := h[r*D : (r+1)*D]
		for c := range dst[:D] {
			dst[c] += row[c]
		}
	}
}

// CLSSumBackward accumulates dsum (D) into every CLS row of dh (Tokens, D).
func (l *Layout) CLSSumBackward(dh, dsum []float32) {
	D := l.D
	for _, r := range l.CLS {
		row := dh[r*D : (r+1)*D]
		for c := range row {
			row[c] += dsum[c]
		}
	}
}
