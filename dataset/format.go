package dataset

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/netmamba/netmamba/repr"
)

// File layout (docs/dataset-format.md): a 128-byte header, Count fixed-size
// records of RecordSize bytes, a string table (capture paths) and a JSON
// metadata block (class map, settings, summary). All integers little endian.
const (
	// Magic opens every dataset file.
	Magic = "NMAMBADS"
	// Version is the format version this package writes and reads.
	Version = 1
	// HeaderSize is the size of the file header in bytes.
	HeaderSize = 128
	// RecordSize is the size of one encoded record in bytes.
	RecordSize = 1984
	// Ext is the recommended file extension.
	Ext = ".nmds"
)

// Byte offsets of the fields of an encoded record.
const (
	offBytes    = 0                                    // [1600]uint8 byte view
	offSizes    = offBytes + repr.ViewBytes            // [20]uint32 frame sizes
	offIATs     = offSizes + 4*repr.SeqLen             // [20]float64 inter-arrival times, s
	offStats    = offIATs + 8*repr.SeqLen              // 2×int64 + 6×uint64
	offSrcIP    = offStats + 64                        // [16]uint8
	offDstIP    = offSrcIP + 16                        // [16]uint8
	offSrcPort  = offDstIP + 16                        // uint16
	offDstPort  = offSrcPort + 2                       // uint16
	offVLAN     = offDstPort + 2                       // uint16
	offProto    = offVLAN + 2                          // uint8
	offIPVer    = offProto + 1                         // uint8
	offLabel    = offIPVer + 1                         // int32
	offSource   = offLabel + 4                         // uint32 index into the string table
	offDirs     = offSource + 4                        // [20]int8
	offNPackets = offDirs + repr.SeqLen                // uint8
	offWindow   = offNPackets + 1                      // uint16 sliding-window start packet (0: the flow's own view)
	recordUsed  = offWindow + 2                        // bytes used; the rest is zero padding
	_           = uint(RecordSize - recordUsed)        // compile-time check: record fits
	_           = uint(recordUsed - (RecordSize - 64)) // and the padding is under 64 bytes
)

// header is the decoded file header.
type header struct {
	version    uint32
	recordSize uint32
	count      uint64
	recordsOff uint64
	stringsOff uint64
	stringsLen uint64
	metaOff    uint64
	metaLen    uint64
	recordsCRC uint32
	stringsCRC uint32
	metaCRC    uint32
}

func (h *header) encode() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], h.version)
	le.PutUint32(b[12:], h.recordSize)
	le.PutUint64(b[16:], h.count)
	le.PutUint64(b[24:], h.recordsOff)
	le.PutUint64(b[32:], h.stringsOff)
	le.PutUint64(b[40:], h.stringsLen)
	le.PutUint64(b[48:], h.metaOff)
	le.PutUint64(b[56:], h.metaLen)
	le.PutUint32(b[64:], h.recordsCRC)
	le.PutUint32(b[68:], h.stringsCRC)
	le.PutUint32(b[72:], h.metaCRC)
	le.PutUint32(b[124:], crc32.ChecksumIEEE(b[:124]))
	return b
}

// decodeHeader checks magic, checksum, version and that every section lies
// inside a file of size bytes.
func decodeHeader(path string, b []byte, size int64, skipCRC bool) (*header, error) {
	if len(b) < HeaderSize {
		if len(b) >= len(Magic) && string(b[:len(Magic)]) != Magic {
			return nil, fmt.Errorf("dataset %s: not a netmamba dataset (bad magic at offset 0)", path)
		}
		return nil, fmt.Errorf("dataset %s: truncated: %d bytes, the header alone is %d", path, len(b), HeaderSize)
	}
	if string(b[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("dataset %s: not a netmamba dataset (bad magic %q at offset 0)", path, b[:len(Magic)])
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[124:]), crc32.ChecksumIEEE(b[:124]); got != want && !skipCRC {
		return nil, fmt.Errorf("dataset %s: corrupt header (checksum %08x at offset 124, computed %08x)", path, got, want)
	}
	h := &header{
		version:    le.Uint32(b[8:]),
		recordSize: le.Uint32(b[12:]),
		count:      le.Uint64(b[16:]),
		recordsOff: le.Uint64(b[24:]),
		stringsOff: le.Uint64(b[32:]),
		stringsLen: le.Uint64(b[40:]),
		metaOff:    le.Uint64(b[48:]),
		metaLen:    le.Uint64(b[56:]),
		recordsCRC: le.Uint32(b[64:]),
		stringsCRC: le.Uint32(b[68:]),
		metaCRC:    le.Uint32(b[72:]),
	}
	if h.version != Version {
		return nil, fmt.Errorf("dataset %s: format version %d at offset 8, this build reads version %d", path, h.version, Version)
	}
	if h.recordSize != RecordSize {
		return nil, fmt.Errorf("dataset %s: record size %d at offset 12, want %d", path, h.recordSize, RecordSize)
	}
	end := func(off, n uint64) uint64 {
		if off > math.MaxInt64 || n > math.MaxInt64-off {
			return math.MaxUint64
		}
		return off + n
	}
	if h.count > math.MaxInt64/RecordSize {
		return nil, fmt.Errorf("dataset %s: corrupt header: record count %d", path, h.count)
	}
	recEnd := end(h.recordsOff, h.count*RecordSize)
	strEnd := end(h.stringsOff, h.stringsLen)
	metaEnd := end(h.metaOff, h.metaLen)
	if h.recordsOff != HeaderSize || h.stringsOff != recEnd || h.metaOff != strEnd {
		return nil, fmt.Errorf("dataset %s: corrupt header: sections at %d, %d, %d are not contiguous", path, h.recordsOff, h.stringsOff, h.metaOff)
	}
	if metaEnd != uint64(size) {
		if metaEnd > uint64(size) {
			return nil, fmt.Errorf("dataset %s: truncated: file is %d bytes, header says %d (%d records)", path, size, metaEnd, h.count)
		}
		return nil, fmt.Errorf("dataset %s: %d unexpected bytes after offset %d", path, uint64(size)-metaEnd, metaEnd)
	}
	return h, nil
}

// encodeRecord writes r into b (len RecordSize), with source index src.
func encodeRecord(b []byte, r *Record, src uint32) {
	le := binary.LittleEndian
	clear(b)
	copy(b[offBytes:], r.View.Bytes[:])
	for i, s := range r.View.Sizes {
		le.PutUint32(b[offSizes+4*i:], s)
	}
	for i, t := range r.View.IATs {
		le.PutUint64(b[offIATs+8*i:], math.Float64bits(t))
	}
	st := &r.Stats
	for i, v := range [8]uint64{uint64(st.FirstSeenNs), uint64(st.LastSeenNs), st.Packets, st.Bytes,
		st.SrcPackets, st.SrcBytes, st.DstPackets, st.DstBytes} {
		le.PutUint64(b[offStats+8*i:], v)
	}
	copy(b[offSrcIP:], r.Key.SrcIP[:])
	copy(b[offDstIP:], r.Key.DstIP[:])
	le.PutUint16(b[offSrcPort:], r.Key.SrcPort)
	le.PutUint16(b[offDstPort:], r.Key.DstPort)
	le.PutUint16(b[offVLAN:], r.Key.VLAN)
	b[offProto] = r.Key.Proto
	b[offIPVer] = r.Key.IPVersion
	le.PutUint32(b[offLabel:], uint32(int32(r.Label)))
	le.PutUint32(b[offSource:], src)
	for i, d := range r.View.Dirs {
		b[offDirs+i] = byte(d)
	}
	n := r.View.NPackets
	if n < 0 {
		n = 0
	}
	if n > repr.SeqLen {
		n = repr.SeqLen
	}
	b[offNPackets] = byte(n)
	le.PutUint16(b[offWindow:], uint16(min(max(r.Window, 0), math.MaxUint16)))
}

// decodeRecord fills r from b, except Source (returned as an index).
func decodeRecord(b []byte, r *Record) (src uint32) {
	le := binary.LittleEndian
	copy(r.View.Bytes[:], b[offBytes:offBytes+repr.ViewBytes])
	for i := range r.View.Sizes {
		r.View.Sizes[i] = le.Uint32(b[offSizes+4*i:])
	}
	for i := range r.View.IATs {
		r.View.IATs[i] = math.Float64frombits(le.Uint64(b[offIATs+8*i:]))
	}
	var v [8]uint64
	for i := range v {
		v[i] = le.Uint64(b[offStats+8*i:])
	}
	r.Stats.FirstSeenNs, r.Stats.LastSeenNs = int64(v[0]), int64(v[1])
	r.Stats.Packets, r.Stats.Bytes = v[2], v[3]
	r.Stats.SrcPackets, r.Stats.SrcBytes, r.Stats.DstPackets, r.Stats.DstBytes = v[4], v[5], v[6], v[7]
	copy(r.Key.SrcIP[:], b[offSrcIP:offSrcIP+16])
	copy(r.Key.DstIP[:], b[offDstIP:offDstIP+16])
	r.Key.SrcPort = le.Uint16(b[offSrcPort:])
	r.Key.DstPort = le.Uint16(b[offDstPort:])
	r.Key.VLAN = le.Uint16(b[offVLAN:])
	r.Key.Proto = b[offProto]
	r.Key.IPVersion = b[offIPVer]
	r.Label = int(int32(le.Uint32(b[offLabel:])))
	for i := range r.View.Dirs {
		r.View.Dirs[i] = int8(b[offDirs+i])
	}
	r.View.NPackets = int(b[offNPackets])
	r.Window = int(le.Uint16(b[offWindow:]))
	return le.Uint32(b[offSource:])
}

// encodeStrings encodes the string table: uint32 count, then per string a
// uint32 length and the UTF-8 bytes.
func encodeStrings(ss []string) []byte {
	n := 4
	for _, s := range ss {
		n += 4 + len(s)
	}
	b := make([]byte, 4, n)
	binary.LittleEndian.PutUint32(b, uint32(len(ss)))
	for _, s := range ss {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeStrings(path string, b []byte, base uint64) ([]string, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("dataset %s: corrupt string table at offset %d: %d bytes", path, base, len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b))/4 {
		return nil, fmt.Errorf("dataset %s: corrupt string table at offset %d: %d strings in %d bytes", path, base, n, len(b))
	}
	ss := make([]string, 0, n)
	p := 4
	for i := uint32(0); i < n; i++ {
		if p+4 > len(b) {
			return nil, fmt.Errorf("dataset %s: corrupt string table: string %d at offset %d runs past the table", path, i, base+uint64(p))
		}
		l := int(binary.LittleEndian.Uint32(b[p:]))
		p += 4
		if l > len(b)-p {
			return nil, fmt.Errorf("dataset %s: corrupt string table: string %d at offset %d runs past the table", path, i, base+uint64(p))
		}
		ss = append(ss, string(b[p:p+l]))
		p += l
	}
	if p != len(b) {
		return nil, fmt.Errorf("dataset %s: corrupt string table: %d trailing bytes at offset %d", path, len(b)-p, base+uint64(p))
	}
	return ss, nil
}

// Writer appends records to a new dataset file. The file is written under a
// temporary name and renamed into place by Close, so a failed or interrupted
// run never leaves a file that looks complete.
type Writer struct {
	path    string
	tmp     string
	f       *os.File
	bw      *bufio.Writer
	meta    Meta
	buf     []byte
	crc     uint32
	count   uint64
	strings []string
	strIdx  map[string]uint32
	perCls  []uint64
	unlab   uint64
	windows uint64 // records with Window > 0
	closed  bool
}

// Create starts a dataset at path with the given metadata (class map,
// settings, summary). Records are appended with Append; Close finishes the file.
func Create(path string, meta Meta) (*Writer, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	w := &Writer{
		path: path, tmp: tmp, f: f, bw: bufio.NewWriterSize(f, 1<<20), meta: meta,
		buf: make([]byte, RecordSize), strIdx: map[string]uint32{},
		perCls: make([]uint64, len(meta.Classes)),
	}
	w.meta.Classes = append([]string(nil), meta.Classes...)
	if _, err := w.bw.Write(make([]byte, HeaderSize)); err != nil {
		w.abort()
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	return w, nil
}

// Meta returns the metadata that Close will write; callers may update it
// (for instance the summary) until Close.
func (w *Writer) Meta() *Meta { return &w.meta }

// Len returns the number of records appended so far.
func (w *Writer) Len() int { return int(w.count) }

// Append adds one record. Its Label must be -1 or a valid class index.
func (w *Writer) Append(r *Record) error {
	if w.closed {
		return fmt.Errorf("dataset %s: append after close", w.path)
	}
	if r.Label < -1 || r.Label >= len(w.meta.Classes) {
		return fmt.Errorf("dataset %s: record %d: label %d outside the %d classes", w.path, w.count, r.Label, len(w.meta.Classes))
	}
	idx, ok := w.strIdx[r.Source]
	if !ok {
		idx = uint32(len(w.strings))
		w.strings = append(w.strings, r.Source)
		w.strIdx[r.Source] = idx
	}
	encodeRecord(w.buf, r, idx)
	w.crc = crc32.Update(w.crc, crc32.IEEETable, w.buf)
	if _, err := w.bw.Write(w.buf); err != nil {
		return fmt.Errorf("dataset %s: record %d: %w", w.path, w.count, err)
	}
	w.count++
	if r.Window > 0 {
		w.windows++
	}
	if r.Label >= 0 {
		w.perCls[r.Label]++
	} else {
		w.unlab++
	}
	return nil
}

func (w *Writer) abort() {
	w.closed = true
	w.f.Close()
	os.Remove(w.tmp)
}

// Abort discards the dataset being written.
func (w *Writer) Abort() {
	if !w.closed {
		w.abort()
	}
}

// Close writes the string table, the metadata (with the summary's flow
// counts filled from the appended records) and the header, and renames the
// file into place.
func (w *Writer) Close() error {
	if w.closed {
		return fmt.Errorf("dataset %s: already closed", w.path)
	}
	fail := func(err error) error {
		w.abort()
		return fmt.Errorf("dataset %s: %w", w.path, err)
	}
	w.meta.Version = Version
	w.meta.Summary.Flows = w.count
	w.meta.Summary.FlowsPerClass = map[string]uint64{}
	for i, n := range w.perCls {
		w.meta.Summary.FlowsPerClass[w.meta.Classes[i]] = n
	}
	w.meta.Summary.Unlabelled = w.unlab
	w.meta.Summary.WindowedViews = w.windows
	w.meta.Representation = CurrentRepresentation()
	strs := encodeStrings(w.strings)
	meta, err := json.MarshalIndent(&w.meta, "", "  ")
	if err != nil {
		return fail(err)
	}
	h := header{
		version: Version, recordSize: RecordSize, count: w.count,
		recordsOff: HeaderSize, stringsOff: HeaderSize + w.count*RecordSize, stringsLen: uint64(len(strs)),
		recordsCRC: w.crc, stringsCRC: crc32.ChecksumIEEE(strs), metaCRC: crc32.ChecksumIEEE(meta),
	}
	h.metaOff = h.stringsOff + h.stringsLen
	h.metaLen = uint64(len(meta))
	if _, err := w.bw.Write(strs); err != nil {
		return fail(err)
	}
	if _, err := w.bw.Write(meta); err != nil {
		return fail(err)
	}
	if err := w.bw.Flush(); err != nil {
		return fail(err)
	}
	if _, err := w.f.WriteAt(h.encode(), 0); err != nil {
		return fail(err)
	}
	if err := w.f.Close(); err != nil {
		w.closed = true
		os.Remove(w.tmp)
		return fmt.Errorf("dataset %s: %w", w.path, err)
	}
	w.closed = true
	if err := os.Rename(w.tmp, w.path); err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("dataset %s: %w", w.path, err)
	}
	return nil
}

// Dataset is an open dataset file, memory-mapped where the platform allows.
// Its methods are safe for concurrent use until Close.
type Dataset struct {
	path    string
	data    []byte
	release func() error
	h       *header
	meta    Meta
	sources []string
	records []byte
}

// Open opens and checks a dataset: magic, version, header checksum, section
// bounds, string-table and metadata checksums. Record contents are checked
// by Verify.
func Open(path string) (*Dataset, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	d, err := openBytes(path, data, false)
	if err != nil {
		release()
		return nil, err
	}
	d.release = release
	return d, nil
}

// openBytes parses a dataset held in data; skipCRC (for fuzzing) ignores
// the checksums so that the structural checks behind them are exercised.
func openBytes(path string, data []byte, skipCRC bool) (*Dataset, error) {
	h, err := decodeHeader(path, data, int64(len(data)), skipCRC)
	if err != nil {
		return nil, err
	}
	strs := data[h.stringsOff : h.stringsOff+h.stringsLen]
	if crc32.ChecksumIEEE(strs) != h.stringsCRC && !skipCRC {
		return nil, fmt.Errorf("dataset %s: corrupt string table at offset %d (checksum mismatch)", path, h.stringsOff)
	}
	meta := data[h.metaOff : h.metaOff+h.metaLen]
	if crc32.ChecksumIEEE(meta) != h.metaCRC && !skipCRC {
		return nil, fmt.Errorf("dataset %s: corrupt metadata at offset %d (checksum mismatch)", path, h.metaOff)
	}
	d := &Dataset{path: path, data: data, h: h, records: data[h.recordsOff:h.stringsOff]}
	if d.sources, err = decodeStrings(path, strs, h.stringsOff); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(meta, &d.meta); err != nil {
		return nil, fmt.Errorf("dataset %s: metadata at offset %d: %w", path, h.metaOff, err)
	}
	return d, nil
}

// Close releases the file mapping. Slices returned by ViewBytes become invalid.
func (d *Dataset) Close() error {
	if d.release == nil {
		return nil
	}
	err := d.release()
	d.release, d.data, d.records = nil, nil, nil
	return err
}

// Path returns the file the dataset was opened from.
func (d *Dataset) Path() string { return d.path }

// Len returns the number of records.
func (d *Dataset) Len() int { return int(d.h.count) }

// Classes returns the class map: Classes()[label] is the class name.
func (d *Dataset) Classes() []string { return append([]string(nil), d.meta.Classes...) }

// Meta returns a copy of the dataset's metadata.
func (d *Dataset) Meta() Meta {
	m := d.meta
	m.Classes = append([]string(nil), m.Classes...)
	return m
}

// Sources returns the distinct capture paths, in order of first appearance.
func (d *Dataset) Sources() []string { return append([]string(nil), d.sources...) }

func (d *Dataset) raw(i int) []byte {
	if i < 0 || i >= int(d.h.count) {
		panic(fmt.Sprintf("dataset %s: record %d out of range [0, %d)", d.path, i, d.h.count))
	}
	return d.records[i*RecordSize : (i+1)*RecordSize]
}

// ViewBytes returns record i's 1600-byte view without copying (it aliases
// the mapping; do not modify it). It panics if i is out of range.
func (d *Dataset) ViewBytes(i int) []byte {
	return d.raw(i)[offBytes : offBytes+repr.ViewBytes : offBytes+repr.ViewBytes]
}

// Label returns record i's class index (-1 when unlabelled).
func (d *Dataset) Label(i int) int {
	return int(int32(binary.LittleEndian.Uint32(d.raw(i)[offLabel:])))
}

// Source returns record i's capture path.
func (d *Dataset) Source(i int) string {
	s := binary.LittleEndian.Uint32(d.raw(i)[offSource:])
	if int(s) < len(d.sources) {
		return d.sources[s]
	}
	return ""
}

// FirstSeenNs returns record i's first-packet timestamp.
func (d *Dataset) FirstSeenNs(i int) int64 {
	return int64(binary.LittleEndian.Uint64(d.raw(i)[offStats:]))
}

// ReadRecord decodes record i into r without allocating. It returns an
// error if the record's label or source index is out of range (corruption).
func (d *Dataset) ReadRecord(i int, r *Record) error {
	s := decodeRecord(d.raw(i), r)
	if int(s) >= len(d.sources) {
		return fmt.Errorf("dataset %s: record %d at offset %d: source index %d, only %d sources", d.path, i, HeaderSize+i*RecordSize, s, len(d.sources))
	}
	r.Source = d.sources[s]
	if r.Label < -1 || r.Label >= len(d.meta.Classes) {
		return fmt.Errorf("dataset %s: record %d at offset %d: label %d outside the %d classes", d.path, i, HeaderSize+i*RecordSize, r.Label, len(d.meta.Classes))
	}
	return nil
}

// Record decodes record i. It panics if i is out of range; a corrupt
// record's error is returned.
func (d *Dataset) Record(i int) (*Record, error) {
	r := new(Record)
	if err := d.ReadRecord(i, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ErrChecksum is wrapped by Verify when the records do not match the header's checksum.
var ErrChecksum = errors.New("records checksum mismatch")

// Verify reads every record: checksum, labels and source indices.
func (d *Dataset) Verify() error {
	if crc32.ChecksumIEEE(d.records) != d.h.recordsCRC {
		return fmt.Errorf("dataset %s: records at offset %d: %w", d.path, HeaderSize, ErrChecksum)
	}
	var r Record
	for i := 0; i < d.Len(); i++ {
		if err := d.ReadRecord(i, &r); err != nil {
			return err
		}
	}
	return nil
}

// readAll is the portable fallback for mapFile.
func readAll(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
