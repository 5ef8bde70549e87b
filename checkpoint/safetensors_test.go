package checkpoint

import "testing"

func TestReadGoldenTiny(t *testing.T) {
	f, err := ReadSafetensors("../../shared/golden/netmamba_tiny.weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	w := f.Tensors["blocks.0.mixer.in_proj.weight"]
	if w == nil || len(w.Shape) != 2 || w.Shape[0] != 128 || w.Shape[1] != 32 || len(w.F32) != 128*32 {
		t.Fatalf("in_proj.weight: %+v", w)
	}
	// A_log is initialised to ln(n+1) (SPEC §3).
	a := f.Tensors["blocks.0.mixer.A_log"]
	if a == nil || a.Shape[1] != 16 {
		t.Fatalf("A_log: %+v", a)
	}
}

func TestParseCorrupt(t *testing.T) {
	for _, raw := range [][]byte{nil, {1, 2, 3}, {255, 0, 0, 0, 0, 0, 0, 0, '{'}} {
		if _, err := ParseSafetensors(raw); err == nil {
			t.Errorf("ParseSafetensors(%v): want error", raw)
		}
	}
}
