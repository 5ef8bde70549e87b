package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedFileIsCurrent checks that ../../gemm_amd64.s is exactly
// what the generator writes now (run `go generate ./kernels` otherwise).
func TestGeneratedFileIsCurrent(t *testing.T) {
	const path = "../../gemm_amd64.s"
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if want := generate(); !bytes.Equal(have, want) {
		t.Fatalf("%s is stale (%d bytes, generator gives %d): run go generate ./kernels", path, len(have), len(want))
	}
}
