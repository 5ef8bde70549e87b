package model

import (
	"fmt"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/internal/paramset"
)

// Param is one named parameter tensor; Data aliases the owning Params'
// contiguous buffer.
type Param = paramset.Param

// MambaParams are the parameters of one Mamba block (RMSNorm + mixer),
// in PyTorch layouts: Linear weights are [out, in].
type MambaParams struct {
	NormW    []float32 // norm.weight (d_model)
	InProjW  []float32 // mixer.in_proj.weight (2·d_inner, d_model)
	ConvW    []float32 // mixer.conv1d.weight (d_inner, 1, d_conv)
	ConvB    []float32 // mixer.conv1d.bias (d_inner)
	XProjW   []float32 // mixer.x_proj.weight (dt_rank+2·d_state, d_inner)
	DtProjW  []float32 // mixer.dt_proj.weight (d_inner, dt_rank)
	DtProjB  []float32 // mixer.dt_proj.bias (d_inner)
	ALog     []float32 // mixer.A_log (d_inner, d_state); A = −exp(A_log)
	D        []float32 // mixer.D (d_inner)
	OutProjW []float32 // mixer.out_proj.weight (d_model, d_inner)
}

// Params holds every parameter of a NetMamba model (classifier or MAE) in
// one contiguous buffer, with typed views. A gradient set is a Params of
// the same config (same names and layout).
type Params struct {
	set paramset.Set // names, shapes and the one buffer the views alias

	PatchW   []float32 // patch_embed.proj.weight (E, 1, stride)
	PatchB   []float32 // patch_embed.proj.bias (E)
	ClsToken []float32 // cls_token (1, 1, E)
	PosEmbed []float32 // pos_embed (1, tokens+1, E)
	Blocks   []MambaParams
	NormF    []float32 // norm_f.weight (E)

	HeadW []float32 // head.weight (classes, E); classifier only
	HeadB []float32 // head.bias (classes)

	// MAE pre-training only.
	DecEmbedW   []float32 // decoder_embed.weight (Dd, E)
	DecEmbedB   []float32 // decoder_embed.bias (Dd)
	MaskToken   []float32 // mask_token (1, 1, Dd)
	DecPosEmbed []float32 // decoder_pos_embed (1, tokens+1, Dd)
	DecBlocks   []MambaParams
	DecNormF    []float32 // decoder_norm_f.weight (Dd)
	DecPredW    []float32 // decoder_pred.weight (stride, Dd)
	DecPredB    []float32 // decoder_pred.bias (stride)
}

// paramSpec names one parameter, its official shape and its typed view
// (a paramset.Spec with short positional literals).
type paramSpec struct {
	name  string
	shape []int
	dst   *[]float32
}

func mambaSpecs(prefix string, d Dims, p *MambaParams) []paramSpec {
	m := prefix + ".mixer."
	return []paramSpec{
		{m + "A_log", []int{d.DInner, d.DState}, &p.ALog},
		{m + "D", []int{d.DInner}, &p.D},
		{m + "in_proj.weight", []int{2 * d.DInner, d.DModel}, &p.InProjW},
		{m + "conv1d.weight", []int{d.DInner, 1, d.DConv}, &p.ConvW},
		{m + "conv1d.bias", []int{d.DInner}, &p.ConvB},
		{m + "x_proj.weight", []int{d.XDbl(), d.DInner}, &p.XProjW},
		{m + "dt_proj.weight", []int{d.DInner, d.DtRank}, &p.DtProjW},
		{m + "dt_proj.bias", []int{d.DInner}, &p.DtProjB},
		{m + "out_proj.weight", []int{d.DModel, d.DInner}, &p.OutProjW},
		{prefix + ".norm.weight", []int{d.DModel}, &p.NormW},
	}
}

// newParams allocates zeroed parameters for a normalised config, in the
// official state_dict order.
func newParams(cfg arch.Config) *Params {
	p := &Params{}
	E, T := cfg.EmbedDim, cfg.ByteLength/cfg.Stride
	pre := cfg.Task == "pretrain"
	var specs []paramSpec
	specs = append(specs,
		paramSpec{"cls_token", []int{1, 1, E}, &p.ClsToken},
		paramSpec{"pos_embed", []int{1, T + 1, E}, &p.PosEmbed})
	if pre {
		Dd := cfg.DecoderEmbedDim
		specs = append(specs,
			paramSpec{"mask_token", []int{1, 1, Dd}, &p.MaskToken},
			paramSpec{"decoder_pos_embed", []int{1, T + 1, Dd}, &p.DecPosEmbed})
	}
	specs = append(specs,
		paramSpec{"patch_embed.proj.weight", []int{E, 1, cfg.Stride}, &p.PatchW},
		paramSpec{"patch_embed.proj.bias", []int{E}, &p.PatchB})
	p.Blocks = make([]MambaParams, cfg.Depth)
	for i := range p.Blocks {
		specs = append(specs, mambaSpecs(fmt.Sprintf("blocks.%d", i), encoderDims(cfg), &p.Blocks[i])...)
	}
	specs = append(specs, paramSpec{"norm_f.weight", []int{E}, &p.NormF})
	if pre {
		Dd := cfg.DecoderEmbedDim
		specs = append(specs,
			paramSpec{"decoder_embed.weight", []int{Dd, E}, &p.DecEmbedW},
			paramSpec{"decoder_embed.bias", []int{Dd}, &p.DecEmbedB})
		p.DecBlocks = make([]MambaParams, cfg.DecoderDepth)
		for i := range p.DecBlocks {
			specs = append(specs, mambaSpecs(fmt.Sprintf("decoder_blocks.%d", i), decoderDims(cfg), &p.DecBlocks[i])...)
		}
		specs = append(specs,
			paramSpec{"decoder_norm_f.weight", []int{Dd}, &p.DecNormF},
			paramSpec{"decoder_pred.weight", []int{cfg.Stride, Dd}, &p.DecPredW},
			paramSpec{"decoder_pred.bias", []int{cfg.Stride}, &p.DecPredB})
	} else {
		specs = append(specs,
			paramSpec{"head.weight", []int{cfg.NumClasses, E}, &p.HeadW},
			paramSpec{"head.bias", []int{cfg.NumClasses}, &p.HeadB})
	}
	p.allocate(specs)
	return p
}

// allocate lays specs out in one zeroed buffer, in order, and points their
// views into it.
func (p *Params) allocate(specs []paramSpec) {
	ps := make([]paramset.Spec, len(specs))
	for i, s := range specs {
		ps[i] = paramset.Spec{Name: s.name, Shape: s.shape, Dst: s.dst}
	}
	p.set = paramset.New(ps)
}

// List returns the parameters in the official state_dict order.
func (p *Params) List() []Param { return p.set.List() }

// Flat returns all parameters as one contiguous slice (List order), for
// optimisers.
func (p *Params) Flat() []float32 { return p.set.Flat() }

// Count is the number of scalar parameters.
func (p *Params) Count() int { return p.set.Count() }

// Zero sets every parameter to 0.
func (p *Params) Zero() { p.set.Zero() }

// Get returns the parameter with the given official name, or nil.
func (p *Params) Get(name string) *Param { return p.set.Get(name) }

// Tensors returns copies of the parameters as checkpoint tensors keyed by
// their official names.
func (p *Params) Tensors() map[string]*checkpoint.Tensor { return p.set.Tensors() }

// load copies tensors into p. Every parameter must be present with the
// right shape and dtype, and no tensor may be left over; the error lists
// every problem.
func (p *Params) load(ts map[string]*checkpoint.Tensor) error {
	if err := p.set.Load(ts); err != nil {
		return fmt.Errorf("model: tensors do not match the config: %w", err)
	}
	return nil
}

// addFrom sets p += q (same config).
func (p *Params) addFrom(q *Params) { p.set.AddFrom(&q.set) }

// clip joins names for an error message, at most six of them.
func clip(s []string) string { return paramset.ShortList(s) }

// sameShape accepts the official shape, or the same sizes with leading
// singleton dimensions dropped/added (e.g. cls_token [1,1,E] vs [E]).
func sameShape(a, b []int) bool { return paramset.SameShape(a, b) }
