// Package checkpoint reads and writes model weights: safetensors (the
// interchange format, with netmamba's metadata) and PyTorch .pth imports
// and exports (the torch.save zip format).
package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Tensor is one named array. Exactly one of F32, I64, U8 holds the data,
// according to DType. Half-precision tensors (F16, BF16) are converted to
// float32 when read: their DType is then "F32" and Stored says what the
// file held.
type Tensor struct {
	DType  string // "F32", "I64", "U8" (as in the safetensors header)
	Shape  []int
	F32    []float32
	I64    []int64
	U8     []byte
	Stored string // on-disk dtype when it differs from DType ("F16", "BF16", "I32"); "" otherwise
}

// Numel is the number of elements implied by the shape.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Len is the number of elements held in the data slice of DType.
func (t *Tensor) Len() int {
	switch t.DType {
	case "F32":
		return len(t.F32)
	case "I64":
		return len(t.I64)
	case "U8":
		return len(t.U8)
	}
	return 0
}

// Validate checks that the dtype is supported and the data length matches
// the shape.
func (t *Tensor) Validate() error {
	switch t.DType {
	case "F32", "I64", "U8":
	default:
		return fmt.Errorf("unsupported in-memory dtype %q (want F32, I64 or U8)", t.DType)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	if t.Len() != t.Numel() {
		return fmt.Errorf("%s data holds %d elements for shape %v (%d)", t.DType, t.Len(), t.Shape, t.Numel())
	}
	return nil
}

// File is the content of a checkpoint: named tensors and string metadata
// (the safetensors "__metadata__"; see Meta for netmamba's keys).
type File struct {
	Tensors  map[string]*Tensor
	Metadata map[string]string
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for n := range f.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NumParams is the total number of elements over all tensors.
func (f *File) NumParams() int64 {
	var n int64
	for _, t := range f.Tensors {
		n += int64(t.Numel())
	}
	return n
}

type stEntry struct {
	DType       string `json:"dtype"`
	Shape       []int  `json:"shape"`
	DataOffsets [2]int `json:"data_offsets"`
}

// maxHeaderBytes bounds the safetensors JSON header (the reference
// implementation's limit is 100 MB).
const maxHeaderBytes = 100 << 20

// safetensorsMagicOK reports whether raw plausibly starts a safetensors
// file: a header length that fits, followed by '{'.
func safetensorsMagicOK(raw []byte) bool {
	if len(raw) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(raw[:8])
	return n >= 2 && n <= uint64(len(raw)-8) && raw[8] == '{'
}

// ReadSafetensors reads a whole safetensors file. The file is read once;
// F32, I64 and U8 tensors share memory with that single buffer when the host
// is little-endian and the data are aligned (no second copy).
func ReadSafetensors(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f, err := parseSafetensors(raw, true)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return f, nil
}

// ParseSafetensors decodes a safetensors image held in memory. The tensors
// are copies: raw may be reused afterwards.
func ParseSafetensors(raw []byte) (*File, error) {
	return parseSafetensors(raw, false)
}

func parseSafetensors(raw []byte, alias bool) (*File, error) {
	if len(raw) < 8 {
		return nil, fmt.Errorf("safetensors: file of %d bytes is too short for the 8-byte header length", len(raw))
	}
	n := binary.LittleEndian.Uint64(raw[:8])
	if n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("safetensors: header length %d at offset 0 exceeds the file size %d (truncated or not a safetensors file)", n, len(raw))
	}
	if n > maxHeaderBytes {
		return nil, fmt.Errorf("safetensors: header length %d at offset 0 exceeds the %d-byte limit", n, maxHeaderBytes)
	}
	if n == 0 || raw[8] != '{' {
		return nil, fmt.Errorf("safetensors: header at offset 8 does not start with '{' (not a safetensors file)")
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return nil, fmt.Errorf("safetensors: header JSON at offset 8: %w", err)
	}
	dataStart := 8 + int(n)
	data := raw[dataStart:]
	f := &File{Tensors: map[string]*Tensor{}, Metadata: map[string]string{}}
	for name, msg := range header {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__ (must map strings to strings): %w", err)
			}
			if f.Metadata == nil {
				f.Metadata = map[string]string{}
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || end < b || end > len(data) {
			return nil, fmt.Errorf("safetensors: tensor %q: data offsets [%d,%d] outside the %d data bytes (truncated?)", name, b, end, len(data))
		}
		size := dtypeSize(e.DType)
		if size == 0 {
			return nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %s (supported: F32, F16, BF16, I64, U8)", name, e.DType)
		}
		numel, ok := shapeNumel(e.Shape, len(data))
		if !ok || numel*size != end-b {
			return nil, fmt.Errorf("safetensors: tensor %q at data offset %d: %d bytes for shape %v of %s", name, dataStart+b, end-b, e.Shape, e.DType)
		}
		t, err := decodeTensor(e.DType, e.Shape, data[b:end], alias)
		if err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		f.Tensors[name] = t
	}
	return f, nil
}

// shapeNumel multiplies the dimensions, failing on negative dimensions or a
// product above limit (which also rules out overflow).
func shapeNumel(shape []int, limit int) (int, bool) {
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			return 0, true
		}
	}
	n := 1
	for _, d := range shape {
		if n > limit/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// dtypeSize is the element size of a supported on-disk dtype, 0 otherwise.
func dtypeSize(dt string) int {
	switch dt {
	case "F32":
		return 4
	case "F16", "BF16":
		return 2
	case "I64":
		return 8
	case "U8":
		return 1
	}
	return 0
}

// decodeTensor turns little-endian bytes of dtype dt into a Tensor. With
// alias, F32/I64/U8 data share memory with buf when possible.
func decodeTensor(dt string, shape []int, buf []byte, alias bool) (*Tensor, error) {
	shape = append([]int{}, shape...)
	t := &Tensor{DType: "F32", Shape: shape}
	switch dt {
	case "F32":
		if alias {
			if v := aliasF32(buf); v != nil {
				t.F32 = v
				return t, nil
			}
		}
		t.F32 = make([]float32, len(buf)/4)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
	case "F16":
		t.Stored = "F16"
		t.F32 = make([]float32, len(buf)/2)
		for i := range t.F32 {
			t.F32[i] = HalfToFloat32(binary.LittleEndian.Uint16(buf[2*i:]))
		}
	case "BF16":
		t.Stored = "BF16"
		t.F32 = make([]float32, len(buf)/2)
		for i := range t.F32 {
			t.F32[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(buf[2*i:]))
		}
	case "I64":
		t.DType = "I64"
		if alias {
			if v := aliasI64(buf); v != nil {
				t.I64 = v
				return t, nil
			}
		}
		t.I64 = make([]int64, len(buf)/8)
		for i := range t.I64 {
			t.I64[i] = int64(binary.LittleEndian.Uint64(buf[8*i:]))
		}
	case "U8":
		t.DType = "U8"
		if alias {
			t.U8 = buf[:len(buf):len(buf)]
		} else {
			t.U8 = append([]byte{}, buf...)
		}
	default:
		return nil, fmt.Errorf("unsupported dtype %s", dt)
	}
	return t, nil
}

// WriteOptions control how tensors are stored.
type WriteOptions struct {
	// Float is the on-disk dtype of float tensors: "" or "F32" (exact),
	// "F16" or "BF16" (half the size, rounded to nearest even).
	Float string
}

func (o WriteOptions) floatDType() (string, error) {
	switch o.Float {
	case "", "F32":
		return "F32", nil
	case "F16", "BF16":
		return o.Float, nil
	}
	return "", fmt.Errorf("checkpoint: unsupported float storage dtype %q (want F32, F16 or BF16)", o.Float)
}

// dtypeRank orders dtypes as the reference implementation's Dtype enum;
// tensors are written by decreasing rank, then by name.
func dtypeRank(dt string) int {
	switch dt {
	case "U8":
		return 1
	case "F16":
		return 7
	case "BF16":
		return 8
	case "F32":
		return 11
	case "I64":
		return 13
	}
	return 0
}

type plannedTensor struct {
	name   string
	t      *Tensor
	dtype  string // on-disk
	nbytes int
}

// planSafetensors validates f and returns the tensors in write order.
func planSafetensors(f *File, opt WriteOptions) ([]plannedTensor, error) {
	fdt, err := opt.floatDType()
	if err != nil {
		return nil, err
	}
	plan := make([]plannedTensor, 0, len(f.Tensors))
	for name, t := range f.Tensors {
		if name == "__metadata__" {
			return nil, fmt.Errorf("checkpoint: invalid tensor name %q", name)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("checkpoint: tensor %q: %w", name, err)
		}
		dt := t.DType
		if dt == "F32" {
			dt = fdt
		}
		plan = append(plan, plannedTensor{name: name, t: t, dtype: dt, nbytes: t.Numel() * dtypeSize(dt)})
	}
	sort.Slice(plan, func(i, j int) bool {
		ri, rj := dtypeRank(plan[i].dtype), dtypeRank(plan[j].dtype)
		if ri != rj {
			return ri > rj
		}
		return plan[i].name < plan[j].name
	})
	return plan, nil
}

// jsonString encodes s as a JSON string without HTML escaping.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimRight(b.Bytes(), "\n")
}

// safetensorsHeader builds the JSON header, padded with spaces to a
// multiple of 8 bytes like the reference implementation.
func safetensorsHeader(plan []plannedTensor, meta map[string]string) []byte {
	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	if len(meta) > 0 {
		h.WriteString(`"__metadata__":{`)
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			h.Write(jsonString(k))
			h.WriteByte(':')
			h.Write(jsonString(meta[k]))
		}
		h.WriteByte('}')
		first = false
	}
	off := 0
	for _, p := range plan {
		if !first {
			h.WriteByte(',')
		}
		first = false
		h.Write(jsonString(p.name))
		fmt.Fprintf(&h, `:{"dtype":"%s","shape":[`, p.dtype)
		for i, d := range p.t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			fmt.Fprintf(&h, "%d", d)
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+p.nbytes)
		off += p.nbytes
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	return h.Bytes()
}

// EncodeSafetensors writes f in the safetensors format to w: tensors in a
// deterministic order (dtype, then name), metadata keys sorted, the header
// padded to 8 bytes.
func EncodeSafetensors(w io.Writer, f *File, opt WriteOptions) error {
	plan, err := planSafetensors(f, opt)
	if err != nil {
		return err
	}
	header := safetensorsHeader(plan, f.Metadata)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	if _, err := w.Write(n[:]); err != nil {
		return fmt.Errorf("checkpoint: writing safetensors header: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("checkpoint: writing safetensors header: %w", err)
	}
	for _, p := range plan {
		if err := writeTensorData(w, p.t, p.dtype); err != nil {
			return fmt.Errorf("checkpoint: writing tensor %q: %w", p.name, err)
		}
	}
	return nil
}

// writeTensorData writes t's elements little-endian as dtype dt.
func writeTensorData(w io.Writer, t *Tensor, dt string) error {
	if b := rawBytes(t); b != nil && (t.DType != "F32" || dt == "F32") {
		_, err := w.Write(b) // little-endian host: the memory is the file layout
		return err
	}
	const chunk = 4096
	var buf [chunk * 8]byte
	switch t.DType {
	case "U8":
		_, err := w.Write(t.U8)
		return err
	case "I64":
		for i := 0; i < len(t.I64); i += chunk {
			m := min(chunk, len(t.I64)-i)
			for j := range m {
				binary.LittleEndian.PutUint64(buf[8*j:], uint64(t.I64[i+j]))
			}
			if _, err := w.Write(buf[:8*m]); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i < len(t.F32); i += chunk {
		m := min(chunk, len(t.F32)-i)
		var nb int
		switch dt {
		case "F32":
			for j := range m {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(t.F32[i+j]))
			}
			nb = 4 * m
		case "F16":
			for j := range m {
				binary.LittleEndian.PutUint16(buf[2*j:], Float32ToHalf(t.F32[i+j]))
			}
			nb = 2 * m
		case "BF16":
			for j := range m {
				binary.LittleEndian.PutUint16(buf[2*j:], Float32ToBFloat16(t.F32[i+j]))
			}
			nb = 2 * m
		default:
			return fmt.Errorf("cannot store F32 data as %s", dt)
		}
		if _, err := w.Write(buf[:nb]); err != nil {
			return err
		}
	}
	return nil
}

// WriteSafetensors writes f to path (atomically: a temporary file in the
// same directory is renamed over path).
func WriteSafetensors(path string, f *File, opt WriteOptions) error {
	return writeAtomic(path, func(w io.Writer) error { return EncodeSafetensors(w, f, opt) })
}

// writeAtomic streams encode's output into a temporary file next to path
// and renames it to path once complete.
func writeAtomic(path string, encode func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+strings.TrimPrefix(filepath.Base(path), ".")+".tmp*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	err = encode(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("checkpoint: writing %s: %w", path, err)
	}
	return nil
}
