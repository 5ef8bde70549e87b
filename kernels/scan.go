package kernels

// MaxDState is the largest d_state the scan kernels accept (the state of
// one channel lives in a fixed-size array).
const MaxDState = 64

// Scan describes the Mamba-1 selective scan of one sequence, token-major:
//
//	h_t[d,:] = exp(Δ[t,d]·A[d,:]) ⊙ h_{t−1}[d,:] + Δ[t,d]·u[t,d]·B[t,:]
//	y[t,d]   = (C[t,:]·h_t[d,:] + Dskip[d]·u[t,d]) · SiLU(z[t,d])
//
// Matrices are row-major with the given row strides, so u, z, B and C can
// be column blocks of larger buffers (z inside in_proj's output, B and C
// inside x_proj's). A is −exp(A_log), (D, N) contiguous. Z may be nil (no
// gating). The kernels work channel by channel with the N-float state of
// one channel in registers: the inner loop over n is contiguous (N = 16 is
// one AVX-512 register), which is the shape an assembly version vectorises.
type Scan struct {
	L, D, N int // sequence length, channels (d_inner), state size (d_state)

	U     []float32 // (L, D) input (the SiLU of the convolution)
	LdU   int
	Delta []float32 // (L, D) Δ after softplus
	LdDel int
	A     []float32 // (D, N)
	B     []float32 // (L, N)
	LdB   int
	C     []float32 // (L, N)
	LdC   int
	Dskip []float32 // (D)
	Z     []float32 // (L, D) gate, or nil
	LdZ   int
}

// Forward writes the gated output y (L, D) with row stride ldy. If h is
// non-nil it is the (D, N) initial state and receives the final state;
// otherwise the scan starts from zeros.
func (s *Scan) Forward(y []float32, ldy int, h []float32) {
	L, D, N := s.L, s.D, s.N
	if N > MaxDState {
		panic("kernels: Scan: d_state above MaxDState")
	}
	var st [MaxDState]float32
	for d := s.forwardFast(y, ldy, h); d < D; d++ {
		hs := st[:N]
		if h != nil {
			copy(hs, h[d*N:d*N+N])
		} else {
			clear(hs)
		}
		a := s.A[d*N : d*N+N]
		dsk := s.Dskip[d]
		for t := 0; t < L; t++ {
			dt := s.Delta[t*s.LdDel+d]
			ut := s.U[t*s.LdU+d]
			bt := s.B[t*s.LdB : t*s.LdB+N]
			ct := s.C[t*s.LdC : t*s.LdC+N]
			acc := scanStepRow(hs, a, bt, ct, dt, dt*ut)
			v := acc + dsk*ut
			if s.Z != nil {
				v *= SiLU(s.Z[t*s.LdZ+d])
			}
			y[t*ldy+d] = v
		}
		if h != nil {
			copy(h[d*N:d*N+N], hs)
		}
	}
}

// scanStepRow advances one channel's state by one token and returns C·h:
// h = exp(dt·a) ⊙ h + du·b; the hot inner loop of the scan.
func scanStepRow(h, a, b, c []float32, dt, du float32) float32 {
	n := len(h)
	a, b, c = a[:n], b[:n], c[:n]
	var acc float32
	for i := range h {
		v := Exp32(dt*a[i])*h[i] + du*b[i]
		h[i] = v
		acc += c[i] * v
	}
	return acc
}

// Step advances the scan by one token for all channels, the recurrent form
// of Forward (mamba's selective_state_update): u, delta, z and y are (D),
// b and c are (N), h is the (D, N) state updated in place. Only D, N, A
// and Dskip of s are used. It is Forward on a sequence of length 1 from
// state h, so it computes exactly what Forward computes for that token.
func (s *Scan) Step(u, delta, b, c, z, y, h []float32) {
	D, N := s.D, s.N
	one := Scan{L: 1, D: D, N: N, U: u, LdU: D, Delta: delta, LdDel: D, A: s.A,
		B: b, LdB: N, C: c, LdC: N, Dskip: s.Dskip, Z: z, LdZ: D}
	one.Forward(y, D, h)
}

// ScanGrad holds the gradients of a Scan. DY (L, D) is the incoming
// gradient of the gated output. DU, DDelta and DZ are overwritten; DA
// (D, N), DB, DC (L, N) and DDskip (D) are accumulated (+=), so DB and DC
// must be zeroed by the caller before the first channel's contribution.
type ScanGrad struct {
	DY     []float32
	LdDY   int
	DU     []float32
	LdDU   int
	DDelta []float32
	LdDDel int
	DZ     []float32 // nil when Scan.Z is nil
	LdDZ   int
	DA     []float32
	DB     []float32
	LdDB   int
	DC     []float32
	LdDC   int
	DDskip []float32
}

// BackwardScratch is the number of floats Backward needs as scratch for
// sequence length L and state size N (larger when the AVX-512 backward,
// which keeps 16 channels' states, can run).
func BackwardScratch(L, N int) int { return max(2*L*N, backwardFastScratch(L, N)) }

// Backward computes the scan's gradients. It does not need the forward's
// states: for each channel it recomputes h_t and exp(Δ_t·A) for all t into
// scratch (2·L·N floats, one channel at a time — 51 KB for L = 401,
// N = 16), then runs the reverse recurrence
//
//	dh_t = dy_t·C_t + exp(Δ_{t+1}A) ⊙ dh_{t+1}.
//
// Memory is therefore O(L·N) per call instead of the O(L·D·N) a stored
// state history would need (13 MB per flow and layer at the default size),
// at the cost of recomputing the forward recurrence once. (The AVX-512
// path does the same 16 channels at a time: (3L+1)·256 floats of scratch,
// 1.2 MB at L = 401, see BackwardScratch.)
// If yOut is non-nil it receives the recomputed gated output (L, D) with
// row stride ldy (the backward of out_proj needs it).
func (s *Scan) Backward(g *ScanGrad, scratch []float32, yOut []float32, ldy int) {
	L, D, N := s.L, s.D, s.N
	if N > MaxDState {
		panic("kernels: Scan: d_state above MaxDState")
	}
	hist := scratch[:L*N]      // h_t
	dA := scratch[L*N : 2*L*N] // exp(Δ_t A)
	var dh, dAacc [MaxDState]float32
	for d := s.backwardFast(g, scratch, yOut, ldy); d < D; d++ {
		a := s.A[d*N : d*N+N]
		// Recompute the forward recurrence of channel d.
		var prev []float32
		for t := 0; t < L; t++ {
			dt := s.Delta[t*s.LdDel+d]
			ut := s.U[t*s.LdU+d]
			bt := s.B[t*s.LdB : t*s.LdB+N]
			ht := hist[t*N : t*N+N]
			et := dA[t*N : t*N+N]
			du := dt * ut
			for n := range ht {
				e := Exp32(dt * a[n])
				et[n] = e
				var hp float32
				if prev != nil {
					hp = prev[n]
				}
				ht[n] = e*hp + du*bt[n]
			}
			prev = ht
		}
		// Reverse pass.
		dsk := s.Dskip[d]
		var dD float32
		dhs := dh[:N]
		clear(dhs)
		dAs := dAacc[:N]
		clear(dAs)
		for t := L - 1; t >= 0; t-- {
			dt := s.Delta[t*s.LdDel+d]
			ut := s.U[t*s.LdU+d]
			bt := s.B[t*s.LdB : t*s.LdB+N]
			ct := s.C[t*s.LdC : t*s.LdC+N]
			ht := hist[t*N : t*N+N]
			et := dA[t*N : t*N+N]
			gy := g.DY[t*g.LdDY+d]
			// y (pre-gate) and the gate.
			var y float32
			for n, c := range ct {
				y += c * ht[n]
			}
			y += dsk * ut
			dy := gy
			if s.Z != nil {
				zv := s.Z[t*s.LdZ+d]
				sg := Sigmoid(zv)
				silu := zv * sg
				g.DZ[t*g.LdDZ+d] = gy * y * sg * (1 + zv*(1-sg))
				dy = gy * silu
				if yOut != nil {
					yOut[t*ldy+d] = y * silu
				}
			} else if yOut != nil {
				yOut[t*ldy+d] = y
			}
			dD += dy * ut
			dct := g.DC[t*g.LdDC : t*g.LdDC+N]
			dbt := g.DB[t*g.LdDB : t*g.LdDB+N]
			du := dt * ut
			var ddelta, dub float32
			for n := range dhs {
				dct[n] += dy * ht[n]
				v := dhs[n] + dy*ct[n] // dh_t
				var hp float32
				if t > 0 {
					hp = hist[(t-1)*N+n]
				}
				// h_t = e·h_{t−1} + du·b
				da := v * hp * et[n] // d(Δ·A) through exp
				ddelta += da*a[n] + v*ut*bt[n]
				dAs[n] += da * dt
				dub += v * bt[n]
				dbt[n] += v * du
				dhs[n] = v * et[n] // carried to t−1
			}
			g.DDelta[t*g.LdDDel+d] = ddelta
			g.DU[t*g.LdDU+d] = dy*dsk + dt*dub
		}
		g.DDskip[d] += dD
		da := g.DA[d*N : d*N+N]
		for n, v := range dAs {
			da[n] += v
		}
	}
}
