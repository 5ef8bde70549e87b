package checkpoint

import (
	"io"
	"os"
	"testing"
)

// Loading the default-size classifier (7.4 MB). Allocated bytes per op
// show that the file is held once (tensors are views of it).
func BenchmarkReadSafetensorsCls(b *testing.B) {
	benchmarkLoad(b, golden+"netmamba_cls.weights.safetensors")
}

func BenchmarkReadPthCls(b *testing.B) {
	benchmarkLoad(b, golden+"netmamba_cls.pth")
}

func benchmarkLoad(b *testing.B, path string) {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSafetensorsCls(b *testing.B) {
	f, err := ReadSafetensors(golden + "netmamba_cls.weights.safetensors")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(f.NumParams() * 4)
	b.ReportAllocs()
	for b.Loop() {
		if err := EncodeSafetensors(io.Discard, f, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePthCls(b *testing.B) {
	f, err := ReadSafetensors(golden + "netmamba_cls.weights.safetensors")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(f.NumParams() * 4)
	b.ReportAllocs()
	for b.Loop() {
		if err := EncodePth(io.Discard, f, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
