package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/multimodal"
	"github.com/netmamba/netmamba/model/nettrans"
	"github.com/netmamba/netmamba/repr"
)

// NetTransDropout is the official NetTrans block dropout (create_block's
// dropout=0.1 on each attention and feed-forward branch output).
const NetTransDropout = 0.1

// NetTransClassifier adapts a NetTrans classifier (package nettrans, arch
// "nettrans" or "fuse3_nettrans") to Classifier. Bytes come from
// Data.Bytes, unsigned size ids and transformed IATs from each flow's
// repr.View (as the official fuse3 transformer, size_key "sizes").
//
// The official NetTrans has no drop-path: its regulariser is the block
// Dropout (0.1), so the constructor's dropPath is not used and Dropout is
// set to NetTransDropout.
//
// Layer-wise lr decay and weight decay follow the NetMamba+ fine-tune
// (util/lr_decay.py get_layer_id_for_vit with num_layers = depth+1):
// cls_token, pos_embed and patch_embed.* → 0, blocks.i / encoder_blocks.i
// → i+1, the rest → depth+1. For the byte model that is NetMambaLayerID;
// for fuse3 (byte_cls_token, byte_embed… are not matched) it is
// Fuse3LayerID. The no-decay sets are the models' no_weight_decay():
// NetMambaNoDecayNames (bytes) and Fuse3NoDecayNames (fuse3).
type NetTransClassifier struct {
	M *nettrans.Model
	// Dropout is the block dropout rate of ForwardTrain (NetTransDropout).
	Dropout float64
	grads   *nettrans.Params
	params  []*Param
	ws      *nettrans.Workspace // training workspace
	evalWS  *nettrans.Workspace
	in      nettrans.Batch
	threads int
	batch   int
	pool    *kernels.Pool // UsePool
}

var (
	_ Pooled     = (*NetTransClassifier)(nil)
	_ Classifier = (*NetTransClassifier)(nil)
	_ Pretrainer = (*NetTransPretrain)(nil)
)

// NewNetTransClassifier wraps m for training with batches of up to batch
// flows on threads workers. dropPath is accepted for a uniform
// constructor and ignored (NetTrans has dropout, not drop-path).
func NewNetTransClassifier(m *nettrans.Model, batch, threads int, dropPath float64) *NetTransClassifier {
	_ = dropPath
	c := &NetTransClassifier{M: m, Dropout: NetTransDropout, grads: m.NewGrads(), threads: threads, batch: max(batch, 1)}
	c.params = pairParams(m.P.List(), c.grads.List())
	return c
}

// Threads implements Pooled.
// A batch has at most batch flows, so at most that many workers.
func (c *NetTransClassifier) Threads() int { return min(kernels.Threads(c.threads), c.batch) }

// UsePool implements Pooled.
func (c *NetTransClassifier) UsePool(p *kernels.Pool) {
	c.pool = p
	for _, ws := range []*nettrans.Workspace{c.ws, c.evalWS} {
		if ws != nil {
			ws.Pool = p
		}
	}
}

// NumClasses implements Classifier.
func (c *NetTransClassifier) NumClasses() int { return c.M.Cfg.NumClasses }

// Params implements Classifier.
func (c *NetTransClassifier) Params() []*Param { return c.params }

// ZeroGrad implements Classifier.
func (c *NetTransClassifier) ZeroGrad() { c.grads.Zero() }

// Depth implements Classifier.
func (c *NetTransClassifier) Depth() int { return c.M.Cfg.Depth }

// LayerID implements Classifier (see the type's doc).
func (c *NetTransClassifier) LayerID(name string) int {
	if c.M.Cfg.Arch == nettrans.ArchFuse3 {
		return Fuse3LayerID(name, c.M.Cfg.Depth)
	}
	return NetMambaLayerID(name, c.M.Cfg.Depth)
}

// NoDecay implements Classifier (see the type's doc).
func (c *NetTransClassifier) NoDecay() []string {
	if c.M.Cfg.Arch == nettrans.ArchFuse3 {
		return Fuse3NoDecayNames()
	}
	return NetMambaNoDecayNames()
}

// fillNetTrans writes the inputs of flows idx of d into b (grown when too
// small): normalised bytes, and for fuse3 with sizes / IATs the unsigned
// size ids and transformed IATs of each flow's view.
func fillNetTrans(cfg nettransInputs, d *Data, idx []int, b *nettrans.Batch) error {
	n, nb, sl := len(idx), cfg.byteLen, cfg.seqLen
	for _, i := range idx {
		if i < 0 || i >= d.N {
			return fmt.Errorf("train: %s: flow %d outside [0, %d)", d.Path, i, d.N)
		}
	}
	if nb > repr.ViewBytes || sl > repr.SeqLen {
		return fmt.Errorf("train: the model reads %d bytes and %d packets, views hold %d and %d", nb, sl, repr.ViewBytes, repr.SeqLen)
	}
	grow := func(s *[]float32, k int) []float32 {
		if cap(*s) < k {
			*s = make([]float32, k)
		}
		*s = (*s)[:k]
		return *s
	}
	b.N = n
	d.fillBytes(idx, nb, grow(&b.Bytes, n*nb))
	if !cfg.sizes && !cfg.iats {
		return nil
	}
	if len(d.Views) < d.N {
		return fmt.Errorf("train: %s: %d flow views for %d flows (fuse3 reads sizes and IATs from them)", d.Path, len(d.Views), d.N)
	}
	var tmp [repr.SeqLen]float32
	sizes, iats := grow(&b.Sizes, n*sl), grow(&b.IATs, n*sl)
	for j, i := range idx {
		v := &d.Views[i]
		if cfg.sizes {
			multimodal.SizeIDs(tmp[:], v, false)
			copy(sizes[j*sl:(j+1)*sl], tmp[:sl])
		}
		if cfg.iats {
			multimodal.IATValues(tmp[:], v)
			copy(iats[j*sl:(j+1)*sl], tmp[:sl])
		}
	}
	return nil
}

// nettransInputs says which inputs a NetTrans model reads.
type nettransInputs struct {
	byteLen, seqLen int
	sizes, iats     bool
}

func nettransInputsOf(m *nettrans.Model) nettransInputs {
	in := nettransInputs{byteLen: m.Cfg.ByteLength}
	if m.Layout != nil {
		in.seqLen, in.sizes, in.iats = m.Cfg.SeqLen, m.Layout.Sizes, m.Layout.IATs
	}
	return in
}

// Forward implements Classifier.
func (c *NetTransClassifier) Forward(d *Data, idx []int, logits []float32) error {
	if err := fillNetTrans(nettransInputsOf(c.M), d, idx, &c.in); err != nil {
		return err
	}
	if c.evalWS == nil {
		c.evalWS = c.M.NewWorkspace(c.threads, false)
		c.evalWS.Pool = c.pool
	}
	return c.M.Forward(&c.in, logits, c.evalWS)
}

// ForwardTrain implements Classifier: the dropout masks come from a seed
// drawn from rng, so a step is reproducible for a fixed thread count.
func (c *NetTransClassifier) ForwardTrain(d *Data, idx []int, logits []float32, rng *rand.Rand) error {
	if err := fillNetTrans(nettransInputsOf(c.M), d, idx, &c.in); err != nil {
		return err
	}
	if c.ws == nil {
		c.ws = c.M.NewWorkspace(c.threads, true)
		c.ws.Pool = c.pool
	}
	return c.M.ForwardTrain(&c.in, logits, nettrans.TrainOptions{Dropout: c.Dropout, Seed: rng.Uint64()}, c.ws)
}

// Backward implements Classifier.
func (c *NetTransClassifier) Backward(dlogits []float32) error {
	if c.ws == nil {
		return fmt.Errorf("train: nettrans Backward before ForwardTrain")
	}
	return c.M.Backward(dlogits, c.grads, c.ws)
}

// NetTransPretrain adapts a NetTrans pre-training model (nettrans.Model
// built with Task "pretrain": byte MAE with a NetTrans decoder of width
// 128 and depth 2, plus size CE and IAT MSE masking for fuse3; see
// package nettrans) to Pretrainer. Its encoder parameter names are the
// classifier's, so InitFrom loads a checkpoint of it into a
// NetTransClassifier.
//
// The loss normalisers depend only on the batch size, so Loss runs each
// flow's backward right after its forward into a pending gradient, and
// Backward adds it to the parameter gradients.
type NetTransPretrain struct {
	M *nettrans.Model
	// Dropout is the block dropout rate (NetTransDropout).
	Dropout float64
	grads   *nettrans.Params
	pending *nettrans.Params
	params  []*Param
	ws      *nettrans.Workspace
	in      nettrans.Batch
	last    nettrans.Losses
	ready   bool
	threads int
}

// NewNetTransPretrain wraps the pre-training model m for threads workers.
// batch and dropPath are accepted for a uniform constructor: the
// workspace does not depend on the batch size and NetTrans has dropout,
// not drop-path.
func NewNetTransPretrain(m *nettrans.Model, batch, threads int, dropPath float64) *NetTransPretrain {
	_, _ = batch, dropPath
	a := &NetTransPretrain{M: m, Dropout: NetTransDropout, grads: m.NewGrads(), pending: m.NewGrads(), threads: threads}
	a.params = pairParams(m.P.List(), a.grads.List())
	return a
}

// Params implements Pretrainer.
func (a *NetTransPretrain) Params() []*Param { return a.params }

// ZeroGrad implements Pretrainer.
func (a *NetTransPretrain) ZeroGrad() { a.grads.Zero() }

// Loss implements Pretrainer: the total loss (byte + size + IAT) of flows
// idx of d, with masks and dropout drawn from a seed taken from rng.
func (a *NetTransPretrain) Loss(d *Data, idx []int, rng *rand.Rand) (float32, error) {
	if err := fillNetTrans(nettransInputsOf(a.M), d, idx, &a.in); err != nil {
		return 0, err
	}
	if a.ws == nil {
		a.ws = a.M.NewWorkspace(a.threads, true)
	}
	l, err := a.M.ForwardBackwardPretrain(&a.in, nettrans.TrainOptions{Dropout: a.Dropout, Seed: rng.Uint64()}, a.pending, a.ws)
	if err != nil {
		return 0, fmt.Errorf("train: %s: %w", d.Path, err)
	}
	a.last, a.ready = l, true
	return float32(l.Total), nil
}

// LastLosses returns the components of the last Loss.
func (a *NetTransPretrain) LastLosses() nettrans.Losses { return a.last }

// Backward implements Pretrainer.
func (a *NetTransPretrain) Backward() error {
	if !a.ready {
		return fmt.Errorf("train: nettrans Backward without a preceding Loss")
	}
	a.ready = false
	g, p := a.grads.Flat(), a.pending.Flat()
	for i, v := range p {
		g[i] += v
	}
	return nil
}

// newNetTransClassifier builds a seeded, officially initialised NetTrans
// classifier (NewClassifier's "nettrans" / "fuse3_nettrans" case).
func newNetTransClassifier(cfg arch.Config, seed uint64, batch, threads int, dropPath float64) (Classifier, arch.Config, error) {
	m, err := nettrans.New(cfg, seed)
	if err != nil {
		return nil, cfg, err
	}
	return NewNetTransClassifier(m, batch, threads, dropPath), m.Cfg, nil
}

// newNetTransPretrain builds a seeded NetTrans pre-training model
// (NewPretrainer's case; cfg.Task is "pretrain").
func newNetTransPretrain(cfg arch.Config, seed uint64, batch, threads int, dropPath float64) (Pretrainer, arch.Config, error) {
	m, err := nettrans.New(cfg, seed)
	if err != nil {
		return nil, cfg, err
	}
	return NewNetTransPretrain(m, batch, threads, dropPath), m.Cfg, nil
}

// netTransFromTensors builds a NetTrans classifier from checkpoint
// tensors (ClassifierFromFile's case).
func netTransFromTensors(cfg arch.Config, ts map[string]*checkpoint.Tensor, batch, threads int) (Classifier, arch.Config, error) {
	m, err := nettrans.FromTensors(cfg, ts)
	if err != nil {
		return nil, cfg, err
	}
	return NewNetTransClassifier(m, batch, threads, 0), m.Cfg, nil
}
