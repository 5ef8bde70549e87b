package kernels

import (
	"fmt"
	"sync"
)

// gemmTileFunc computes one mr×nr tile of C (see internal/gemmgen):
// C[i][j] (+)= Σ_p a[i·rs+p·cs]·bp[p·nr+j], reading op(A) in place with
// element strides rs (rows) and cs (depth), bp an nr-column panel of
// op(B) stored k-major; acc=false overwrites the tile.
type gemmTileFunc func(k int, a []float32, rs, cs int, bp, c []float32, ldc int, acc bool)

// gemmTrans8Func transposes an 8×(8·k8) strip of src (row stride lds)
// into dst (row stride ldd): dst[p·ldd+j] = src[j·lds+p].
type gemmTrans8Func func(dst []float32, ldd int, src []float32, lds, k8 int)

// gemmSlabMode says when a block of op(A) is copied into scratch (a
// slab with an odd row stride for plain A, k-major panels for Aᵀ)
// instead of being read in place by the micro-kernels.
type gemmSlabMode int

const (
	gemmSlabAuto   gemmSlabMode = iota // plain A: lda a multiple of 4 KiB; Aᵀ: with packAT
	gemmSlabAlways                     // always (tests)
	gemmSlabNever                      // never (tests, tuning)
)

// gemmKernel describes one micro-kernel, its packing helpers and the
// cache blocking used with it. fn computes full mr×nr tiles; narrow, if
// set, is used for a last column panel of at most narrowNR columns, so
// that skinny outputs (N = 16, 48) are not padded to nr. Blocking
// (kc = 256, mc ≈ 120) was chosen by measurement on an AMD EPYC (Zen 4):
// kc 128–384 and mc 5–40 panels were within the ±5 % noise of a shared
// 2-core machine.
type gemmKernel struct {
	name   string
	mr, nr int
	fn     gemmTileFunc
	// rem, by increasing mr, are shorter kernels for a last partial row
	// panel of full-width column panels (M = 48 with mr = 14 would
	// otherwise compute 56 rows).
	rem      []gemmRemKernel
	narrowNR int
	narrow   gemmTileFunc
	// packTrans8, if not nil, speeds up packing op(B) = Bᵀ.
	packTrans8 gemmTrans8Func
	// packCopy, if not nil, packs a full panel of plain B (see
	// gemmPackCopy) and reports whether it handled the width.
	packCopy func(dst []float32, w int, src []float32, lds, k int) bool
	// packAT, if not nil, packs mr columns of A, k rows with stride lds,
	// k-major: dst[p·mr+r] = src[p·lds+r].
	packAT func(dst, src []float32, lds, k int)
	slabA  gemmSlabMode
	kc     int // depth of one packed block
	mc     int // rows of op(A) per block (multiple of mr)
	nc     int // columns of op(B) packed per block (multiple of nr)
}

// gemmRemKernel is a micro-kernel for mr rows (fewer than the main one)
// and the main kernel's nr columns.
type gemmRemKernel struct {
	mr int
	fn gemmTileFunc
}

// panelWidth is the packed width of the column panel that starts with w
// remaining columns.
func (g *gemmKernel) panelWidth(w int) int {
	if g.narrow != nil && w <= g.narrowNR {
		return g.narrowNR
	}
	return g.nr
}

// packedBWidth is the total packed width of n columns of op(B).
func (g *gemmKernel) packedBWidth(n int) int {
	total := 0
	for j := 0; j < n; j += g.nr {
		total += g.panelWidth(n - j)
	}
	return total
}

// Workspace holds the packing scratch of GemmWS and GemmPacked, so that
// repeated products do not allocate. The zero value is ready to use; a
// Workspace must not be used by two goroutines at once (give each worker
// its own, e.g. indexed by the worker number of ParallelFor).
type Workspace struct {
	a, b, tile, slab []float32
}

// gemmGrow returns s resized to n elements, reallocating only when needed.
func gemmGrow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// gemmWorkspacePool lends scratch to Gemm; it holds no results, only
// reusable memory.
var gemmWorkspacePool = sync.Pool{New: func() any { return new(Workspace) }}

// GemmWS is Gemm with caller-provided scratch: C = op(A)·op(B) + beta·C
// for row-major matrices, op(X) = X or Xᵀ, op(A) m×k, op(B) k×n, C m×n,
// lda/ldb/ldc the row strides as stored. After the first call with a
// given shape it does not allocate. ws may be nil (scratch is then
// borrowed from a pool, as Gemm does).
func GemmWS(ws *Workspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmCheck(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if ws == nil {
		ws = gemmWorkspacePool.Get().(*Workspace)
		defer gemmWorkspacePool.Put(ws)
	}
	gemmBlocked(gemmDefault, ws, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// gemmCheck panics with a descriptive message when a shape, stride or
// slice length is inconsistent; the assembly kernels rely on it for
// memory safety.
func gemmCheck(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: gemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if m > 0 && n > 0 {
		gemmCheckMatrix("a", a, ar, ac, lda)
		gemmCheckMatrix("b", b, br, bc, ldb)
	}
	gemmCheckMatrix("c", c, m, n, ldc)
}

// gemmCheckMatrix panics unless s holds a rows×cols matrix with row
// stride ld.
func gemmCheckMatrix(name string, s []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("kernels: gemm: ld%s=%d < %d columns", name, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("kernels: gemm: len(%s)=%d < %d needed for %d×%d with ld %d", name, len(s), need, rows, cols, ld))
	}
}

// gemmScale sets C = beta·C (beta = 0 writes zeros, so NaNs in C vanish
// as in BLAS).
func gemmScale(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// gemmBlocked is the cache-blocked driver (BLIS loop order): for each
// column block of op(B) and depth block, op(B) is packed into nr-wide
// panels; the micro-kernel then sweeps the tiles, reading op(A) in place
// (only a last partial panel of fewer than mr rows is packed, zero
// padded).
func gemmBlocked(g *gemmKernel, ws *Workspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmDrive(g, ws, transA, m, n, k, a, lda, transB, b, ldb, nil, beta, c, ldc)
}

// gemmDrive runs the blocked loops; op(B) comes either from b (packed
// block by block into ws) or, if pre is not nil, from pre's blocks.
func gemmDrive(g *gemmKernel, ws *Workspace, transA bool, m, n, k int, a []float32, lda int, transB bool, b []float32, ldb int, pre []float32, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		gemmScale(m, n, beta, c, ldc)
		return
	}
	if beta != 0 && beta != 1 {
		gemmScale(m, n, beta, c, ldc)
		beta = 1
	}
	kc0 := min(g.kc, k)
	if pre == nil {
		ws.b = gemmGrow(ws.b, kc0*g.packedBWidth(min(g.nc, n)))
	}
	ws.a = gemmGrow(ws.a, kc0*g.mr)
	ws.tile = gemmGrow(ws.tile, g.mr*g.nr)
	rs, cs := lda, 1 // element strides of op(A)
	if transA {
		rs, cs = 1, lda
	}
	// How op(A) reaches the micro-kernels. In place by default. Plain A
	// whose rows are 4 KiB apart (they share L1 sets, so a 14-row panel
	// misses in the 8-way L1) is copied into a slab with an odd stride.
	// Transposed A is packed into k-major panels when an assembly packer
	// exists: in place each k step would touch a new cache line.
	slab := g.slabA == gemmSlabAlways || g.slabA == gemmSlabAuto && lda%1024 == 0
	if transA {
		slab = g.slabA != gemmSlabNever && g.packAT != nil
	}
	// With a single column panel (n ≤ nr) each element of A is read
	// once: copying it first would only add traffic.
	if g.slabA == gemmSlabAuto && n <= g.nr {
		slab = false
	}
	slabStride := (kc0+15)&^15 + 16
	if slab {
		ws.slab = gemmGrow(ws.slab, (min(g.mc, m)+g.mr)*max(slabStride, kc0))
	}
	off := 0 // of the current block in pre
	for jc := 0; jc < n; jc += g.nc {
		nc := min(g.nc, n-jc)
		for pc := 0; pc < k; pc += g.kc {
			kc := min(g.kc, k-pc)
			bp := ws.b
			if pre != nil {
				size := kc * g.packedBWidth(nc)
				bp = pre[off : off+size]
				off += size
			} else {
				gemmPackB(g, bp, transB, b, ldb, pc, kc, jc, nc)
			}
			acc := pc > 0 || beta != 0
			for ic := 0; ic < m; ic += g.mc {
				mc := min(g.mc, m-ic)
				ablk := a[ic*rs+pc*cs:]
				full := mc / g.mr * g.mr
				if full < mc {
					gemmPackA(g.mr, ws.a, ablk[full*rs:], rs, cs, mc-full, kc)
				}
				switch {
				case slab && transA:
					for ir := 0; ir < full; ir += g.mr {
						g.packAT(ws.slab[ir*kc:], ablk[ir:], lda, kc)
					}
					gemmMacro(g, ws, kc, mc, nc, ws.slab, 1, g.mr, g.mr*kc, bp, c[ic*ldc+jc:], ldc, acc)
				case slab:
					for r := 0; r < full; r++ {
						copy(ws.slab[r*slabStride:r*slabStride+kc], ablk[r*lda:r*lda+kc])
					}
					gemmMacro(g, ws, kc, mc, nc, ws.slab, slabStride, 1, g.mr*slabStride, bp, c[ic*ldc+jc:], ldc, acc)
				default:
					gemmMacro(g, ws, kc, mc, nc, ablk, rs, cs, g.mr*rs, bp, c[ic*ldc+jc:], ldc, acc)
				}
			}
		}
	}
}

// gemmMacro multiplies an mc×kc block of op(A) by a packed kc×nc block
// of op(B) into C (c at the block's corner). The full mr-row panels of
// the block are read in place from a: panel q's element (r, p) is
// a[q·ps + r·rs + p·cs]. A last partial panel (mc not a multiple of mr)
// must already be packed k-major and zero-padded in ws.a.
func gemmMacro(g *gemmKernel, ws *Workspace, kc, mc, nc int, a []float32, rs, cs, ps int, bp, c []float32, ldc int, acc bool) {
	tile := ws.tile
	full := mc / g.mr * g.mr
	boff := 0
	for jr := 0; jr < nc; {
		w := min(g.nr, nc-jr)
		pw := g.panelWidth(nc - jr)
		fn := g.fn
		if pw != g.nr {
			fn = g.narrow
		}
		bpanel := bp[boff : boff+kc*pw]
		aoff := 0
		for ir := 0; ir < full; ir += g.mr {
			if w == pw {
				fn(kc, a[aoff:], rs, cs, bpanel, c[ir*ldc+jr:], ldc, acc)
			} else {
				fn(kc, a[aoff:], rs, cs, bpanel, tile, pw, false)
				gemmTileOut(tile, pw, g.mr, w, c[ir*ldc+jr:], ldc, acc)
			}
			aoff += ps
		}
		if full < mc {
			// The shortest kernel covering the h rows reads them from the
			// mr-strided packed panel.
			h, rfn := mc-full, fn
			if pw == g.nr {
				for _, rk := range g.rem {
					if rk.mr >= h {
						rfn = rk.fn
						break
					}
				}
			}
			rfn(kc, ws.a, 1, g.mr, bpanel, tile, pw, false)
			gemmTileOut(tile, pw, h, w, c[full*ldc+jr:], ldc, acc)
		}
		boff += kc * pw
		jr += w
	}
}

// gemmTileOut stores (or adds, if acc) the h×w corner of a padded tile
// with row stride pw into C.
func gemmTileOut(tile []float32, pw, h, w int, c []float32, ldc int, acc bool) {
	for i := 0; i < h; i++ {
		crow := c[i*ldc : i*ldc+w]
		trow := tile[i*pw : i*pw+w]
		if acc {
			for j, v := range trow {
				crow[j] += v
			}
		} else {
			copy(crow, trow)
		}
	}
}

// gemmPackA packs the h < mr rows of a kc-deep panel of op(A) (a at its
// corner, element strides rs, cs) k-major into dst (dst[p·mr+r]),
// zero-padding rows h..mr-1.
func gemmPackA(mr int, dst, a []float32, rs, cs, h, kc int) {
	dst = dst[:kc*mr]
	clear(dst)
	for r := 0; r < h; r++ {
		for p := 0; p < kc; p++ {
			dst[p*mr+r] = a[r*rs+p*cs]
		}
	}
}

// gemmPackB packs depth [pc, pc+kc) and columns [jc, jc+nc) of op(B)
// into panels of width g.panelWidth, each stored k-major
// (dst[p·w+j]), zero-padding the last panel.
func gemmPackB(g *gemmKernel, dst []float32, transB bool, b []float32, ldb, pc, kc, jc, nc int) {
	off := 0
	for jr := 0; jr < nc; {
		w := min(g.nr, nc-jr)
		pw := g.panelWidth(nc - jr)
		panel := dst[off : off+kc*pw]
		if transB {
			gemmPackBTrans(g.packTrans8, panel, pw, w, b[(jc+jr)*ldb+pc:], ldb, kc)
		} else if w != pw || g.packCopy == nil || !g.packCopy(panel, pw, b[pc*ldb+jc+jr:], ldb, kc) {
			// Partial panel, or no assembly copy for this width.
			for p := 0; p < kc; p++ {
				src := b[(pc+p)*ldb+jc+jr:]
				d := panel[p*pw : p*pw+pw]
				copy(d[:w], src[:w])
				clear(d[w:])
			}
		}
		off += kc * pw
		jr += w
	}
}

// gemmPackBTrans packs w ≤ pw rows of B (b at B[j0][p0], row stride
// ldb), i.e. columns of op(B) = Bᵀ, into a k-major panel of width pw
// (panel[p·pw+j] = B[j0+j][p0+p]), zero-padding columns w..pw-1. Rows
// are read eight at a time so each panel row gets eight adjacent stores;
// trans8, if not nil, transposes the 8×8 blocks of such a strip.
func gemmPackBTrans(trans8 gemmTrans8Func, panel []float32, pw, w int, b []float32, ldb, kc int) {
	panel = panel[:kc*pw]
	j := 0
	for ; j+8 <= w; j += 8 {
		p0 := 0
		if trans8 != nil && kc >= 8 {
			p0 = kc &^ 7
			trans8(panel[j:], pw, b[j*ldb:], ldb, p0/8)
			if p0 == kc {
				continue
			}
		}
		s0 := b[j*ldb+p0 : j*ldb+kc]
		s1 := b[(j+1)*ldb+p0:][:len(s0)]
		s2 := b[(j+2)*ldb+p0:][:len(s0)]
		s3 := b[(j+3)*ldb+p0:][:len(s0)]
		s4 := b[(j+4)*ldb+p0:][:len(s0)]
		s5 := b[(j+5)*ldb+p0:][:len(s0)]
		s6 := b[(j+6)*ldb+p0:][:len(s0)]
		s7 := b[(j+7)*ldb+p0:][:len(s0)]
		for p := range s0 {
			d := panel[(p0+p)*pw+j : (p0+p)*pw+j+8 : (p0+p)*pw+j+8]
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
			d[4], d[5], d[6], d[7] = s4[p], s5[p], s6[p], s7[p]
		}
	}
	for ; j < w; j++ {
		src := b[j*ldb : j*ldb+kc]
		for p, v := range src {
			panel[p*pw+j] = v
		}
	}
	if w < pw {
		for p := 0; p < kc; p++ {
			clear(panel[p*pw+w : p*pw+pw])
		}
	}
}

// gemmKernelGo4x4 is the portable micro-kernel: a 4×4 tile kept in
// sixteen scalar accumulators.
func gemmKernelGo4x4(k int, a []float32, rs, cs int, bp, c []float32, ldc int, acc bool) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	bp = bp[:4*k]
	for p := 0; p < k; p++ {
		b := bp[4*p : 4*p+4 : 4*p+4]
		o := p * cs
		a0, a1, a2, a3 := a[o], a[o+rs], a[o+2*rs], a[o+3*rs]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	r0 := c[0:4:4]
	r1 := c[ldc : ldc+4 : ldc+4]
	r2 := c[2*ldc : 2*ldc+4 : 2*ldc+4]
	r3 := c[3*ldc : 3*ldc+4 : 3*ldc+4]
	if acc {
		r0[0] += c00
		r0[1] += c01
		r0[2] += c02
		r0[3] += c03
		r1[0] += c10
		r1[1] += c11
		r1[2] += c12
		r1[3] += c13
		r2[0] += c20
		r2[1] += c21
		r2[2] += c22
		r2[3] += c23
		r3[0] += c30
		r3[1] += c31
		r3[2] += c32
		r3[3] += c33
		return
	}
	r0[0], r0[1], r0[2], r0[3] = c00, c01, c02, c03
	r1[0], r1[1], r1[2], r1[3] = c10, c11, c12, c13
	r2[0], r2[1], r2[2], r2[3] = c20, c21, c22, c23
	r3[0], r3[1], r3[2], r3[3] = c30, c31, c32, c33
}

// gemmGoKernel is the portable blocked GEMM configuration.
func gemmGoKernel() *gemmKernel {
	return &gemmKernel{name: "go4x4", mr: 4, nr: 4, fn: gemmKernelGo4x4, kc: 256, mc: 128, nc: 1024}
}
