//go:build !amd64 || purego

package kernels

// gemmKernels lists every configuration this build can run: only the
// portable one without amd64 assembly.
func gemmKernels() []*gemmKernel {
	return []*gemmKernel{gemmGoKernel()}
}
