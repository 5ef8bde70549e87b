package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// golden is the shared golden-tensor folder (read-only; CI has it).
const golden = "../../shared/golden/"

func TestReadGoldenTiny(t *testing.T) {
	f, err := ReadSafetensors(golden + "netmamba_tiny.weights.safetensors")
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
	for d := range 64 {
		for n := range 16 {
			if got, want := a.F32[d*16+n], float32(math.Log(float64(n+1))); math.Abs(float64(got-want)) > 1e-6 {
				t.Fatalf("A_log[%d,%d] = %v, want ln(%d) = %v", d, n, got, n+1, want)
			}
		}
	}
	if f.Metadata["embed_dim"] != "32" {
		t.Errorf("metadata embed_dim = %q", f.Metadata["embed_dim"])
	}
}

type manifestFile struct {
	Tensors map[string]struct {
		Shape []int  `json:"shape"`
		DType string `json:"dtype"`
	} `json:"tensors"`
	Metadata map[string]string `json:"metadata"`
}

func readManifest(t *testing.T) map[string]manifestFile {
	t.Helper()
	raw, err := os.ReadFile(golden + "manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]manifestFile
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Every golden file reads with exactly the names, shapes, dtypes and
// metadata listed in manifest.json (F32, I64 and U8 tensors).
func TestReadAllGoldenMatchesManifest(t *testing.T) {
	for name, mf := range readManifest(t) {
		f, err := ReadSafetensors(golden + name)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Tensors) != len(mf.Tensors) {
			t.Errorf("%s: %d tensors, manifest lists %d", name, len(f.Tensors), len(mf.Tensors))
		}
		for tn, want := range mf.Tensors {
			got := f.Tensors[tn]
			if got == nil {
				t.Errorf("%s: tensor %s missing", name, tn)
				continue
			}
			if got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || got.Validate() != nil {
				t.Errorf("%s: %s is %s %v, manifest %s %v", name, tn, got.DType, got.Shape, want.DType, want.Shape)
			}
		}
		if !reflect.DeepEqual(f.Metadata, mf.Metadata) {
			t.Errorf("%s: metadata %v, manifest %v", name, f.Metadata, mf.Metadata)
		}
	}
}

// The encoding of a small file, written out by hand from the format's
// definition: 8-byte length, JSON padded with spaces to 8 bytes, data.
func TestEncodeSafetensorsExactBytes(t *testing.T) {
	f := &File{
		Tensors: map[string]*Tensor{
			"w":   {DType: "F32", Shape: []int{2}, F32: []float32{1, -2}},
			"ids": {DType: "I64", Shape: []int{1}, I64: []int64{-3}},
			"b":   {DType: "U8", Shape: []int{3}, U8: []byte{7, 8, 9}},
		},
		Metadata: map[string]string{"z": "1", "a": "<x>"},
	}
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, f, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	header := `{"__metadata__":{"a":"<x>","z":"1"},` +
		`"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},` +
		`"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},` +
		`"b":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	want := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	want = append(want, header...)
	want = binary.LittleEndian.AppendUint64(want, uint64(0xfffffffffffffffd)) // -3
	want = binary.LittleEndian.AppendUint32(want, 0x3f800000)                 // 1
	want = binary.LittleEndian.AppendUint32(want, 0xc0000000)                 // -2
	want = append(want, 7, 8, 9)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("encoding\n got %q\nwant %q", buf.Bytes(), want)
	}
	back, err := ParseSafetensors(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	assertSameFile(t, f, back)
}

func assertSameFile(t *testing.T, want, got *File) {
	t.Helper()
	if !reflect.DeepEqual(want.Names(), got.Names()) {
		t.Fatalf("names %v, want %v", got.Names(), want.Names())
	}
	for _, n := range want.Names() {
		assertSameTensor(t, n, want.Tensors[n], got.Tensors[n])
	}
	wm, gm := want.Metadata, got.Metadata
	if len(wm) == 0 && len(gm) == 0 {
		return
	}
	if !reflect.DeepEqual(wm, gm) {
		t.Fatalf("metadata %v, want %v", gm, wm)
	}
}

// assertSameTensor checks dtype, shape and bit-identical values.
func assertSameTensor(t *testing.T, name string, want, got *Tensor) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s missing", name)
	}
	if want.DType != got.DType || !reflect.DeepEqual(want.Shape, got.Shape) || want.Len() != got.Len() {
		t.Fatalf("%s: %s %v (%d), want %s %v (%d)", name, got.DType, got.Shape, got.Len(), want.DType, want.Shape, want.Len())
	}
	for i := range want.F32 {
		if math.Float32bits(want.F32[i]) != math.Float32bits(got.F32[i]) {
			t.Fatalf("%s[%d] = %v, want %v (bits differ)", name, i, got.F32[i], want.F32[i])
		}
	}
	if !reflect.DeepEqual(want.I64, got.I64) && len(want.I64) > 0 {
		t.Fatalf("%s: I64 values differ", name)
	}
	if !bytes.Equal(want.U8, got.U8) {
		t.Fatalf("%s: U8 values differ", name)
	}
}

func TestWriteSafetensorsRoundTripDeterministic(t *testing.T) {
	for _, name := range []string{"netmamba_tiny.weights.safetensors", "netmamba_tiny.io.safetensors"} {
		f, err := ReadSafetensors(golden + name)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "x.safetensors")
		if err := WriteSafetensors(out, f, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		back, err := ReadSafetensors(out)
		if err != nil {
			t.Fatal(err)
		}
		assertSameFile(t, f, back)
		raw1, _ := os.ReadFile(out)
		var raw2 bytes.Buffer
		if err := EncodeSafetensors(&raw2, back, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw1, raw2.Bytes()) {
			t.Errorf("%s: re-encoding is not byte-identical", name)
		}
		if n := binary.LittleEndian.Uint64(raw1); n%8 != 0 {
			t.Errorf("%s: header length %d not a multiple of 8", name, n)
		}
	}
}

func TestWriteSafetensorsHalf(t *testing.T) {
	f, err := ReadSafetensors(golden + "netmamba_tiny.weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []string{"F16", "BF16"} {
		var buf bytes.Buffer
		if err := EncodeSafetensors(&buf, f, WriteOptions{Float: dt}); err != nil {
			t.Fatal(err)
		}
		back, err := ParseSafetensors(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		// Half the data bytes of the F32 file (header aside).
		full, _ := os.Stat(golden + "netmamba_tiny.weights.safetensors")
		if int64(buf.Len()) > full.Size()/2+4096 {
			t.Errorf("%s file is %d bytes, F32 %d", dt, buf.Len(), full.Size())
		}
		relTol := math.Pow(2, -11) // F16: 10-bit mantissa, round to nearest
		if dt == "BF16" {
			relTol = math.Pow(2, -8)
		}
		for _, n := range f.Names() {
			w, g := f.Tensors[n], back.Tensors[n]
			if g.DType != "F32" || g.Stored != dt || !reflect.DeepEqual(g.Shape, w.Shape) {
				t.Fatalf("%s %s: %s (stored %s) %v", dt, n, g.DType, g.Stored, g.Shape)
			}
			for i, v := range w.F32 {
				d := math.Abs(float64(g.F32[i] - v))
				if d > relTol*math.Abs(float64(v))+math.Pow(2, -25) {
					t.Fatalf("%s %s[%d]: %v -> %v", dt, n, i, v, g.F32[i])
				}
			}
		}
		// Re-writing the read-back values in the same dtype is lossless.
		var again bytes.Buffer
		if err := EncodeSafetensors(&again, back, WriteOptions{Float: dt}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), buf.Bytes()) {
			t.Errorf("%s: second round trip changed the bytes", dt)
		}
	}
}

func TestHalfConversions(t *testing.T) {
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e6, 0x7c00},
		{float32(math.Pow(2, -24)), 0x0001}, {float32(math.Pow(2, -14)), 0x0400}, {0.1, 0x2e66},
		{1 + float32(math.Pow(2, -11)), 0x3c00},   // tie -> even
		{1 + 3*float32(math.Pow(2, -11)), 0x3c02}, // tie -> even (up)
		{float32(math.Pow(2, -26)), 0x0000},       // below half the smallest subnormal
		{float32(math.Inf(-1)), 0xfc00}, {float32(math.Copysign(0, -1)), 0x8000},
	} {
		if got := Float32ToHalf(c.f); got != c.h {
			t.Errorf("Float32ToHalf(%v) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	// Every half value converts to float32 and back unchanged.
	for h := range 1 << 16 {
		f := HalfToFloat32(uint16(h))
		if f != f {
			if g := Float32ToHalf(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x", h, g)
			}
			continue
		}
		if g := Float32ToHalf(f); g != uint16(h) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, f, g)
		}
		// Against the definition: value = (-1)^s · 2^(e-15) · 1.m (or subnormal).
		e, m := (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case e == 0x1f:
			want = math.Inf(1)
		case e == 0:
			want = float64(m) * math.Pow(2, -24)
		default:
			want = (1 + float64(m)/1024) * math.Pow(2, float64(e)-15)
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if float64(f) != want {
			t.Fatalf("HalfToFloat32(%#04x) = %v, want %v", h, f, want)
		}
	}
	// Nearest rounding: the result is never farther than the other neighbour.
	for _, v := range []float32{0.3, 3.14159, 1e-5, 6e-8, 12345.678, -0.0004567} {
		h := Float32ToHalf(v)
		got := math.Abs(float64(HalfToFloat32(h) - v))
		for _, n := range []uint16{h - 1, h + 1} {
			if alt := math.Abs(float64(HalfToFloat32(n) - v)); alt < got {
				t.Errorf("Float32ToHalf(%v) = %#04x, neighbour %#04x is nearer", v, h, n)
			}
		}
	}
	if Float32ToBFloat16(1) != 0x3f80 || BFloat16ToFloat32(0x3f80) != 1 || Float32ToBFloat16(-2.5) != 0xc020 {
		t.Error("bfloat16 of 1 / -2.5")
	}
	if got := Float32ToBFloat16(math.Float32frombits(0x3f808000)); got != 0x3f80 { // tie -> even
		t.Errorf("bf16 tie: %#04x", got)
	}
	if got := Float32ToBFloat16(math.Float32frombits(0x3f818000)); got != 0x3f82 {
		t.Errorf("bf16 tie up: %#04x", got)
	}
}

// safetensorsImage builds a file image with the given header JSON and data.
func safetensorsImage(header string, data []byte) []byte {
	raw := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(raw, header...), data...)
}

func TestParseSafetensorsErrors(t *testing.T) {
	good, err := os.ReadFile(golden + "netmamba_tiny.weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		raw  []byte
		want string
	}{
		"empty":           {nil, "too short"},
		"3 bytes":         {[]byte{1, 2, 3}, "too short"},
		"header too long": {[]byte{255, 0, 0, 0, 0, 0, 0, 0, '{'}, "exceeds the file size"},
		"truncated data":  {good[:len(good)-100], "outside"},
		"truncated head":  {good[:1000], "exceeds the file size"},
		"wrong magic":     {append([]byte("GIF89a.."), good[8:]...), "exceeds"},
		"bad json":        {safetensorsImage(`{"a":`, nil), "header JSON"},
		"not object":      {safetensorsImage(`[1,2]   `, nil), "does not start with '{'"},
		"f64":             {safetensorsImage(`{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)), "unsupported dtype F64"},
		"shape mismatch":  {safetensorsImage(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), "8 bytes for shape [3]"},
		"negative dim":    {safetensorsImage(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, make([]byte, 8)), "shape [-2]"},
		"huge dims":       {safetensorsImage(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}`, make([]byte, 8)), "8 bytes for shape"},
		"bad metadata":    {safetensorsImage(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
	}
	for name, c := range cases {
		_, err := ParseSafetensors(c.raw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	for _, f := range []*File{
		{Tensors: map[string]*Tensor{"a": {DType: "F32", Shape: []int{3}, F32: []float32{1}}}},
		{Tensors: map[string]*Tensor{"a": {DType: "F64", Shape: []int{1}}}},
		{Tensors: map[string]*Tensor{"__metadata__": {DType: "U8", Shape: []int{0}}}},
	} {
		if err := EncodeSafetensors(&bytes.Buffer{}, f, WriteOptions{}); err == nil {
			t.Errorf("EncodeSafetensors(%v): want error", f.Names())
		}
	}
	ok := &File{Tensors: map[string]*Tensor{"a": {DType: "F32", Shape: []int{1}, F32: []float32{1}}}}
	if err := EncodeSafetensors(&bytes.Buffer{}, ok, WriteOptions{Float: "F8"}); err == nil {
		t.Error("Float F8: want error")
	}
}

func FuzzParseSafetensors(f *testing.F) {
	tiny := &File{
		Tensors:  map[string]*Tensor{"a": {DType: "F32", Shape: []int{2, 1}, F32: []float32{1, 2}}, "b": {DType: "I64", Shape: []int{1}, I64: []int64{5}}},
		Metadata: map[string]string{"k": "v"},
	}
	for _, opt := range []WriteOptions{{}, {Float: "F16"}, {Float: "BF16"}} {
		var buf bytes.Buffer
		if err := EncodeSafetensors(&buf, tiny, opt); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(safetensorsImage(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil))
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := ParseSafetensors(raw)
		if err != nil {
			return
		}
		for n, tt := range file.Tensors {
			if err := tt.Validate(); err != nil {
				t.Fatalf("parsed tensor %q invalid: %v", n, err)
			}
		}
		var buf bytes.Buffer
		if err := EncodeSafetensors(&buf, file, WriteOptions{}); err != nil {
			t.Fatalf("re-encoding a parsed file: %v", err)
		}
	})
}
