package kernels

import (
	"fmt"
	"testing"
)

func BenchmarkGemmTune(b *testing.B) {
	for _, sh := range gemmModelShapes[:5] {
		if sh.name == "dt_proj_fwd_16x512" || sh.name == "x_proj_fwd_512x48" {
			continue
		}
		for _, base := range gemmKernels()[:2] {
			for _, kc := range []int{128, 256, 512} {
				for _, mc := range []int{base.mr * 4, base.mr * 9, base.mr * 20, base.mr * 30} {
					for _, nc := range []int{256, 1024} {
						g := *base
						g.kc, g.mc, g.nc = kc, mc, nc
						b.Run(fmt.Sprintf("%s/%s/kc%d/mc%d/nc%d", sh.name, g.name, kc, mc, nc), func(b *testing.B) {
							a, bm, c, lda, ldb, ldc := gemmBenchData(sh, 1)
							ws := new(Workspace)
							for b.Loop() {
								gemmBlocked(&g, ws, sh.transA, sh.transB, sh.m, sh.n, sh.k, a, lda, bm, ldb, sh.beta, c, ldc)
							}
							b.ReportMetric(2*float64(sh.m*sh.n*sh.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
						})
					}
				}
			}
		}
	}
}

func BenchmarkGemmMicro(b *testing.B) {
	for _, g := range gemmKernels()[:2] {
		for _, kc := range []int{64, 256} {
			b.Run(fmt.Sprintf("%s/k%d", g.name, kc), func(b *testing.B) {
				a := make([]float32, g.mr*kc)
				bp := make([]float32, g.nr*kc)
				c := make([]float32, g.mr*g.nr)
				for b.Loop() {
					for range 100 {
						g.fn(kc, a, 1, g.mr, bp, c, g.nr, true)
					}
				}
				b.ReportMetric(100*2*float64(g.mr*g.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkGemmPackBTrans(b *testing.B) {
	g := gemmDefault
	k, n := 256, 1024
	bm := make([]float32, k*n)
	dst := make([]float32, k*g.packedBWidth(n))
	for b.Loop() {
		gemmPackB(g, dst, true, bm, k, 0, k, 0, n)
	}
	b.ReportMetric(float64(k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}
