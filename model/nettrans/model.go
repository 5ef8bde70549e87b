// Package nettrans is the NetMamba+ attention backbone ("NetTrans",
// official block_name "flash-gated"): a pre-norm transformer encoder of
// width 192, 4 blocks, 8 heads of 24, with a GeGLU feed-forward, and its
// two classifiers:
//
//   - bytes (arch "nettrans", official net_fgt_base_classifier): Conv1d
//     stride embedding of the 1600-byte view (400 tokens) + pos_embed, the
//     CLS token appended LAST (+ pos_embed[400]) → 401 tokens; logits =
//     head(norm_out[400]) with bias.
//   - fuse3 (arch "fuse3_nettrans", official fuse3_fgt_base_classifier):
//     the NetMamba+ multimodal embedding (package multimodal; 443 tokens
//     with sizes and IATs, fewer in modality ablations) and logits =
//     head(Σ norm_out[CLS rows]) without bias. Modalities (arch.Config
//     .Modalities) select ablations; a dropped modality drops its segment
//     and its CLS from the sum, while pos_embed keeps all 443 rows so
//     checkpoints load into every variant:
//     bytes,sizes,iats → 443 tokens [20 size, CLS, 20 iat, CLS, 400 byte, CLS],
//     head h442+h20+h41; bytes,sizes → 422 tokens [20 size, CLS, 400 byte,
//     CLS], head h421+h20; bytes → 401 tokens [400 byte, CLS], head h400
//     (see package multimodal for the positions).
//
// Block (pre-norm, eps 1e-5; final LayerNorm eps 1e-6):
//
//	h = LN1(x); q,k,v = h·W{q,k,v}ᵀ        // (L, D) each, no bias
//	x = x + MHA(q,k,v)·Woᵀ + bo             // softmax(q_h·k_hᵀ/√24)·v_h per head, no mask
//	h = LN2(x); u = h·W1ᵀ + b1              // (L, 2F), F = 4D = 768
//	x = x + (u[:, :F] ⊙ GELU(u[:, F:]))·W2ᵀ + b2
//
// Every layer has an explicit forward and backward. Flows are independent,
// so a batch is processed flow by flow on parallel workers (Workspace.Pool), each
// with its own activations, scratch and gradient buffer; training runs
// forward and backward of a flow back to back, so activations are held for
// one flow per worker, not for the whole batch. Training entry points:
//
//   - ForwardBackward: fused step with its own label-smoothed CE.
//   - ForwardTrain + Backward: the split step of loops that compute the
//     loss from the logits themselves (CE, LDAM); ForwardTrain keeps each
//     flow's activations within Workspace.StashBytes, Backward recomputes
//     the forward of the flows beyond it (see split.go).
//   - ForwardBackwardPretrain: a model built with Task "pretrain" (the
//     official *_fgt_base_pretrain: masked byte MAE with a NetTrans
//     decoder, plus size and IAT masking for fuse3; see pretrain.go).
//
// Regularisation is the official block Dropout (TrainOptions.Dropout,
// 0.1): the official NetTrans has no drop-path.
package nettrans

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/multimodal"
)

// Architecture names (arch.Config.Arch) handled by this package.
const (
	ArchBytes = "nettrans"       // byte-only classifier (net_fgt_base_classifier)
	ArchFuse3 = "fuse3_nettrans" // multimodal classifier (fuse3_fgt_base_classifier)
)

// LayerNorm epsilons of the official model.
const (
	blockEps = 1e-5
	finalEps = 1e-6
)

// dims are the derived sizes of a normalised config.
type dims struct {
	fuse3                  bool
	D, H, dh, F            int
	depth, classes, stride int
	patches                int // byte tokens
	L                      int // tokens in the sequence
	posTokens              int // rows of pos_embed
	byteLen                int
	seqLen                 int
	// pre-training (Task "pretrain"): L is the encoder's token count (the
	// visible byte tokens only); fullL the unmasked embedding's.
	pretrain          bool
	fullL             int
	keep              int // visible byte tokens: int(patches·(1−MaskRatio))
	sizeKeep, iatKeep int // unmasked sizes / IATs: int(SeqLen·(1−0.15))
	decD, decDepth    int
	sizeVocab         int  // size classes of size_decoder_pred (1503)
	sizes, iats       bool // fuse3 modalities
}

// Normalize fills the zero fields of cfg with the official defaults
// (width 192, depth 4, 8 heads, 1600 bytes, stride 4, sequence length 20,
// all three modalities for fuse3; for Task "pretrain" decoder width 128,
// depth 2, mask ratio 0.9 and no classes) and checks it.
func Normalize(cfg arch.Config) (arch.Config, error) {
	switch cfg.Arch {
	case ArchBytes, ArchFuse3:
	default:
		return cfg, fmt.Errorf("nettrans: architecture %q is not %q or %q", cfg.Arch, ArchBytes, ArchFuse3)
	}
	if cfg.Task == "" {
		cfg.Task = "classify"
	}
	if cfg.Task != "classify" && cfg.Task != "pretrain" {
		return cfg, fmt.Errorf("nettrans: task %q is not supported (classify or pretrain)", cfg.Task)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.ByteLength, 1600)
	def(&cfg.Stride, 4)
	def(&cfg.EmbedDim, 192)
	def(&cfg.Depth, 4)
	def(&cfg.NumHeads, 8)
	if cfg.Arch == ArchFuse3 {
		def(&cfg.SeqLen, 20)
		if len(cfg.Modalities) == 0 {
			cfg.Modalities = []string{multimodal.ModBytes, multimodal.ModSizes, multimodal.ModIATs}
		}
	} else if len(cfg.Modalities) > 0 && !(len(cfg.Modalities) == 1 && cfg.Modalities[0] == multimodal.ModBytes) {
		return cfg, fmt.Errorf("nettrans: the byte classifier reads bytes only, not %v (use %q)", cfg.Modalities, ArchFuse3)
	}
	pre := cfg.Task == "pretrain"
	if pre {
		def(&cfg.DecoderEmbedDim, 128)
		def(&cfg.DecoderDepth, 2)
		if cfg.MaskRatio == 0 {
			cfg.MaskRatio = 0.9
		}
		cfg.NumClasses = 0
	}
	switch {
	case pre && (cfg.DecoderEmbedDim%cfg.NumHeads != 0 || cfg.DecoderDepth <= 0):
		return cfg, fmt.Errorf("nettrans: decoder width %d / depth %d: the width must be a multiple of %d heads, the depth positive", cfg.DecoderEmbedDim, cfg.DecoderDepth, cfg.NumHeads)
	case pre && !(cfg.MaskRatio > 0 && cfg.MaskRatio < 1):
		return cfg, fmt.Errorf("nettrans: mask ratio %g outside (0, 1)", cfg.MaskRatio)
	case !pre && cfg.NumClasses <= 0:
		return cfg, fmt.Errorf("nettrans: num_classes %d must be positive", cfg.NumClasses)
	case cfg.EmbedDim%cfg.NumHeads != 0:
		return cfg, fmt.Errorf("nettrans: width %d is not a multiple of %d heads", cfg.EmbedDim, cfg.NumHeads)
	case cfg.Stride <= 0 || cfg.ByteLength%cfg.Stride != 0:
		return cfg, fmt.Errorf("nettrans: byte length %d is not a multiple of the stride %d", cfg.ByteLength, cfg.Stride)
	case cfg.Arch == ArchFuse3 && (cfg.SeqLen <= 0 || cfg.SeqLen > 64):
		return cfg, fmt.Errorf("nettrans: sequence length %d outside [1, 64]", cfg.SeqLen)
	case cfg.Depth <= 0:
		return cfg, fmt.Errorf("nettrans: depth %d must be positive", cfg.Depth)
	}
	return cfg, nil
}

// Model is a NetTrans classifier: its normalised config and parameters.
// A Model is read-only during its forward and backward calls, so one
// Model can serve concurrent calls with distinct Workspaces. Built with
// Task "pretrain" it is a pre-training model (decoder and size / IAT
// heads, no classifier head) for ForwardBackwardPretrain only.
type Model struct {
	Cfg arch.Config
	P   *Params
	// Layout is the fuse3 token layout (nil for the byte classifier).
	Layout *multimodal.Layout
	d      dims
	scale  float32    // d_head^-½
	enc    blockShape // encoder blocks
	dec    blockShape // pre-training byte decoder blocks
}

func newModel(cfg arch.Config) (*Model, error) {
	cfg, err := Normalize(cfg)
	if err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg}
	d := dims{fuse3: cfg.Arch == ArchFuse3, D: cfg.EmbedDim, H: cfg.NumHeads, dh: cfg.EmbedDim / cfg.NumHeads,
		F: 4 * cfg.EmbedDim, depth: cfg.Depth, classes: cfg.NumClasses, stride: cfg.Stride,
		patches: cfg.ByteLength / cfg.Stride, byteLen: cfg.ByteLength, seqLen: cfg.SeqLen}
	if d.fuse3 {
		m.Layout, err = multimodal.NewLayout(d.D, cfg.SeqLen, cfg.ByteLength, cfg.Stride, cfg.Modalities)
		if err != nil {
			return nil, fmt.Errorf("nettrans: %w", err)
		}
		d.L, d.posTokens = m.Layout.Tokens, m.Layout.PosTokens()
		d.sizes, d.iats = m.Layout.Sizes, m.Layout.IATs
	} else {
		d.L, d.posTokens = d.patches+1, d.patches+1
	}
	d.fullL = d.L
	if cfg.Task == "pretrain" {
		d.pretrain = true
		d.keep = int(float64(d.patches) * (1 - cfg.MaskRatio))
		d.sizeKeep = int(float64(d.seqLen) * (1 - sizeMaskRatio))
		d.iatKeep = int(float64(d.seqLen) * (1 - iatMaskRatio))
		d.decD, d.decDepth = cfg.DecoderEmbedDim, cfg.DecoderDepth
		d.sizeVocab = multimodal.NumSizeIDs
		if d.keep < 1 {
			return nil, fmt.Errorf("nettrans: mask ratio %g leaves no visible byte token of %d", cfg.MaskRatio, d.patches)
		}
		// encoder: [size seg, iat seg] + visible bytes + byte CLS
		d.L = d.fullL - d.patches + d.keep
		m.dec = newBlockShape(d.patches+1, d.decD, d.H)
	}
	m.d = d
	m.scale = float32(1 / math.Sqrt(float64(d.dh)))
	m.enc = newBlockShape(d.L, d.D, d.H)
	m.P = newParams(d)
	return m, nil
}

// New builds a model with the official initialisation, drawn from a
// generator seeded with seed: trunc_normal(.02) for pos_embed, CLS tokens,
// indicators, the head and (fuse3) every Linear; lecun_normal for the
// stride-embedding conv; PyTorch's default kaiming_uniform(√5) for the
// byte classifier's block Linears; biases 0, LayerNorms 1/0.
func New(cfg arch.Config, seed uint64) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	m.P.initOfficial(m.d, seed)
	return m, nil
}

// FromTensors builds a model from official state_dict tensors (e.g. a
// safetensors file), checking names and shapes.
func FromTensors(cfg arch.Config, ts map[string]*checkpoint.Tensor) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	if err := m.P.Load(ts); err != nil {
		return nil, err
	}
	return m, nil
}

// Tensors exports the parameters under their official names.
func (m *Model) Tensors() map[string]*checkpoint.Tensor { return m.P.Tensors() }

// NewGrads returns a zeroed gradient set laid out like the parameters.
func (m *Model) NewGrads() *Params { return newParams(m.d) }

// Tokens is the sequence length the encoder runs on.
func (m *Model) Tokens() int { return m.d.L }

// Batch is the input of N flows, row-major.
type Batch struct {
	N     int
	Bytes []float32 // (N, ByteLength) normalised bytes (multimodal.FillInput)
	Sizes []float32 // (N, SeqLen) size ids as floats (multimodal.FillInput); fuse3 with sizes only
	IATs  []float32 // (N, SeqLen) transformed IATs (multimodal.FillInput); fuse3 with iats only
}

func (m *Model) flowInput(b *Batch, i int) multimodal.Input {
	nb, sl := m.d.byteLen, m.d.seqLen
	in := multimodal.Input{Bytes: b.Bytes[i*nb : (i+1)*nb]}
	if m.Layout != nil && m.Layout.Sizes {
		in.Sizes = b.Sizes[i*sl : (i+1)*sl]
	}
	if m.Layout != nil && m.Layout.IATs {
		in.IATs = b.IATs[i*sl : (i+1)*sl]
	}
	return in
}

func (m *Model) checkBatch(b *Batch, ws *Workspace, logits []float32, train bool) error {
	nb, sl := m.d.byteLen, m.d.seqLen
	switch {
	case m.d.pretrain:
		return fmt.Errorf("nettrans: a pre-training model has no classifier head (use ForwardBackwardPretrain)")
	case ws == nil || ws.m != m:
		return fmt.Errorf("nettrans: workspace was not made by this model's NewWorkspace")
	case train && !ws.train:
		return fmt.Errorf("nettrans: workspace was not allocated for training")
	case b.N < 0:
		return fmt.Errorf("nettrans: batch of %d flows", b.N)
	case len(b.Bytes) < b.N*nb:
		return fmt.Errorf("nettrans: %d input bytes for %d flows of %d", len(b.Bytes), b.N, nb)
	case m.Layout != nil && m.Layout.Sizes && len(b.Sizes) < b.N*sl:
		return fmt.Errorf("nettrans: %d sizes for %d flows of %d", len(b.Sizes), b.N, sl)
	case m.Layout != nil && m.Layout.IATs && len(b.IATs) < b.N*sl:
		return fmt.Errorf("nettrans: %d IATs for %d flows of %d", len(b.IATs), b.N, sl)
	case len(logits) < b.N*m.d.classes:
		return fmt.Errorf("nettrans: logits buffer of %d for %d flows × %d classes", len(logits), b.N, m.d.classes)
	}
	return nil
}

// Workspace is the memory of Forward / ForwardBackward for one caller:
// per worker, the activations of one flow, the kernels' scratch and (for
// training) a gradient buffer. Allocated once by NewWorkspace; not safe
// for concurrent use.
type Workspace struct {
	// Threads is the number of workers (goroutines of kernels.ParallelFor or Pool),
	// fixed by NewWorkspace (changing it has no effect).
	Threads int
	// Pool, if set, runs the workers on its threads; nil starts
	// goroutines per call (kernels.ParallelFor). A pool of at least
	// Threads threads gives the same results; a smaller one runs fewer
	// workers.
	Pool    *kernels.Pool
	m       *Model
	train   bool
	workers []*worker
	losses  []float64
	// split training step (ForwardTrain → Backward): the inputs and
	// options of the last ForwardTrain.
	saved      Batch
	savedOpt   TrainOptions
	savedReady bool
	// StashBytes is the memory budget (bytes) for keeping the training
	// activations of every flow of a ForwardTrain so that Backward need
	// not recompute them (about 26 MB per flow for the 401-token byte
	// model). Flows beyond the budget are recomputed. NewWorkspace sets
	// DefaultStashBytes; 0 disables the stash (recompute everything).
	StashBytes int64
	// stash holds the training activations of stashN flows of the last
	// ForwardTrain (entry of a flow: stashSlot; grown on demand within
	// StashBytes).
	stash  []*activations
	stashN int
	// packs are the encoder weights packed by the last batched call.
	packs []blockPacks
}

// DefaultStashBytes is the default Workspace.StashBytes: 2 GiB, enough
// for a batch of 64 flows of the byte model (64 × 26 MB = 1.7 GB).
const DefaultStashBytes = 2 << 30

// worker is one goroutine's memory.
type worker struct {
	acts   *activations
	bw     *backScratch // training only
	grad   *Params      // training only
	attn   *kernels.AttentionScratch
	gemmWS kernels.Workspace
	// dropout of the current flow (training): rate, masks per block
	// (0 or 1/(1−rate) per element of each branch output) and their source.
	dropout float64
	pcg     *rand.PCG
	rng     *rand.Rand
	// held is the flow of the last ForwardTrain / Backward whose training
	// activations are in acts (-1: none), so Backward need not recompute it.
	held int
	// recLogits receives the logits of a recomputed forward (C).
	recLogits []float32
	pre       *pretrainActs // pre-training model, training workspace
	// packs are the workspace's packed encoder weights (nil before the
	// first batched call: GemmWS on the weights).
	packs []blockPacks
}

// drawMasks draws the dropout masks of flow i into the worker's training
// activations (or disables dropout for a zero rate).
func (wk *worker) drawMasks(opt TrainOptions, i int) { wk.drawMasksInto(wk.acts, opt, i) }

// drawMasksInto draws the dropout masks of flow i into the training
// activations acts.
func (wk *worker) drawMasksInto(acts *activations, opt TrainOptions, i int) {
	wk.dropout = opt.Dropout
	if opt.Dropout == 0 {
		return
	}
	wk.pcg.Seed(opt.Seed, uint64(i))
	keep := 1 / float32(1-opt.Dropout)
	for bi := range acts.blocks {
		a := &acts.blocks[bi]
		for _, mask := range [][]float32{a.dropAttn, a.dropFF} {
			for j := range mask {
				if wk.rng.Float64() < opt.Dropout {
					mask[j] = 0
				} else {
					mask[j] = keep
				}
			}
		}
	}
}

// NewWorkspace allocates a workspace for threads workers (<= 0:
// GOMAXPROCS). train adds the backward scratch and per-worker gradients
// (about 28 MB per worker for the 443-token model); a training workspace
// also grows, on its first ForwardTrain, a stash of per-flow activations
// of up to StashBytes (DefaultStashBytes).
func (m *Model) NewWorkspace(threads int, train bool) *Workspace {
	threads = kernels.Threads(threads)
	ws := &Workspace{Threads: threads, m: m, train: train, StashBytes: DefaultStashBytes}
	for w := 0; w < threads; w++ {
		wk := &worker{attn: kernels.NewAttentionScratch(), pcg: rand.NewPCG(0, 0), held: -1,
			recLogits: make([]float32, m.d.classes)}
		wk.rng = rand.New(wk.pcg)
		wk.acts = m.newActivations(train)
		if train {
			wk.bw = m.newBackScratch()
			wk.grad = m.NewGrads()
		}
		if train && m.d.pretrain {
			wk.pre = m.newPretrainActs()
		}
		ws.workers = append(ws.workers, wk)
	}
	return ws
}

// Forward classifies b.N flows into logits (N, NumClasses), eval mode.
func (m *Model) Forward(b *Batch, logits []float32, ws *Workspace) error {
	if err := m.checkBatch(b, ws, logits, false); err != nil {
		return err
	}
	C := m.d.classes
	ws.repack(m, false)
	ws.Pool.For(b.N, len(ws.workers), func(w, i int) {
		wk := ws.workers[w]
		wk.held = -1
		wk.dropout = 0
		m.forwardFlow(m.flowInput(b, i), wk.acts, wk, logits[i*C:(i+1)*C])
	})
	return nil
}

// TrainOptions choose the loss and the stochastic parts of a training step.
type TrainOptions struct {
	// LabelSmoothing ε: the target is (1−ε)·onehot + ε/C (PyTorch
	// cross_entropy label_smoothing; the official fine-tune uses 0.1).
	LabelSmoothing float64
	// Dropout is the rate of the Dropout applied to each block's attention
	// and feed-forward branch before its residual add (official: 0.1 in
	// training). 0 gives eval-mode gradients, as in the golden files.
	Dropout float64
	// Seed draws the dropout masks (and, for pre-training, the token
	// masks): flow i of the batch uses a generator seeded with (Seed, i),
	// so the masks do not depend on the thread count. Give each step its
	// own seed.
	Seed uint64
}

// ForwardBackward runs a training step's forward and backward for b.N
// flows with labels: it writes logits (N, NumClasses), returns the mean
// cross-entropy over the batch and OVERWRITES g with its gradient. The
// result is reproducible for a fixed ws.Threads: workers accumulate
// contiguous blocks of flows and are summed in worker order.
func (m *Model) ForwardBackward(b *Batch, labels []int, opt TrainOptions, logits []float32, g *Params, ws *Workspace) (float64, error) {
	if err := m.checkBatch(b, ws, logits, true); err != nil {
		return 0, err
	}
	if len(labels) < b.N {
		return 0, fmt.Errorf("nettrans: %d labels for %d flows", len(labels), b.N)
	}
	C := m.d.classes
	for i, y := range labels[:b.N] {
		if y < 0 || y >= C {
			return 0, fmt.Errorf("nettrans: label %d of flow %d outside [0, %d)", y, i, C)
		}
	}
	if !(opt.Dropout >= 0 && opt.Dropout < 1) {
		return 0, fmt.Errorf("nettrans: dropout rate %g outside [0, 1)", opt.Dropout)
	}
	if g == nil || len(g.buf) != len(m.P.buf) {
		return 0, fmt.Errorf("nettrans: gradient set was not made by this model's NewGrads")
	}
	if cap(ws.losses) < b.N {
		ws.losses = make([]float64, b.N)
	}
	losses := ws.losses[:b.N]
	for _, wk := range ws.workers {
		wk.grad.Zero()
	}
	inv := float32(1 / float64(max(b.N, 1)))
	ws.repack(m, true)
	ws.Pool.For(b.N, len(ws.workers), func(w, i int) {
		wk := ws.workers[w]
		lg := logits[i*C : (i+1)*C]
		in := m.flowInput(b, i)
		wk.held = -1
		wk.drawMasks(opt, i)
		m.forwardFlow(in, wk.acts, wk, lg)
		dl := wk.bw.dlogits
		losses[i] = crossEntropy(lg, labels[i], opt.LabelSmoothing, dl)
		for c := range dl {
			dl[c] *= inv
		}
		m.backwardFlow(in, wk.acts, dl, wk.grad, wk)
	})
	g.Zero()
	for _, wk := range ws.workers {
		g.addFrom(wk.grad)
	}
	var loss float64
	for _, l := range losses {
		loss += l
	}
	return loss / float64(max(b.N, 1)), nil
}

// crossEntropy returns −Σ_c t_c·log softmax(logits)_c for the smoothed
// target t = (1−ε)·onehot(y) + ε/C, and writes dL/dlogits = softmax − t
// into dlogits. Computed in float64.
func crossEntropy(logits []float32, y int, eps float64, dlogits []float32) float64 {
	C := len(logits)
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(sum)
	var loss float64
	for c, v := range logits {
		t := eps / float64(C)
		if c == y {
			t += 1 - eps
		}
		logp := float64(v) - lse
		loss -= t * logp
		dlogits[c] = float32(math.Exp(logp) - t)
	}
	return loss
}
