package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model/arch"
)

// Model is a NetMamba byte model: the classifier (Task "classify") or the
// MAE pre-training model (Task "pretrain"). Its parameters are read-only
// during Forward, so one Model can serve several goroutines, each with its
// own Workspace.
type Model struct {
	Cfg    arch.Config // normalised
	P      *Params
	Tokens int // byte tokens: ByteLength/Stride (the CLS token is one more)
}

// New returns a model with zeroed parameters for cfg (see Normalize).
func New(cfg arch.Config) (*Model, error) {
	cfg, err := Normalize(cfg)
	if err != nil {
		return nil, err
	}
	return &Model{Cfg: cfg, P: newParams(cfg), Tokens: cfg.ByteLength / cfg.Stride}, nil
}

// FromTensors builds a model from tensors under the official names (a
// state_dict or safetensors file). Missing, unexpected and mis-shaped
// tensors are reported together.
func FromTensors(cfg arch.Config, ts map[string]*checkpoint.Tensor) (*Model, error) {
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := m.P.load(ts); err != nil {
		return nil, err
	}
	return m, nil
}

// Tensors returns copies of the parameters under the official names.
func (m *Model) Tensors() map[string]*checkpoint.Tensor { return m.P.Tensors() }

// NewGrads returns a zeroed gradient set with the model's layout and names.
func (m *Model) NewGrads() *Params { return newParams(m.Cfg) }

// encoder returns the encoder stack over parameter set p (weights or grads).
func (m *Model) encoder(p *Params) *Stack {
	return &Stack{Dims: encoderDims(m.Cfg), Blocks: p.Blocks, NormF: p.NormF}
}

// decoder returns the MAE decoder stack over parameter set p.
func (m *Model) decoder(p *Params) *Stack {
	return &Stack{Dims: decoderDims(m.Cfg), Blocks: p.DecBlocks, NormF: p.DecNormF}
}

// NormalizeBytes converts byte-view bytes to model inputs exactly as the
// official loaders (ToTensor + Normalize(0.5, 0.5)) do in float32:
// v = float32(b)/255, then (v−0.5)/0.5.
func NormalizeBytes(src []byte, dst []float32) {
	dst = dst[:len(src)]
	for i, b := range src {
		v := float32(b) / 255
		dst[i] = (v - 0.5) / 0.5
	}
}

// TrainOptions are the stochastic parts of a training forward.
type TrainOptions struct {
	DropPath float64    // maximum drop-path rate (official fine-tune and pre-train: 0.1)
	DropRate float64    // dropout on the embedded tokens (pos_drop; official 0)
	Rand     *rand.Rand // source of the drop-path and dropout draws; required when a rate > 0
}

// Workspace holds the buffers of Forward / ForwardTrain / Backward for up
// to Batch flows, allocated once. Threads is the number of workers
// (<= 0: GOMAXPROCS); gradients are reduced over workers in a fixed order,
// so results are reproducible for a fixed Threads.
type Workspace struct {
	Batch   int
	Threads int
	// Pool, if set, runs the workers on its threads; nil starts
	// goroutines per call (kernels.ParallelFor). A pool of at least
	// Threads threads gives the same results; a smaller one runs fewer
	// workers.
	Pool  *kernels.Pool
	train bool

	workers []*worker
	flows   []*flowState // per flow, training only
	n       int          // flows in the current training batch
	x       []float32    // training input copy (B, ByteLength)
	mae     bool
	packs   []blockPacks // encoder weights packed for GemmPacked (inference)
	tpacks  []blockPacks // encoder weights packed for training (forward + backward)
	dpacks  []blockPacks // MAE decoder weights packed for training
	seeds   []uint64     // (Batch) per-flow dropout seeds of the last training forward
	sums    []float64    // (Batch) per-flow MAE loss sums
	noise   []float32    // (Batch, Tokens) drawn MAE masking noise
	plain   bool         // tests: train without packed weights and CLS-row backward (the reference path)
}

// trainStacks packs the current weights for a training forward or
// backward (O(parameters), once per batch) and returns the encoder and,
// for a pre-training model, decoder stacks that use them.
func (ws *Workspace) trainStacks(m *Model) (enc, dec *Stack) {
	enc = m.encoder(m.P)
	if m.Cfg.Task == "pretrain" {
		dec = m.decoder(m.P)
	}
	if ws.plain {
		return enc, dec
	}
	repackBlocks(&ws.tpacks, enc.Dims, enc.Blocks, true)
	enc.packs = ws.tpacks
	if dec != nil {
		repackBlocks(&ws.dpacks, dec.Dims, dec.Blocks, true)
		dec.packs = ws.dpacks
	}
	return enc, dec
}

// repack packs the encoder's Linear weights (once per batch).
func (ws *Workspace) repack(m *Model) {
	if len(ws.packs) != len(m.P.Blocks) {
		ws.packs = make([]blockPacks, len(m.P.Blocks))
	}
	d := encoderDims(m.Cfg)
	for i := range ws.packs {
		ws.packs[i].repack(d, &m.P.Blocks[i])
	}
}

// worker is one goroutine's scratch and gradient accumulator.
type worker struct {
	enc  *stackScratch
	dec  *stackScratch
	acts *stackActs // inference activations (encoder)
	emb  []float32  // (L, E)
	demb []float32  // (L, E) gradient of the embedding
	dout []float32  // (L, E)
	grad *Params    // per-worker gradients (training)
	mae  *maeScratch
}

// flowState is one flow's saved training state.
type flowState struct {
	enc      *stackActs
	encScale []float32
	dropMask dropoutMask // (L, E) dropout scale per element, empty when off
	mae      *maeFlow
}

// NewWorkspace allocates buffers for batches of up to batch flows. train
// adds what ForwardTrain/Backward need (saved activations per flow and a
// gradient set per worker).
func (m *Model) NewWorkspace(batch, threads int, train bool) *Workspace {
	threads = kernels.Threads(threads)
	if threads > batch {
		threads = batch
	}
	if threads < 1 {
		threads = 1
	}
	ws := &Workspace{Batch: batch, Threads: threads, train: train}
	ed := encoderDims(m.Cfg)
	L := m.Tokens + 1
	pre := m.Cfg.Task == "pretrain"
	for w := 0; w < threads; w++ {
		wk := &worker{}
		wk.enc = newStackScratch(ed, L, train)
		wk.emb = make([]float32, L*ed.DModel)
		if !train {
			wk.acts = newStackActs(ed, m.Cfg.Depth, L, false)
		} else {
			wk.demb = make([]float32, L*ed.DModel)
			wk.dout = make([]float32, L*ed.DModel)
			wk.grad = m.NewGrads()
		}
		if pre {
			wk.dec = newStackScratch(decoderDims(m.Cfg), L, train)
			wk.mae = newMAEScratch(m, train)
		}
		ws.workers = append(ws.workers, wk)
	}
	if train {
		ws.x = make([]float32, batch*m.Cfg.ByteLength)
		for i := 0; i < batch; i++ {
			f := &flowState{encScale: make([]float32, m.Cfg.Depth)}
			if pre {
				f.mae = newMAEFlow(m)
				f.enc = f.mae.enc
			} else {
				f.enc = newStackActs(ed, m.Cfg.Depth, L, true)
			}
			ws.flows = append(ws.flows, f)
		}
	}
	return ws
}

// embed writes the token embeddings of one flow's normalised bytes x
// (ByteLength) into emb (tokens+1, E): token t = patch_embed(x[s·t :
// s·t+s]) + pos_embed[t]; the CLS token cls_token + pos_embed[tokens] is
// last.
func (m *Model) embed(x, emb []float32) {
	E := m.Cfg.EmbedDim
	for t := 0; t <= m.Tokens; t++ {
		m.embedToken(x, t, emb[t*E:t*E+E])
	}
}

// embedToken writes token t's embedding (E) into row (t = Tokens: CLS).
func (m *Model) embedToken(x []float32, t int, row []float32) {
	E, S, T := m.Cfg.EmbedDim, m.Cfg.Stride, m.Tokens
	p := m.P
	pos := p.PosEmbed[t*E : t*E+E]
	row = row[:E]
	if t == T {
		for e := range row {
			row[e] = p.ClsToken[e] + pos[e]
		}
		return
	}
	xs := x[t*S : t*S+S]
	for e := range row {
		w := p.PatchW[e*S : e*S+S]
		v := p.PatchB[e]
		for k, xv := range xs {
			v += w[k] * xv
		}
		row[e] = v + pos[e]
	}
}

// embedBackward accumulates the gradients of embed for one flow: demb
// (tokens+1, E) → patch weights/bias, pos_embed and cls_token.
func (m *Model) embedBackward(x, demb []float32, g *Params) {
	E := m.Cfg.EmbedDim
	for t := 0; t <= m.Tokens; t++ {
		m.embedTokenBackward(x, t, demb[t*E:t*E+E], g)
	}
}

// embedTokenBackward accumulates the gradients of token t's embedding
// from its gradient row (E).
func (m *Model) embedTokenBackward(x []float32, t int, row []float32, g *Params) {
	E, S, T := m.Cfg.EmbedDim, m.Cfg.Stride, m.Tokens
	row = row[:E]
	pos := g.PosEmbed[t*E : t*E+E]
	for e, v := range row {
		pos[e] += v
	}
	if t == T {
		for e, v := range row {
			g.ClsToken[e] += v
		}
		return
	}
	xs := x[t*S : t*S+S]
	for e, v := range row {
		g.PatchB[e] += v
		w := g.PatchW[e*S : e*S+S]
		for k, xv := range xs {
			w[k] += v * xv
		}
	}
}

// head computes logits (C) = head.weight · h + head.bias for one CLS row h.
func (m *Model) head(h, logits []float32) {
	E, C := m.Cfg.EmbedDim, m.Cfg.NumClasses
	for c := 0; c < C; c++ {
		w := m.P.HeadW[c*E : c*E+E]
		v := float32(0)
		for e, hv := range h[:E] {
			v += w[e] * hv
		}
		logits[c] = v + m.P.HeadB[c]
	}
}

func (m *Model) checkBatch(x []float32, B int, ws *Workspace, out []float32, outPer int, train bool) error {
	switch {
	case m.Cfg.Task != "classify":
		return fmt.Errorf("model: Forward needs a classifier, this model's task is %q", m.Cfg.Task)
	case B < 0 || B > ws.Batch:
		return fmt.Errorf("model: batch %d outside the workspace's [0, %d]", B, ws.Batch)
	case train && !ws.train:
		return fmt.Errorf("model: workspace was not allocated for training")
	case len(x) < B*m.Cfg.ByteLength:
		return fmt.Errorf("model: input has %d values, want %d×%d", len(x), B, m.Cfg.ByteLength)
	case len(out) < B*outPer:
		return fmt.Errorf("model: logits buffer has %d values, want %d×%d", len(out), B, outPer)
	}
	return nil
}

// Forward classifies B flows: x (B, ByteLength) normalised inputs (see
// NormalizeBytes) → logits (B, NumClasses). Eval mode (no dropout).
func (m *Model) Forward(x []float32, B int, logits []float32, ws *Workspace) error {
	C, E, L, nb := m.Cfg.NumClasses, m.Cfg.EmbedDim, m.Tokens+1, m.Cfg.ByteLength
	if err := m.checkBatch(x, B, ws, logits, C, false); err != nil {
		return err
	}
	if ws.train {
		// A training workspace has no shared inference activations.
		return m.ForwardTrain(x, B, logits, ws, TrainOptions{})
	}
	enc := m.encoder(m.P)
	// Pack the weights once per batch unless the batch is a single flow
	// (then packing inside the GEMM costs the same).
	var packs []blockPacks
	if B > 1 {
		ws.repack(m)
		packs = ws.packs
	}
	ws.Pool.For(B, ws.Threads, func(w, i int) {
		wk := ws.workers[w]
		m.embed(x[i*nb:(i+1)*nb], wk.emb)
		enc.forwardPacked(L, wk.emb, nil, wk.acts, wk.enc, 1, packs)
		m.head(wk.acts.Out[(L-1)*E:], logits[i*C:(i+1)*C])
	})
	return nil
}

// ForwardTrain runs the training forward of B flows (drop-path and
// dropout drawn from opt.Rand), saving what Backward needs in ws.
// With zero rates it computes exactly Forward's logits.
func (m *Model) ForwardTrain(x []float32, B int, logits []float32, ws *Workspace, opt TrainOptions) error {
	C, E, L, nb := m.Cfg.NumClasses, m.Cfg.EmbedDim, m.Tokens+1, m.Cfg.ByteLength
	if err := m.checkBatch(x, B, ws, logits, C, true); err != nil {
		return err
	}
	seeds, err := ws.drawTrain(m.Cfg.Depth, B, opt)
	if err != nil {
		return err
	}
	ws.n, ws.mae = B, false
	copy(ws.x, x[:B*nb])
	enc, _ := ws.trainStacks(m)
	ws.Pool.For(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		m.embed(ws.x[i*nb:(i+1)*nb], wk.emb)
		f.dropMask.apply(wk.emb[:L*E], opt.DropRate, seeds[i])
		enc.forward(L, wk.emb, f.encScale, f.enc, wk.enc, 0)
		m.head(f.enc.Out[(L-1)*E:], logits[i*C:(i+1)*C])
	})
	return nil
}

// drawTrain draws the drop-path scales of every flow (sequentially, so the
// draws do not depend on the thread count) and a dropout seed per flow.
func (ws *Workspace) drawTrain(depth, B int, opt TrainOptions) ([]uint64, error) {
	if cap(ws.seeds) < B {
		ws.seeds = make([]uint64, ws.Batch)
	}
	seeds := ws.seeds[:B]
	if err := drawTrainFlows(opt, depth, func(i int) []float32 { return ws.flows[i].encScale }, seeds); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return seeds, nil
}

// dropScale draws timm's DropPath for one sample: 0 with probability p,
// else 1/(1−p).
func dropScale(p float64, rng *rand.Rand) float32 {
	if p <= 0 {
		return 1
	}
	if rng.Float64() < p {
		return 0
	}
	return float32(1 / (1 - p))
}

// Backward back-propagates dlogits (B, NumClasses), the gradient of the
// loss with respect to the logits of the last ForwardTrain, and
// accumulates (+=) the parameter gradients into g.
func (m *Model) Backward(dlogits []float32, ws *Workspace, g *Params) error {
	if !ws.train || ws.mae {
		return fmt.Errorf("model: Backward needs a classifier ForwardTrain on this workspace first")
	}
	C, E, L, nb, B := m.Cfg.NumClasses, m.Cfg.EmbedDim, m.Tokens+1, m.Cfg.ByteLength, ws.n
	if len(dlogits) < B*C {
		return fmt.Errorf("model: dlogits has %d values, want %d×%d", len(dlogits), B, C)
	}
	enc, _ := ws.trainStacks(m)
	nw := min(ws.Threads, B)
	for w := 0; w < nw; w++ {
		ws.workers[w].grad.Zero()
	}
	ws.Pool.For(B, ws.Threads, func(w, i int) {
		wk, f := ws.workers[w], ws.flows[i]
		gp := wk.grad
		dl := dlogits[i*C : (i+1)*C]
		h := f.enc.Out[(L-1)*E : L*E]
		// logits = head.weight · h + b
		clear(wk.dout[:L*E])
		dh := wk.dout[(L-1)*E : L*E]
		for c, v := range dl {
			gp.HeadB[c] += v
			hw := m.P.HeadW[c*E : c*E+E]
			gw := gp.HeadW[c*E : c*E+E]
			for e := range dh {
				gw[e] += v * h[e]
				dh[e] += v * hw[e]
			}
		}
		// The loss reads the CLS row only.
		rows := 1
		if ws.plain {
			rows = 0
		}
		enc.backwardRows(L, f.encScale, f.enc, wk.dout, m.encoder(gp), wk.enc, wk.demb, rows)
		f.dropMask.backward(wk.demb)
		m.embedBackward(ws.x[i*nb:(i+1)*nb], wk.demb, gp)
	})
	for w := 0; w < nw; w++ {
		g.addFrom(ws.workers[w].grad)
	}
	return nil
}
