// Package model implements the NetMamba byte classifier and its MAE
// pre-training model on the float32 kernels of package kernels: explicit
// forward and backward per layer (llm.c style), parameters under the
// official PyTorch state_dict names, and a recurrent Step that consumes one
// token at a time. The Mamba block stack (Stack) is shared by every model
// that runs Mamba-1 blocks over a token sequence.
package model

import (
	"fmt"

	"github.com/netmamba/netmamba/model/arch"
)

// Normalize fills the zero fields of cfg with the official NetMamba
// defaults (1600 bytes, stride 4, width 256, depth 4, d_state 16, d_conv 4,
// expand 2, dt_rank ceil(width/16), decoder 128×2, mask ratio 0.9) and
// checks the result. Task "" means "classify".
func Normalize(cfg arch.Config) (arch.Config, error) {
	if cfg.Arch == "" {
		cfg.Arch = "netmamba"
	}
	if cfg.Task == "" {
		cfg.Task = "classify"
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&cfg.ByteLength, 1600)
	def(&cfg.Stride, 4)
	def(&cfg.EmbedDim, 256)
	def(&cfg.Depth, 4)
	def(&cfg.DState, 16)
	def(&cfg.DConv, 4)
	def(&cfg.Expand, 2)
	def(&cfg.DtRank, (cfg.EmbedDim+15)/16)
	def(&cfg.DecoderEmbedDim, 128)
	def(&cfg.DecoderDepth, 2)
	if cfg.MaskRatio == 0 {
		cfg.MaskRatio = 0.9
	}
	switch {
	case cfg.Arch != "netmamba":
		return cfg, fmt.Errorf("model: arch %q is not a NetMamba byte model", cfg.Arch)
	case cfg.Task != "classify" && cfg.Task != "pretrain":
		return cfg, fmt.Errorf("model: task %q (want classify or pretrain)", cfg.Task)
	case cfg.ByteLength <= 0 || cfg.Stride <= 0 || cfg.ByteLength%cfg.Stride != 0:
		return cfg, fmt.Errorf("model: byte_length %d is not a positive multiple of stride %d", cfg.ByteLength, cfg.Stride)
	case cfg.EmbedDim <= 0 || cfg.Depth <= 0 || cfg.Expand <= 0 || cfg.DtRank <= 0 || cfg.DConv < 1:
		return cfg, fmt.Errorf("model: bad sizes embed_dim %d depth %d expand %d dt_rank %d d_conv %d", cfg.EmbedDim, cfg.Depth, cfg.Expand, cfg.DtRank, cfg.DConv)
	case cfg.DState <= 0 || cfg.DState > 64:
		return cfg, fmt.Errorf("model: d_state %d outside [1, 64]", cfg.DState)
	case cfg.Task == "classify" && cfg.NumClasses <= 0:
		return cfg, fmt.Errorf("model: classifier needs num_classes > 0, got %d", cfg.NumClasses)
	case cfg.Task == "pretrain" && (cfg.DecoderEmbedDim <= 0 || cfg.DecoderDepth <= 0 || cfg.MaskRatio <= 0 || cfg.MaskRatio >= 1):
		return cfg, fmt.Errorf("model: bad decoder %d×%d or mask ratio %g", cfg.DecoderEmbedDim, cfg.DecoderDepth, cfg.MaskRatio)
	}
	return cfg, nil
}

// Dims are the sizes of one Mamba-1 mixer.
type Dims struct {
	DModel int // block width
	DInner int // expand·d_model
	DState int // N
	DConv  int // causal conv width
	DtRank int // rank of the Δ projection
}

// XDbl is the width of x_proj's output: dt_rank + 2·d_state.
func (d Dims) XDbl() int { return d.DtRank + 2*d.DState }

// encoderDims returns the encoder mixer sizes of a normalised config.
func encoderDims(cfg arch.Config) Dims {
	return Dims{DModel: cfg.EmbedDim, DInner: cfg.Expand * cfg.EmbedDim, DState: cfg.DState, DConv: cfg.DConv, DtRank: cfg.DtRank}
}

// decoderDims returns the MAE decoder mixer sizes (dt_rank follows the
// decoder width, as the official Mamba "auto" rank does).
func decoderDims(cfg arch.Config) Dims {
	return Dims{DModel: cfg.DecoderEmbedDim, DInner: cfg.Expand * cfg.DecoderEmbedDim, DState: cfg.DState, DConv: cfg.DConv, DtRank: (cfg.DecoderEmbedDim + 15) / 16}
}

// DropPathRates returns the per-mixer drop-path probabilities of a stack
// of depth blocks with maximum rate r: linspace(0, r, depth). Mixer i's
// output is dropped with rate[i] before it is added to the residual
// stream (by block i+1, or by the final add + norm for the last mixer).
func DropPathRates(depth int, r float64) []float64 {
	p := make([]float64, depth)
	for i := range p {
		if depth > 1 {
			p[i] = r * float64(i) / float64(depth-1)
		} else {
			p[i] = r // a single mixer goes through the model-level DropPath(r)
		}
	}
	return p
}
