package kernels

import "fmt"

// PackedB is a right-hand matrix op(B) (k×n) packed once into the
// micro-kernel's panel layout, for repeated products with it: typically
// a weight W stored [out, in] like PyTorch's nn.Linear, packed with
// PackB(true, in, out, W, in) and applied as Y = X·Wᵀ by GemmPacked.
// Packing inside Gemm costs O(k·n) per call (a transposing copy for
// transB); GemmPacked skips it. Measured on one Zen 4 core (thread CPU
// time, M = 401): in_proj 256→1024 went from 92–96 to 100–108 GFLOP/s,
// out_proj 512→256 from 100–105 to 107 GFLOP/s. A PackedB is read-only
// once built and may be shared by goroutines.
type PackedB struct {
	k, n int
	g    *gemmKernel
	data []float32
}

// PackB packs op(B) (k×n; op(B) = Bᵀ if transB) with row stride ldb for
// the default micro-kernel. It panics if b is too short for its shape.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	pb := new(PackedB)
	pb.Repack(transB, k, n, b, ldb)
	return pb
}

// Repack packs a new op(B) into pb, reusing its memory when the size
// allows (e.g. weights updated by a training step).
func (pb *PackedB) Repack(transB bool, k, n int, b []float32, ldb int) {
	gemmPackBInto(gemmDefault, pb, transB, k, n, b, ldb)
}

// K returns the inner dimension of op(B).
func (pb *PackedB) K() int { return pb.k }

// N returns the number of columns of op(B).
func (pb *PackedB) N() int { return pb.n }

// gemmPackBInto packs op(B) into pb for micro-kernel g, block by block
// in the driver's order (column blocks of nc, then depth blocks of kc).
func gemmPackBInto(g *gemmKernel, pb *PackedB, transB bool, k, n int, b []float32, ldb int) {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels: PackB: negative size k=%d n=%d", k, n))
	}
	if transB {
		gemmCheckMatrix("b", b, n, k, ldb)
	} else {
		gemmCheckMatrix("b", b, k, n, ldb)
	}
	size := 0
	for jc := 0; jc < n; jc += g.nc {
		size += k * g.packedBWidth(min(g.nc, n-jc))
	}
	pb.k, pb.n, pb.g = k, n, g
	pb.data = gemmGrow(pb.data, size)
	off := 0
	for jc := 0; jc < n; jc += g.nc {
		nc := min(g.nc, n-jc)
		for pc := 0; pc < k; pc += g.kc {
			kc := min(g.kc, k-pc)
			blk := kc * g.packedBWidth(nc)
			gemmPackB(g, pb.data[off:off+blk], transB, b, ldb, pc, kc, jc, nc)
			off += blk
		}
	}
}

// GemmPacked computes C = op(A)·op(B) + beta·C with op(B) pre-packed by
// PackB: op(A) is m×pb.K() (Aᵀ if transA) with row stride lda, C is
// m×pb.N() with row stride ldc. The result equals Gemm's. ws may be nil
// (scratch then comes from a pool).
func GemmPacked(ws *Workspace, transA bool, m int, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	k, n := pb.k, pb.n
	if m < 0 {
		panic(fmt.Sprintf("kernels: GemmPacked: negative m=%d", m))
	}
	if m > 0 && n > 0 {
		if transA {
			gemmCheckMatrix("a", a, k, m, lda)
		} else {
			gemmCheckMatrix("a", a, m, k, lda)
		}
	}
	gemmCheckMatrix("c", c, m, n, ldc)
	if ws == nil {
		ws = gemmWorkspacePool.Get().(*Workspace)
		defer gemmWorkspacePool.Put(ws)
	}
	if pb.g == nil && (k != 0 || n != 0) {
		panic(fmt.Sprintf("kernels: GemmPacked: PackedB %d×%d was not built by PackB", k, n))
	}
	gemmDrive(pb.g, ws, transA, m, n, k, a, lda, false, nil, 0, pb.data, beta, c, ldc)
}
