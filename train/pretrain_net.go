package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/netmamba/netmamba/model"
)

// Pretrainer is a self-supervised model the pre-training loop drives:
// NetMamba's byte MAE or fuse3's multimodal masking.
type Pretrainer interface {
	// Loss runs the training forward on flows idx of d (masks and drop-path
	// drawn from rng) and returns the loss; Backward may follow.
	Loss(d *Data, idx []int, rng *rand.Rand) (float32, error)
	// Backward accumulates the gradients of the last Loss.
	Backward() error
	// Params returns the trainable parameters with their gradients.
	Params() []*Param
	// ZeroGrad clears every gradient.
	ZeroGrad()
}

// NetMambaMAE adapts NetMamba's MAE pre-training model to Pretrainer.
type NetMambaMAE struct {
	M        *model.Model
	DropPath float64
	grads    *model.Params
	params   []*Param
	ws       *model.Workspace
	x        []float32
	threads  int
	batch    int
}

// NewNetMambaMAE wraps the pre-training model m.
func NewNetMambaMAE(m *model.Model, batch, threads int, dropPath float64) *NetMambaMAE {
	a := &NetMambaMAE{M: m, DropPath: dropPath, grads: m.NewGrads(), threads: threads, batch: batch}
	a.params = pairParams(m.P.List(), a.grads.List())
	return a
}

// Params implements Pretrainer.
func (a *NetMambaMAE) Params() []*Param { return a.params }

// ZeroGrad implements Pretrainer.
func (a *NetMambaMAE) ZeroGrad() { a.grads.Zero() }

// Loss implements Pretrainer.
func (a *NetMambaMAE) Loss(d *Data, idx []int, rng *rand.Rand) (float32, error) {
	nb := a.M.Cfg.ByteLength
	if a.ws == nil || a.ws.Batch < len(idx) {
		a.ws = a.M.NewWorkspace(max(len(idx), a.batch), a.threads, true)
	}
	if cap(a.x) < len(idx)*nb {
		a.x = make([]float32, len(idx)*nb)
	}
	x := a.x[:len(idx)*nb]
	d.fillBytes(idx, nb, x)
	return a.M.ForwardMAE(x, nil, len(idx), a.ws, model.TrainOptions{DropPath: a.DropPath, Rand: rng}, nil)
}

// Backward implements Pretrainer.
func (a *NetMambaMAE) Backward() error {
	if a.ws == nil {
		return fmt.Errorf("train: Backward before Loss")
	}
	return a.M.BackwardMAE(a.ws, a.grads)
}
