package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// The official-layout .pth files hold exactly the tensors of the matching
// safetensors files (golden README): bit-identical names, shapes, values.
func TestReadPthMatchesGoldenSafetensors(t *testing.T) {
	for _, name := range []string{"netmamba_tiny", "netmamba_cls"} {
		want, err := ReadSafetensors(golden + name + ".weights.safetensors")
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadPth(golden + name + ".pth")
		if err != nil {
			t.Fatal(err)
		}
		assertSameFile(t, &File{Tensors: want.Tensors}, &File{Tensors: got.Tensors})
		// {"model": ..., "epoch": 0, "scaler": None}: epoch kept, None dropped.
		if !reflect.DeepEqual(got.Metadata, map[string]string{"pth.epoch": "0"}) {
			t.Errorf("%s metadata %v", name, got.Metadata)
		}
		// Same through the content-sniffing loader, and the copying parser.
		viaLoad, format, err := LoadFormat(golden + name + ".pth")
		if err != nil || format != FormatPth {
			t.Fatalf("LoadFormat: %v %q", err, format)
		}
		assertSameFile(t, got, viaLoad)
		raw, _ := os.ReadFile(golden + name + ".pth")
		copied, err := ParsePth(raw)
		if err != nil {
			t.Fatal(err)
		}
		assertSameFile(t, got, copied)
	}
}

// ReadSafetensors and ReadPth keep float32 data in the file buffer they
// read (no second copy): two tensors stored back to back are adjacent.
func TestReadAliasesFileBuffer(t *testing.T) {
	f, err := ReadSafetensors(golden + "netmamba_tiny.weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	// The golden header lists cls_token [1,1,32] at [0,128), then pos_embed.
	a, b := f.Tensors["cls_token"].F32, f.Tensors["pos_embed"].F32
	if uintptr(unsafe.Pointer(&b[0]))-uintptr(unsafe.Pointer(&a[0])) != 128 {
		t.Errorf("cls_token and pos_embed are not adjacent views of the file buffer")
	}
	p, err := ReadPth(golden + "netmamba_tiny.pth")
	if err != nil {
		t.Fatal(err)
	}
	// cls_token and pos_embed are storages data/0 and data/1: their distance
	// in memory is their distance in the zip file.
	raw, _ := os.ReadFile(golden + "netmamba_tiny.pth")
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	offs := map[string]int64{}
	for _, zf := range zr.File {
		offs[zf.Name], _ = zf.DataOffset()
	}
	want := offs["netmamba_tiny/data/1"] - offs["netmamba_tiny/data/0"]
	a, b = p.Tensors["cls_token"].F32, p.Tensors["pos_embed"].F32
	if got := int64(uintptr(unsafe.Pointer(&b[0])) - uintptr(unsafe.Pointer(&a[0]))); want <= 0 || got != want {
		t.Errorf("pth: cls_token and pos_embed are %d bytes apart, %d in the file: copied rather than viewed", got, want)
	}
}

func TestWritePthRoundTrip(t *testing.T) {
	src, err := ReadSafetensors(golden + "netmamba_tiny.io.safetensors") // F32, I64 and U8 tensors
	if err != nil {
		t.Fatal(err)
	}
	src.Metadata["netmamba.classes"] = `["a","b"]`
	out := filepath.Join(t.TempDir(), "m.pth")
	if err := WritePth(out, src, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	back, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	assertSameFile(t, src, back)

	// torch's layout: ARCHIVE/data.pkl first, ARCHIVE/version, stored
	// entries whose data start on 64-byte boundaries.
	raw, _ := os.ReadFile(out)
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if zr.File[0].Name != "archive/data.pkl" {
		t.Errorf("first entry %s", zr.File[0].Name)
	}
	names := map[string]bool{}
	for _, zf := range zr.File {
		names[zf.Name] = true
		off, err := zf.DataOffset()
		if err != nil || off%64 != 0 || zf.Method != zip.Store {
			t.Errorf("%s: data offset %d (%v), method %d", zf.Name, off, err, zf.Method)
		}
	}
	if !names["archive/version"] || !names["archive/data/0"] {
		t.Errorf("entries %v", names)
	}

	// Half precision.
	var buf bytes.Buffer
	if err := EncodePth(&buf, src, WriteOptions{Float: "F16"}); err != nil {
		t.Fatal(err)
	}
	half, err := ParsePth(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for n, w := range src.Tensors {
		g := half.Tensors[n]
		if w.DType == "F32" {
			if g.Stored != "F16" {
				t.Fatalf("%s stored %q", n, g.Stored)
			}
			for i, v := range w.F32 {
				if g.F32[i] != HalfToFloat32(Float32ToHalf(v)) {
					t.Fatalf("%s[%d]", n, i)
				}
			}
		} else {
			assertSameTensor(t, n, w, g)
		}
	}
}

// pthArchive builds a torch.save-like zip from a pickle and storages.
func pthArchive(t testing.TB, pkl []byte, storages map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := &torchZipWriter{zw: zip.NewWriter(&buf)}
	if err := zw.add("ckpt/data.pkl", pkl); err != nil {
		t.Fatal(err)
	}
	for k, v := range storages {
		if err := zw.add("ckpt/data/"+k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.add("ckpt/version", []byte("3\n")); err != nil {
		t.Fatal(err)
	}
	if err := zw.zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// viewPickle pickles a bare state_dict {name: view} with explicit storage
// type, offset, size and stride.
func viewPickle(views map[string]struct {
	typ, key         string
	numel, offset    int64
	size, stride     []int64
	asParam, ordered bool
}) []byte {
	var p pickleWriter
	p.WriteString("\x80\x02")
	p.orderedDict()
	p.WriteByte('(')
	for name, v := range views {
		p.str(name)
		if v.asParam {
			p.global("torch._utils", "_rebuild_parameter")
		}
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.WriteString("((")
		p.str("storage")
		p.global("torch", v.typ)
		p.str(v.key)
		p.str("cpu")
		p.int(v.numel)
		p.WriteString("tQ")
		p.int(v.offset)
		p.intTuple(v.size)
		p.intTuple(v.stride)
		p.WriteByte(0x89)
		p.orderedDict()
		p.WriteString("tR")
		if v.asParam {
			p.WriteString("\x88") // requires_grad
			p.orderedDict()
			p.WriteString("\x87R")
		}
	}
	p.WriteString("u.")
	return p.Bytes()
}

func f32Bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// Views: storage offsets, a transposed (non-contiguous) view, a strided
// slice, Parameters, and Half / BFloat16 / Int / Long / Bool storages.
func TestReadPthViewsAndDTypes(t *testing.T) {
	st := make([]float32, 12)
	for i := range st {
		st[i] = float32(i)
	}
	half := binary.LittleEndian.AppendUint16(nil, 0x3c00)    // 1
	half = binary.LittleEndian.AppendUint16(half, 0xc000)    // -2
	bf := binary.LittleEndian.AppendUint16(nil, 0x3fc0)      // 1.5
	i32 := binary.LittleEndian.AppendUint32(nil, 0xfffffffe) // -2
	i64 := binary.LittleEndian.AppendUint64(nil, 1<<40)
	type view = struct {
		typ, key         string
		numel, offset    int64
		size, stride     []int64
		asParam, ordered bool
	}
	pkl := viewPickle(map[string]view{
		"full":   {typ: "FloatStorage", key: "0", numel: 12, size: []int64{3, 4}, stride: []int64{4, 1}},
		"t":      {typ: "FloatStorage", key: "0", numel: 12, size: []int64{4, 3}, stride: []int64{1, 4}},
		"slice":  {typ: "FloatStorage", key: "0", numel: 12, offset: 2, size: []int64{2}, stride: []int64{3}},
		"row":    {typ: "FloatStorage", key: "0", numel: 12, offset: 8, size: []int64{1, 4}, stride: []int64{99, 1}, asParam: true},
		"scalar": {typ: "FloatStorage", key: "0", numel: 12, offset: 5, size: []int64{}, stride: []int64{}},
		"empty":  {typ: "FloatStorage", key: "0", numel: 12, size: []int64{0, 3}, stride: []int64{3, 1}},
		"h":      {typ: "HalfStorage", key: "1", numel: 2, size: []int64{2}, stride: []int64{1}},
		"bf":     {typ: "BFloat16Storage", key: "2", numel: 1, size: []int64{1}, stride: []int64{1}},
		"i32":    {typ: "IntStorage", key: "3", numel: 1, size: []int64{1}, stride: []int64{1}},
		"i64":    {typ: "LongStorage", key: "4", numel: 1, size: []int64{1}, stride: []int64{1}},
		"bool":   {typ: "BoolStorage", key: "5", numel: 2, size: []int64{2}, stride: []int64{1}},
	})
	raw := pthArchive(t, pkl, map[string][]byte{"0": f32Bytes(st...), "1": half, "2": bf, "3": i32, "4": i64, "5": {1, 0}})
	f, err := ParsePth(raw)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, want *Tensor) {
		t.Helper()
		got := f.Tensors[name]
		if got == nil || got.Stored != want.Stored {
			t.Fatalf("%s: %+v", name, got)
		}
		assertSameTensor(t, name, want, got)
	}
	check("full", &Tensor{DType: "F32", Shape: []int{3, 4}, F32: st})
	check("t", &Tensor{DType: "F32", Shape: []int{4, 3}, F32: []float32{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}})
	check("slice", &Tensor{DType: "F32", Shape: []int{2}, F32: []float32{2, 5}})
	check("row", &Tensor{DType: "F32", Shape: []int{1, 4}, F32: []float32{8, 9, 10, 11}})
	check("scalar", &Tensor{DType: "F32", Shape: []int{}, F32: []float32{5}})
	check("empty", &Tensor{DType: "F32", Shape: []int{0, 3}, F32: []float32{}})
	check("h", &Tensor{DType: "F32", Shape: []int{2}, F32: []float32{1, -2}, Stored: "F16"})
	check("bf", &Tensor{DType: "F32", Shape: []int{1}, F32: []float32{1.5}, Stored: "BF16"})
	check("i32", &Tensor{DType: "I64", Shape: []int{1}, I64: []int64{-2}, Stored: "I32"})
	check("i64", &Tensor{DType: "I64", Shape: []int{1}, I64: []int64{1 << 40}})
	check("bool", &Tensor{DType: "U8", Shape: []int{2}, U8: []byte{1, 0}, Stored: "BOOL"})
	if len(f.Tensors) != 11 {
		t.Errorf("%d tensors", len(f.Tensors))
	}
}

func TestReadPthErrors(t *testing.T) {
	good, err := os.ReadFile(golden + "netmamba_tiny.pth")
	if err != nil {
		t.Fatal(err)
	}
	type view = struct {
		typ, key         string
		numel, offset    int64
		size, stride     []int64
		asParam, ordered bool
	}
	one := func(v view, storage []byte) []byte {
		return pthArchive(t, viewPickle(map[string]view{"x": v}), map[string][]byte{"0": storage})
	}
	corruptCRC := append([]byte{}, good...)
	corruptCRC[5000] ^= 0xff // inside data/1 (pos_embed)
	cases := map[string]struct {
		raw  []byte
		want string
	}{
		"truncated":      {good[:len(good)/2], "zip"},
		"truncated tail": {good[:len(good)-30], "zip"},
		"corrupt data":   {corruptCRC, "CRC-32 mismatch"},
		"wrong magic":    {append([]byte("PX"), good[2:]...), "not a zip archive"},
		"legacy":         {[]byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."), "legacy"},
		"no data.pkl":    {zipOf(t, map[string][]byte{"a/b": []byte("x")}), "without ARCHIVE/data.pkl"},
		"torchscript":    {zipOf(t, map[string][]byte{"m/constants.pkl": []byte("x"), "m/code/m.py": nil}), "TorchScript"},
		"bad pickle":     {pthArchive(t, []byte("\x80\x02}q\x00(X\x05\x00\x00\x00mod"), nil), "truncated"},
		"no stop":        {pthArchive(t, []byte("\x80\x02}"), nil), "no STOP"},
		"bad opcode":     {pthArchive(t, []byte("\x80\x02\xff."), nil), "opcode 0xff"},
		"not dict":       {pthArchive(t, []byte("\x80\x02K\x01."), nil), "not a dict"},
		"no state dict":  {pthArchive(t, []byte("\x80\x02}X\x01\x00\x00\x00aK\x01s."), nil), "no state_dict"},
		"module object":  {pthArchive(t, []byte("\x80\x02}X\x05\x00\x00\x00modelcnet\nNet\n)\x81s."), nil), "pickled net.Net object"},
		"double":         {one(view{typ: "DoubleStorage", key: "0", numel: 1, size: []int64{1}, stride: []int64{1}}, make([]byte, 8)), "DoubleStorage"},
		"short storage":  {one(view{typ: "FloatStorage", key: "0", numel: 4, size: []int64{4}, stride: []int64{1}}, make([]byte, 8)), "truncated"},
		"missing record": {pthArchive(t, viewPickle(map[string]view{"x": {typ: "FloatStorage", key: "7", numel: 1, size: []int64{1}, stride: []int64{1}}}), nil), "missing"},
		"view too big":   {one(view{typ: "FloatStorage", key: "0", numel: 2, size: []int64{3}, stride: []int64{1}}, make([]byte, 8)), "exceeds its storage"},
		"stride past":    {one(view{typ: "FloatStorage", key: "0", numel: 2, size: []int64{2}, stride: []int64{2}}, make([]byte, 8)), "reads past"},
		"offset past":    {one(view{typ: "FloatStorage", key: "0", numel: 2, offset: 2, size: []int64{1}, stride: []int64{1}}, make([]byte, 8)), "offset 2 outside"},
		"huge numel":     {one(view{typ: "FloatStorage", key: "0", numel: 1 << 40, size: []int64{1}, stride: []int64{1}}, make([]byte, 8)), "more than the archive"},
	}
	for name, c := range cases {
		_, err := ParsePth(c.raw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
		if err != nil && (strings.Count(err.Error(), "zip:") > 1 || strings.Count(err.Error(), "pth:") > 1) {
			t.Errorf("%s: error %q repeats a prefix", name, err)
		}
	}
	// The archive/zip message is kept once: "pth: zip: not a valid zip file".
	if _, err := ParsePth([]byte("PK\x03\x04garbage")); err == nil || err.Error() != "pth: zip: not a valid zip file" {
		t.Errorf("bad zip: error %v", err)
	}
}

func zipOf(t testing.TB, entries map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, b := range entries {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadDetectsFormatAndErrors(t *testing.T) {
	dir := t.TempDir()
	st, _ := os.ReadFile(golden + "netmamba_tiny.weights.safetensors")
	cases := map[string]struct {
		raw  []byte
		want string // "" = success
	}{
		"model.pth.safetensors": {st, ""}, // content wins over the name
		"weights.bin":           {st[:20], "exceeds the file size"},
		"empty.pth":             {nil, "empty file"},
		"text.pth":              {[]byte("hello world, not a model"), "unknown format"},
	}
	for name, c := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, c.raw, 0o644); err != nil {
			t.Fatal(err)
		}
		f, format, err := LoadFormat(p)
		if c.want == "" {
			if err != nil || format != FormatSafetensors || len(f.Tensors) != 27 {
				t.Errorf("%s: %v %s", name, err, format)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want it to name the file and mention %q", name, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "absent.safetensors")); err == nil {
		t.Error("missing file: want error")
	}
}

func FuzzParsePth(f *testing.F) {
	small := &File{
		Tensors: map[string]*Tensor{
			"w":   {DType: "F32", Shape: []int{2, 2}, F32: []float32{1, 2, 3, 4}},
			"ids": {DType: "I64", Shape: []int{1}, I64: []int64{-1}},
		},
		Metadata: map[string]string{"k": "v"},
	}
	for _, opt := range []WriteOptions{{}, {Float: "F16"}} {
		var buf bytes.Buffer
		if err := EncodePth(&buf, small, opt); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	type view = struct {
		typ, key         string
		numel, offset    int64
		size, stride     []int64
		asParam, ordered bool
	}
	f.Add(pthArchive(f, viewPickle(map[string]view{
		"t": {typ: "FloatStorage", key: "0", numel: 6, size: []int64{3, 2}, stride: []int64{1, 3}, asParam: true},
	}), map[string][]byte{"0": f32Bytes(1, 2, 3, 4, 5, 6)}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := ParsePth(raw)
		if err != nil {
			return
		}
		for n, tt := range file.Tensors {
			if err := tt.Validate(); err != nil {
				t.Fatalf("parsed tensor %q invalid: %v", n, err)
			}
		}
	})
}

// FuzzUnpickle exercises the pickle reader alone, seeded with the pickles
// torch writes (the golden data.pkl) and ours.
func FuzzUnpickle(f *testing.F) {
	raw, err := os.ReadFile(golden + "netmamba_tiny.pth")
	if err != nil {
		f.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		f.Fatal(err)
	}
	pkl, err := zipEntryBytes(raw, zr.File[0], 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pkl)
	var p pickleWriter
	p.WriteString("\x80\x02}(")
	p.str("model")
	p.orderedDict()
	p.WriteByte('(')
	p.str("a")
	p.tensor("FloatStorage", "0", []int{2, 3, 4, 5})
	p.WriteString("uX\x05\x00\x00\x00epochJ\xff\xff\xff\xff")
	p.WriteString("X\x01\x00\x00\x00f" + "G\x3f\xf0\x00\x00\x00\x00\x00\x00")
	p.WriteString("X\x01\x00\x00\x00l](K\x01\x8a\x02\x00\x80N\x88e")
	p.WriteString("u.")
	f.Add(p.Bytes())
	f.Add([]byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94\x8c\x01b\x94\x93\x94)\x81\x94}\x94b."))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := unpickle(data)
		if err != nil {
			return
		}
		_, _, _ = selectStateDict(v)
		_ = brief(v)
	})
}

// FuzzPthContent fuzzes the pickle and two storages of a well-formed
// archive (valid zip and CRCs), reaching the state_dict selection and the
// view materialisation that FuzzParsePth's mutations rarely get past.
func FuzzPthContent(f *testing.F) {
	raw, err := os.ReadFile(golden + "netmamba_tiny.pth")
	if err != nil {
		f.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		f.Fatal(err)
	}
	pkl, err := zipEntryBytes(raw, zr.File[0], 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pkl, f32Bytes(1, 2, 3, 4, 5, 6, 7, 8), []byte{1, 2, 3})
	type view = struct {
		typ, key         string
		numel, offset    int64
		size, stride     []int64
		asParam, ordered bool
	}
	f.Add(viewPickle(map[string]view{
		"t": {typ: "FloatStorage", key: "0", numel: 6, size: []int64{3, 2}, stride: []int64{1, 3}, asParam: true},
		"h": {typ: "HalfStorage", key: "1", numel: 1, offset: 0, size: []int64{1}, stride: []int64{1}},
	}), f32Bytes(1, 2, 3, 4, 5, 6), []byte{0, 0x3c})
	f.Fuzz(func(t *testing.T, pkl, s0, s1 []byte) {
		storages := map[string][]byte{"0": s0, "1": s1}
		for k := range 27 { // keys of the golden pickle
			if k > 1 {
				storages[strconv.Itoa(k)] = s0
			}
		}
		file, err := ParsePth(pthArchive(t, pkl, storages))
		if err != nil {
			return
		}
		for n, tt := range file.Tensors {
			if err := tt.Validate(); err != nil {
				t.Fatalf("parsed tensor %q invalid: %v", n, err)
			}
		}
	})
}
