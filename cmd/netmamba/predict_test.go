package main

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
)

// TestPredictGolden runs the predict command on the golden tiny and
// default classifiers (config inferred from tensor shapes; the .pth import
// too) and compares the written logits with the official ones.
func TestPredictGolden(t *testing.T) {
	golden := filepath.Join("..", "..", "..", "shared", "golden")
	for _, c := range []struct{ weights, io string }{
		{"netmamba_tiny.weights.safetensors", "netmamba_tiny.io.safetensors"},
		{"netmamba_tiny.pth", "netmamba_tiny.io.safetensors"},
		{"netmamba_cls.weights.safetensors", "netmamba_cls.io.safetensors"},
	} {
		io, err := checkpoint.ReadSafetensors(filepath.Join(golden, c.io))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.u8"), filepath.Join(dir, "out.f32")
		if err := os.WriteFile(in, io.Tensors["bytes_u8"].U8, 0o644); err != nil {
			t.Fatal(err)
		}
		root := newRootCmd()
		root.SetArgs([]string{"predict", "--model", filepath.Join(golden, c.weights), "--bytes", in, "--logits", out, "--batch", "3", "--threads", "2"})
		if err := root.Execute(); err != nil {
			t.Fatalf("%s: %v", c.weights, err)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want := io.Tensors["logits"].F32
		if len(raw) != 4*len(want) {
			t.Fatalf("%s: %d bytes of logits, want %d", c.weights, len(raw), 4*len(want))
		}
		var maxd float64
		for i, w := range want {
			g := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			d := math.Abs(float64(g - w))
			maxd = math.Max(maxd, d)
			if d > 1e-5+1e-4*math.Abs(float64(w)) {
				t.Fatalf("%s: logit %d = %g, golden %g", c.weights, i, g, w)
			}
		}
		t.Logf("%s: max|dlogit| %.3g", c.weights, maxd)
	}
}

func TestPredictRejectsBadInput(t *testing.T) {
	golden := filepath.Join("..", "..", "..", "shared", "golden")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.u8")
	if err := os.WriteFile(in, make([]byte, 1601), 0o644); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	root.SetArgs([]string{"predict", "--model", filepath.Join(golden, "netmamba_tiny.weights.safetensors"), "--bytes", in, "--logits", filepath.Join(dir, "o.f32")})
	if err := root.Execute(); err == nil {
		t.Fatal("1601 input bytes accepted")
	}
}
