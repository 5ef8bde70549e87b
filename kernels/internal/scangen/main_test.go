package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreCurrent checks that the committed assembly is
// exactly what the generator writes now (run `go generate ./kernels`
// otherwise).
func TestGeneratedFilesAreCurrent(t *testing.T) {
	for name, want := range generate() {
		path := filepath.Join("..", "..", name)
		have, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("%s is stale (%d bytes, generator gives %d): run go generate ./kernels", path, len(have), len(want))
		}
	}
}
