package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/repr"
)

// sizeClassData is a two-class set whose classes differ ONLY in their
// packet sizes (class 0: 60–200 B, class 1: 1200–1500 B); every flow has
// the same bytes and the same inter-arrival times, and the packet count
// (hence the padding) has the same distribution in both classes.
func sizeClassData(n int, seed uint64) *Data {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := &Data{Path: "synthetic", N: n, Classes: []string{"small", "large"}}
	for i := 0; i < n; i++ {
		y := i % 2
		var v repr.View
		for k := range v.Bytes[:64] {
			v.Bytes[k] = byte(k * 37)
		}
		v.NPackets = 5 + rng.IntN(15)
		for j := 0; j < v.NPackets; j++ {
			if y == 0 {
				v.Sizes[j] = uint32(60 + rng.IntN(141))
			} else {
				v.Sizes[j] = uint32(1200 + rng.IntN(301))
			}
			v.Dirs[j] = 1
			if j > 0 {
				v.IATs[j] = 0.0125
			}
		}
		d.Bytes = append(d.Bytes, v.Bytes[:]...)
		d.Labels = append(d.Labels, y)
		d.Sources = append(d.Sources, "synthetic")
		d.Views = append(d.Views, v)
	}
	return d
}

// trainFuse3 runs steps AdamW steps (full batch, constant lr) of a tiny fuse3
// classifier with the given modalities on d and returns the first and
// last training losses and the eval accuracy on the held-out set test.
func trainFuse3(t *testing.T, d, test *Data, mods []string, steps int, lr float64) (first, last float32, acc float64) {
	t.Helper()
	m, err := model.NewFuse3Random(arch.Config{Arch: model.ArchFuse3, NumClasses: 2, EmbedDim: 16, Depth: 1, DState: 4,
		ByteLength: 64, Stride: 4, Modalities: mods}, model.Fuse3Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := NewFuse3Classifier(m, d.N, 2, 0)
	groups := BuildGroups(c.Params(), GroupConfig{WeightDecay: 0.05, NoDecay: c.NoDecay(), LayerDecay: 0.75, Depth: c.Depth(),
		LayerID: func(n string, _ int) int { return c.LayerID(n) }})
	opt, err := NewAdamW(groups, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, d.N)
	for i := range idx {
		idx[i] = i
	}
	logits := make([]float32, d.N*2)
	dl := make([]float32, d.N*2)
	rng := rand.New(rand.NewPCG(4, 4))
	for s := 0; s < steps; s++ {
		c.ZeroGrad()
		if err := c.ForwardTrain(d, idx, logits, rng); err != nil {
			t.Fatal(err)
		}
		l, err := CrossEntropy(logits, d.Labels, d.N, 2, nil, 0, dl)
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = l
		}
		last = l
		if err := c.Backward(dl); err != nil {
			t.Fatal(err)
		}
		opt.Step(lr)
	}
	tidx := make([]int, test.N)
	for i := range tidx {
		tidx[i] = i
	}
	tl := make([]float32, test.N*2)
	if err := c.Forward(test, tidx, tl); err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i := 0; i < test.N; i++ {
		if (tl[2*i+1] > tl[2*i]) == (test.Labels[i] == 1) {
			ok++
		}
	}
	return first, last, float64(ok) / float64(test.N)
}

// TestFuse3ClassifierLearnsSizes trains through the Classifier interface:
// with the sizes modality the model separates held-out flows of classes
// that differ only in packet sizes; the byte-only ablation, which cannot
// see sizes, stays near chance on them.
func TestFuse3ClassifierLearnsSizes(t *testing.T) {
	d, test := sizeClassData(32, 1), sizeClassData(64, 2)
	f0, f1, acc := trainFuse3(t, d, test, []string{"bytes", "sizes", "iats"}, 40, 3e-2)
	t.Logf("bytes,sizes,iats: loss %.4f → %.4f, held-out accuracy %.3f", f0, f1, acc)
	if !(f1 < 0.5*f0) || acc < 0.95 {
		t.Errorf("with sizes: loss %.4f → %.4f, held-out accuracy %.3f; want the loss halved and accuracy ≥ 0.95", f0, f1, acc)
	}
	b0, b1, bacc := trainFuse3(t, d, test, []string{"bytes"}, 40, 3e-2)
	t.Logf("bytes: loss %.4f → %.4f, held-out accuracy %.3f", b0, b1, bacc)
	// Identical inputs give identical logits: the loss cannot go below ln 2.
	if b1 < float32(math.Ln2)-1e-4 || bacc != 0.5 {
		t.Errorf("byte-only: loss %.4f → %.4f (floor ln 2), held-out accuracy %.3f (want 0.5)", b0, b1, bacc)
	}
}

// TestFuse3PretrainAdapter runs pre-training steps through the
// Pretrainer interface: finite losses, gradients on the three heads, and
// a missing sequence view reported as an error.
func TestFuse3PretrainAdapter(t *testing.T) {
	d := sizeClassData(8, 2)
	m, err := model.NewFuse3Random(arch.Config{Arch: model.ArchFuse3, Task: "pretrain", EmbedDim: 16, Depth: 1, DState: 4,
		ByteLength: 64, Stride: 4, DecoderEmbedDim: 8, DecoderDepth: 1}, model.Fuse3Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := NewFuse3Pretrain(m, 8, 2, 0.1)
	idx := []int{0, 1, 2, 3, 4, 5, 6, 7}
	rng := rand.New(rand.NewPCG(1, 1))
	a.ZeroGrad()
	l, err := a.Loss(d, idx, rng)
	if err != nil {
		t.Fatal(err)
	}
	parts := a.LastLosses()
	if !(l > 0) || math.IsInf(float64(l), 0) || parts.Total != l || !(parts.Sizes > 5) || !(parts.Bytes > 0) || !(parts.IATs > 0) {
		t.Fatalf("loss %g, parts %+v (size CE over 1503 ids starts near ln 1503 = 7.3)", l, parts)
	}
	if err := a.Backward(); err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Params() {
		switch p.Name {
		case "size_decoder_pred.weight", "iat_decoder_pred.weight", "byte_decoder_pred.weight", "size_indicator", "pos_embed":
			var s float64
			for _, g := range p.Grad {
				s += math.Abs(float64(g))
			}
			if s == 0 {
				t.Errorf("%s: zero gradient", p.Name)
			}
		}
	}
	d.Views = nil
	if _, err := a.Loss(d, idx, rng); err == nil {
		t.Error("missing sequence views accepted")
	}
}
