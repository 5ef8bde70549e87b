// Package checkpoint reads and writes model weights: safetensors (the
// interchange format, with netmamba's metadata) and PyTorch .pth imports.
package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
)

// Tensor is one named array. Exactly one of F32, I64, U8 holds the data,
// according to DType.
type Tensor struct {
	DType string // "F32", "I64", "U8" (as in the safetensors header)
	Shape []int
	F32   []float32
	I64   []int64
	U8    []byte
}

// Numel is the number of elements implied by the shape.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is the content of a safetensors file.
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

type stEntry struct {
	DType       string `json:"dtype"`
	Shape       []int  `json:"shape"`
	DataOffsets [2]int `json:"data_offsets"`
}

// ReadSafetensors reads a whole safetensors file.
func ReadSafetensors(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f, err := ParseSafetensors(raw)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return f, nil
}

// ParseSafetensors decodes a safetensors image held in memory.
func ParseSafetensors(raw []byte) (*File, error) {
	if len(raw) < 8 {
		return nil, fmt.Errorf("safetensors: file of %d bytes is too short for the 8-byte header length", len(raw))
	}
	n := binary.LittleEndian.Uint64(raw[:8])
	if n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("safetensors: header length %d at offset 0 exceeds the file size %d", n, len(raw))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return nil, fmt.Errorf("safetensors: header JSON at offset 8: %w", err)
	}
	data := raw[8+n:]
	f := &File{Tensors: map[string]*Tensor{}, Metadata: map[string]string{}}
	for name, msg := range header {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__: %w", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || end < b || end > len(data) {
			return nil, fmt.Errorf("safetensors: tensor %q: data offsets [%d,%d] outside the %d data bytes", name, b, end, len(data))
		}
		t := &Tensor{DType: e.DType, Shape: e.Shape}
		buf := data[b:end]
		var size int
		switch e.DType {
		case "F32":
			size = 4
		case "I64":
			size = 8
		case "U8":
			size = 1
		default:
			return nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %s", name, e.DType)
		}
		if len(buf) != t.Numel()*size {
			return nil, fmt.Errorf("safetensors: tensor %q: %d bytes for shape %v of %s", name, len(buf), e.Shape, e.DType)
		}
		switch e.DType {
		case "F32":
			t.F32 = make([]float32, t.Numel())
			for i := range t.F32 {
				t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			}
		case "I64":
			t.I64 = make([]int64, t.Numel())
			for i := range t.I64 {
				t.I64[i] = int64(binary.LittleEndian.Uint64(buf[8*i:]))
			}
		case "U8":
			t.U8 = append([]byte(nil), buf...)
		}
		f.Tensors[name] = t
	}
	return f, nil
}
