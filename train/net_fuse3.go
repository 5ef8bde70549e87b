package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model"
)

// Fuse3Classifier adapts a NetMamba+ fuse3 Mamba classifier (model.Fuse3,
// task "classify") to Classifier. Sizes and IATs come from each flow's
// repr.View (model.Fuse3.SetFlow: signed sizes when the model's
// Opt.SignedSizes is set), bytes from Data.Bytes.
type Fuse3Classifier struct {
	M        *model.Fuse3
	DropPath float64 // maximum drop-path rate (0.1 officially)
	grads    *model.Fuse3Params
	params   []*Param
	ws       *model.Fuse3Workspace // training workspace
	evalWS   *model.Fuse3Workspace
	in       *model.Fuse3Batch
	threads  int
	batch    int
	pool     *kernels.Pool // UsePool
}

var _ Pooled = (*Fuse3Classifier)(nil)

// Threads implements Pooled.
// A batch has at most batch flows, so at most that many workers.
func (c *Fuse3Classifier) Threads() int { return min(kernels.Threads(c.threads), c.batch) }

// UsePool implements Pooled.
func (c *Fuse3Classifier) UsePool(p *kernels.Pool) {
	c.pool = p
	for _, ws := range []*model.Fuse3Workspace{c.ws, c.evalWS} {
		if ws != nil {
			ws.Pool = p
		}
	}
}

var (
	_ Classifier = (*Fuse3Classifier)(nil)
	_ Pretrainer = (*Fuse3Pretrain)(nil)
)

// NewFuse3Classifier wraps the fuse3 classifier m for training with
// batches of up to batch flows on threads workers.
func NewFuse3Classifier(m *model.Fuse3, batch, threads int, dropPath float64) *Fuse3Classifier {
	c := &Fuse3Classifier{M: m, DropPath: dropPath, grads: m.NewGrads(), threads: threads, batch: max(batch, 1)}
	c.params = pairParams(m.P.List(), c.grads.List())
	return c
}

// NumClasses implements Classifier.
func (c *Fuse3Classifier) NumClasses() int { return c.M.Cfg.NumClasses }

// Params implements Classifier.
func (c *Fuse3Classifier) Params() []*Param { return c.params }

// ZeroGrad implements Classifier.
func (c *Fuse3Classifier) ZeroGrad() { c.grads.Zero() }

// Depth implements Classifier.
func (c *Fuse3Classifier) Depth() int { return c.M.Cfg.Depth }

// LayerID implements Classifier (Fuse3LayerID).
func (c *Fuse3Classifier) LayerID(name string) int { return Fuse3LayerID(name, c.M.Cfg.Depth) }

// NoDecay implements Classifier (Fuse3NoDecayNames).
func (c *Fuse3Classifier) NoDecay() []string { return Fuse3NoDecayNames() }

// fillFuse3 writes the model inputs of flows idx of d into a batch
// (reallocated when too small).
func fillFuse3(m *model.Fuse3, d *Data, idx []int, b **model.Fuse3Batch) (*model.Fuse3Batch, error) {
	n := len(idx)
	if *b == nil || len((*b).Bytes) < n*m.Cfg.ByteLength {
		*b = m.NewFuse3Batch(n)
	}
	in := *b
	in.N = n
	for _, i := range idx {
		if i < 0 || i >= d.N {
			return nil, fmt.Errorf("train: %s: flow %d outside [0, %d)", d.Path, i, d.N)
		}
	}
	if m.Layout.Sizes || m.Layout.IATs {
		if len(d.Views) < d.N {
			return nil, fmt.Errorf("train: %s: %d flow views for %d flows (fuse3 reads sizes and IATs from them)", d.Path, len(d.Views), d.N)
		}
		for j, i := range idx {
			if err := m.SetFlow(in, j, &d.Views[i]); err != nil {
				return nil, fmt.Errorf("train: %s: flow %d: %w", d.Path, i, err)
			}
		}
	}
	// Bytes from d.Bytes, the byte views every model reads.
	d.fillBytes(idx, m.Cfg.ByteLength, in.Bytes[:n*m.Cfg.ByteLength])
	return in, nil
}

// Forward implements Classifier.
func (c *Fuse3Classifier) Forward(d *Data, idx []int, logits []float32) error {
	in, err := fillFuse3(c.M, d, idx, &c.in)
	if err != nil {
		return err
	}
	if c.evalWS == nil || c.evalWS.Batch < len(idx) {
		c.evalWS = c.M.NewWorkspace(max(len(idx), c.batch), c.threads, false)
		c.evalWS.Pool = c.pool
	}
	return c.M.Forward(in, logits, c.evalWS)
}

// ForwardTrain implements Classifier.
func (c *Fuse3Classifier) ForwardTrain(d *Data, idx []int, logits []float32, rng *rand.Rand) error {
	in, err := fillFuse3(c.M, d, idx, &c.in)
	if err != nil {
		return err
	}
	if c.ws == nil || c.ws.Batch < len(idx) {
		c.ws = c.M.NewWorkspace(max(len(idx), c.batch), c.threads, true)
		c.ws.Pool = c.pool
	}
	return c.M.ForwardTrain(in, logits, c.ws, model.TrainOptions{DropPath: c.DropPath, Rand: rng})
}

// Backward implements Classifier.
func (c *Fuse3Classifier) Backward(dlogits []float32) error {
	if c.ws == nil {
		return fmt.Errorf("train: fuse3 Backward before ForwardTrain")
	}
	return c.M.Backward(dlogits, c.ws, c.grads)
}

// Fuse3Pretrain adapts the fuse3 multimodal pre-training model
// (model.Fuse3, task "pretrain") to Pretrainer: byte MAE + size and IAT
// masking, total loss = unweighted sum.
type Fuse3Pretrain struct {
	M        *model.Fuse3
	DropPath float64 // maximum drop-path rate (0.1 officially)
	grads    *model.Fuse3Params
	params   []*Param
	ws       *model.Fuse3Workspace
	in       *model.Fuse3Batch
	last     model.Fuse3Losses
	threads  int
	batch    int
}

// NewFuse3Pretrain wraps the fuse3 pre-training model m for batches of up
// to batch flows on threads workers.
func NewFuse3Pretrain(m *model.Fuse3, batch, threads int, dropPath float64) *Fuse3Pretrain {
	a := &Fuse3Pretrain{M: m, DropPath: dropPath, grads: m.NewGrads(), threads: threads, batch: max(batch, 1)}
	a.params = pairParams(m.P.List(), a.grads.List())
	return a
}

// Params implements Pretrainer.
func (a *Fuse3Pretrain) Params() []*Param { return a.params }

// ZeroGrad implements Pretrainer.
func (a *Fuse3Pretrain) ZeroGrad() { a.grads.Zero() }

// Loss implements Pretrainer: the total loss of flows idx of d, with
// masks and drop-path drawn from rng.
func (a *Fuse3Pretrain) Loss(d *Data, idx []int, rng *rand.Rand) (float32, error) {
	in, err := fillFuse3(a.M, d, idx, &a.in)
	if err != nil {
		return 0, err
	}
	if a.ws == nil || a.ws.Batch < len(idx) {
		a.ws = a.M.NewWorkspace(max(len(idx), a.batch), a.threads, true)
	}
	l, err := a.M.ForwardPretrain(in, nil, a.ws, model.TrainOptions{DropPath: a.DropPath, Rand: rng})
	if err != nil {
		return 0, err
	}
	a.last = l
	return l.Total, nil
}

// LastLosses returns the components of the last Loss (byte, size, IAT).
func (a *Fuse3Pretrain) LastLosses() model.Fuse3Losses { return a.last }

// Backward implements Pretrainer.
func (a *Fuse3Pretrain) Backward() error {
	if a.ws == nil {
		return fmt.Errorf("train: fuse3 Backward before Loss")
	}
	return a.M.BackwardPretrain(a.ws, a.grads)
}
