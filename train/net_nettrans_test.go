package train

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/nettrans"
)

func tinyNetTransConfig(a string) arch.Config {
	return arch.Config{Arch: a, EmbedDim: 16, NumHeads: 2, Depth: 2, ByteLength: 400, NumClasses: 3}
}

// A tiny NetTrans learns the separable synthetic task through Finetune
// (ForwardTrain → CE → Backward, layer-wise lr decay, dropout 0.1).
func TestNetTransFinetuneLearns(t *testing.T) {
	td, vd := synthData(96, 3, 1), synthData(30, 3, 2)
	cfg := tinyNetTransConfig(nettrans.ArchBytes)
	cfg.EmbedDim = 32 // width 16 learns too slowly for a short test
	net, cfg, err := NewClassifier(cfg, 7, 8, 2, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Arch != nettrans.ArchBytes || net.Depth() != 2 {
		t.Fatalf("config %+v", cfg)
	}
	before, _, err := Evaluate(net, vd, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := tinyOptions(t.TempDir())
	o.Epochs, o.WarmupEpochs, o.BLR, o.LayerDecay = 20, 1, 2e-2, 0
	res, err := Finetune(net, td, vd, o)
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := Evaluate(net, vd, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accuracy before %.3f after %.3f (best epoch %d)", before.Accuracy, after.Accuracy, res.BestEpoch)
	if after.Accuracy < 0.9 {
		t.Fatalf("validation accuracy %.3f after training, want ≥ 0.9", after.Accuracy)
	}
}

// The adapter's split step reproduces nettrans.ForwardBackward on the
// same flows (the dropout seed comes from the step's rng).
func TestNetTransClassifierStepMatchesModel(t *testing.T) {
	d := synthData(6, 3, 4)
	for _, a := range []string{nettrans.ArchBytes, nettrans.ArchFuse3} {
		cfg := tinyNetTransConfig(a)
		if a == nettrans.ArchFuse3 {
			cfg.SeqLen = 20
		}
		net, _, err := NewClassifier(cfg, 3, 6, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		c := net.(*NetTransClassifier)
		idx := []int{5, 0, 3, 1}
		logits := make([]float32, 4*3)
		if err := c.ForwardTrain(d, idx, logits, rand.New(rand.NewPCG(1, 2))); err != nil {
			t.Fatal(err)
		}
		labels := []int{d.Labels[5], d.Labels[0], d.Labels[3], d.Labels[1]}
		dl := make([]float32, 4*3)
		if _, err := (&CrossEntropyLoss{Smoothing: 0.1}).Loss(logits, labels, 4, 3, dl); err != nil {
			t.Fatal(err)
		}
		c.ZeroGrad()
		if err := c.Backward(dl); err != nil {
			t.Fatal(err)
		}
		want := c.M.NewGrads()
		wantLogits := make([]float32, 4*3)
		seed := rand.New(rand.NewPCG(1, 2)).Uint64()
		if _, err := c.M.ForwardBackward(&c.in, labels, nettrans.TrainOptions{LabelSmoothing: 0.1, Dropout: NetTransDropout, Seed: seed},
			wantLogits, want, c.M.NewWorkspace(2, true)); err != nil {
			t.Fatal(err)
		}
		for i := range logits {
			if logits[i] != wantLogits[i] {
				t.Fatalf("%s: logit %d %g, model %g", a, i, logits[i], wantLogits[i])
			}
		}
		wl := want.List()
		for pi, p := range c.Params() {
			for j := range p.Grad {
				w := wl[pi].Data[j]
				if d := p.Grad[j] - w; d > 1e-6+1e-4*abs32(w) || -d > 1e-6+1e-4*abs32(w) {
					t.Fatalf("%s: %s[%d] gradient %g, model %g", a, p.Name, j, p.Grad[j], w)
				}
			}
		}
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

// Layer ids and no-decay sets follow NetMamba+'s get_layer_id_for_vit.
func TestNetTransLayerIDs(t *testing.T) {
	b, _, _ := NewClassifier(arch.Config{Arch: nettrans.ArchBytes, NumClasses: 2}, 1, 1, 1, 0)
	f, _, _ := NewClassifier(arch.Config{Arch: nettrans.ArchFuse3, NumClasses: 2}, 1, 1, 1, 0)
	for _, c := range []struct {
		net  Classifier
		name string
		id   int
	}{
		{b, "pos_embed", 0}, {b, "cls_token", 0}, {b, "patch_embed.proj.weight", 0},
		{b, "blocks.0.attn.to_q.weight", 1}, {b, "blocks.3.norm2.bias", 4}, {b, "norm.weight", 5}, {b, "head.weight", 5},
		{f, "pos_embed", 0}, {f, "byte_cls_token", 5}, {f, "byte_embed.proj.weight", 5},
		{f, "encoder_blocks.2.ff.net.0.proj.weight", 3}, {f, "head.weight", 5},
	} {
		if got := c.net.LayerID(c.name); got != c.id {
			t.Errorf("LayerID(%s) = %d, want %d", c.name, got, c.id)
		}
	}
	if !strings.Contains(strings.Join(b.NoDecay(), ","), "cls_token") || !strings.Contains(strings.Join(f.NoDecay(), ","), "byte_cls_token") {
		t.Errorf("no-decay sets %v / %v", b.NoDecay(), f.NoDecay())
	}
}

// NetTrans pre-training (bytes: byte MAE; fuse3: + size CE + IAT MSE)
// lowers the loss, and its checkpoint initialises the classifier by name.
func TestNetTransPretrainAndInit(t *testing.T) {
	d := synthData(32, 3, 1)
	for _, a := range []string{nettrans.ArchBytes, nettrans.ArchFuse3} {
		cfg := arch.Config{Arch: a, EmbedDim: 16, NumHeads: 2, Depth: 1, ByteLength: 400, DecoderEmbedDim: 16, DecoderDepth: 1}
		p, pcfg, err := NewPretrainer(cfg, 5, 8, 2, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		if pcfg.Task != "pretrain" {
			t.Fatalf("config %+v", pcfg)
		}
		o := DefaultPretrain()
		o.Batch, o.Epochs, o.BLR, o.Seed = 8, 1, 5e-2, 1
		first, err := Pretrain(p, d, o)
		if err != nil {
			t.Fatal(err)
		}
		l0 := p.(*NetTransPretrain).LastLosses()
		o.Epochs = 15
		last, err := Pretrain(p, d, o)
		if err != nil {
			t.Fatal(err)
		}
		l1 := p.(*NetTransPretrain).LastLosses()
		t.Logf("%s: loss first epoch %.4f, after 15 more %.4f (last steps %+v → %+v)", a, first.FinalLoss, last.FinalLoss, l0, l1)
		if !(last.FinalLoss < 0.8*first.FinalLoss) || !(l1.Bytes < 0.8*l0.Bytes) {
			t.Fatalf("%s: loss %.4f → %.4f, byte loss %.4f → %.4f: want drops of at least 20%%", a, first.FinalLoss, last.FinalLoss, l0.Bytes, l1.Bytes)
		}
		cfg.NumClasses = 3
		net, _, err := NewClassifier(cfg, 9, 8, 2, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		only, err := PretrainOnly(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := InitFrom(net.Params(), ParamTensors(p.Params()), 1, only)
		if err != nil {
			t.Fatal(err)
		}
		heads := map[string]int{nettrans.ArchBytes: 2, nettrans.ArchFuse3: 1}[a] // head.weight (+ head.bias)
		if len(rep.Loaded) != len(net.Params())-heads || len(rep.Kept) != heads {
			t.Fatalf("%s: InitFrom loaded %d of %d parameters, kept %v", a, len(rep.Loaded), len(net.Params()), rep.Kept)
		}
		pre, got := p.(*NetTransPretrain).M.P.Get("norm.weight").Data, net.(*NetTransClassifier).M.P.Get("norm.weight").Data
		for i := range pre {
			if pre[i] != got[i] {
				t.Fatalf("%s: encoder weights were not copied", a)
			}
		}
	}
}
