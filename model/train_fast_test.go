package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
)

// plainWorkspace returns a training workspace on the reference path:
// weights packed inside every product, every mixer's in_proj and x_proj
// recomputed in backward, and the full-sequence final-norm / out_proj
// backward (the code before the training-speed work).
func plainWorkspace(m *Model, B, threads int) *Workspace {
	ws := m.NewWorkspace(B, threads, true)
	ws.plain = true
	for _, f := range ws.flows {
		f.enc.XZ, f.enc.XDbl = nil, nil
		if f.mae != nil {
			f.mae.dec.XZ, f.mae.dec.XDbl = nil, nil
		}
	}
	return ws
}

// sameBits fails unless got and want are bitwise equal.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %g, reference path %g", what, i, got[i], want[i])
		}
	}
}

// TestTrainFastPathBitIdentical: the classifier training step with packed
// weights, kept in_proj/x_proj outputs and the CLS-row backward gives
// bit-identical logits and gradients to the reference path, with
// drop-path on (so dropped mixers are exercised) and B not a multiple of
// the thread count.
func TestTrainFastPathBitIdentical(t *testing.T) {
	m, err := NewRandom(arch.Config{Depth: 2, NumClasses: 4}, 5)
	if err != nil {
		t.Fatal(err)
	}
	const B = 3
	x := randomInput(rand.New(rand.NewPCG(3, 3)), B, 1600)
	dl := make([]float32, B*4)
	for i := range dl {
		dl[i] = float32(i%7)*0.05 - 0.15
	}
	run := func(ws *Workspace) ([]float32, []float32) {
		logits := make([]float32, B*4)
		opt := TrainOptions{DropPath: 0.3, DropRate: 0.1, Rand: rand.New(rand.NewPCG(9, 9))}
		if err := m.ForwardTrain(x, B, logits, ws, opt); err != nil {
			t.Fatal(err)
		}
		g := m.NewGrads()
		if err := m.Backward(dl, ws, g); err != nil {
			t.Fatal(err)
		}
		return logits, g.Flat()
	}
	l0, g0 := run(plainWorkspace(m, B, 2))
	l1, g1 := run(m.NewWorkspace(B, 2, true))
	sameBits(t, "logits", l1, l0)
	sameBits(t, "gradients", g1, g0)
	var nz int
	for _, v := range g0 {
		if v != 0 {
			nz++
		}
	}
	if nz < len(g0)/2 {
		t.Fatalf("only %d of %d gradients are non-zero", nz, len(g0))
	}
}

// TestMAEFastPathBitIdentical is the same for an MAE pre-training step.
func TestMAEFastPathBitIdentical(t *testing.T) {
	m, err := NewRandom(arch.Config{Task: "pretrain", Depth: 2}, 5)
	if err != nil {
		t.Fatal(err)
	}
	const B = 3
	x := randomInput(rand.New(rand.NewPCG(3, 3)), B, 1600)
	run := func(ws *Workspace) (float32, []float32, []float32) {
		opt := TrainOptions{DropPath: 0.2, Rand: rand.New(rand.NewPCG(9, 9))}
		pred := make([]float32, B*m.Cfg.ByteLength)
		loss, err := m.ForwardMAE(x, nil, B, ws, opt, pred)
		if err != nil {
			t.Fatal(err)
		}
		g := m.NewGrads()
		if err := m.BackwardMAE(ws, g); err != nil {
			t.Fatal(err)
		}
		return loss, pred, g.Flat()
	}
	loss0, p0, g0 := run(plainWorkspace(m, B, 2))
	loss1, p1, g1 := run(m.NewWorkspace(B, 2, true))
	if math.Float32bits(loss0) != math.Float32bits(loss1) {
		t.Fatalf("loss %g, reference path %g", loss1, loss0)
	}
	sameBits(t, "pred", p1, p0)
	sameBits(t, "gradients", g1, g0)
}
