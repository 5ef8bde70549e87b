package model

// NetMamba+ fuse3 Mamba model (official models_net_mamba_fuse3.py,
// fuse3_mamba_classifier / fuse3_mamba_pretrain).
//
// Token layout (package multimodal; all three modalities, SeqLen 20,
// 400 byte strides) — 443 tokens, row = position in pos_embed:
//
//	0..19    FixedCosineEmbed(size_t) + size_indicator + pos_embed[t]
//	20       size_cls_token           + size_indicator + pos_embed[20]
//	21..40   FixedCosineEmbed(iat_t)  + iat_indicator  + pos_embed[t]
//	41       iat_cls_token            + iat_indicator  + pos_embed[41]
//	42..441  byte_embed(bytes)_t      + pos_embed[t]   + byte_indicator
//	442      byte_cls_token           + pos_embed[442] + byte_indicator
//
// → 4 Mamba blocks (width 256) → final add + RMSNorm → logits =
// head(h442 + h20 + h41), head without bias. Modality ablations
// (arch.Config.Modalities) drop whole segments, their CLS from the sum,
// and keep every parameter (the full pos_embed rows stay addressed by the
// full-layout position), so one checkpoint serves every choice:
//
//	bytes,sizes,iats  443 tokens, head h442+h20+h41
//	bytes,sizes       422 tokens [size 0-19, CLS 20, byte 21-420, CLS 421], head h421+h20
//	bytes,iats        422 tokens [iat 0-19, CLS 20, byte 21-420, CLS 421], head h421+h20
//	bytes             401 tokens [byte 0-399, CLS 400], head h400
//
// Pre-training (Task "pretrain") encodes 82 tokens — the size and IAT
// segments with 3 of 20 values replaced (size → MASK id, IAT → 0), then
// 39 visible byte tokens (noise order) + byte CLS — and adds three losses:
// the NetMamba byte MAE through a 2-block decoder of width 128, the
// cross-entropy of size_decoder_pred over the size vocabulary at the
// masked size rows, and the squared error of iat_decoder_pred at the
// masked IAT rows (see fuse3_pretrain.go).

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/multimodal"
	"github.com/netmamba/netmamba/repr"
)

// ArchFuse3 is the arch.Config.Arch name of the NetMamba+ fuse3 Mamba model.
const ArchFuse3 = "fuse3"

// Fuse3SeqMaskRatio is the official size and IAT mask ratio of fuse3
// pre-training: int(20·(1−0.15)) = 17 kept, 3 masked.
const Fuse3SeqMaskRatio = 0.15

// NormalizeFuse3 fills the zero fields of cfg with the official fuse3
// defaults (1600 bytes, stride 4, width 256, depth 4, d_state 16, d_conv 4,
// expand 2, dt_rank ceil(width/16), sequence length 20, all three
// modalities, decoder 128×2, mask ratio 0.9) and checks the result. Arch
// "" means "fuse3" and Task "" means "classify".
func NormalizeFuse3(cfg arch.Config) (arch.Config, error) {
	if cfg.Arch == "" {
		cfg.Arch = ArchFuse3
	}
	if cfg.Arch != ArchFuse3 {
		return cfg, fmt.Errorf("model: arch %q is not %q", cfg.Arch, ArchFuse3)
	}
	if cfg.SeqLen == 0 {
		cfg.SeqLen = 20
	}
	if len(cfg.Modalities) == 0 {
		cfg.Modalities = []string{multimodal.ModBytes, multimodal.ModSizes, multimodal.ModIATs}
	} else {
		cfg.Modalities = append([]string(nil), cfg.Modalities...)
	}
	// The byte-model defaults and checks are the same.
	tmp := cfg
	tmp.Arch, tmp.SeqLen, tmp.Modalities = "netmamba", 0, nil
	tmp, err := Normalize(tmp)
	if err != nil {
		return cfg, err
	}
	tmp.Arch, tmp.SeqLen, tmp.Modalities = ArchFuse3, cfg.SeqLen, cfg.Modalities
	cfg = tmp
	if cfg.NumHeads != 0 {
		return cfg, fmt.Errorf("model: fuse3 Mamba model has no attention heads (num_heads %d)", cfg.NumHeads)
	}
	if cfg.SeqLen < 0 {
		return cfg, fmt.Errorf("model: fuse3 sequence length %d", cfg.SeqLen)
	}
	if _, err := multimodal.NewLayout(cfg.EmbedDim, cfg.SeqLen, cfg.ByteLength, cfg.Stride, cfg.Modalities); err != nil {
		return cfg, fmt.Errorf("model: %w", err)
	}
	return cfg, nil
}

// Fuse3Options are the fuse3 settings arch.Config does not carry.
type Fuse3Options struct {
	// SignedSizes selects the signed size vocabulary (official size_key
	// "signed_sizes": ids 0..3000, MASK 3002, 3003 ids) instead of the
	// unsigned one (0..1500, MASK 1502, 1503 ids). It changes the MASK id
	// of pre-training and the shape of size_decoder_pred.
	SignedSizes bool
}

// SizeVocab is the size vocabulary (size_decoder_pred outputs).
func (o Fuse3Options) SizeVocab() int {
	if o.SignedSizes {
		return multimodal.NumSignedSizes
	}
	return multimodal.NumSizeIDs
}

// MaskID is the size id written at masked size positions.
func (o Fuse3Options) MaskID() int {
	if o.SignedSizes {
		return multimodal.SignedMaskID
	}
	return multimodal.MaskID
}

// Fuse3Params holds every parameter of a fuse3 model (classifier or
// pre-training) in one contiguous buffer under the official names, with
// typed views. A gradient set is a Fuse3Params of the same model.
type Fuse3Params struct {
	core Params // list + buf (the byte-model views stay nil)

	Emb    multimodal.Weights // byte_embed.proj.*, pos_embed, {byte,size,iat}_{cls_token,indicator}
	Blocks []MambaParams      // encoder_blocks.N.*
	NormF  []float32          // norm_f.weight (E)
	HeadW  []float32          // head.weight (classes, E); classifier only, no bias

	// Pre-training only.
	MaskToken   []float32 // byte_mask_token (1, 1, Dd)
	DecPosEmbed []float32 // byte_decoder_pos_embed (1, T+1, Dd)
	DecEmbedW   []float32 // byte_decoder_embed.weight (Dd, E)
	DecEmbedB   []float32 // byte_decoder_embed.bias (Dd)
	DecBlocks   []MambaParams
	DecNormF    []float32 // decoder_norm_f.weight (Dd)
	DecPredW    []float32 // byte_decoder_pred.weight (stride, Dd)
	DecPredB    []float32 // byte_decoder_pred.bias (stride)
	SizePredW   []float32 // size_decoder_pred.weight (vocab, E)
	SizePredB   []float32 // size_decoder_pred.bias (vocab)
	IATPredW    []float32 // iat_decoder_pred.weight (1, E)
	IATPredB    []float32 // iat_decoder_pred.bias (1)
}

// newFuse3Params allocates zeroed parameters in the official state_dict
// order (the model's own nn.Parameters first, then its sub-modules).
func newFuse3Params(cfg arch.Config, opt Fuse3Options, posTokens int) *Fuse3Params {
	p := &Fuse3Params{}
	E, T, S := cfg.EmbedDim, cfg.ByteLength/cfg.Stride, cfg.Stride
	pre := cfg.Task == "pretrain"
	var specs []paramSpec
	add := func(name string, dst *[]float32, shape ...int) {
		specs = append(specs, paramSpec{name, shape, dst})
	}
	e := &p.Emb
	add("byte_cls_token", &e.ByteCLS, 1, 1, E)
	add("size_cls_token", &e.SizeCLS, 1, 1, E)
	add("iat_cls_token", &e.IATCLS, 1, 1, E)
	add("byte_indicator", &e.ByteInd, 1, 1, E)
	add("size_indicator", &e.SizeInd, 1, 1, E)
	add("iat_indicator", &e.IATInd, 1, 1, E)
	add("pos_embed", &e.PosEmbed, 1, posTokens, E)
	Dd := cfg.DecoderEmbedDim
	if pre {
		add("byte_mask_token", &p.MaskToken, 1, 1, Dd)
		add("byte_decoder_pos_embed", &p.DecPosEmbed, 1, T+1, Dd)
	}
	add("byte_embed.proj.weight", &e.ByteProjW, E, 1, S)
	add("byte_embed.proj.bias", &e.ByteProjB, E)
	p.Blocks = make([]MambaParams, cfg.Depth)
	for i := range p.Blocks {
		specs = append(specs, mambaSpecs(fmt.Sprintf("encoder_blocks.%d", i), encoderDims(cfg), &p.Blocks[i])...)
	}
	add("norm_f.weight", &p.NormF, E)
	if pre {
		add("byte_decoder_embed.weight", &p.DecEmbedW, Dd, E)
		add("byte_decoder_embed.bias", &p.DecEmbedB, Dd)
		p.DecBlocks = make([]MambaParams, cfg.DecoderDepth)
		for i := range p.DecBlocks {
			specs = append(specs, mambaSpecs(fmt.Sprintf("byte_decoder_blocks.%d", i), decoderDims(cfg), &p.DecBlocks[i])...)
		}
		add("decoder_norm_f.weight", &p.DecNormF, Dd)
		add("byte_decoder_pred.weight", &p.DecPredW, S, Dd)
		add("byte_decoder_pred.bias", &p.DecPredB, S)
		V := opt.SizeVocab()
		add("size_decoder_pred.weight", &p.SizePredW, V, E)
		add("size_decoder_pred.bias", &p.SizePredB, V)
		add("iat_decoder_pred.weight", &p.IATPredW, 1, E)
		add("iat_decoder_pred.bias", &p.IATPredB, 1)
	} else {
		add("head.weight", &p.HeadW, cfg.NumClasses, E)
	}
	p.core.allocate(specs)
	return p
}

// List returns the parameters in the official state_dict order.
func (p *Fuse3Params) List() []Param { return p.core.List() }

// Flat returns all parameters as one contiguous slice (List order).
func (p *Fuse3Params) Flat() []float32 { return p.core.Flat() }

// Count is the number of scalar parameters.
func (p *Fuse3Params) Count() int { return p.core.Count() }

// Zero sets every parameter to 0.
func (p *Fuse3Params) Zero() { p.core.Zero() }

// Get returns the parameter with the given official name, or nil.
func (p *Fuse3Params) Get(name string) *Param { return p.core.Get(name) }

// Tensors returns copies of the parameters keyed by their official names.
func (p *Fuse3Params) Tensors() map[string]*checkpoint.Tensor { return p.core.Tensors() }

// Fuse3 is a NetMamba+ fuse3 Mamba model: the classifier (Task "classify")
// or the multimodal pre-training model (Task "pretrain"). Parameters are
// read-only during forward passes, so one Fuse3 can serve several
// goroutines, each with its own Fuse3Workspace.
type Fuse3 struct {
	Cfg    arch.Config // normalised (NormalizeFuse3)
	Opt    Fuse3Options
	Layout *multimodal.Layout
	P      *Fuse3Params
	Tokens int // byte tokens: ByteLength/Stride
}

// NewFuse3 returns a fuse3 model with zeroed parameters.
func NewFuse3(cfg arch.Config, opt Fuse3Options) (*Fuse3, error) {
	cfg, err := NormalizeFuse3(cfg)
	if err != nil {
		return nil, err
	}
	lay, err := multimodal.NewLayout(cfg.EmbedDim, cfg.SeqLen, cfg.ByteLength, cfg.Stride, cfg.Modalities)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return &Fuse3{Cfg: cfg, Opt: opt, Layout: lay, P: newFuse3Params(cfg, opt, lay.PosTokens()), Tokens: cfg.ByteLength / cfg.Stride}, nil
}

// NewFuse3Random returns a fuse3 model with the official fuse3
// initialisation (see Init) drawn from seed.
func NewFuse3Random(cfg arch.Config, opt Fuse3Options, seed uint64) (*Fuse3, error) {
	m, err := NewFuse3(cfg, opt)
	if err != nil {
		return nil, err
	}
	m.Init(seed)
	return m, nil
}

// Fuse3FromTensors builds a fuse3 model from tensors under the official
// names. Missing, unexpected and mis-shaped tensors are reported together.
// For a pre-training model the size vocabulary (signed or not) is taken
// from the shape of size_decoder_pred.weight when present.
func Fuse3FromTensors(cfg arch.Config, ts map[string]*checkpoint.Tensor) (*Fuse3, error) {
	var opt Fuse3Options
	if t, ok := ts["size_decoder_pred.weight"]; ok && len(t.Shape) == 2 && t.Shape[0] == multimodal.NumSignedSizes {
		opt.SignedSizes = true
	}
	m, err := NewFuse3(cfg, opt)
	if err != nil {
		return nil, err
	}
	if err := m.P.core.load(ts); err != nil {
		return nil, err
	}
	return m, nil
}

// Tensors returns copies of the parameters under the official names.
func (m *Fuse3) Tensors() map[string]*checkpoint.Tensor { return m.P.Tensors() }

// NewGrads returns a zeroed gradient set with the model's layout.
func (m *Fuse3) NewGrads() *Fuse3Params {
	return newFuse3Params(m.Cfg, m.Opt, m.Layout.PosTokens())
}

// IsFuse3EncoderName reports whether an official parameter name belongs to
// the part a fuse3 pre-training model shares with the classifier: the
// embeddings, encoder_blocks.* and norm_f.
func IsFuse3EncoderName(name string) bool {
	switch name {
	case "byte_cls_token", "size_cls_token", "iat_cls_token", "byte_indicator", "size_indicator", "iat_indicator",
		"pos_embed", "byte_embed.proj.weight", "byte_embed.proj.bias", "norm_f.weight":
		return true
	}
	return len(name) > len("encoder_blocks.") && name[:len("encoder_blocks.")] == "encoder_blocks."
}

// LoadEncoder copies the shared encoder tensors (IsFuse3EncoderName) of
// ts — typically a pre-training checkpoint — into m, ignoring the decoder
// and head tensors, as the official fine-tune loads a pre-trained model.
// Every encoder tensor of m must be present with its shape; the head is
// left untouched.
func (m *Fuse3) LoadEncoder(ts map[string]*checkpoint.Tensor) error {
	if err := m.P.core.set.LoadSubset(ts, IsFuse3EncoderName); err != nil {
		return fmt.Errorf("model: fuse3 encoder: %w", err)
	}
	return nil
}

// Init re-initialises every parameter as the official fuse3 code does
// (initialize_weights + segm_init_weights), from a seeded generator (our
// draws, not PyTorch's): pos_embed, the three CLS tokens, the three
// indicators, byte_mask_token and byte_decoder_pos_embed
// trunc_normal(std .02, cut at ±2); every Linear (in_proj, x_proj,
// dt_proj, out_proj, head, the decoder and prediction layers)
// trunc_normal(.02) with bias 0 — dt_proj.bias too, and no out_proj
// rescale; every Conv1d (byte_embed.proj, the mixers' depthwise conv1d)
// lecun_normal (truncated normal ±2σ, σ = √(1/fan_in)/0.8796) with bias 0;
// A_log[d, n] = ln(n+1), D = 1 and RMSNorm weights 1 as Mamba's own init.
func (m *Fuse3) Init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x6675736533696e69)) // "fuse3ini"
	p := m.P
	p.Zero()
	e := &p.Emb
	for _, v := range [][]float32{e.PosEmbed, e.ByteCLS, e.SizeCLS, e.IATCLS, e.ByteInd, e.SizeInd, e.IATInd} {
		truncNormal(rng, v, 0.02)
	}
	if p.MaskToken != nil {
		truncNormal(rng, p.DecPosEmbed, 0.02)
		truncNormal(rng, p.MaskToken, 0.02)
	}
	lecun := func(v []float32, fanIn int) {
		std := math.Sqrt(1/float64(fanIn)) / 0.87962566103423978
		for i := range v {
			v[i] = float32(std * truncStd(rng))
		}
	}
	lecun(e.ByteProjW, m.Cfg.Stride)
	initBlocks := func(blocks []MambaParams, d Dims) {
		for i := range blocks {
			b := &blocks[i]
			fill(b.NormW, 1)
			truncNormal(rng, b.InProjW, 0.02)
			lecun(b.ConvW, d.DConv)
			truncNormal(rng, b.XProjW, 0.02)
			truncNormal(rng, b.DtProjW, 0.02)
			for j := range b.ALog {
				b.ALog[j] = float32(math.Log(float64(j%d.DState + 1)))
			}
			fill(b.D, 1)
			truncNormal(rng, b.OutProjW, 0.02)
		}
	}
	initBlocks(p.Blocks, encoderDims(m.Cfg))
	fill(p.NormF, 1)
	if p.HeadW != nil {
		truncNormal(rng, p.HeadW, 0.02)
	}
	if p.DecEmbedW != nil {
		truncNormal(rng, p.DecEmbedW, 0.02)
		initBlocks(p.DecBlocks, decoderDims(m.Cfg))
		fill(p.DecNormF, 1)
		truncNormal(rng, p.DecPredW, 0.02)
		truncNormal(rng, p.SizePredW, 0.02)
		truncNormal(rng, p.IATPredW, 0.02)
	}
}

// encoder returns the encoder stack over parameter set p (weights or grads).
func (m *Fuse3) encoder(p *Fuse3Params) *Stack {
	return &Stack{Dims: encoderDims(m.Cfg), Blocks: p.Blocks, NormF: p.NormF}
}

// decoder returns the byte decoder stack over parameter set p.
func (m *Fuse3) decoder(p *Fuse3Params) *Stack {
	return &Stack{Dims: decoderDims(m.Cfg), Blocks: p.DecBlocks, NormF: p.DecNormF}
}

// Fuse3Batch is the input of N flows, row-major. Build it with
// multimodal.NormalizeBytes, multimodal.SizeIDs and multimodal.IATValues
// (or Fuse3.SetFlow from a repr.View).
type Fuse3Batch struct {
	N     int
	Bytes []float32 // (N, ByteLength) normalised bytes in [−1, 1]
	Sizes []float32 // (N, SeqLen) size ids as floats; needed with the sizes modality
	IATs  []float32 // (N, SeqLen) transformed IATs (1+t)/(2+t); needed with the iats modality
}

// NewFuse3Batch allocates a batch of n flows for m.
func (m *Fuse3) NewFuse3Batch(n int) *Fuse3Batch {
	return &Fuse3Batch{N: n, Bytes: make([]float32, n*m.Cfg.ByteLength),
		Sizes: make([]float32, n*m.Cfg.SeqLen), IATs: make([]float32, n*m.Cfg.SeqLen)}
}

func (m *Fuse3) flowInput(b *Fuse3Batch, i int) multimodal.Input {
	nb, sl := m.Cfg.ByteLength, m.Cfg.SeqLen
	in := multimodal.Input{Bytes: b.Bytes[i*nb : (i+1)*nb]}
	if m.Layout.Sizes {
		in.Sizes = b.Sizes[i*sl : (i+1)*sl]
	}
	if m.Layout.IATs {
		in.IATs = b.IATs[i*sl : (i+1)*sl]
	}
	return in
}

func (m *Fuse3) checkInput(b *Fuse3Batch, ws *Fuse3Workspace, train bool) error {
	nb, sl := m.Cfg.ByteLength, m.Cfg.SeqLen
	switch {
	case b == nil:
		return fmt.Errorf("model: fuse3: nil batch")
	case ws == nil || ws.m != m:
		return fmt.Errorf("model: fuse3: workspace was not made by this model's NewWorkspace")
	case train && !ws.train:
		return fmt.Errorf("model: fuse3: workspace was not allocated for training")
	case b.N < 0 || b.N > ws.Batch:
		return fmt.Errorf("model: fuse3: batch %d outside the workspace's [0, %d]", b.N, ws.Batch)
	case len(b.Bytes) < b.N*nb:
		return fmt.Errorf("model: fuse3: %d input bytes for %d flows of %d", len(b.Bytes), b.N, nb)
	case m.Layout.Sizes && len(b.Sizes) < b.N*sl:
		return fmt.Errorf("model: fuse3: %d sizes for %d flows of %d", len(b.Sizes), b.N, sl)
	case m.Layout.IATs && len(b.IATs) < b.N*sl:
		return fmt.Errorf("model: fuse3: %d IATs for %d flows of %d", len(b.IATs), b.N, sl)
	}
	return nil
}

// Fuse3Workspace holds the buffers of the fuse3 forward and backward
// passes for up to Batch flows, allocated once. Threads is the number of
// workers; gradients are reduced over workers in a fixed order, so
// results are reproducible for a fixed Threads. Not safe for concurrent
// use.
type Fuse3Workspace struct {
	Batch   int
	Threads int
	// Pool, if set, runs the workers on its threads (as Workspace.Pool).
	Pool  *kernels.Pool
	m     *Fuse3
	train bool

	workers []*fuse3Worker
	flows   []*fuse3Flow // per flow, training only
	n       int          // flows in the last training forward
	in      *Fuse3Batch  // copy of the last training input
	pre     bool         // the last training forward was a pre-training one
	errs    []error      // (Batch) per-flow errors
	sums    []float64    // (3·Batch) per-flow pre-training loss sums
	noise   Fuse3Noise   // drawn pre-training noise (training only)
	packs   []blockPacks // encoder weights packed for GemmPacked (inference)
	tpacks  []blockPacks // encoder weights packed for training (forward + backward)
	dpacks  []blockPacks // byte decoder weights packed for pre-training
}

// trainStacks packs the current weights for a training forward or
// backward (O(parameters), once per batch) and returns the encoder and,
// for pre-training, the decoder stacks that use them.
func (ws *Fuse3Workspace) trainStacks(m *Fuse3, pre bool) (enc, dec *Stack) {
	enc = m.encoder(m.P)
	repackBlocks(&ws.tpacks, enc.Dims, enc.Blocks, true)
	enc.packs = ws.tpacks
	if pre {
		dec = m.decoder(m.P)
		repackBlocks(&ws.dpacks, dec.Dims, dec.Blocks, true)
		dec.packs = ws.dpacks
	}
	return enc, dec
}

// fuse3Worker is one goroutine's scratch and gradient accumulator.
type fuse3Worker struct {
	enc  *stackScratch
	acts *stackActs // inference activations
	emb  []float32  // (L, E) assembled tokens
	demb []float32  // (L, E) their gradient
	dout []float32  // (L, E) gradient of the encoder output
	cls  []float32  // (E) CLS sum
	grad *Fuse3Params
	gw   multimodal.Weights // views of grad's embedding gradients
	pre  *fuse3PreScratch
}

// fuse3Flow is one flow's saved training state.
type fuse3Flow struct {
	enc      *stackActs
	encScale []float32
	dropMask dropoutMask // (L_enc, E) dropout scale, empty when off
	pre      *fuse3PreFlow
}

// NewWorkspace allocates buffers for batches of up to batch flows on
// threads workers (<= 0: GOMAXPROCS). train adds what training needs:
// saved activations per flow (about 4.5 MB per flow for the 443-token
// classifier) and a gradient set per worker.
func (m *Fuse3) NewWorkspace(batch, threads int, train bool) *Fuse3Workspace {
	threads = kernels.Threads(threads)
	threads = max(1, min(threads, batch))
	ws := &Fuse3Workspace{Batch: batch, Threads: threads, m: m, train: train, errs: make([]error, batch)}
	ed := encoderDims(m.Cfg)
	E := m.Cfg.EmbedDim
	pre := m.Cfg.Task == "pretrain"
	L := m.Layout.Tokens
	Lenc := L
	if pre {
		Lenc = m.preEncTokens()
	}
	for w := 0; w < threads; w++ {
		wk := &fuse3Worker{enc: newStackScratch(ed, Lenc, train), emb: make([]float32, L*E), cls: make([]float32, E)}
		if train {
			wk.demb = make([]float32, L*E)
			wk.dout = make([]float32, Lenc*E)
			wk.grad = m.NewGrads()
			wk.gw = wk.grad.Emb
		} else {
			wk.acts = newStackActs(ed, m.Cfg.Depth, Lenc, false)
		}
		if pre {
			wk.pre = m.newPreScratch(train)
		}
		ws.workers = append(ws.workers, wk)
	}
	if train {
		ws.in = m.NewFuse3Batch(batch)
		if pre {
			ws.sums = make([]float64, 3*batch)
			ws.noise = Fuse3Noise{Bytes: make([]float32, batch*m.Tokens), Sizes: make([]float32, batch*m.Cfg.SeqLen), IATs: make([]float32, batch*m.Cfg.SeqLen)}
		}
		for i := 0; i < batch; i++ {
			f := &fuse3Flow{encScale: make([]float32, m.Cfg.Depth), enc: newStackActs(ed, m.Cfg.Depth, Lenc, true)}
			if pre {
				f.pre = m.newPreFlow()
			}
			ws.flows = append(ws.flows, f)
		}
	}
	return ws
}

// copyInput keeps a copy of the training input (so Backward does not
// depend on the caller's buffers).
func (ws *Fuse3Workspace) copyInput(b *Fuse3Batch) {
	m := ws.m
	nb, sl := m.Cfg.ByteLength, m.Cfg.SeqLen
	ws.in.N = b.N
	copy(ws.in.Bytes, b.Bytes[:b.N*nb])
	if m.Layout.Sizes {
		copy(ws.in.Sizes, b.Sizes[:b.N*sl])
	}
	if m.Layout.IATs {
		copy(ws.in.IATs, b.IATs[:b.N*sl])
	}
}

// head writes logits (C) = head.weight · h (no bias).
func (m *Fuse3) head(h, logits []float32) {
	E := m.Cfg.EmbedDim
	for c := range logits[:m.Cfg.NumClasses] {
		w := m.P.HeadW[c*E : c*E+E]
		var v float32
		for e, hv := range h[:E] {
			v += w[e] * hv
		}
		logits[c] = v
	}
}

// encodeCLS runs the encoder in inference on the assembled tokens emb
// (L, E) and leaves the final-norm outputs of the CLS rows in
// wk.acts.Out (other rows are not final). Blocks 0..depth−2 run on every
// token; the last block's out_proj and the final add + RMSNorm run only
// on the CLS rows the head reads (for 443 tokens this skips 440 rows of
// the last out_proj, about 7 % of the forward).
//
// packs are the encoder weights packed once per batch (nil: pack inside
// each GEMM).
func (m *Fuse3) encodeCLS(emb []float32, wk *fuse3Worker, packs []blockPacks) {
	st := m.encoder(m.P)
	d, depth, L := st.Dims, len(st.Blocks), m.Layout.Tokens
	dm, di := d.DModel, d.DInner
	a, s := wk.acts, wk.enc
	var bp *blockPacks
	if packs != nil {
		bp = &packs[depth-1]
	}
	// After the first depth−1 blocks, a.Res[depth−1] is the residual
	// stream entering the last block (the sub-stack's own final norm is
	// computed and discarded).
	if depth > 1 {
		first := &Stack{Dims: d, Blocks: st.Blocks[:depth-1], NormF: st.NormF}
		var fp []blockPacks
		if packs != nil {
			fp = packs[:depth-1]
		}
		first.forwardPacked(L, emb, nil, a, s, 0, fp)
	} else {
		copy(a.Res[0][:L*dm], emb[:L*dm])
	}
	res, hid := a.Res[depth-1], a.Hid[depth-1]
	b := &st.Blocks[depth-1]
	kernels.AddRMSNormForward(L, dm, res, nil, 1, res, b.NormW, normEps, s.nrm, s.rstd)
	mixerForwardPacked(d, b, bp, L, s.nrm, hid, L-1, s.mix) // out_proj for the byte CLS (last row) only
	var outPack *kernels.PackedB
	if bp != nil {
		outPack = bp.out
	}
	for _, r := range m.Layout.CLS {
		if r != L-1 {
			s.mix.linear(outPack, 1, dm, di, s.mix.yg[r*di:(r+1)*di], di, b.OutProjW, hid[r*dm:(r+1)*dm], dm)
		}
		kernels.AddRMSNormForward(1, dm, res[r*dm:(r+1)*dm], hid[r*dm:(r+1)*dm], 1, a.Res[depth][r*dm:(r+1)*dm], st.NormF, normEps, a.Out[r*dm:(r+1)*dm], a.RstdF[r:r+1])
	}
}

func (m *Fuse3) checkClassify(b *Fuse3Batch, ws *Fuse3Workspace, logits []float32, train bool) error {
	if m.Cfg.Task != "classify" {
		return fmt.Errorf("model: fuse3: classification needs a classifier, this model's task is %q", m.Cfg.Task)
	}
	if err := m.checkInput(b, ws, train); err != nil {
		return err
	}
	if len(logits) < b.N*m.Cfg.NumClasses {
		return fmt.Errorf("model: fuse3: logits buffer of %d for %d flows × %d classes", len(logits), b.N, m.Cfg.NumClasses)
	}
	return nil
}

// Forward classifies b.N flows into logits (N, NumClasses), eval mode.
func (m *Fuse3) Forward(b *Fuse3Batch, logits []float32, ws *Fuse3Workspace) error {
	if err := m.checkClassify(b, ws, logits, false); err != nil {
		return err
	}
	if ws.train {
		return m.ForwardTrain(b, logits, ws, TrainOptions{})
	}
	C := m.Cfg.NumClasses
	errs := ws.errs[:b.N]
	// Pack the encoder weights once per batch unless the batch is a single
	// flow (then packing inside the GEMM costs the same).
	var packs []blockPacks
	if b.N > 1 {
		if len(ws.packs) != len(m.P.Blocks) {
			ws.packs = make([]blockPacks, len(m.P.Blocks))
		}
		for i := range ws.packs {
			ws.packs[i].repack(encoderDims(m.Cfg), &m.P.Blocks[i])
		}
		packs = ws.packs
	}
	ws.Pool.For(b.N, ws.Threads, func(w, i int) {
		wk := ws.workers[w]
		if errs[i] = m.Layout.Forward(wk.emb, &m.P.Emb, m.flowInput(b, i)); errs[i] != nil {
			return
		}
		m.encodeCLS(wk.emb, wk, packs)
		m.Layout.CLSSum(wk.cls, wk.acts.Out)
		m.head(wk.cls, logits[i*C:(i+1)*C])
	})
	return firstFlowErr(errs)
}

func firstFlowErr(errs []error) error {
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("model: fuse3: flow %d: %w", i, err)
		}
	}
	return nil
}

// drawTrain draws every flow's drop-path scales (sequentially, so the
// draws do not depend on the thread count) and a dropout seed per flow.
func (ws *Fuse3Workspace) drawTrain(B int, opt TrainOptions) ([]uint64, error) {
	seeds := make([]uint64, B)
	if err := drawTrainFlows(opt, ws.m.Cfg.Depth, func(i int) []float32 { return ws.flows[i].encScale }, seeds); err != nil {
		return nil, fmt.Errorf("model: fuse3: %w", err)
	}
	return seeds, nil
}

// ForwardTrain runs the training forward of b.N flows (drop-path and
// dropout drawn from opt.Rand), saving what Backward needs in ws. With
// zero rates it computes exactly Forward's logits.
func (m *Fuse3) ForwardTrain(b *Fuse3Batch, logits []float32, ws *Fuse3Workspace, opt TrainOptions) error {
	if err := m.checkClassify(b, ws, logits, true); err != nil {
		return err
	}
	seeds, err := ws.drawTrain(b.N, opt)
	if err != nil {
		return err
	}
	ws.copyInput(b)
	ws.n, ws.pre = b.N, false
	C, L, E := m.Cfg.NumClasses, m.Layout.Tokens, m.Cfg.EmbedDim
	enc, _ := ws.trainStacks(m, false)
	errs := ws.errs[:b.N]
	ws.Pool.For(b.N, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		if errs[i] = m.Layout.Forward(wk.emb, &m.P.Emb, m.flowInput(ws.in, i)); errs[i] != nil {
			return
		}
		f.dropMask.apply(wk.emb[:L*E], opt.DropRate, seeds[i])
		enc.forward(L, wk.emb, f.encScale, f.enc, wk.enc, 0)
		m.Layout.CLSSum(wk.cls, f.enc.Out)
		m.head(wk.cls, logits[i*C:(i+1)*C])
	})
	return firstFlowErr(errs)
}

// Backward back-propagates dlogits (N, NumClasses), the gradient of the
// loss with respect to the logits of the last ForwardTrain, and
// accumulates (+=) the parameter gradients into g.
func (m *Fuse3) Backward(dlogits []float32, ws *Fuse3Workspace, g *Fuse3Params) error {
	if ws == nil || ws.m != m || !ws.train || ws.pre {
		return fmt.Errorf("model: fuse3: Backward needs a classifier ForwardTrain on this workspace first")
	}
	C, E, L, B := m.Cfg.NumClasses, m.Cfg.EmbedDim, m.Layout.Tokens, ws.n
	if len(dlogits) < B*C {
		return fmt.Errorf("model: fuse3: dlogits has %d values, want %d×%d", len(dlogits), B, C)
	}
	if g == nil || len(g.Flat()) != len(m.P.Flat()) {
		return fmt.Errorf("model: fuse3: gradient set was not made by this model's NewGrads")
	}
	enc, _ := ws.trainStacks(m, false)
	// The loss reads the CLS rows only: the final norm and the last
	// out_proj back-propagate rows [first CLS, L).
	lastRows := 0
	for _, r := range m.Layout.CLS {
		lastRows = max(lastRows, L-r)
	}
	nw := min(ws.Threads, B)
	for w := 0; w < nw; w++ {
		ws.workers[w].grad.Zero()
	}
	ws.Pool.For(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		gp := wk.grad
		dl := dlogits[i*C : (i+1)*C]
		// logits = head.weight · s, s = Σ h[CLS]: dW += dl ⊗ s, ds = head.weightᵀ · dl.
		m.Layout.CLSSum(wk.cls, f.enc.Out)
		ds := wk.demb[:E] // scratch, overwritten by the stack backward below
		clear(ds)
		for c, v := range dl {
			wr := m.P.HeadW[c*E : c*E+E]
			gw := gp.HeadW[c*E : c*E+E]
			for e := range ds {
				gw[e] += v * wk.cls[e]
				ds[e] += v * wr[e]
			}
		}
		clear(wk.dout[:L*E])
		m.Layout.CLSSumBackward(wk.dout, ds)
		enc.backwardRows(L, f.encScale, f.enc, wk.dout, m.encoder(gp), wk.enc, wk.demb, lastRows)
		f.dropMask.backward(wk.demb)
		m.Layout.Backward(&wk.gw, wk.demb, m.flowInput(ws.in, i))
	})
	for w := 0; w < nw; w++ {
		g.core.addFrom(&ws.workers[w].grad.core)
	}
	return nil
}

// SetFlow writes flow i of b from a flow's views: the first ByteLength
// bytes of v.Bytes normalised (multimodal.NormalizeBytes), the size ids
// (multimodal.SizeIDs; signed when m.Opt.SignedSizes) and the transformed
// IATs (multimodal.IATValues). A sequence longer than the view's
// repr.SeqLen packets cannot be filled.
func (m *Fuse3) SetFlow(b *Fuse3Batch, i int, v *repr.View) error {
	nb, sl := m.Cfg.ByteLength, m.Cfg.SeqLen
	switch {
	case i < 0 || i >= b.N:
		return fmt.Errorf("model: fuse3: flow %d outside the batch of %d", i, b.N)
	case nb > len(v.Bytes):
		return fmt.Errorf("model: fuse3: byte length %d exceeds the %d-byte view", nb, len(v.Bytes))
	case sl > repr.SeqLen && (m.Layout.Sizes || m.Layout.IATs):
		return fmt.Errorf("model: fuse3: sequence length %d exceeds the view's %d packets", sl, repr.SeqLen)
	case len(b.Bytes) < (i+1)*nb || len(b.Sizes) < (i+1)*sl || len(b.IATs) < (i+1)*sl:
		return fmt.Errorf("model: fuse3: batch buffers too short for flow %d", i)
	}
	multimodal.NormalizeBytes(b.Bytes[i*nb:(i+1)*nb], v.Bytes[:nb])
	var tmp [repr.SeqLen]float32
	if m.Layout.Sizes {
		multimodal.SizeIDs(tmp[:], v, m.Opt.SignedSizes)
		copy(b.Sizes[i*sl:(i+1)*sl], tmp[:sl])
	}
	if m.Layout.IATs {
		multimodal.IATValues(tmp[:], v)
		copy(b.IATs[i*sl:(i+1)*sl], tmp[:sl])
	}
	return nil
}

// InitHead re-draws head.weight from trunc_normal(std, cut at ±2), as the
// official fine-tune does (std 2e-5) when it starts from a checkpoint.
func (m *Fuse3) InitHead(std float64, seed uint64) {
	truncNormal(rand.New(rand.NewPCG(seed, 0x6675736533686561)), m.P.HeadW, std) // "fuse3hea"
}
