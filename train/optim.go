package train

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/netmamba/netmamba/checkpoint"
)

// Param is one named trainable tensor: its values and the gradient the
// backward pass accumulates into (same length).
type Param struct {
	Name  string // official state_dict name, e.g. "blocks.2.mixer.in_proj.weight"
	Shape []int
	Data  []float32
	Grad  []float32
}

// ParamGroup is a set of parameters sharing a learning-rate scale and a
// weight decay, as a PyTorch optimiser param_group with MAE's "lr_scale".
type ParamGroup struct {
	Name        string
	Params      []*Param
	LRScale     float64 // the group's lr is the schedule's lr times LRScale
	WeightDecay float64 // decoupled weight decay coefficient
}

// AdamWConfig holds the AdamW hyper-parameters other than lr and weight
// decay (which come per step and per group).
type AdamWConfig struct {
	Beta1, Beta2 float64
	Eps          float64
}

// DefaultAdamWConfig is PyTorch's default: β = (0.9, 0.999), ε = 1e-8 (the
// fine-tune recipe; pre-training uses β2 = 0.95).
func DefaultAdamWConfig() AdamWConfig { return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// AdamW is PyTorch's torch.optim.AdamW (amsgrad off, maximize off). For each
// parameter p with gradient g, at step t with group lr η and decay λ:
//
//	p ← p·(1 − ηλ)
//	m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	p ← p − η/(1−β1^t) · m / (√v/√(1−β2^t) + ε)
//
// Moments are kept in float32 as PyTorch does; each update is computed in
// float64 and rounded once.
type AdamW struct {
	cfg      AdamWConfig
	groups   []ParamGroup
	step     int64
	expAvg   [][]float32 // m per parameter, in group order
	expAvgSq [][]float32 // v per parameter, in group order
}

// NewAdamW checks the groups (unique names, gradient buffers of the right
// length) and allocates zero moments.
func NewAdamW(groups []ParamGroup, cfg AdamWConfig) (*AdamW, error) {
	if !(cfg.Beta1 >= 0 && cfg.Beta1 < 1 && cfg.Beta2 >= 0 && cfg.Beta2 < 1) || !(cfg.Eps > 0) {
		return nil, fmt.Errorf("train: AdamW: β (%g, %g) must be in [0, 1) and ε %g positive", cfg.Beta1, cfg.Beta2, cfg.Eps)
	}
	o := &AdamW{cfg: cfg, groups: groups}
	seen := map[string]bool{}
	for _, g := range groups {
		for _, p := range g.Params {
			if seen[p.Name] {
				return nil, fmt.Errorf("train: AdamW: parameter %q appears twice", p.Name)
			}
			seen[p.Name] = true
			if len(p.Grad) != len(p.Data) {
				return nil, fmt.Errorf("train: AdamW: parameter %q has %d values and %d gradients", p.Name, len(p.Data), len(p.Grad))
			}
			o.expAvg = append(o.expAvg, make([]float32, len(p.Data)))
			o.expAvgSq = append(o.expAvgSq, make([]float32, len(p.Data)))
		}
	}
	return o, nil
}

// Groups returns the parameter groups the optimiser updates.
func (o *AdamW) Groups() []ParamGroup { return o.groups }

// Steps returns the number of steps taken (PyTorch's state "step").
func (o *AdamW) Steps() int64 { return o.step }

// Step applies one update with the schedule's learning rate lr (each group
// uses lr·LRScale). It reads the gradients and does not clear them.
func (o *AdamW) Step(lr float64) {
	o.step++
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	bc1 := 1 - math.Pow(b1, float64(o.step))
	bc2Sqrt := math.Sqrt(1 - math.Pow(b2, float64(o.step)))
	k := 0
	for _, g := range o.groups {
		eta := lr * g.LRScale
		shrink := 1 - eta*g.WeightDecay
		stepSize := eta / bc1
		for _, p := range g.Params {
			m, v := o.expAvg[k], o.expAvgSq[k]
			k++
			for j, gr := range p.Grad {
				gj := float64(gr)
				mj := b1*float64(m[j]) + (1-b1)*gj
				vj := b2*float64(v[j]) + (1-b2)*gj*gj
				m[j], v[j] = float32(mj), float32(vj)
				denom := math.Sqrt(float64(v[j]))/bc2Sqrt + o.cfg.Eps
				p.Data[j] = float32(float64(p.Data[j])*shrink - stepSize*float64(m[j])/denom)
			}
		}
	}
}

// State returns the optimiser state for resumable training as named
// tensors: "step" (I64, shape [1]) and, per parameter name n,
// "exp_avg.n" and "exp_avg_sq.n" (F32, the parameter's shape). The tensors
// share memory with the optimiser until the next Step.
func (o *AdamW) State() map[string]*checkpoint.Tensor {
	st := map[string]*checkpoint.Tensor{
		"step": {DType: "I64", Shape: []int{1}, I64: []int64{o.step}},
	}
	k := 0
	for _, g := range o.groups {
		for _, p := range g.Params {
			shape := append([]int(nil), p.Shape...)
			st["exp_avg."+p.Name] = &checkpoint.Tensor{DType: "F32", Shape: shape, F32: o.expAvg[k]}
			st["exp_avg_sq."+p.Name] = &checkpoint.Tensor{DType: "F32", Shape: shape, F32: o.expAvgSq[k]}
			k++
		}
	}
	return st
}

// LoadState restores a state written by State (copying it). Every
// parameter's moments must be present with the right number of elements.
func (o *AdamW) LoadState(st map[string]*checkpoint.Tensor) error {
	s := st["step"]
	if s == nil || len(s.I64) != 1 || s.I64[0] < 0 {
		return fmt.Errorf("train: AdamW state: missing or bad \"step\" tensor")
	}
	k := 0
	for _, g := range o.groups {
		for _, p := range g.Params {
			for _, pre := range []string{"exp_avg.", "exp_avg_sq."} {
				t := st[pre+p.Name]
				if t == nil || len(t.F32) != len(p.Data) {
					return fmt.Errorf("train: AdamW state: tensor %q missing or not %d float32 values", pre+p.Name, len(p.Data))
				}
			}
			k++
		}
	}
	k = 0
	for _, g := range o.groups {
		for _, p := range g.Params {
			copy(o.expAvg[k], st["exp_avg."+p.Name].F32)
			copy(o.expAvgSq[k], st["exp_avg_sq."+p.Name].F32)
			k++
		}
	}
	o.step = s.I64[0]
	return nil
}

// NetMambaLayerID is the layer id of a NetMamba parameter for layer-wise
// lr decay (SPEC §4): pos_embed, cls_token and patch_embed.* → 0,
// blocks.i.* → i+1, everything else (norm_f, head) → depth+1.
func NetMambaLayerID(name string, depth int) int {
	switch {
	case name == "pos_embed" || name == "cls_token" || strings.HasPrefix(name, "patch_embed."):
		return 0
	case strings.HasPrefix(name, "blocks."):
		return blockIndex(name[len("blocks."):], depth) + 1
	}
	return depth + 1
}

// Fuse3LayerID is the layer id of a NetMamba+ fuse3 parameter: pos_embed →
// 0, encoder_blocks.i.* → i+1, everything else (embeddings, CLS tokens,
// indicators, norm_f, head) → depth+1.
func Fuse3LayerID(name string, depth int) int {
	switch {
	case name == "pos_embed":
		return 0
	case strings.HasPrefix(name, "encoder_blocks."):
		return blockIndex(name[len("encoder_blocks."):], depth) + 1
	}
	return depth + 1
}

// blockIndex parses the "i" of "i.rest"; unparsable or out-of-range indices
// map to depth (the top layer id, like any non-block parameter).
func blockIndex(rest string, depth int) int {
	num, _, _ := strings.Cut(rest, ".")
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 || i >= depth {
		return depth
	}
	return i
}

// NetMambaNoDecayNames is NetMamba's no_weight_decay set (exempt from weight
// decay when fine-tuning, besides every 1-D tensor).
func NetMambaNoDecayNames() []string {
	return []string{"pos_embed", "cls_token", "dist_token", "cls_token_head", "cls_token_tail"}
}

// Fuse3NoDecayNames is NetMamba+ fuse3's no_weight_decay set.
func Fuse3NoDecayNames() []string {
	return []string{"pos_embed", "byte_cls_token", "norm", "byte_mask_token", "size_cls_token", "iat_cls_token"}
}

// GroupConfig says how to split parameters into AdamW groups.
type GroupConfig struct {
	WeightDecay float64  // λ for decayed parameters
	NoDecay     []string // names exempt from decay (1-D tensors always are)
	// NoDecayBias also exempts names ending in ".bias" whatever their shape
	// (timm's add_weight_decay, used for pre-training).
	NoDecayBias bool
	// LayerDecay is the layer-wise lr decay (0.75 to fine-tune); 0 or 1 means
	// none. With decay, a parameter of layer id L gets the lr scale
	// LayerDecay^(Depth+1−L).
	LayerDecay float64
	Depth      int                              // number of blocks
	LayerID    func(name string, depth int) int // NetMambaLayerID or Fuse3LayerID; nil puts everything at depth+1
}

// BuildGroups splits params into groups named "layer_<id>_decay" and
// "layer_<id>_no_decay" (ids are all depth+1 without layer decay), in the
// order their first parameter appears, as MAE's param_groups_lrd does.
func BuildGroups(params []*Param, cfg GroupConfig) []ParamGroup {
	noDecay := map[string]bool{}
	for _, n := range cfg.NoDecay {
		noDecay[n] = true
	}
	decay := cfg.LayerDecay
	if decay == 0 {
		decay = 1
	}
	var groups []ParamGroup
	index := map[string]int{}
	for _, p := range params {
		id := cfg.Depth + 1
		if cfg.LayerID != nil && decay != 1 {
			id = cfg.LayerID(p.Name, cfg.Depth)
		}
		wd, kind := cfg.WeightDecay, "decay"
		if len(p.Shape) == 1 || noDecay[p.Name] || (cfg.NoDecayBias && strings.HasSuffix(p.Name, ".bias")) {
			wd, kind = 0, "no_decay"
		}
		name := fmt.Sprintf("layer_%d_%s", id, kind)
		gi, ok := index[name]
		if !ok {
			gi = len(groups)
			index[name] = gi
			groups = append(groups, ParamGroup{
				Name:        name,
				LRScale:     math.Pow(decay, float64(cfg.Depth+1-id)),
				WeightDecay: wd,
			})
		}
		groups[gi].Params = append(groups[gi].Params, p)
	}
	return groups
}

// ZeroGrad clears the gradients of every parameter of the groups.
func ZeroGrad(groups []ParamGroup) {
	for _, g := range groups {
		for _, p := range g.Params {
			clear(p.Grad)
		}
	}
}

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ with the L2 norm: it
// returns the global norm of all gradients and, when it exceeds maxNorm,
// scales them by maxNorm/(norm + 1e-6).
func ClipGradNorm(groups []ParamGroup, maxNorm float64) float64 {
	var ss float64
	for _, g := range groups {
		for _, p := range g.Params {
			for _, v := range p.Grad {
				ss += float64(v) * float64(v)
			}
		}
	}
	norm := math.Sqrt(ss)
	if coef := maxNorm / (norm + 1e-6); coef < 1 {
		for _, g := range groups {
			for _, p := range g.Params {
				for j := range p.Grad {
					p.Grad[j] = float32(float64(p.Grad[j]) * coef)
				}
			}
		}
	}
	return norm
}
