package nettrans

import (
	"fmt"
)

// The split training step serves training loops that compute the loss
// themselves (label-smoothed CE, LDAM, …) from the logits of the whole
// batch: ForwardTrain writes the logits, the caller derives d loss /
// d logits, Backward accumulates the parameter gradients.
//
// ForwardTrain keeps the training activations of every flow (about 26
// MB per flow for the 401-token byte model: 1.7 GB at batch 64) in
// ws.stash while they fit Workspace.StashBytes (DefaultStashBytes, 2
// GiB), so Backward runs only the backward of those flows: the split step
// then costs what ForwardBackward costs. Flows beyond the budget keep the
// memory-saving path: ForwardTrain keeps the inputs, the options and, per
// worker, the activations of its last flow, and Backward recomputes the
// forward of every other flow (same dropout masks: they depend only on
// (Seed, flow index)) right before its backward, at one extra forward per
// flow (about a third of a forward+backward). Either way the gradients
// equal ForwardBackward's bit for bit for the same dlogits and thread
// count.

// ForwardTrain runs the training forward (dropout drawn from opt.Seed as
// in ForwardBackward) of b.N flows into logits (N, NumClasses) and keeps
// a copy of the inputs and opt in ws for Backward, with the activations
// of as many flows as ws.StashBytes allows (allocated on first use and
// kept in ws). opt.LabelSmoothing is
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
	ws.stashN = ws.growStash(m, b.N)
	ws.repack(m, true) // Backward's recomputation and products use these packs
	C := m.d.classes
	in := &ws.saved
	for _, wk := range ws.workers {
		wk.held = -1
	}
	ws.Pool.For(b.N, len(ws.workers), func(w, i int) {
		wk := ws.workers[w]
		acts := wk.acts
		if j := ws.stashSlot(w, i); j >= 0 {
			acts = ws.stash[j]
		} else {
			wk.held = i
		}
		wk.drawMasksInto(acts, opt, i)
		m.forwardFlow(m.flowInput(in, i), acts, wk, logits[i*C:(i+1)*C])
	})
	return nil
}

// trainActsBytes is the memory of one flow's training activations.
func (m *Model) trainActsBytes() int64 {
	d, s := m.d, m.enc
	L, D, F := int64(s.L), int64(s.D), int64(s.F)
	block := 5*L*D + 3*L*D + int64(s.H)*L + 4*L + 2*L*F + L*F + 2*L*D // ln1, ctx, mid, ln2, out; qkv; lse; stats; u; g; masks
	return 4 * (int64(d.depth)*block + 2*L*D + 2*L + D)
}

// growStash makes ws.stash hold the training activations of min(n,
// StashBytes / per-flow size) flows and returns that count.
func (ws *Workspace) growStash(m *Model, n int) int {
	if ws.StashBytes <= 0 {
		return 0
	}
	k := int(min(int64(n), ws.StashBytes/m.trainActsBytes()))
	for len(ws.stash) < k {
		ws.stash = append(ws.stash, m.newActivations(true))
	}
	return k
}

// stashSlot returns the stash entry of flow i, run by worker w of the
// parallel loop over ws.saved.N flows, or -1 when its activations are not
// stashed. The stashN entries are shared out evenly among the workers
// (the first flows of each worker's contiguous block), so that the
// recomputed flows are spread over all workers too.
func (ws *Workspace) stashSlot(w, i int) int {
	n, k := ws.saved.N, ws.stashN
	if k >= n {
		return i
	}
	t := min(len(ws.workers), n)
	if t <= 1 {
		w, t = 0, 1
	}
	lo, hi := w*n/t, (w+1)*n/t
	base := w * k / t
	if j := i - lo; j < min((w+1)*k/t-base, hi-lo) {
		return base + j
	}
	return -1
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
	ws.Pool.For(in.N, len(ws.workers), func(w, i int) {
		wk := ws.workers[w]
		fi := m.flowInput(in, i)
		acts := wk.acts
		j := ws.stashSlot(w, i)
		switch {
		case j >= 0:
			acts = ws.stash[j]
			wk.dropout = opt.Dropout
		case wk.held != i:
			wk.drawMasks(opt, i)
			m.forwardFlow(fi, wk.acts, wk, wk.recLogits)
			wk.held = i
		default:
			wk.dropout = opt.Dropout
		}
		m.backwardFlow(fi, acts, dlogits[i*C:(i+1)*C], wk.grad, wk)
	})
	for _, wk := range ws.workers {
		g.addFrom(wk.grad)
	}
	return nil
}
