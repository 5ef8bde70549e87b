//go:build !amd64 || purego

package kernels

// forwardFast has no assembly on this platform: everything runs in Go.
func (s *Scan) forwardFast(y []float32, ldy int, h []float32) int { return 0 }

func siluFast(x, y []float32) int { return 0 }

func softplusBiasFast(x, bias, y []float32) int { return 0 }

func backwardFastScratch(L, N int) int { return 0 }

func (s *Scan) backwardFast(g *ScanGrad, scratch []float32, yOut []float32, ldy int) int { return 0 }

func conv4Fast(L, D int, x []float32, ldx int, w, b, y []float32, ldy int) int { return 0 }

func siluBwdFast(x, dy, dx []float32) int { return 0 }

func softplusBiasBwdFast(x, bias, dy, dx, dbias []float32) int { return 0 }

func conv4BwdFast(L, D int, x []float32, ldx int, w, dy []float32, lddy int, dx []float32, lddx int, dw, db []float32) int {
	return 0
}
