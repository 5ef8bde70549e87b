package model

import (
	"math"
	"math/rand/v2"

	"github.com/netmamba/netmamba/model/arch"
)

// NewRandom returns a model initialised as the official NetMamba code does
// (SPEC §3 "Initialisation (NetMamba)"), from a seeded generator (our
// draws, not PyTorch's): trunc_normal(std .02, cut at ±2) for pos_embed,
// cls_token, head, mask_token and decoder_pos_embed; lecun_normal for the
// patch-embedding conv (bias 0); PyTorch's default kaiming_uniform(a=√5)
// — U(±1/√fan_in) — for in_proj, x_proj, conv1d (weight and bias),
// decoder_embed and decoder_pred; out_proj the same then ÷ √depth (encoder
// depth, decoder too); dt_proj.weight U(±dt_rank^−½); dt_proj.bias =
// softplus⁻¹(Δ), Δ = exp(U[ln 1e-3, ln 0.1]) floored at 1e-4; A_log[d,n]
// = ln(n+1); D = 1; norm weights 1; other biases 0.
func NewRandom(cfg arch.Config, seed uint64) (*Model, error) {
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	m.Init(seed)
	return m, nil
}

// Init re-initialises every parameter (see NewRandom).
func (m *Model) Init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x6e65746d616d6261))
	p := m.P
	p.Zero()
	truncNormal(rng, p.ClsToken, 0.02)
	truncNormal(rng, p.PosEmbed, 0.02)
	if p.MaskToken != nil {
		truncNormal(rng, p.MaskToken, 0.02)
		truncNormal(rng, p.DecPosEmbed, 0.02)
	}
	// lecun_normal: truncated normal (±2σ) with σ = √(1/fan_in)/0.8796.
	std := math.Sqrt(1/float64(m.Cfg.Stride)) / 0.87962566103423978
	for i := range p.PatchW {
		p.PatchW[i] = float32(std * truncStd(rng))
	}
	depth := m.Cfg.Depth
	initBlocks := func(blocks []MambaParams, d Dims) {
		for i := range blocks {
			b := &blocks[i]
			fill(b.NormW, 1)
			uniform(rng, b.InProjW, 1/math.Sqrt(float64(d.DModel)))
			uniform(rng, b.ConvW, 1/math.Sqrt(float64(d.DConv)))
			uniform(rng, b.ConvB, 1/math.Sqrt(float64(d.DConv)))
			uniform(rng, b.XProjW, 1/math.Sqrt(float64(d.DInner)))
			uniform(rng, b.DtProjW, 1/math.Sqrt(float64(d.DtRank)))
			lo, hi := math.Log(1e-3), math.Log(0.1)
			for j := range b.DtProjB {
				dt := math.Max(math.Exp(lo+rng.Float64()*(hi-lo)), 1e-4)
				b.DtProjB[j] = float32(dt + math.Log(-math.Expm1(-dt))) // softplus⁻¹
			}
			for j := range b.ALog {
				b.ALog[j] = float32(math.Log(float64(j%d.DState + 1)))
			}
			fill(b.D, 1)
			uniform(rng, b.OutProjW, 1/math.Sqrt(float64(d.DInner))/math.Sqrt(float64(depth)))
		}
	}
	initBlocks(p.Blocks, encoderDims(m.Cfg))
	fill(p.NormF, 1)
	if p.HeadW != nil {
		truncNormal(rng, p.HeadW, 0.02)
	}
	if p.DecEmbedW != nil {
		uniform(rng, p.DecEmbedW, 1/math.Sqrt(float64(m.Cfg.EmbedDim)))
		initBlocks(p.DecBlocks, decoderDims(m.Cfg))
		fill(p.DecNormF, 1)
		uniform(rng, p.DecPredW, 1/math.Sqrt(float64(m.Cfg.DecoderEmbedDim)))
	}
}

func fill(v []float32, x float32) {
	for i := range v {
		v[i] = x
	}
}

func uniform(rng *rand.Rand, v []float32, bound float64) {
	for i := range v {
		v[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// truncNormal fills v with N(0, std²) cut at ±2 (absolute, as timm's
// trunc_normal_ defaults a=−2, b=2), by rejection.
func truncNormal(rng *rand.Rand, v []float32, std float64) {
	for i := range v {
		for {
			x := rng.NormFloat64() * std
			if x >= -2 && x <= 2 {
				v[i] = float32(x)
				break
			}
		}
	}
}

// truncStd draws a standard normal cut at ±2.
func truncStd(rng *rand.Rand) float64 {
	for {
		x := rng.NormFloat64()
		if x >= -2 && x <= 2 {
			return x
		}
	}
}
