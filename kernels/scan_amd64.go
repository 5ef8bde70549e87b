//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

//go:generate go run ./internal/scangen -dir .

// simdLevel is the vector instruction set the Mamba kernels (scan, its
// backward, SiLU, softplus, causal conv) run with on amd64.
type simdLevel uint8

const (
	simdGo     simdLevel = iota // pure Go loops
	simdAVX2                    // AVX2+FMA, 8 lanes (*_avx2_amd64.s)
	simdAVX512                  // AVX-512F, 16 lanes
)

// String names the level as the benchmarks and test logs print it.
func (l simdLevel) String() string {
	return [...]string{"go", "avx2", "avx512"}[l]
}

// detectSIMD returns the widest level the CPU (and OS) supports.
func detectSIMD() simdLevel {
	switch {
	case cpu.X86.HasAVX512F:
		return simdAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return simdAVX2
	}
	return simdGo
}

// scanSIMD is the dispatch decision, made once at init from the CPU.
// Tests (only) lower it to run every narrower path on the same machine.
var scanSIMD = detectSIMD()

// scan16AVX512 runs the gated selective scan for 16 consecutive channels
// with d_state 16 (scan_amd64.s): the state of state n for the 16
// channels lives in register Zn, and exp is vectorised (same range
// reduction and degree-7 polynomial as Exp32, with FMA and VSCALEFPS).
// at and h are (16 states, 16 channels); u, dt, z and y point at the
// block's first channel of row 0, with row strides in floats.
//
//go:noescape
func scan16AVX512(L int, u *float32, ldu int, dt *float32, lddt int, z *float32, ldz int, at *float32, b *float32, c *float32, ldbc int, dsk *float32, h *float32, y *float32, ldy int)

// scan8AVX2 is scan16AVX512 for 8 consecutive channels with AVX2+FMA
// (scan_avx2_amd64.s): ah holds A then the state h, each (16 states,
// 8 channels); the state is read and written back in ah each token.
//
//go:noescape
func scan8AVX2(L int, u *float32, ldu int, dt *float32, lddt int, z *float32, ldz int, ah *float32, b *float32, c *float32, ldbc int, dsk *float32, y *float32, ldy int)

// forwardFast runs the widest assembly kernel (16 channels per block with
// AVX-512, 8 with AVX2) on as many whole blocks as it can and returns the
// first channel it did not handle.
func (s *Scan) forwardFast(y []float32, ldy int, h []float32) int {
	L, D, N := s.L, s.D, s.N
	w := 16
	if scanSIMD == simdAVX2 {
		w = 8
	}
	if scanSIMD == simdGo || N != 16 || s.Z == nil || s.LdB != s.LdC || L == 0 || D < w {
		return 0
	}
	// Bounds: the kernel reads rows 0..L-1 of every operand.
	_ = s.U[(L-1)*s.LdU+D-1]
	_ = s.Delta[(L-1)*s.LdDel+D-1]
	_ = s.Z[(L-1)*s.LdZ+D-1]
	_ = s.B[(L-1)*s.LdB+N-1]
	_ = s.C[(L-1)*s.LdC+N-1]
	_ = y[(L-1)*ldy+D-1]
	_ = s.Dskip[D-1]
	// at (16 states, w channels), then hb (same) for AVX2's ah.
	var buf [2 * 16 * 16]float32
	at, hb := buf[:16*w], buf[16*w:32*w]
	d0 := 0
	for ; d0+w <= D; d0 += w {
		for j := 0; j < w; j++ {
			a := s.A[(d0+j)*N : (d0+j)*N+N]
			for n, v := range a {
				at[n*w+j] = v
			}
			if h != nil {
				for n, v := range h[(d0+j)*N : (d0+j)*N+N] {
					hb[n*w+j] = v
				}
			}
		}
		if h == nil {
			clear(hb)
		}
		if w == 16 {
			scan16AVX512(L, &s.U[d0], s.LdU, &s.Delta[d0], s.LdDel, &s.Z[d0], s.LdZ, &at[0], &s.B[0], &s.C[0], s.LdB, &s.Dskip[d0], &hb[0], &y[d0], ldy)
		} else {
			scan8AVX2(L, &s.U[d0], s.LdU, &s.Delta[d0], s.LdDel, &s.Z[d0], s.LdZ, &at[0], &s.B[0], &s.C[0], s.LdB, &s.Dskip[d0], &y[d0], ldy)
		}
		if h != nil {
			for j := 0; j < w; j++ {
				for n := 0; n < N; n++ {
					h[(d0+j)*N+n] = hb[n*w+j]
				}
			}
		}
	}
	return d0
}

// scanBwd16AVX512 is the backward of scan16AVX512 for one block of 16
// channels (scan_bwd_amd64.s): it recomputes the block's states into
// hbuf ((L+1) rows of 16×16, row 0 zeros), then runs the reverse
// recurrence with the 16 states' dh in registers. Per-token dB and dC
// contributions are accumulated lane-wise into accB/accC ((L, 16 states,
// 16 channels), summed over channel blocks) and reduced by the caller;
// dA (16 states × 16 channels) and dD (16) are accumulated; du, dΔ, dz
// and the gated output yout are written.
//
//go:noescape
func scanBwd16AVX512(L int, u, dt, z, gy *float32, ldd, ldz int, at, b, c *float32, ldbc int, dsk, hbuf, accB, accC, du, ddt, dz, yout, dA, dD *float32)

// scanBwd8AVX2 is scanBwd16AVX512 for 8 channels with AVX2+FMA
// (scan_bwd_avx2_amd64.s). ah holds A (16 states × 8 channels), the dA
// accumulator (same shape), the carried dh (same shape) and the dD
// accumulator (8): 392 floats; hbuf is (L+1) rows of 16×8 states (row 0
// zeros); accBC holds, per token, the lane-wise dB then dC contributions
// (2 × 16 × 8), summed over channel blocks and reduced by the caller.
//
//go:noescape
func scanBwd8AVX2(L int, u, dt, z, gy *float32, ldd, ldz int, ah, b, c *float32, ldbc int, dsk, hbuf, accBC, du, ddt, dz, yout *float32)

// backwardFastScratch is the scratch the assembly backward needs (the
// AVX-512 figure, which also covers the AVX2 kernel's (3L+1)·128).
func backwardFastScratch(L, N int) int {
	if N != 16 {
		return 0
	}
	return (3*L + 1) * 256
}

// backwardFast runs the AVX-512 backward on whole 16-channel blocks and
// returns the first channel it did not handle (0 if it cannot run).
func (s *Scan) backwardFast(g *ScanGrad, scratch []float32, yOut []float32, ldy int) int {
	L, D, N := s.L, s.D, s.N
	ldd, ldz := s.LdU, s.LdZ
	w := 16
	if scanSIMD == simdAVX2 {
		w = 8
	}
	if scanSIMD == simdGo || N != 16 || s.Z == nil || yOut == nil || L == 0 || D < w ||
		s.LdB != s.LdC || g.LdDB != g.LdDC || len(scratch) < backwardFastScratch(L, N) ||
		s.LdDel != ldd || g.LdDY != ldd || g.LdDU != ldd || g.LdDDel != ldd || ldy != ldd || g.LdDZ != ldz {
		return 0
	}
	_ = s.U[(L-1)*ldd+D-1]
	_ = s.Delta[(L-1)*ldd+D-1]
	_ = g.DY[(L-1)*ldd+D-1]
	_ = g.DU[(L-1)*ldd+D-1]
	_ = g.DDelta[(L-1)*ldd+D-1]
	_ = yOut[(L-1)*ldd+D-1]
	_ = s.Z[(L-1)*ldz+D-1]
	_ = g.DZ[(L-1)*ldz+D-1]
	_ = s.B[(L-1)*s.LdB+N-1]
	_ = s.C[(L-1)*s.LdC+N-1]
	_ = g.DB[(L-1)*g.LdDB+N-1]
	_ = g.DC[(L-1)*g.LdDC+N-1]
	_ = s.Dskip[D-1]
	_ = g.DDskip[D-1]
	_ = g.DA[D*N-1]
	if w == 8 {
		return s.backwardAVX2(g, scratch, yOut)
	}
	hbuf := scratch[:(L+1)*256]
	accB := scratch[(L+1)*256 : (2*L+1)*256]
	accC := scratch[(2*L+1)*256 : (3*L+1)*256]
	clear(hbuf[:256])
	clear(accB)
	clear(accC)
	var at, dA [256]float32
	var dD [16]float32
	d0 := 0
	for ; d0+16 <= D; d0 += 16 {
		for j := 0; j < 16; j++ {
			for n, v := range s.A[(d0+j)*N : (d0+j)*N+N] {
				at[n*16+j] = v
			}
		}
		clear(dA[:])
		clear(dD[:])
		scanBwd16AVX512(L, &s.U[d0], &s.Delta[d0], &s.Z[d0], &g.DY[d0], ldd, ldz, &at[0], &s.B[0], &s.C[0], s.LdB,
			&s.Dskip[d0], &hbuf[0], &accB[0], &accC[0], &g.DU[d0], &g.DDelta[d0], &g.DZ[d0], &yOut[d0], &dA[0], &dD[0])
		for j := 0; j < 16; j++ {
			g.DDskip[d0+j] += dD[j]
			for n := 0; n < N; n++ {
				g.DA[(d0+j)*N+n] += dA[n*16+j]
			}
		}
	}
	// Reduce the lane-wise dB, dC accumulators over the 16 lanes.
	for t := 0; t < L; t++ {
		db := g.DB[t*g.LdDB : t*g.LdDB+N]
		dc := g.DC[t*g.LdDC : t*g.LdDC+N]
		for n := 0; n < N; n++ {
			rb := accB[t*256+n*16 : t*256+n*16+16]
			rc := accC[t*256+n*16 : t*256+n*16+16]
			var sb, sc float32
			for j := 0; j < 16; j++ {
				sb += rb[j]
				sc += rc[j]
			}
			db[n] += sb
			dc[n] += sc
		}
	}
	return d0
}

// backwardAVX2 is backwardFast's AVX2 path (bounds and strides already
// checked): whole 8-channel blocks, then the lane-wise dB, dC reduction.
func (s *Scan) backwardAVX2(g *ScanGrad, scratch []float32, yOut []float32) int {
	L, D, N := s.L, s.D, s.N
	ldd, ldz := s.LdU, s.LdZ
	const blk = 16 * 8 // one (16 states, 8 channels) tile
	hbuf := scratch[:(L+1)*blk]
	accBC := scratch[(L+1)*blk : (3*L+1)*blk]
	clear(hbuf[:blk])
	clear(accBC)
	var ah [3*blk + 8]float32 // A, dA, dh, dD
	d0 := 0
	for ; d0+8 <= D; d0 += 8 {
		clear(ah[blk:])
		for j := 0; j < 8; j++ {
			for n, v := range s.A[(d0+j)*N : (d0+j)*N+N] {
				ah[n*8+j] = v
			}
		}
		scanBwd8AVX2(L, &s.U[d0], &s.Delta[d0], &s.Z[d0], &g.DY[d0], ldd, ldz, &ah[0], &s.B[0], &s.C[0], s.LdB,
			&s.Dskip[d0], &hbuf[0], &accBC[0], &g.DU[d0], &g.DDelta[d0], &g.DZ[d0], &yOut[d0])
		for j := 0; j < 8; j++ {
			g.DDskip[d0+j] += ah[3*blk+j]
			for n := 0; n < N; n++ {
				g.DA[(d0+j)*N+n] += ah[blk+n*8+j]
			}
		}
	}
	for t := 0; t < L; t++ {
		db := g.DB[t*g.LdDB : t*g.LdDB+N]
		dc := g.DC[t*g.LdDC : t*g.LdDC+N]
		acc := accBC[2*t*blk : 2*(t+1)*blk]
		for n := 0; n < N; n++ {
			rb := acc[n*8 : n*8+8]
			rc := acc[blk+n*8 : blk+n*8+8]
			var sb, sc float32
			for j := 0; j < 8; j++ {
				sb += rb[j]
				sc += rc[j]
			}
			db[n] += sb
			dc[n] += sc
		}
	}
	return d0
}
