package multimodal

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/netmamba/netmamba/internal/sharedtest"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/repr"
)

// goldenDir finds ../shared/golden next to the module root.
func goldenDir(t *testing.T) string { return sharedtest.Path(t, "golden") }

func readGolden(t *testing.T, name string) *checkpoint.File {
	t.Helper()
	f, err := checkpoint.ReadSafetensors(filepath.Join(goldenDir(t), name))
	if err != nil {
		t.Fatalf("golden data missing (CI has it): %v", err)
	}
	return f
}

func weightsFrom(t *testing.T, f *checkpoint.File) *Weights {
	t.Helper()
	get := func(n string) []float32 {
		tt, ok := f.Tensors[n]
		if !ok {
			t.Fatalf("tensor %s missing", n)
		}
		return tt.F32
	}
	return &Weights{
		ByteProjW: get("byte_embed.proj.weight"), ByteProjB: get("byte_embed.proj.bias"),
		PosEmbed: get("pos_embed"),
		ByteCLS:  get("byte_cls_token"), SizeCLS: get("size_cls_token"), IATCLS: get("iat_cls_token"),
		ByteInd: get("byte_indicator"), SizeInd: get("size_indicator"), IATInd: get("iat_indicator"),
	}
}

// TestEmbeddingMatchesGolden checks the 443-token fuse3 embedding of flow 0
// against embed_out of both official fuse3 models: the Mamba variant
// (width 256, fuse3_cls) and the NetTrans variant (width 192).
func TestEmbeddingMatchesGolden(t *testing.T) {
	for _, c := range []struct {
		model string
		d     int
	}{{"fuse3_cls", 256}, {"fuse3_nettrans", 192}} {
		wf := readGolden(t, c.model+".weights.safetensors")
		io := readGolden(t, c.model+".io.safetensors")
		l, err := NewLayout(c.d, 20, 1600, 4, nil)
		if err != nil {
			t.Fatal(err)
		}
		if l.Tokens != 443 || l.PosTokens() != 443 || l.CLS[0] != 442 || l.CLS[1] != 20 || l.CLS[2] != 41 {
			t.Fatalf("layout %+v", l)
		}
		// The normalised input must equal the stored float input exactly.
		var v repr.View
		copy(v.Bytes[:], io.Tensors["bytes_u8"].U8[:1600])
		xb := make([]float32, 1600)
		FillInput(&v, false, xb, nil, nil)
		for i, v := range xb {
			if v != io.Tensors["input_bytes"].F32[i] {
				t.Fatalf("%s: normalised byte %d = %g, stored input %g", c.model, i, v, io.Tensors["input_bytes"].F32[i])
			}
		}
		out := make([]float32, l.Tokens*c.d)
		in := Input{Bytes: xb, Sizes: io.Tensors["input_sizes"].F32[:20], IATs: io.Tensors["input_iats"].F32[:20]}
		if err := l.Forward(out, weightsFrom(t, wf), in); err != nil {
			t.Fatal(err)
		}
		want := io.Tensors["embed_out"].F32
		var worst float64
		for i := range want {
			d := math.Abs(float64(out[i] - want[i]))
			worst = math.Max(worst, d)
			if d > 1e-5+1e-4*math.Abs(float64(want[i])) {
				t.Fatalf("%s: embed_out[%d, %d] = %.8g, golden %.8g", c.model, i/c.d, i%c.d, out[i], want[i])
			}
		}
		t.Logf("%s embed_out max|d| %.3g", c.model, worst)
	}
}

func TestCosineEmbedHandValues(t *testing.T) {
	om := CosineFrequencies(4) // ω = [1, 10000^(−1/2) = 0.01]
	if om[0] != 1 || math.Abs(float64(om[1])-0.01) > 1e-9 {
		t.Fatalf("ω = %v", om)
	}
	dst := make([]float32, 4)
	CosineEmbed(dst, 2, om)
	want := []float64{math.Sin(2), math.Cos(2), math.Sin(0.02), math.Cos(0.02)}
	for i := range want {
		if math.Abs(float64(dst[i])-want[i]) > 1e-6 {
			t.Fatalf("pe[%d] = %g, want %g", i, dst[i], want[i])
		}
	}
}

// TestEmbeddingBackward: Forward is affine in the weights, so for any
// perturbation δ, Σ dout·(F(w+δ) − F(w)) must equal ⟨Backward(dout), δ⟩.
func TestEmbeddingBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, mods := range [][]string{{"bytes", "sizes", "iats"}, {"bytes", "sizes"}, {"bytes"}} {
		l, err := NewLayout(6, 3, 16, 4, mods)
		if err != nil {
			t.Fatal(err)
		}
		D := l.D
		rnd := func(n int) []float32 {
			s := make([]float32, n)
			for i := range s {
				s[i] = float32(r.NormFloat64())
			}
			return s
		}
		mk := func() *Weights {
			return &Weights{ByteProjW: rnd(D * 4), ByteProjB: rnd(D), PosEmbed: rnd(l.PosTokens() * D),
				ByteCLS: rnd(D), SizeCLS: rnd(D), IATCLS: rnd(D), ByteInd: rnd(D), SizeInd: rnd(D), IATInd: rnd(D)}
		}
		w, delta := mk(), mk()
		in := Input{Bytes: rnd(16), Sizes: []float32{60, 1500, 1500}, IATs: []float32{0.5, 0.75, 1}}
		dout := rnd(l.Tokens * D)
		g := &Weights{ByteProjW: make([]float32, D*4), ByteProjB: make([]float32, D), PosEmbed: make([]float32, l.PosTokens()*D),
			ByteCLS: make([]float32, D), SizeCLS: make([]float32, D), IATCLS: make([]float32, D),
			ByteInd: make([]float32, D), SizeInd: make([]float32, D), IATInd: make([]float32, D)}
		l.Backward(g, dout, in)
		f := func(w *Weights) float64 {
			out := make([]float32, l.Tokens*D)
			if err := l.Forward(out, w, in); err != nil {
				t.Fatal(err)
			}
			var s float64
			for i := range out {
				s += float64(out[i]) * float64(dout[i])
			}
			return s
		}
		pairs := func(w *Weights) [][]float32 {
			return [][]float32{w.ByteProjW, w.ByteProjB, w.PosEmbed, w.ByteCLS, w.SizeCLS, w.IATCLS, w.ByteInd, w.SizeInd, w.IATInd}
		}
		base := f(w)
		for k := range pairs(w) {
			wp := *w
			ps := pairs(&wp)
			shifted := make([]float32, len(ps[k]))
			var dot float64
			for i := range shifted {
				shifted[i] = ps[k][i] + 1e-2*delta.PosEmbed[i%len(delta.PosEmbed)]
				dot += float64(pairs(g)[k][i]) * float64(1e-2*delta.PosEmbed[i%len(delta.PosEmbed)])
			}
			switch k {
			case 0:
				wp.ByteProjW = shifted
			case 1:
				wp.ByteProjB = shifted
			case 2:
				wp.PosEmbed = shifted
			case 3:
				wp.ByteCLS = shifted
			case 4:
				wp.SizeCLS = shifted
			case 5:
				wp.IATCLS = shifted
			case 6:
				wp.ByteInd = shifted
			case 7:
				wp.SizeInd = shifted
			case 8:
				wp.IATInd = shifted
			}
			got := f(&wp) - base
			if math.Abs(got-dot) > 1e-4*(1+math.Abs(dot)) {
				t.Fatalf("%v tensor %d: forward change %g, gradient predicts %g", mods, k, got, dot)
			}
			// a dropped modality's parameters get no gradient
			if (k == 4 || k == 7) && !l.Sizes || (k == 5 || k == 8) && !l.IATs {
				if dot != 0 {
					t.Fatalf("%v tensor %d of a dropped modality has gradient", mods, k)
				}
			}
		}
		// CLS sum and its backward
		h := rnd(l.Tokens * D)
		sum := make([]float32, D)
		l.CLSSum(sum, h)
		for c := 0; c < D; c++ {
			var want float32
			for _, row := range l.CLS {
				want += h[row*D+c]
			}
			if math.Abs(float64(sum[c]-want)) > 1e-6 {
				t.Fatalf("CLSSum[%d] = %g, want %g", c, sum[c], want)
			}
		}
		dh := make([]float32, l.Tokens*D)
		l.CLSSumBackward(dh, sum)
		for _, row := range l.CLS {
			if dh[row*D] != sum[0] {
				t.Fatalf("CLSSumBackward row %d", row)
			}
		}
	}
}

func TestLayoutsPerModality(t *testing.T) {
	for _, c := range []struct {
		mods   []string
		tokens int
		cls    []int
	}{
		{[]string{"bytes", "sizes", "iats"}, 443, []int{442, 20, 41}},
		{[]string{"bytes", "sizes"}, 422, []int{421, 20}},
		{[]string{"bytes"}, 401, []int{400}},
		{[]string{"bytes", "iats"}, 422, []int{421, 20}},
	} {
		l, err := NewLayout(192, 20, 1600, 4, c.mods)
		if err != nil {
			t.Fatal(err)
		}
		if l.Tokens != c.tokens || len(l.CLS) != len(c.cls) {
			t.Fatalf("%v: %d tokens, CLS %v", c.mods, l.Tokens, l.CLS)
		}
		for i := range c.cls {
			if l.CLS[i] != c.cls[i] {
				t.Fatalf("%v: CLS %v, want %v", c.mods, l.CLS, c.cls)
			}
		}
	}
	for _, bad := range [][]string{{"sizes"}, {"bytes", "pixels"}} {
		if _, err := NewLayout(192, 20, 1600, 4, bad); err == nil {
			t.Fatalf("modalities %v accepted", bad)
		}
	}
}

func TestFillInput(t *testing.T) {
	v := &repr.View{NPackets: 3}
	v.Sizes[0], v.Sizes[1], v.Sizes[2] = 74, 1514, 60
	v.Dirs[0], v.Dirs[1], v.Dirs[2] = 1, -1, 1
	v.IATs[0], v.IATs[1], v.IATs[2] = 0, 0.5, 2
	v.Bytes[0], v.Bytes[1] = 255, 128
	x := make([]float32, repr.ViewBytes)
	ids := make([]float32, repr.SeqLen)
	iat := make([]float32, repr.SeqLen)
	FillInput(v, false, x, ids, iat)
	if ids[0] != 74 || ids[1] != 1500 || ids[2] != 60 || ids[3] != 1500 || ids[19] != 1500 {
		t.Fatalf("unsigned ids %v", ids)
	}
	// (1+t)/(2+t): 0 → 1/2, 0.5 → 0.6, 2 → 0.75; padding → 1.
	if iat[0] != 0.5 || math.Abs(float64(iat[1])-0.6) > 1e-7 || iat[2] != 0.75 || iat[3] != 1 {
		t.Fatalf("iat values %v", iat)
	}
	if x[0] != 1 || math.Abs(float64(x[1])-(128.0/127.5-1)) > 1e-7 || x[2] != -1 {
		t.Fatalf("normalised bytes %v", x[:3])
	}
	// the slice-level helpers agree
	ids2 := make([]float32, repr.SeqLen)
	SizeIDs(ids2, v, false)
	iat2 := make([]float32, repr.SeqLen)
	IATValues(iat2, v)
	for i := range ids {
		if ids2[i] != ids[i] || iat2[i] != iat[i] {
			t.Fatalf("SizeIDs/IATValues differ from FillInput at %d", i)
		}
	}
	if IATTransform(math.Inf(1)) != 1 || IATTransform(0) != 0.5 {
		t.Fatal("IATTransform(+Inf) != 1 or IATTransform(0) != 0.5")
	}
	nb := make([]float32, 3)
	NormalizeBytes(nb, []byte{0, 255, 128})
	if nb[0] != -1 || nb[1] != 1 || nb[2] != x[1] {
		t.Fatalf("NormalizeBytes %v", nb)
	}
	FillInput(v, true, nil, ids, nil)
	if ids[0] != 1574 || ids[1] != 0 || ids[2] != 1560 || ids[3] != 3000 {
		t.Fatalf("signed ids %v", ids)
	}
}
