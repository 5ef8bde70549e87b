package nettrans

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/internal/paramset"
	"github.com/netmamba/netmamba/model/multimodal"
)

// Param is one named parameter tensor; Data aliases the owning Params'
// contiguous buffer.
type Param = paramset.Param

// BlockParams are the views of one pre-norm transformer block, PyTorch
// layouts (Linear weights [out, in]). QKVW spans to_q, to_k, to_v stacked
// (3·D, D): they are adjacent in the official order, so q, k and v come
// out of one matrix product.
type BlockParams struct {
	QKVW   []float32 // attn.to_{q,k,v}.weight stacked (3D, D), no bias
	QW     []float32 // attn.to_q.weight (D, D)
	KW     []float32 // attn.to_k.weight (D, D)
	VW     []float32 // attn.to_v.weight (D, D)
	OutW   []float32 // attn.to_out.0.weight (D, D)
	OutB   []float32 // attn.to_out.0.bias (D)
	Norm1W []float32 // norm1.weight (D)
	Norm1B []float32 // norm1.bias (D)
	FF1W   []float32 // ff.net.0.proj.weight (2F, D): GeGLU value rows [0,F), gate rows [F,2F)
	FF1B   []float32 // ff.net.0.proj.bias (2F)
	FF2W   []float32 // ff.net.2.weight (D, F)
	FF2B   []float32 // ff.net.2.bias (D)
	Norm2W []float32 // norm2.weight (D)
	Norm2B []float32 // norm2.bias (D)
}

// Params holds every parameter of a NetTrans classifier in one contiguous
// buffer (official state_dict order), with typed views. A gradient set is
// a Params of the same model (Model.NewGrads).
type Params struct {
	set paramset.Set // names, shapes and the one buffer the views alias
	buf []float32    // set.Flat(), for the hot paths' size checks

	// Byte classifier (net_fgt_base_classifier).
	PatchW   []float32 // patch_embed.proj.weight (D, 1, stride)
	PatchB   []float32 // patch_embed.proj.bias (D)
	ClsToken []float32 // cls_token (1, 1, D)
	PosEmbed []float32 // pos_embed: (1, patches+1, D) bytes; (1, 2·(seq+1)+patches+1, D) fuse3

	// fuse3 classifier (fuse3_fgt_base_classifier): embedding views.
	Embed multimodal.Weights

	Blocks []BlockParams
	NormW  []float32 // norm.weight (D), final LayerNorm eps 1e-6
	NormB  []float32 // norm.bias (D)
	HeadW  []float32 // head.weight (classes, D)
	HeadB  []float32 // head.bias (classes); byte classifier only (fuse3 head has no bias)

	// Pre-training heads (Task "pretrain"; no head.*). Names: bytes
	// decoder_*, mask_token; fuse3 byte_decoder_*, byte_mask_token.
	DecEmbedW   []float32 // decoder_embed.weight (Dd, D)
	DecEmbedB   []float32 // decoder_embed.bias (Dd)
	MaskToken   []float32 // mask_token (1, 1, Dd)
	DecPosEmbed []float32 // decoder_pos_embed (1, patches+1, Dd)
	DecBlocks   []BlockParams
	DecPredW    []float32 // decoder_pred.weight (stride, Dd)
	DecPredB    []float32 // decoder_pred.bias (stride)
	SizePredW   []float32 // size_decoder_pred.weight (1503, D); fuse3 with sizes
	SizePredB   []float32 // size_decoder_pred.bias (1503)
	IATPredW    []float32 // iat_decoder_pred.weight (1, D); fuse3 with IATs
	IATPredB    []float32 // iat_decoder_pred.bias (1)
}

// newParams allocates zeroed parameters for a normalised config.
func newParams(d dims) *Params {
	p := &Params{}
	D := d.D
	var specs []paramset.Spec
	add := func(name string, dst *[]float32, shape ...int) {
		specs = append(specs, paramset.Spec{Name: name, Shape: shape, Dst: dst})
	}
	blocks := "blocks"
	if d.fuse3 {
		blocks = "encoder_blocks"
		e := &p.Embed
		add("byte_cls_token", &e.ByteCLS, 1, 1, D)
		add("size_cls_token", &e.SizeCLS, 1, 1, D)
		add("iat_cls_token", &e.IATCLS, 1, 1, D)
		add("byte_indicator", &e.ByteInd, 1, 1, D)
		add("size_indicator", &e.SizeInd, 1, 1, D)
		add("iat_indicator", &e.IATInd, 1, 1, D)
		add("pos_embed", &e.PosEmbed, 1, d.posTokens, D)
		add("byte_embed.proj.weight", &e.ByteProjW, D, 1, d.stride)
		add("byte_embed.proj.bias", &e.ByteProjB, D)
	} else {
		add("cls_token", &p.ClsToken, 1, 1, D)
		add("pos_embed", &p.PosEmbed, 1, d.posTokens, D)
		add("patch_embed.proj.weight", &p.PatchW, D, 1, d.stride)
		add("patch_embed.proj.bias", &p.PatchB, D)
	}
	addBlock := func(b *BlockParams, pre string, D int) {
		F := 4 * D
		add(pre+"attn.to_q.weight", &b.QW, D, D)
		add(pre+"attn.to_k.weight", &b.KW, D, D)
		add(pre+"attn.to_v.weight", &b.VW, D, D)
		add(pre+"attn.to_out.0.weight", &b.OutW, D, D)
		add(pre+"attn.to_out.0.bias", &b.OutB, D)
		add(pre+"norm1.weight", &b.Norm1W, D)
		add(pre+"norm1.bias", &b.Norm1B, D)
		add(pre+"ff.net.0.proj.weight", &b.FF1W, 2*F, D)
		add(pre+"ff.net.0.proj.bias", &b.FF1B, 2*F)
		add(pre+"ff.net.2.weight", &b.FF2W, D, F)
		add(pre+"ff.net.2.bias", &b.FF2B, D)
		add(pre+"norm2.weight", &b.Norm2W, D)
		add(pre+"norm2.bias", &b.Norm2B, D)
	}
	p.Blocks = make([]BlockParams, d.depth)
	for i := range p.Blocks {
		addBlock(&p.Blocks[i], fmt.Sprintf("%s.%d.", blocks, i), D)
	}
	add("norm.weight", &p.NormW, D)
	add("norm.bias", &p.NormB, D)
	if d.pretrain {
		dp := ""
		if d.fuse3 {
			dp = "byte_"
		}
		Dd := d.decD
		add(dp+"decoder_embed.weight", &p.DecEmbedW, Dd, D)
		add(dp+"decoder_embed.bias", &p.DecEmbedB, Dd)
		add(dp+"mask_token", &p.MaskToken, 1, 1, Dd)
		add(dp+"decoder_pos_embed", &p.DecPosEmbed, 1, d.patches+1, Dd)
		p.DecBlocks = make([]BlockParams, d.decDepth)
		for i := range p.DecBlocks {
			addBlock(&p.DecBlocks[i], fmt.Sprintf("%sdecoder_blocks.%d.", dp, i), Dd)
		}
		add(dp+"decoder_pred.weight", &p.DecPredW, d.stride, Dd)
		add(dp+"decoder_pred.bias", &p.DecPredB, d.stride)
		if d.fuse3 && d.sizeKeep < d.seqLen && sizesOn(d) {
			add("size_decoder_pred.weight", &p.SizePredW, d.sizeVocab, D)
			add("size_decoder_pred.bias", &p.SizePredB, d.sizeVocab)
		}
		if d.fuse3 && d.iatKeep < d.seqLen && iatsOn(d) {
			add("iat_decoder_pred.weight", &p.IATPredW, 1, D)
			add("iat_decoder_pred.bias", &p.IATPredB, 1)
		}
	} else {
		add("head.weight", &p.HeadW, d.classes, D)
		if !d.fuse3 {
			add("head.bias", &p.HeadB, d.classes)
		}
	}
	p.set = paramset.New(specs)
	p.buf = p.set.Flat()
	off := 0
	var qOff []int
	for _, q := range p.set.List() {
		if strings.HasSuffix(q.Name, ".attn.to_q.weight") {
			qOff = append(qOff, off)
		}
		off += len(q.Data)
	}
	// to_q, to_k, to_v are laid out back to back (specs above); encoder
	// blocks come first, then the decoder's.
	for i := range p.Blocks {
		o := qOff[i]
		p.Blocks[i].QKVW = p.buf[o : o+3*D*D : o+3*D*D]
	}
	for i := range p.DecBlocks {
		o, Dd := qOff[d.depth+i], d.decD
		p.DecBlocks[i].QKVW = p.buf[o : o+3*Dd*Dd : o+3*Dd*Dd]
	}
	return p
}

// List returns the parameters in the official state_dict order.
func (p *Params) List() []Param { return p.set.List() }

// Flat returns all parameters as one contiguous slice (List order), for
// optimisers.
func (p *Params) Flat() []float32 { return p.set.Flat() }

// Count is the number of scalar parameters.
func (p *Params) Count() int { return p.set.Count() }

// Zero sets every parameter to 0.
func (p *Params) Zero() { p.set.Zero() }

// Get returns the parameter with the given official name, or nil.
func (p *Params) Get(name string) *Param { return p.set.Get(name) }

// Tensors returns copies of the parameters as checkpoint tensors keyed by
// their official names and shapes.
func (p *Params) Tensors() map[string]*checkpoint.Tensor { return p.set.Tensors() }

// Load copies tensors into p. Every parameter must be present as F32 with
// its official shape (leading singleton dimensions may differ), and no
// tensor may be left over; the error lists every problem.
func (p *Params) Load(ts map[string]*checkpoint.Tensor) error {
	if err := p.set.Load(ts); err != nil {
		return fmt.Errorf("nettrans: tensors do not match the config: %w", err)
	}
	return nil
}

// sameShape accepts the official shape, or the same sizes with leading
// singleton dimensions dropped/added (cls_token [1,1,D] vs [D]).
func sameShape(a, b []int) bool { return paramset.SameShape(a, b) }

// addFrom sets p += q (same layout).
func (p *Params) addFrom(q *Params) { p.set.AddFrom(&q.set) }

// initRNG draws the official initial values.
type initRNG struct{ r *rand.Rand }

// truncNormal fills s with N(0, std²) truncated to [lo, hi] (rejection
// sampling; the same distribution as torch's inverse-CDF method).
func (g initRNG) truncNormal(s []float32, std, lo, hi float64) {
	for i := range s {
		for {
			v := g.r.NormFloat64() * std
			if v >= lo && v <= hi {
				s[i] = float32(v)
				break
			}
		}
	}
}

// timmTrunc is timm's trunc_normal_(std) with its absolute cut at ±2.
func (g initRNG) timmTrunc(s []float32, std float64) { g.truncNormal(s, std, -2, 2) }

// lecunNormal is timm's lecun_normal_: a normal truncated at ±2σ, scaled
// so that the variance is 1/fan_in.
func (g initRNG) lecunNormal(s []float32, fanIn int) {
	std := math.Sqrt(1/float64(fanIn)) / .87962566103423978
	g.truncNormal(s, std, -2*std, 2*std)
}

// kaimingUniform is PyTorch's default Linear init, kaiming_uniform_(a=√5):
// U(±1/√fan_in).
func (g initRNG) kaimingUniform(s []float32, fanIn int) {
	b := 1 / math.Sqrt(float64(fanIn))
	for i := range s {
		s[i] = float32((2*g.r.Float64() - 1) * b)
	}
}

func fill(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}

// initOfficial sets the official initial values (golden README):
//
// bytes (net_fgt_base_classifier): patch-embed conv lecun_normal, bias 0;
// head trunc_normal(.02), bias 0; pos_embed, cls_token trunc_normal(.02);
// block Linears keep PyTorch's default kaiming_uniform(√5) with biases 0
// (_init_weights zeroes them; its out_proj/fc2 rescale matches no NetTrans
// name); LayerNorms 1/0.
//
// fuse3 (fuse3_fgt_base_classifier): every Linear trunc_normal(.02) with
// bias 0, the conv lecun_normal with bias 0, LayerNorms 1/0; pos_embed,
// the three CLS tokens and the three indicators trunc_normal(.02).
func (p *Params) initOfficial(d dims, seed uint64) {
	g := initRNG{rand.New(rand.NewPCG(seed, 0x6e65747472616e73))} // "nettrans"
	p.Zero()
	D, F := d.D, d.F
	if d.fuse3 {
		e := &p.Embed
		for _, s := range [][]float32{e.PosEmbed, e.ByteCLS, e.SizeCLS, e.IATCLS, e.ByteInd, e.SizeInd, e.IATInd} {
			g.timmTrunc(s, .02)
		}
		g.lecunNormal(e.ByteProjW, d.stride)
	} else {
		g.timmTrunc(p.PosEmbed, .02)
		g.timmTrunc(p.ClsToken, .02)
		g.lecunNormal(p.PatchW, d.stride)
	}
	for i := range p.Blocks {
		b := &p.Blocks[i]
		if d.fuse3 {
			for _, w := range [][]float32{b.QW, b.KW, b.VW, b.OutW, b.FF1W, b.FF2W} {
				g.timmTrunc(w, .02)
			}
		} else {
			g.kaimingUniform(b.QW, D)
			g.kaimingUniform(b.KW, D)
			g.kaimingUniform(b.VW, D)
			g.kaimingUniform(b.OutW, D)
			g.kaimingUniform(b.FF1W, D)
			g.kaimingUniform(b.FF2W, F)
		}
		fill(b.Norm1W, 1)
		fill(b.Norm2W, 1)
	}
	fill(p.NormW, 1)
	if !d.pretrain {
		g.timmTrunc(p.HeadW, .02)
		return
	}
	// pre-training heads: decoder_pos_embed and mask_token
	// trunc_normal(.02); Linears kaiming_uniform(√5) for the byte model
	// (_init_weights zeroes only biases), trunc_normal(.02) for fuse3
	// (segm_init_weights); biases 0, LayerNorms 1/0.
	g.timmTrunc(p.DecPosEmbed, .02)
	g.timmTrunc(p.MaskToken, .02)
	Dd := d.decD
	linear := func(w []float32, fanIn int) {
		if d.fuse3 {
			g.timmTrunc(w, .02)
		} else {
			g.kaimingUniform(w, fanIn)
		}
	}
	linear(p.DecEmbedW, D)
	for i := range p.DecBlocks {
		b := &p.DecBlocks[i]
		for _, w := range [][]float32{b.QW, b.KW, b.VW, b.OutW, b.FF1W} {
			linear(w, Dd)
		}
		linear(b.FF2W, 4*Dd)
		fill(b.Norm1W, 1)
		fill(b.Norm2W, 1)
	}
	linear(p.DecPredW, Dd)
	if p.SizePredW != nil {
		linear(p.SizePredW, D)
	}
	if p.IATPredW != nil {
		linear(p.IATPredW, D)
	}
}

func sizesOn(d dims) bool { return d.sizes }
func iatsOn(d dims) bool  { return d.iats }
