package model

import (
	"fmt"

	"github.com/netmamba/netmamba/kernels"
)

// Stream is the recurrent state of one flow for token-by-token inference
// (the basis of streaming, per-packet classification): per layer the
// causal-conv window ((d_conv−1) × d_inner) and the scan state
// (d_inner × d_state), plus the residual stream of the current token.
// Feeding the byte tokens 0…T−1 and then the CLS token through Step gives
// the same outputs as the parallel Forward (tested). A Stream is not safe
// for concurrent use; the Model may be shared by many Streams.
type Stream struct {
	m    *Model
	d    Dims
	Pos  int         // tokens consumed so far
	conv [][]float32 // per layer (d_conv−1, d_inner), oldest first
	h    [][]float32 // per layer (d_inner, d_state)
	A    [][]float32 // per layer −exp(A_log), cached

	// Per-token outputs of the last Step.
	Hid [][]float32 // per layer (d_model): mixer outputs
	Out []float32   // (d_model): final norm output

	res, nrm, tok                []float32
	xz, xc, xs, xdbl, dt, dl, yg []float32
	scan                         kernels.Scan
	rstd                         [1]float32
	packs                        []blockPacks  // shared, read-only; nil: unpacked
	mix                          *mixerScratch // only its GEMM workspace is used
}

// PackedWeights are a model's encoder mixer weights packed once for the
// GEMM micro-kernel, shared read-only by any number of Streams (packing
// inside every one-token product would cost as much as the product).
// They are a snapshot: pack again after the weights change.
type PackedWeights struct {
	packs []blockPacks
}

// PackWeights packs the encoder's Linear weights for NewStreamPacked.
func (m *Model) PackWeights() *PackedWeights {
	pw := &PackedWeights{packs: make([]blockPacks, len(m.P.Blocks))}
	d := encoderDims(m.Cfg)
	for i := range pw.packs {
		pw.packs[i].repack(d, &m.P.Blocks[i])
	}
	return pw
}

// NewStream returns a fresh stream (zero states) for a classifier or the
// encoder of a pre-training model, reading the current weights directly.
func (m *Model) NewStream() *Stream { return m.NewStreamPacked(nil) }

// NewStreamPacked is NewStream using weights packed by m.PackWeights (nil:
// unpacked), about twice as fast per token. The results are the same.
func (m *Model) NewStreamPacked(pw *PackedWeights) *Stream {
	d := encoderDims(m.Cfg)
	s := &Stream{m: m, d: d, mix: &mixerScratch{}}
	if pw != nil {
		s.packs = pw.packs
	}
	for i := range m.P.Blocks {
		s.conv = append(s.conv, make([]float32, (d.DConv-1)*d.DInner))
		s.h = append(s.h, make([]float32, d.DInner*d.DState))
		a := make([]float32, d.DInner*d.DState)
		for j, v := range m.P.Blocks[i].ALog {
			a[j] = -kernels.Exp32(v)
		}
		s.A = append(s.A, a)
		s.Hid = append(s.Hid, make([]float32, d.DModel))
	}
	s.Out = make([]float32, d.DModel)
	s.res, s.nrm, s.tok = make([]float32, d.DModel), make([]float32, d.DModel), make([]float32, d.DModel)
	s.xz, s.xc, s.xs = make([]float32, 2*d.DInner), make([]float32, d.DInner), make([]float32, d.DInner)
	s.xdbl, s.dt, s.dl, s.yg = make([]float32, d.XDbl()), make([]float32, d.DInner), make([]float32, d.DInner), make([]float32, d.DInner)
	return s
}

// Reset clears the stream for a new flow.
func (s *Stream) Reset() {
	s.Pos = 0
	for i := range s.conv {
		clear(s.conv[i])
		clear(s.h[i])
	}
}

// StepBytes consumes the next byte token: stride normalised byte values
// (see NormalizeBytes). Byte tokens must come before the CLS token.
func (s *Stream) StepBytes(x []float32) error {
	m := s.m
	E, S := m.Cfg.EmbedDim, m.Cfg.Stride
	if s.Pos >= m.Tokens {
		return fmt.Errorf("model: stream already consumed %d byte tokens", s.Pos)
	}
	if len(x) < S {
		return fmt.Errorf("model: byte token has %d values, want %d", len(x), S)
	}
	pos := m.P.PosEmbed[s.Pos*E : (s.Pos+1)*E]
	for e := range s.tok {
		w := m.P.PatchW[e*S : e*S+S]
		v := m.P.PatchB[e]
		for k, xv := range x[:S] {
			v += w[k] * xv
		}
		s.tok[e] = v + pos[e]
	}
	s.Step(s.tok)
	return nil
}

// StepCLS consumes the CLS token (cls_token + its position embedding,
// position Tokens) and, for a classifier, writes the logits (NumClasses).
// After the Tokens byte tokens this equals Forward's logits; it can also
// be called earlier (after any prefix of the flow) for an early guess.
func (s *Stream) StepCLS(logits []float32) {
	m := s.m
	E, T := m.Cfg.EmbedDim, m.Tokens
	pos := m.P.PosEmbed[T*E : (T+1)*E]
	for e := range s.tok {
		s.tok[e] = m.P.ClsToken[e] + pos[e]
	}
	s.Step(s.tok)
	if m.Cfg.Task == "classify" && logits != nil {
		m.head(s.Out, logits)
	}
}

// Step consumes one embedded token x (d_model) through every block and
// the final norm, updating the per-layer states; s.Hid and s.Out hold the
// outputs.
func (s *Stream) Step(x []float32) {
	m, d := s.m, s.d
	E, di, N, R, xd := d.DModel, d.DInner, d.DState, d.DtRank, d.XDbl()
	copy(s.res, x[:E])
	for i := range m.P.Blocks {
		b := &m.P.Blocks[i]
		var pin, px, pdt, pout *kernels.PackedB
		if s.packs != nil {
			pin, px, pdt, pout = s.packs[i].in, s.packs[i].x, s.packs[i].dt, s.packs[i].out
		}
		if i > 0 {
			kernels.AddRMSNormForward(1, E, s.res, s.Hid[i-1], 1, s.res, b.NormW, normEps, s.nrm, s.rstd[:])
		} else {
			kernels.AddRMSNormForward(1, E, s.res, nil, 1, s.res, b.NormW, normEps, s.nrm, s.rstd[:])
		}
		s.mix.linear(pin, 1, 2*di, E, s.nrm, E, b.InProjW, s.xz, 2*di)
		kernels.CausalConv1dStep(di, d.DConv, s.conv[i], s.xz[:di], b.ConvW, b.ConvB, s.xc)
		kernels.SiLUForward(di, s.xc, s.xs)
		s.mix.linear(px, 1, xd, di, s.xs, di, b.XProjW, s.xdbl, xd)
		s.mix.linear(pdt, 1, di, R, s.xdbl, xd, b.DtProjW, s.dt, di)
		kernels.SoftplusBiasForward(1, di, s.dt, di, b.DtProjB, s.dl, di)
		s.scan = kernels.Scan{L: 1, D: di, N: N, A: s.A[i], Dskip: b.D}
		s.scan.Step(s.xs, s.dl, s.xdbl[R:R+N], s.xdbl[R+N:R+2*N], s.xz[di:], s.yg, s.h[i])
		s.mix.linear(pout, 1, E, di, s.yg, di, b.OutProjW, s.Hid[i], E)
	}
	kernels.AddRMSNormForward(1, E, s.res, s.Hid[len(s.Hid)-1], 1, s.res, m.P.NormF, normEps, s.Out, s.rstd[:])
	s.Pos++
}
