package kernels

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// gemmBenchData allocates the operands of one model shape.
func gemmBenchData(sh gemmShape, seed uint64) (a, b, c []float32, lda, ldb, ldc int) {
	r := rand.New(rand.NewPCG(seed, 7))
	lda, ldb, ldc = sh.k, sh.n, sh.n
	if sh.transA {
		lda = sh.m
	}
	if sh.transB {
		ldb = sh.k
	}
	return randSlice(r, sh.m*sh.k), randSlice(r, sh.k*sh.n), randSlice(r, sh.m*sh.n), lda, ldb, ldc
}

// BenchmarkGemm times every GEMM path on the model's shapes, one thread,
// and reports GFLOP/s (2·m·n·k per product).
func BenchmarkGemm(b *testing.B) {
	for _, sh := range gemmModelShapes {
		b.Run(sh.name, func(b *testing.B) {
			for _, impl := range gemmImpls() {
				if strings.Contains(impl.name, "-smallblocks") || strings.HasSuffix(impl.name, "-prepacked") {
					continue
				}
				if impl.name == "generic" && sh.m*sh.n*sh.k > 401*256*512 {
					continue // minutes per run; go4x4 stands for pure Go
				}
				b.Run(impl.name, func(b *testing.B) {
					a, bm, c, lda, ldb, ldc := gemmBenchData(sh, 1)
					ws := new(Workspace)
					for b.Loop() {
						impl.run(ws, sh.transA, sh.transB, sh.m, sh.n, sh.k, a, lda, bm, ldb, sh.beta, c, ldc)
					}
					b.ReportMetric(2*float64(sh.m*sh.n*sh.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
			if sh.transA || !sh.transB {
				return
			}
			// Forward Y = X·Wᵀ with W packed once (PackB) outside the loop.
			b.Run("default-prepacked", func(b *testing.B) {
				a, bm, c, lda, ldb, ldc := gemmBenchData(sh, 1)
				pb := PackB(sh.transB, sh.k, sh.n, bm, ldb)
				ws := new(Workspace)
				for b.Loop() {
					GemmPacked(ws, sh.transA, sh.m, a, lda, pb, sh.beta, c, ldc)
				}
				b.ReportMetric(2*float64(sh.m*sh.n*sh.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		})
	}
}

// BenchmarkGemmParallel2 runs two independent products of each model
// shape at once on two workers (ParallelFor), as the model does across
// flows, and reports the aggregate GFLOP/s of the default path.
func BenchmarkGemmParallel2(b *testing.B) {
	const threads = 2
	for _, sh := range gemmModelShapes {
		b.Run(sh.name, func(b *testing.B) {
			type operands struct {
				a, b, c       []float32
				lda, ldb, ldc int
				ws            Workspace
			}
			ops := make([]*operands, threads)
			for w := range ops {
				o := new(operands)
				o.a, o.b, o.c, o.lda, o.ldb, o.ldc = gemmBenchData(sh, uint64(w+1))
				ops[w] = o
			}
			for b.Loop() {
				ParallelFor(threads, threads, func(_, i int) {
					o := ops[i]
					GemmWS(&o.ws, sh.transA, sh.transB, sh.m, sh.n, sh.k, o.a, o.lda, o.b, o.ldb, sh.beta, o.c, o.ldc)
				})
			}
			b.ReportMetric(threads*2*float64(sh.m*sh.n*sh.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemmMicroKernel times each micro-kernel alone on cache-resident
// panels (k = 256): the ceiling the blocked GEMM can approach.
func BenchmarkGemmMicroKernel(b *testing.B) {
	for _, g := range gemmKernels() {
		b.Run(g.name, func(b *testing.B) {
			const k = 256
			a := make([]float32, g.mr*k)
			bp := make([]float32, g.nr*k)
			c := make([]float32, g.mr*g.nr)
			for b.Loop() {
				g.fn(k, a, 1, g.mr, bp, c, g.nr, true)
			}
			b.ReportMetric(2*float64(g.mr*g.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemmPackBTrans times packing op(B) = Wᵀ for in_proj
// (W 1024×256), the per-call cost that PackB removes.
func BenchmarkGemmPackBTrans(b *testing.B) {
	for _, g := range gemmKernels() {
		b.Run(g.name, func(b *testing.B) {
			k, n := 256, 1024
			w := make([]float32, n*k)
			dst := make([]float32, k*g.packedBWidth(n))
			for b.Loop() {
				gemmPackB(g, dst, true, w, k, 0, k, 0, n)
			}
			b.ReportMetric(float64(k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}
