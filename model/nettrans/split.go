package nettrans

import (
	"fmt"

	"github.com/netmamba/netmamba/kernels"
)

// The split training step serves training loops that compute the loss
// themselves (label-smoothed CE, LDAM, …) from the logits of the whole
// batch: ForwardTrain writes the logits, the caller derives d loss /
// d logits, Backward accumulates the parameter gradients.
//
// Holding the training activations of a whole batch would cost about
// 26 MB per flow (401 tokens, 4 blocks; 1.7 GB at batch 64), so
// ForwardTrain keeps the inputs, the options and, per worker, the
// activations of its last flow; Backward recomputes the forward of every
// other flow (same dropout masks: they depend only on (Seed, flow index))
// right before its backward. The step costs one extra forward per flow
// (about a third of a forward+backward) and the same memory as
// ForwardBackward, and the gradients equal ForwardBackward's bit for bit
// for the same dlogits and thread count.

// ForwardTrain runs the training forward (dropout drawn from opt.Seed as
// in ForwardBackward) of b.N flows into logits (N, NumClasses) and keeps
// a copy of the inputs and opt in ws for Backward. opt.LabelSmoothing is
// not used (the caller computes the loss).
func (m *Model) ForwardTrain(b *Batch, logits []float32, opt TrainOptions, ws *Workspace) error {
	if err := m.checkBatch(b, ws, logits, true); err != nil {
		return err
	}
	if !(opt.Dropout >= 0 && opt.Dropout < 1) {
		return fmt.Errorf("nettrans: dropout rate %g outside [0, 1)", opt.Dropout)
	}
	ws.saveBatch(m, b)
	ws.savedOpt, ws.savedReady = opt, true
	C := m.d.classes
	in := &ws.saved
	kernels.ParallelFor(b.N, len(ws.workers), func(w, i int) {
		wk := ws.workers[w]
		wk.drawMasks(opt, i)
		m.forwardFlow(m.flowInput(in, i), wk.acts, wk, logits[i*C:(i+1)*C])
		wk.held = i
	})
	return nil
}

// saveBatch copies the inputs of b into ws.saved (grown when too small).
func (ws *Workspace) saveBatch(m *Model, b *Batch) {
	grow := func(dst *[]float32, n int) []float32 {
		if cap(*dst) < n {
			*dst = make([]float32, n)
		}
		*dst = (*dst)[:n]
		return *dst
	}
	s := &ws.saved
	s.N = b.N
	copy(grow(&s.Bytes, b.N*m.d.byteLen), b.Bytes)
	if m.Layout != nil && m.Layout.Sizes {
		copy(grow(&s.Sizes, b.N*m.d.seqLen), b.Sizes)
	}
	if m.Layout != nil && m.Layout.IATs {
		copy(grow(&s.IATs, b.N*m.d.seqLen), b.IATs)
	}
}

// Backward ADDS to g the gradients of the last ForwardTrain on ws given
// dlogits = d loss / d logits (N, NumClasses) (the loss's batch mean is
// the caller's: dlogits carries its 1/N). The result is reproducible for
// a fixed ws.Threads: workers accumulate contiguous blocks of flows and
// are summed in worker order. Backward may be called once per
// ForwardTrain.
func (m *Model) Backward(dlogits []float32, g *Params, ws *Workspace) error {
	switch {
	case ws == nil || ws.m != m:
		return fmt.Errorf("nettrans: workspace was not made by this model's NewWorkspace")
	case !ws.savedReady:
		return fmt.Errorf("nettrans: Backward without a preceding ForwardTrain on this workspace")
	case g == nil || len(g.buf) != len(m.P.buf):
		return fmt.Errorf("nettrans: gradient set was not made by this model's NewGrads")
	}
	in, opt, C := &ws.saved, ws.savedOpt, m.d.classes
	if len(dlogits) < in.N*C {
		return fmt.Errorf("nettrans: %d logit gradients for %d flows × %d classes", len(dlogits), in.N, C)
	}
	ws.savedReady = false
	for _, wk := range ws.workers {
		wk.grad.Zero()
	}
	kernels.ParallelFor(in.N, len(ws.workers), func(w, i int) {
		wk := ws.workers[w]
		fi := m.flowInput(in, i)
		if wk.held != i {
			wk.drawMasks(opt, i)
			m.forwardFlow(fi, wk.acts, wk, wk.recLogits)
			wk.held = i
		} else {
			wk.dropout = opt.Dropout
		}
		m.backwardFlow(fi, wk.acts, dlogits[i*C:(i+1)*C], wk.grad, wk)
	})
	for _, wk := range ws.workers {
		g.addFrom(wk.grad)
	}
	return nil
}
