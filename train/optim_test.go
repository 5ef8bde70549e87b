package train

import (
	"fmt"
	"math"
	"testing"
)

// TestAdamWHand checks two AdamW steps against values worked out by hand
// (lr 0.1, β (0.9, 0.999), ε 1e-8; gradients 0.5 then −1):
//
//	decayed p (λ 0.1, scale 1), p0 = 1:
//	  step 1: p = 1·(1−0.01) = 0.99; m = 0.05, v = 0.00025; m̂ = 0.5, √v̂ = 0.5
//	          p = 0.99 − 0.1·0.5/(0.5+1e-8) = 0.890000002
//	  step 2: p = 0.890000002·0.99; m = 0.045−0.1 = −0.055, v = 0.00024975+0.001 = 0.00124975
//	          m̂ = −0.055/0.19, √v̂ = √(0.00124975/0.001999)
//	          p = 0.8811000020 + 0.1·0.2894736842/0.7906880 = 0.9177103542
//	no-decay q (scale 0.5 → lr 0.05), q0 = 2:
//	  step 1: q = 2 − 0.05·0.5/(0.5+1e-8) = 1.950000001
//	  step 2: q = 1.950000001 + 0.05·0.2894736842/0.7906880 = 1.9683051771
func TestAdamWHand(t *testing.T) {
	p := &Param{Name: "w", Shape: []int{1, 1}, Data: []float32{1}, Grad: []float32{0.5}}
	q := &Param{Name: "b", Shape: []int{1}, Data: []float32{2}, Grad: []float32{0.5}}
	o, err := NewAdamW([]ParamGroup{
		{Name: "decay", Params: []*Param{p}, LRScale: 1, WeightDecay: 0.1},
		{Name: "no_decay", Params: []*Param{q}, LRScale: 0.5},
	}, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	o.Step(0.1)
	check := func(step int, got float32, want float64) {
		t.Helper()
		if math.Abs(float64(got)-want) > 1e-6 {
			t.Errorf("step %d: %v, want %v", step, got, want)
		}
	}
	check(1, p.Data[0], 0.890000002)
	check(1, q.Data[0], 1.950000001)
	p.Grad[0], q.Grad[0] = -1, -1
	o.Step(0.1)
	check(2, p.Data[0], 0.9177103542)
	check(2, q.Data[0], 1.9683051771)
	if o.Steps() != 2 {
		t.Errorf("Steps() = %d", o.Steps())
	}
}

// TestAdamWResume checks that saving the state after 3 steps and loading it
// into a fresh optimiser continues exactly as an uninterrupted run.
func TestAdamWResume(t *testing.T) {
	mk := func() ([]*Param, *AdamW) {
		ps := []*Param{
			{Name: "a", Shape: []int{2, 2}, Data: []float32{1, -2, 3, 0.5}, Grad: make([]float32, 4)},
			{Name: "a.bias", Shape: []int{2}, Data: []float32{0.1, 0.2}, Grad: make([]float32, 2)},
		}
		o, err := NewAdamW(BuildGroups(ps, GroupConfig{WeightDecay: 0.05}), AdamWConfig{0.9, 0.95, 1e-8})
		if err != nil {
			t.Fatal(err)
		}
		return ps, o
	}
	grad := func(ps []*Param, step int) {
		for _, p := range ps {
			for j := range p.Grad {
				p.Grad[j] = float32(math.Sin(float64(step*7+j)) + 0.3*float64(p.Data[j]))
			}
		}
	}
	ref, oRef := mk()
	for s := 0; s < 6; s++ {
		grad(ref, s)
		oRef.Step(1e-2)
	}
	ps, o := mk()
	for s := 0; s < 3; s++ {
		grad(ps, s)
		o.Step(1e-2)
	}
	st := o.State()
	// Deep-copy the state as a checkpoint write/read would.
	for _, tn := range st {
		tn.F32 = append([]float32(nil), tn.F32...)
	}
	ps2, o2 := mk()
	for i := range ps {
		copy(ps2[i].Data, ps[i].Data)
	}
	if err := o2.LoadState(st); err != nil {
		t.Fatal(err)
	}
	for s := 3; s < 6; s++ {
		grad(ps2, s)
		o2.Step(1e-2)
	}
	for i := range ref {
		for j := range ref[i].Data {
			if ref[i].Data[j] != ps2[i].Data[j] {
				t.Errorf("%s[%d]: resumed %v, uninterrupted %v", ref[i].Name, j, ps2[i].Data[j], ref[i].Data[j])
			}
		}
	}
	delete(st, "exp_avg_sq.a")
	if err := o2.LoadState(st); err == nil {
		t.Error("LoadState without exp_avg_sq.a: want error")
	}
}

func TestLayerIDs(t *testing.T) {
	const depth = 4
	nm := map[string]int{
		"pos_embed": 0, "cls_token": 0, "patch_embed.proj.weight": 0, "patch_embed.proj.bias": 0,
		"blocks.0.mixer.A_log": 1, "blocks.3.norm.weight": 4, "norm_f.weight": 5, "head.weight": 5, "head.bias": 5,
	}
	for n, want := range nm {
		if got := NetMambaLayerID(n, depth); got != want {
			t.Errorf("NetMambaLayerID(%q) = %d, want %d", n, got, want)
		}
	}
	f3 := map[string]int{
		"pos_embed": 0, "byte_cls_token": 5, "size_indicator": 5, "byte_embed.proj.weight": 5,
		"encoder_blocks.0.mixer.D": 1, "encoder_blocks.3.mixer.in_proj.weight": 4, "norm_f.weight": 5, "head.weight": 5,
	}
	for n, want := range f3 {
		if got := Fuse3LayerID(n, depth); got != want {
			t.Errorf("Fuse3LayerID(%q) = %d, want %d", n, got, want)
		}
	}
}

func TestBuildGroupsFineTune(t *testing.T) {
	mk := func(name string, shape ...int) *Param {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return &Param{Name: name, Shape: shape, Data: make([]float32, n), Grad: make([]float32, n)}
	}
	ps := []*Param{
		mk("cls_token", 1, 1, 8), mk("pos_embed", 1, 5, 8), mk("patch_embed.proj.weight", 8, 1, 4),
		mk("patch_embed.proj.bias", 8), mk("blocks.0.mixer.A_log", 16, 4), mk("blocks.0.mixer.D", 16),
		mk("blocks.1.mixer.in_proj.weight", 32, 8), mk("norm_f.weight", 8), mk("head.weight", 3, 8),
	}
	gs := BuildGroups(ps, GroupConfig{
		WeightDecay: 0.05, NoDecay: NetMambaNoDecayNames(), LayerDecay: 0.75, Depth: 2, LayerID: NetMambaLayerID,
	})
	type want struct {
		scale, wd float64
	}
	// Depth 2: ids 0..3, scale 0.75^(3−id).
	exp := map[string]want{
		"cls_token": {0.421875, 0}, "pos_embed": {0.421875, 0}, "patch_embed.proj.weight": {0.421875, 0.05},
		"patch_embed.proj.bias": {0.421875, 0}, "blocks.0.mixer.A_log": {0.5625, 0.05}, "blocks.0.mixer.D": {0.5625, 0},
		"blocks.1.mixer.in_proj.weight": {0.75, 0.05}, "norm_f.weight": {1, 0}, "head.weight": {1, 0.05},
	}
	seen := 0
	for _, g := range gs {
		for _, p := range g.Params {
			seen++
			w := exp[p.Name]
			if math.Abs(g.LRScale-w.scale) > 1e-12 || g.WeightDecay != w.wd {
				t.Errorf("%s in group %s: scale %v wd %v, want %v %v", p.Name, g.Name, g.LRScale, g.WeightDecay, w.scale, w.wd)
			}
		}
	}
	if seen != len(ps) {
		t.Errorf("%d parameters in groups, want %d", seen, len(ps))
	}
	if gs[0].Name != "layer_0_no_decay" || gs[1].Name != "layer_0_decay" {
		t.Errorf("group order %s, %s", gs[0].Name, gs[1].Name)
	}
}

// BenchmarkAdamWStep updates the 2.2 M parameters of a NetMamba-sized model.
func BenchmarkAdamWStep(b *testing.B) {
	sizes := []int{256 * 401, 256 * 4, 4 * 1024 * 256, 4 * 512 * 256, 4 * 48 * 512, 4 * 512 * 16, 4 * 512 * 16, 7 * 256}
	var ps []*Param
	total := 0
	for i, n := range sizes {
		p := &Param{Name: fmt.Sprint("p", i), Shape: []int{n, 1}, Data: make([]float32, n), Grad: make([]float32, n)}
		for j := range p.Grad {
			p.Grad[j] = float32(j%7) - 3
		}
		ps = append(ps, p)
		total += n
	}
	o, err := NewAdamW(BuildGroups(ps, GroupConfig{WeightDecay: 0.05}), DefaultAdamWConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		o.Step(1e-3)
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparams/s")
}

// TestBuildGroupsPretrain: the pre-train rule (SPEC §4) decays everything
// but 1-D tensors and biases — pos_embed, cls_token and A_log included —
// with one lr scale.
func TestBuildGroupsPretrain(t *testing.T) {
	mk := func(name string, shape ...int) *Param {
		return &Param{Name: name, Shape: shape, Data: make([]float32, 4), Grad: make([]float32, 4)}
	}
	ps := []*Param{mk("pos_embed", 1, 2, 2), mk("cls_token", 1, 1, 4), mk("blocks.0.mixer.A_log", 2, 2),
		mk("blocks.0.mixer.D", 4), mk("decoder_pred.bias", 4), mk("mask_token", 1, 1, 4)}
	gs := BuildGroups(ps, GroupConfig{WeightDecay: 0.05, NoDecayBias: true, Depth: 4})
	if len(gs) != 2 {
		t.Fatalf("%d groups, want 2", len(gs))
	}
	for _, g := range gs {
		if g.LRScale != 1 {
			t.Errorf("group %s lr scale %v", g.Name, g.LRScale)
		}
		for _, p := range g.Params {
			decays := p.Name != "blocks.0.mixer.D" && p.Name != "decoder_pred.bias"
			if (g.WeightDecay == 0.05) != decays {
				t.Errorf("%s: weight decay %v", p.Name, g.WeightDecay)
			}
		}
	}
}

// TestClipGradNorm: gradients (3, 4) and (12) have norm 13; clipping to 6.5
// halves them (up to the 1e-6 guard); clipping to 20 leaves them alone.
func TestClipGradNorm(t *testing.T) {
	a := &Param{Name: "a", Shape: []int{2}, Data: make([]float32, 2), Grad: []float32{3, 4}}
	b := &Param{Name: "b", Shape: []int{1}, Data: make([]float32, 1), Grad: []float32{12}}
	gs := []ParamGroup{{Params: []*Param{a}}, {Params: []*Param{b}}}
	if n := ClipGradNorm(gs, 20); n != 13 || b.Grad[0] != 12 {
		t.Errorf("norm %v, grad %v: want 13 and no change", n, b.Grad)
	}
	if n := ClipGradNorm(gs, 6.5); n != 13 {
		t.Errorf("norm %v, want 13", n)
	}
	if math.Abs(float64(a.Grad[0])-1.5) > 1e-6 || math.Abs(float64(b.Grad[0])-6) > 1e-6 {
		t.Errorf("clipped gradients %v %v, want (1.5, 2) (6)", a.Grad, b.Grad)
	}
	ZeroGrad(gs)
	if a.Grad[1] != 0 || b.Grad[0] != 0 {
		t.Error("ZeroGrad left gradients")
	}
}
