package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model"
)

// Classifier is a trainable flow classifier: the trainer drives it through
// this interface, so every architecture (NetMamba, fuse3, NetTrans) trains
// with the same loop.
type Classifier interface {
	// NumClasses is the head's output count.
	NumClasses() int
	// Params returns the trainable parameters with their gradient buffers,
	// in the official state_dict order.
	Params() []*Param
	// ZeroGrad clears every gradient.
	ZeroGrad()
	// Forward computes eval-mode logits (len(idx), C) for flows idx of d.
	Forward(d *Data, idx []int, logits []float32) error
	// ForwardTrain runs the training forward (drop-path drawn from rng) and
	// keeps what Backward needs.
	ForwardTrain(d *Data, idx []int, logits []float32, rng *rand.Rand) error
	// Backward accumulates the parameter gradients of the last ForwardTrain
	// given d loss / d logits.
	Backward(dlogits []float32) error
	// LayerID is the layer id of a parameter for layer-wise lr decay.
	LayerID(name string) int
	// Depth is the number of encoder blocks.
	Depth() int
	// NoDecay lists parameter names exempt from weight decay.
	NoDecay() []string
}

// Pooled is a Classifier whose batches run on parallel workers that can
// be moved onto a kernels.Pool. Live classify does, so that every thread
// the model runs on has its classifier worker's lowered priority.
type Pooled interface {
	Classifier
	// Threads is the number of workers a batch runs on.
	Threads() int
	// UsePool runs the workers on p's threads from the next call on (nil:
	// goroutines started per call). Results do not change.
	UsePool(p *kernels.Pool)
}

// NetMambaClassifier adapts a NetMamba byte classifier (model.Model) to
// Classifier.
type NetMambaClassifier struct {
	M        *model.Model
	DropPath float64 // maximum drop-path rate (0.1 officially)
	grads    *model.Params
	params   []*Param
	ws       *model.Workspace // training workspace
	evalWS   *model.Workspace
	x        []float32
	threads  int
	batch    int
	pool     *kernels.Pool // UsePool
}

var _ Pooled = (*NetMambaClassifier)(nil)

// Threads implements Pooled.
// A batch has at most batch flows, so at most that many workers.
func (c *NetMambaClassifier) Threads() int { return min(kernels.Threads(c.threads), max(c.batch, 1)) }

// UsePool implements Pooled.
func (c *NetMambaClassifier) UsePool(p *kernels.Pool) {
	c.pool = p
	for _, ws := range []*model.Workspace{c.ws, c.evalWS} {
		if ws != nil {
			ws.Pool = p
		}
	}
}

// NewNetMambaClassifier wraps m for training with batches of up to batch
// flows on threads workers.
func NewNetMambaClassifier(m *model.Model, batch, threads int, dropPath float64) *NetMambaClassifier {
	c := &NetMambaClassifier{M: m, DropPath: dropPath, grads: m.NewGrads(), threads: threads, batch: batch}
	c.params = pairParams(m.P.List(), c.grads.List())
	return c
}

// pairParams pairs a model's parameters with their gradient buffers (the
// same list, in the same order, from the model's NewGrads). NetMamba,
// fuse3 and NetTrans parameters are all model.Param.
func pairParams(params, grads []model.Param) []*Param {
	ps := make([]*Param, len(params))
	for i, p := range params {
		ps[i] = &Param{Name: p.Name, Shape: p.Shape, Data: p.Data, Grad: grads[i].Data}
	}
	return ps
}

// NumClasses implements Classifier.
func (c *NetMambaClassifier) NumClasses() int { return c.M.Cfg.NumClasses }

// Params implements Classifier.
func (c *NetMambaClassifier) Params() []*Param { return c.params }

// ZeroGrad implements Classifier.
func (c *NetMambaClassifier) ZeroGrad() { c.grads.Zero() }

// Depth implements Classifier.
func (c *NetMambaClassifier) Depth() int { return c.M.Cfg.Depth }

// LayerID implements Classifier.
func (c *NetMambaClassifier) LayerID(name string) int { return NetMambaLayerID(name, c.M.Cfg.Depth) }

// NoDecay implements Classifier.
func (c *NetMambaClassifier) NoDecay() []string { return NetMambaNoDecayNames() }

func (c *NetMambaClassifier) input(d *Data, idx []int) []float32 {
	nb := c.M.Cfg.ByteLength
	if cap(c.x) < len(idx)*nb {
		c.x = make([]float32, len(idx)*nb)
	}
	x := c.x[:len(idx)*nb]
	d.fillBytes(idx, nb, x)
	return x
}

// Forward implements Classifier.
func (c *NetMambaClassifier) Forward(d *Data, idx []int, logits []float32) error {
	if c.evalWS == nil || c.evalWS.Batch < len(idx) {
		c.evalWS = c.M.NewWorkspace(max(len(idx), c.batch), c.threads, false)
		c.evalWS.Pool = c.pool
	}
	return c.M.Forward(c.input(d, idx), len(idx), logits, c.evalWS)
}

// ForwardTrain implements Classifier.
func (c *NetMambaClassifier) ForwardTrain(d *Data, idx []int, logits []float32, rng *rand.Rand) error {
	if c.ws == nil || c.ws.Batch < len(idx) {
		c.ws = c.M.NewWorkspace(max(len(idx), c.batch), c.threads, true)
		c.ws.Pool = c.pool
	}
	return c.M.ForwardTrain(c.input(d, idx), len(idx), logits, c.ws, model.TrainOptions{DropPath: c.DropPath, Rand: rng})
}

// Backward implements Classifier.
func (c *NetMambaClassifier) Backward(dlogits []float32) error {
	if c.ws == nil {
		return fmt.Errorf("train: Backward before ForwardTrain")
	}
	return c.M.Backward(dlogits, c.ws, c.grads)
}
