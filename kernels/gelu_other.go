//go:build !amd64 || purego

package kernels

// No vector GeGLU on this platform.
func gelugluFwdFast(val, gate, out []float32) int { return 0 }

func gelugluBwdFast(val, gate, dout, dval, dgate []float32) int { return 0 }
