package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// PyTorch .pth checkpoints (torch.save's zip format, torch >= 1.6): a zip
// of ARCHIVE/data.pkl (a pickle, protocol 2, whose tensors point at
// storages through persistent ids), ARCHIVE/data/KEY (the raw little-endian
// storages) and ARCHIVE/version.

// MetadataKeyPth is the top-level key under which netmamba's .pth exports
// store the metadata (a dict of str -> str), next to "model".
const MetadataKeyPth = "netmamba_metadata"

// stateDictKeys are the top-level keys tried, in order, for the state_dict.
var stateDictKeys = [...]string{"model", "state_dict", "model_state", "model_state_dict"}

// ReadPth reads a torch.save zip checkpoint. The file is read once; tensors
// that are contiguous views share memory with that buffer when possible
// (so tensors that were views of one torch storage, e.g. tied weights,
// share memory as they did in torch).
func ReadPth(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f, err := parsePth(raw, true)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return f, nil
}

// ParsePth decodes a torch.save zip archive held in memory. The checkpoint
// may be {"model": state_dict, ...} (the official scripts), a bare
// state_dict, or hold it under "state_dict", "model_state" or
// "model_state_dict". Top-level scalars (e.g. epoch) become metadata
// "pth.KEY". The tensors are copies: raw may be reused afterwards.
func ParsePth(raw []byte) (*File, error) {
	return parsePth(raw, false)
}

func zipMagicOK(raw []byte) bool {
	return len(raw) >= 4 && string(raw[:4]) == "PK\x03\x04"
}

func parsePth(raw []byte, alias bool) (*File, error) {
	if !zipMagicOK(raw) {
		if len(raw) >= 2 && raw[0] == 0x80 && raw[1] <= 5 {
			return nil, fmt.Errorf("pth: legacy (pre-1.6, non-zip) torch serialization is not supported; re-save it with a recent torch.save or convert it to safetensors")
		}
		return nil, fmt.Errorf("pth: not a zip archive (magic % x at offset 0)", raw[:min(4, len(raw))])
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("pth: %w", err) // archive/zip errors start with "zip: "
	}
	entries := map[string]*zip.File{}
	prefix := ""
	for _, zf := range zr.File {
		entries[zf.Name] = zf
		if strings.HasSuffix(zf.Name, "/data.pkl") && strings.Count(zf.Name, "/") == 1 {
			if p := strings.TrimSuffix(zf.Name, "data.pkl"); prefix == "" || len(p) < len(prefix) {
				prefix = p
			}
		}
	}
	if prefix == "" {
		for name := range entries {
			if strings.HasSuffix(name, "constants.pkl") {
				return nil, fmt.Errorf("pth: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
			}
		}
		return nil, fmt.Errorf("pth: zip archive without ARCHIVE/data.pkl: not a torch.save checkpoint")
	}
	pkl, err := zipEntryBytes(raw, entries[prefix+"data.pkl"], 1<<28)
	if err != nil {
		return nil, fmt.Errorf("pth: %sdata.pkl: %w", prefix, err)
	}
	obj, err := unpickle(pkl)
	if err != nil {
		return nil, fmt.Errorf("pth: %sdata.pkl: %w", prefix, err)
	}
	sd, md, err := selectStateDict(obj)
	if err != nil {
		return nil, fmt.Errorf("pth: %sdata.pkl: %w", prefix, err)
	}
	f := &File{Tensors: map[string]*Tensor{}, Metadata: md}
	storages := map[string][]byte{}
	storageBytes := func(s *storageRef) ([]byte, error) {
		if b, ok := storages[s.key]; ok {
			return b, nil
		}
		name := prefix + "data/" + s.key
		zf := entries[name]
		if zf == nil {
			return nil, fmt.Errorf("storage record %s missing from the archive", name)
		}
		_, esz, err := torchStorageDType(s.typ)
		if err != nil {
			return nil, err
		}
		if s.numel > int64(len(raw))*1100/int64(esz) { // > any deflate ratio could give
			return nil, fmt.Errorf("storage %s claims %d elements, more than the archive can hold", name, s.numel)
		}
		b, err := zipEntryBytes(raw, zf, s.numel*int64(esz))
		if err != nil {
			return nil, fmt.Errorf("storage record %s: %w", name, err)
		}
		if int64(len(b)) < s.numel*int64(esz) {
			return nil, fmt.Errorf("storage record %s holds %d bytes, need %d (%d × %d-byte %s): truncated", name, len(b), s.numel*int64(esz), s.numel, esz, s.typ)
		}
		storages[s.key] = b
		return b, nil
	}
	for i, k := range sd.keys {
		name, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("pth: state_dict key %s is not a string", brief(k))
		}
		tr, ok := sd.vals[i].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("pth: state_dict entry %q is a %s, not a tensor", name, brief(sd.vals[i]))
		}
		t, err := materialize(tr, storageBytes, alias)
		if err != nil {
			return nil, fmt.Errorf("pth: tensor %q (storage %s): %w", name, tr.storage.key, err)
		}
		f.Tensors[name] = t
	}
	return f, nil
}

// zipEntryBytes returns an entry's content: a sub-slice of raw for stored
// entries (no copy), else the first limit decompressed bytes.
func zipEntryBytes(raw []byte, zf *zip.File, limit int64) ([]byte, error) {
	if zf == nil {
		return nil, fmt.Errorf("missing")
	}
	if zf.Method == zip.Store {
		off, err := zf.DataOffset()
		if err != nil {
			return nil, err
		}
		size := int64(zf.CompressedSize64)
		if zf.CompressedSize64 > uint64(len(raw)) || off < 0 || off+size > int64(len(raw)) {
			return nil, fmt.Errorf("entry at offset %d with %d bytes runs past the end of the %d-byte file (truncated)", off, size, len(raw))
		}
		b := raw[off : off+size : off+size]
		if crc32.ChecksumIEEE(b) != zf.CRC32 && zf.CRC32 != 0 {
			return nil, fmt.Errorf("CRC-32 mismatch at offset %d (corrupt)", off)
		}
		return b, nil
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, rc, limit); err != nil && err != io.EOF {
		return nil, err
	}
	return buf.Bytes(), nil
}

// selectStateDict finds the state_dict in an unpickled checkpoint and
// collects metadata from the top level.
func selectStateDict(obj any) (*pyDict, map[string]string, error) {
	top, ok := obj.(*pyDict)
	if !ok {
		if o, isObj := obj.(*pyObject); isObj {
			if g, ok := o.callable.(pyGlobal); ok {
				return nil, nil, fmt.Errorf("the checkpoint is a pickled %s.%s object, not a state_dict (save model.state_dict() instead)", g.module, g.name)
			}
		}
		return nil, nil, fmt.Errorf("the checkpoint is a %s, not a dict", brief(obj))
	}
	md := map[string]string{}
	var sd *pyDict
	chosen := ""
	for _, k := range stateDictKeys {
		if v, ok := top.get(k); ok {
			switch x := v.(type) {
			case *pyDict:
				sd, chosen = x, k
			case *pyObject:
				if g, ok := x.callable.(pyGlobal); ok {
					return nil, nil, fmt.Errorf("checkpoint[%q] is a pickled %s.%s object, not a state_dict (save model.state_dict() instead)", k, g.module, g.name)
				}
			}
			if sd != nil {
				break
			}
		}
	}
	if sd == nil {
		for _, v := range top.vals {
			if _, ok := v.(*tensorRef); ok {
				sd = top // a bare state_dict
				break
			}
		}
	}
	if sd == nil {
		keys := make([]string, 0, len(top.keys))
		for _, k := range top.keys {
			keys = append(keys, brief(k))
		}
		return nil, nil, fmt.Errorf("no state_dict found: top-level keys %s, want one of %v or tensors", strings.Join(keys, ", "), stateDictKeys)
	}
	if sd == top {
		return sd, md, nil
	}
	for i, k := range top.keys {
		ks, ok := k.(string)
		if !ok || ks == chosen {
			continue
		}
		switch v := top.vals[i].(type) {
		case string:
			md["pth."+ks] = v
		case int64:
			md["pth."+ks] = strconv.FormatInt(v, 10)
		case float64:
			md["pth."+ks] = strconv.FormatFloat(v, 'g', -1, 64)
		case bool:
			md["pth."+ks] = strconv.FormatBool(v)
		case *pyDict:
			if ks != MetadataKeyPth {
				continue
			}
			for j, mk := range v.keys {
				mks, ok1 := mk.(string)
				mvs, ok2 := v.vals[j].(string)
				if !ok1 || !ok2 {
					return nil, nil, fmt.Errorf("%s[%s] is not a str -> str item", MetadataKeyPth, brief(mk))
				}
				md[mks] = mvs
			}
		}
	}
	return sd, md, nil
}

// torchStorageDType maps a torch storage class to the on-disk dtype and
// element size.
func torchStorageDType(typ string) (string, int, error) {
	switch typ {
	case "FloatStorage":
		return "F32", 4, nil
	case "HalfStorage":
		return "F16", 2, nil
	case "BFloat16Storage":
		return "BF16", 2, nil
	case "LongStorage":
		return "I64", 8, nil
	case "IntStorage":
		return "I32", 4, nil
	case "ByteStorage":
		return "U8", 1, nil
	case "BoolStorage":
		return "BOOL", 1, nil
	}
	return "", 0, fmt.Errorf("unsupported torch storage type %s (supported: Float, Half, BFloat16, Long, Int, Byte, Bool)", typ)
}

// materialize builds the contiguous tensor described by a view of a
// storage: offset, sizes and strides in elements.
func materialize(tr *tensorRef, storageBytes func(*storageRef) ([]byte, error), alias bool) (*Tensor, error) {
	dt, esz, err := torchStorageDType(tr.storage.typ)
	if err != nil {
		return nil, err
	}
	sb, err := storageBytes(tr.storage)
	if err != nil {
		return nil, err
	}
	elems := int64(len(sb) / esz)
	if tr.storage.numel < elems {
		elems = tr.storage.numel
	}
	shape := make([]int, len(tr.size))
	numel := int64(1)
	for i, d := range tr.size {
		if d < 0 || tr.stride[i] < 0 {
			return nil, fmt.Errorf("negative size or stride (size %v, stride %v)", tr.size, tr.stride)
		}
		shape[i] = int(d)
		if d == 0 {
			numel = 0
		}
	}
	for _, d := range tr.size {
		if numel == 0 {
			break
		}
		if numel > elems/d {
			return nil, fmt.Errorf("view of size %v exceeds its storage of %d elements", tr.size, elems)
		}
		numel *= d
	}
	if numel == 0 {
		return decodeTensor(dt2mem(dt), shape, nil, false)
	}
	if numel > elems {
		return nil, fmt.Errorf("view of %d elements (size %v) exceeds its storage of %d elements", numel, tr.size, elems)
	}
	// Highest element index touched, with overflow-safe bounds.
	if tr.offset < 0 || tr.offset >= elems {
		return nil, fmt.Errorf("storage offset %d outside the storage of %d elements", tr.offset, elems)
	}
	last := tr.offset
	contiguous := true
	want := int64(1)
	for i := len(tr.size) - 1; i >= 0; i-- {
		d, s := tr.size[i], tr.stride[i]
		if d == 1 {
			continue
		}
		if s != want {
			contiguous = false
		}
		want *= d
		if s > (elems-1-last)/(d-1) {
			return nil, fmt.Errorf("view (offset %d, size %v, stride %v) reads past its storage of %d elements", tr.offset, tr.size, tr.stride, elems)
		}
		last += (d - 1) * s
	}
	var buf []byte
	if contiguous {
		buf = sb[tr.offset*int64(esz) : (tr.offset+numel)*int64(esz)]
	} else {
		// Non-contiguous view: gather into a fresh contiguous buffer.
		buf = make([]byte, numel*int64(esz))
		idx := make([]int64, len(tr.size))
		for n := int64(0); n < numel; n++ {
			src := tr.offset
			for i, x := range idx {
				src += x * tr.stride[i]
			}
			copy(buf[n*int64(esz):(n+1)*int64(esz)], sb[src*int64(esz):(src+1)*int64(esz)])
			for i := len(idx) - 1; i >= 0; i-- {
				idx[i]++
				if idx[i] < tr.size[i] {
					break
				}
				idx[i] = 0
			}
		}
		alias = true // buf is ours
	}
	switch dt {
	case "I32":
		t := &Tensor{DType: "I64", Shape: shape, Stored: "I32", I64: make([]int64, numel)}
		for i := range t.I64 {
			t.I64[i] = int64(int32(binary.LittleEndian.Uint32(buf[4*i:])))
		}
		return t, nil
	case "BOOL":
		t, err := decodeTensor("U8", shape, buf, alias)
		if t != nil {
			t.Stored = "BOOL"
		}
		return t, err
	}
	return decodeTensor(dt, shape, buf, alias)
}

// dt2mem maps an on-disk dtype to the in-memory one.
func dt2mem(dt string) string {
	switch dt {
	case "I32":
		return "I64"
	case "BOOL":
		return "U8"
	}
	return dt
}

// pickleWriter emits the protocol-2 opcodes used by torch.save.
type pickleWriter struct{ bytes.Buffer }

func (p *pickleWriter) str(s string) {
	p.WriteByte('X')
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	p.Write(n[:])
	p.WriteString(s)
}

func (p *pickleWriter) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.WriteByte('K')
		p.WriteByte(byte(v))
	case v >= 0 && v < 1<<16:
		p.WriteByte('M')
		p.WriteByte(byte(v))
		p.WriteByte(byte(v >> 8))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.WriteByte('J')
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(int32(v)))
		p.Write(n[:])
	default:
		p.WriteByte(0x8a)
		p.WriteByte(8)
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		p.Write(n[:])
	}
}

func (p *pickleWriter) global(module, name string) {
	p.WriteByte('c')
	p.WriteString(module + "\n" + name + "\n")
}

func (p *pickleWriter) intTuple(v []int64) {
	if len(v) > 3 {
		p.WriteByte('(')
	}
	for _, x := range v {
		p.int(x)
	}
	switch len(v) {
	case 0:
		p.WriteByte(')')
	case 1, 2, 3:
		p.WriteByte(0x84 + byte(len(v)))
	default:
		p.WriteByte('t')
	}
}

func (p *pickleWriter) orderedDict() {
	p.global("collections", "OrderedDict")
	p.WriteByte(')')
	p.WriteByte('R')
}

// tensor writes torch._utils._rebuild_tensor_v2(storage, 0, size, stride,
// False, OrderedDict()) for a contiguous tensor on storage key.
func (p *pickleWriter) tensor(storageType, key string, shape []int) {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.WriteByte('(')
	p.WriteByte('(')
	p.str("storage")
	p.global("torch", storageType)
	p.str(key)
	p.str("cpu")
	numel := int64(1)
	size := make([]int64, len(shape))
	stride := make([]int64, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		size[i] = int64(shape[i])
		stride[i] = numel
		numel *= int64(shape[i])
	}
	p.int(numel)
	p.WriteByte('t')
	p.WriteByte('Q')
	p.int(0)
	p.intTuple(size)
	p.intTuple(stride)
	p.WriteByte(0x89)
	p.orderedDict()
	p.WriteByte('t')
	p.WriteByte('R')
}

// EncodePth writes f as a torch.save zip archive loadable with torch.load:
// {"model": OrderedDict(name -> tensor), "netmamba_metadata": {str: str}}
// (the metadata entry only when f has metadata). Tensors are written in
// name order; with opt.Float F16/BF16 float tensors become Half/BFloat16.
func EncodePth(w io.Writer, f *File, opt WriteOptions) error {
	fdt, err := opt.floatDType()
	if err != nil {
		return err
	}
	names := f.Names()
	var p pickleWriter
	p.WriteString("\x80\x02}(")
	p.str("model")
	p.orderedDict()
	if len(names) > 0 {
		p.WriteByte('(')
		for i, name := range names {
			t := f.Tensors[name]
			if err := t.Validate(); err != nil {
				return fmt.Errorf("checkpoint: tensor %q: %w", name, err)
			}
			p.str(name)
			p.tensor(torchStorageName(t.DType, fdt), strconv.Itoa(i), t.Shape)
		}
		p.WriteByte('u')
	}
	if len(f.Metadata) > 0 {
		p.str(MetadataKeyPth)
		p.WriteString("}(")
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p.str(k)
			p.str(f.Metadata[k])
		}
		p.WriteByte('u')
	}
	p.WriteString("u.")

	zw := &torchZipWriter{zw: zip.NewWriter(w)}
	if err := zw.add("archive/data.pkl", p.Bytes()); err != nil {
		return err
	}
	if err := zw.add("archive/byteorder", []byte("little")); err != nil {
		return err
	}
	var buf bytes.Buffer
	for i, name := range names {
		t := f.Tensors[name]
		buf.Reset()
		dt := t.DType
		if dt == "F32" {
			dt = fdt
		}
		if err := writeTensorData(&buf, t, dt); err != nil {
			return fmt.Errorf("checkpoint: tensor %q: %w", name, err)
		}
		if err := zw.add("archive/data/"+strconv.Itoa(i), buf.Bytes()); err != nil {
			return err
		}
	}
	if err := zw.add("archive/version", []byte("3\n")); err != nil {
		return err
	}
	if err := zw.zw.Close(); err != nil {
		return fmt.Errorf("checkpoint: writing zip directory: %w", err)
	}
	return nil
}

// torchStorageName is the torch storage class of an in-memory dtype stored
// with float dtype fdt.
func torchStorageName(dt, fdt string) string {
	switch dt {
	case "I64":
		return "LongStorage"
	case "U8":
		return "ByteStorage"
	}
	switch fdt {
	case "F16":
		return "HalfStorage"
	case "BF16":
		return "BFloat16Storage"
	}
	return "FloatStorage"
}

// torchZipWriter writes stored (uncompressed) entries whose data start on
// a 64-byte boundary, padding the local header with an "FB" extra field as
// torch's PyTorchStreamWriter does.
type torchZipWriter struct {
	zw  *zip.Writer
	off int64
}

func (t *torchZipWriter) add(name string, data []byte) error {
	start := t.off + 30 + int64(len(name)) + 4
	pad := (64 - start%64) % 64
	extra := make([]byte, 4+pad)
	copy(extra, "FB")
	binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
	for i := 4; i < len(extra); i++ {
		extra[i] = 'Z'
	}
	w, err := t.zw.CreateRaw(&zip.FileHeader{
		Name:               name,
		Method:             zip.Store,
		CRC32:              crc32.ChecksumIEEE(data),
		CompressedSize64:   uint64(len(data)),
		UncompressedSize64: uint64(len(data)),
		Extra:              extra,
	})
	if err == nil {
		_, err = w.Write(data)
	}
	if err != nil {
		return fmt.Errorf("checkpoint: writing zip entry %s: %w", name, err)
	}
	t.off = start + pad + int64(len(data))
	return nil
}

// WritePth writes f as a torch.save checkpoint at path (atomically).
func WritePth(path string, f *File, opt WriteOptions) error {
	return writeAtomic(path, func(w io.Writer) error { return EncodePth(w, f, opt) })
}
