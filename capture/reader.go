package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
)

// Format is a capture file format.
type Format uint8

// Capture file formats.
const (
	FormatPcap   Format = iota + 1 // classic libpcap
	FormatPcapNG                   // pcapng
)

// String names the format.
func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapNG:
		return "pcapng"
	}
	return "unknown"
}

// Limits that keep a corrupt length field from allocating unbounded memory.
const (
	MaxRecordBytes = 16 << 20 // largest pcap record or pcapng block accepted
	initialBuffer  = 64 << 10
)

const (
	magicMicros      = 0xa1b2c3d4
	magicNanos       = 0xa1b23c4d
	magicNG          = 0x0a0d0d0a
	ngByteOrderMagic = 0x1a2b3c4d
	gzipMagic0       = 0x1f
	gzipMagic1       = 0x8b
)

// iface is one pcapng interface (or the single pcap "interface").
type iface struct {
	link    LinkType
	snaplen uint32
	// timestamp units per second (1e6 by default) and offset in seconds
	unitsPerSec uint64
	nsPerUnit   int64 // 1e9/unitsPerSec when exact, else 0
	offsetSec   int64
}

// Reader reads packets from a pcap or pcapng stream. It is not safe for
// concurrent use; run one Reader per goroutine.
type Reader struct {
	name   string
	src    io.Reader // nil once everything is in buf
	closer io.Closer
	buf    []byte
	pos    int   // next unread byte in buf
	end    int   // end of valid data in buf
	base   int64 // file offset of buf[0]

	format    Format
	bigEndian bool
	nanos     bool // pcap only
	ifaces    []iface
	// Counts
	packets uint64
}

// NewBytesReader reads a capture held in memory. Packets alias data (no
// copy). A gzip-compressed capture is decompressed into a new buffer first.
func NewBytesReader(data []byte, name string) (*Reader, error) {
	if len(data) >= 2 && data[0] == gzipMagic0 && data[1] == gzipMagic1 {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, &Error{File: name, Offset: 0, Msg: "gzip header", Err: err}
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			return nil, &Error{File: name, Offset: int64(len(plain)), Msg: "gzip stream", Err: err}
		}
		data = plain
	}
	r := &Reader{name: name, buf: data, end: len(data)}
	if err := r.readFileHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

// NewReader reads a capture from a stream (gzip detected by its magic).
// Memory use is bounded by the largest record (≤ MaxRecordBytes), not the
// file size.
func NewReader(src io.Reader, name string) (*Reader, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	magic, _ := br.Peek(2)
	var in io.Reader = br
	if len(magic) == 2 && magic[0] == gzipMagic0 && magic[1] == gzipMagic1 {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &Error{File: name, Offset: 0, Msg: "gzip header", Err: err}
		}
		in = zr
	}
	r := &Reader{name: name, src: in, buf: make([]byte, initialBuffer)}
	if err := r.readFileHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

// Open opens a capture file for streaming reads; Close releases it.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// Close closes the underlying file when the reader was made by Open.
func (r *Reader) Close() error {
	if r.closer != nil {
		err := r.closer.Close()
		r.closer = nil
		return err
	}
	return nil
}

// Name is the file name used in errors.
func (r *Reader) Name() string { return r.name }

// Format is the file's format.
func (r *Reader) Format() Format { return r.format }

// Packets is the number of packets returned so far.
func (r *Reader) Packets() uint64 { return r.packets }

// LinkType is the link type of a pcap file, or of the first interface of a
// pcapng file seen so far (0 if none yet).
func (r *Reader) LinkType() LinkType {
	if len(r.ifaces) == 0 {
		return 0
	}
	return r.ifaces[0].link
}

// errAt builds an *Error at the given buffer position.
func (r *Reader) errAt(pos int, err error, format string, args ...any) error {
	return &Error{File: r.name, Offset: r.base + int64(pos), Msg: fmt.Sprintf(format, args...), Err: err}
}

// fill makes at least n bytes available at buf[pos:]. It returns false when
// the stream ends first; a non-nil error is an I/O error.
func (r *Reader) fill(n int) (bool, error) {
	if r.end-r.pos >= n {
		return true, nil
	}
	if r.src == nil {
		return false, nil
	}
	// Compact, then grow if needed.
	if r.pos > 0 {
		copy(r.buf, r.buf[r.pos:r.end])
		r.end -= r.pos
		r.base += int64(r.pos)
		r.pos = 0
	}
	for r.end < n {
		if r.end == len(r.buf) {
			// Grow with the data actually read, so a corrupt length field
			// costs no more memory than the bytes that really follow.
			nb := make([]byte, min(n, max(2*len(r.buf), 4096)))
			copy(nb, r.buf[:r.end])
			r.buf = nb
		}
		m, err := r.src.Read(r.buf[r.end:])
		r.end += m
		if err == io.EOF {
			r.src = nil
			return r.end >= n, nil
		}
		if err != nil {
			return false, r.errAt(r.end, err, "read")
		}
	}
	return true, nil
}

func (r *Reader) u16(b []byte) uint16 {
	if r.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *Reader) readFileHeader() error {
	ok, err := r.fill(4)
	if err != nil {
		return err
	}
	if !ok {
		if r.end == 0 {
			return r.errAt(0, ErrFormat, "empty file")
		}
		return r.errAt(0, ErrFormat, "file too short for a magic number (%d bytes)", r.end)
	}
	le := binary.LittleEndian.Uint32(r.buf[r.pos:])
	be := binary.BigEndian.Uint32(r.buf[r.pos:])
	switch {
	case le == magicMicros || le == magicNanos:
		r.format, r.bigEndian, r.nanos = FormatPcap, false, le == magicNanos
	case be == magicMicros || be == magicNanos:
		r.format, r.bigEndian, r.nanos = FormatPcap, true, be == magicNanos
	case le == magicNG:
		r.format = FormatPcapNG
		return nil // the SHB is read by Next like any block
	default:
		return r.errAt(0, ErrFormat, "unknown magic %08x", be)
	}
	ok, err = r.fill(24)
	if err != nil {
		return err
	}
	if !ok {
		return r.errAt(0, ErrTruncated, "pcap file header needs 24 bytes, have %d", r.end-r.pos)
	}
	h := r.buf[r.pos : r.pos+24]
	snap := r.u32(h[16:])
	link := LinkType(r.u32(h[20:]) & 0xffff) // upper bits: FCS length flags
	ups := uint64(1_000_000)
	if r.nanos {
		ups = 1_000_000_000
	}
	r.ifaces = append(r.ifaces[:0], makeIface(link, snap, ups, 0))
	r.pos += 24
	return nil
}

func makeIface(link LinkType, snap uint32, unitsPerSec uint64, offsetSec int64) iface {
	f := iface{link: link, snaplen: snap, unitsPerSec: unitsPerSec, offsetSec: offsetSec}
	if unitsPerSec > 0 && unitsPerSec <= 1e9 && 1e9%unitsPerSec == 0 {
		f.nsPerUnit = int64(1e9 / unitsPerSec)
	}
	return f
}

// toNs converts a timestamp in interface units to ns since the epoch.
func (f *iface) toNs(ts uint64) int64 {
	if f.nsPerUnit != 0 {
		return int64(ts)*f.nsPerUnit + f.offsetSec*1e9
	}
	sec := ts / f.unitsPerSec
	rem := ts % f.unitsPerSec
	hi, lo := bits.Mul64(rem, 1e9)
	frac, _ := bits.Div64(hi, lo, f.unitsPerSec)
	return int64(sec)*1e9 + int64(frac) + f.offsetSec*1e9
}

// Next reads the next packet into p. It returns io.EOF at the clean end of
// the file and an *Error otherwise. p.Data is valid until the next call.
func (r *Reader) Next(p *Packet) error {
	if r.format == FormatPcap {
		return r.nextPcap(p)
	}
	return r.nextNG(p)
}

func (r *Reader) nextPcap(p *Packet) error {
	if r.end-r.pos < 16 {
		ok, err := r.fill(16)
		if err != nil {
			return err
		}
		if !ok {
			if r.pos == r.end {
				return io.EOF
			}
			return r.errAt(r.pos, ErrTruncated, "record header needs 16 bytes, have %d", r.end-r.pos)
		}
	}
	h := r.buf[r.pos : r.pos+16]
	sec, frac := r.u32(h[0:]), r.u32(h[4:])
	incl, orig := r.u32(h[8:]), r.u32(h[12:])
	if incl > MaxRecordBytes {
		return r.errAt(r.pos, ErrCorrupt, "captured length %d exceeds %d", incl, MaxRecordBytes)
	}
	n := 16 + int(incl)
	if r.end-r.pos < n {
		ok, err := r.fill(n)
		if err != nil {
			return err
		}
		if !ok {
			return r.errAt(r.pos, ErrTruncated, "record of %d bytes, %d left in file", n, r.end-r.pos)
		}
	}
	f := &r.ifaces[0]
	p.Data = r.buf[r.pos+16 : r.pos+n : r.pos+n]
	if r.nanos {
		p.TimestampNs = int64(sec)*1e9 + int64(frac)
	} else {
		p.TimestampNs = int64(sec)*1e9 + int64(frac)*1e3
	}
	p.OrigLen = int(orig)
	p.LinkType = f.link
	p.Interface = 0
	p.Offset = r.base + int64(r.pos)
	r.pos += n
	r.packets++
	return nil
}

// pcapng block types
const (
	blockSHB       = 0x0a0d0d0a
	blockIDB       = 1
	blockPacketOld = 2
	blockSPB       = 3
	blockEPB       = 6
)

func (r *Reader) nextNG(p *Packet) error {
	for {
		if r.end-r.pos < 12 {
			ok, err := r.fill(12)
			if err != nil {
				return err
			}
			if !ok {
				if r.pos == r.end {
					return io.EOF
				}
				return r.errAt(r.pos, ErrTruncated, "block header needs 12 bytes, have %d", r.end-r.pos)
			}
		}
		start := r.pos
		btype := r.u32(r.buf[start:])
		if btype == blockSHB {
			// The byte order is set by each section header.
			bom := r.buf[start+8 : start+12]
			switch {
			case binary.LittleEndian.Uint32(bom) == ngByteOrderMagic:
				r.bigEndian = false
			case binary.BigEndian.Uint32(bom) == ngByteOrderMagic:
				r.bigEndian = true
			default:
				return r.errAt(start, ErrCorrupt, "section header byte-order magic %x", bom)
			}
			r.ifaces = r.ifaces[:0]
		} else if len(r.ifaces) == 0 && r.packets == 0 && start == 0 && r.base == 0 {
			return r.errAt(start, ErrFormat, "pcapng file does not start with a section header")
		}
		blen := r.u32(r.buf[start+4:])
		if blen < 12 || blen%4 != 0 || blen > MaxRecordBytes {
			return r.errAt(start, ErrCorrupt, "block type %#x has length %d", btype, blen)
		}
		n := int(blen)
		if r.end-r.pos < n {
			ok, err := r.fill(n)
			if err != nil {
				return err
			}
			if !ok {
				return r.errAt(r.pos, ErrTruncated, "block type %#x of %d bytes, %d left in file", btype, n, r.end-r.pos)
			}
			start = r.pos
		}
		b := r.buf[start : start+n : start+n]
		if tail := r.u32(b[n-4:]); tail != blen {
			return r.errAt(start, ErrCorrupt, "block type %#x: trailing length %d != %d", btype, tail, blen)
		}
		body := b[8 : n-4]
		r.pos = start + n
		switch btype {
		case blockEPB:
			if len(body) < 20 {
				return r.errAt(start, ErrCorrupt, "enhanced packet block body of %d bytes", len(body))
			}
			return r.packetBlock(p, body, start, r.u32(body))
		case blockSPB:
			if len(body) < 4 {
				return r.errAt(start, ErrCorrupt, "simple packet block body of %d bytes", len(body))
			}
			if len(r.ifaces) == 0 {
				return r.errAt(start, ErrCorrupt, "simple packet block before any interface")
			}
			f := &r.ifaces[0]
			orig := r.u32(body)
			capl := uint32(len(body) - 4)
			if orig < capl {
				capl = orig
			}
			if f.snaplen != 0 && f.snaplen < capl {
				capl = f.snaplen
			}
			p.Data = body[4 : 4+capl : 4+capl]
			p.TimestampNs = 0
			p.OrigLen = int(orig)
			p.LinkType = f.link
			p.Interface = 0
			p.Offset = r.base + int64(start)
			r.packets++
			return nil
		case blockPacketOld:
			if len(body) < 20 {
				return r.errAt(start, ErrCorrupt, "packet block body of %d bytes", len(body))
			}
			return r.packetBlock(p, body, start, uint32(r.u16(body)))
		case blockIDB:
			if len(body) < 8 {
				return r.errAt(start, ErrCorrupt, "interface block body of %d bytes", len(body))
			}
			f, err := r.parseIDB(body, start)
			if err != nil {
				return err
			}
			r.ifaces = append(r.ifaces, f)
		case blockSHB:
			if len(body) < 16 {
				return r.errAt(start, ErrCorrupt, "section header body of %d bytes", len(body))
			}
		default:
			// Name resolution, statistics, decryption secrets, custom
			// blocks: not needed for packets.
		}
	}
}

func (r *Reader) parseIDB(body []byte, start int) (iface, error) {
	link := LinkType(r.u16(body))
	snap := r.u32(body[4:])
	ups := uint64(1_000_000)
	var off int64
	opts := body[8:]
	for len(opts) >= 4 {
		code, l := r.u16(opts), int(r.u16(opts[2:]))
		if code == 0 {
			break
		}
		if 4+l > len(opts) {
			return iface{}, r.errAt(start, ErrCorrupt, "interface option %d of %d bytes overruns block", code, l)
		}
		v := opts[4 : 4+l]
		switch code {
		case 9: // if_tsresol
			if l >= 1 {
				res := v[0]
				e := uint(res & 0x7f)
				if res&0x80 != 0 {
					if e > 63 {
						return iface{}, r.errAt(start, ErrCorrupt, "if_tsresol 2^-%d", e)
					}
					ups = 1 << e
				} else {
					if e > 19 {
						return iface{}, r.errAt(start, ErrCorrupt, "if_tsresol 10^-%d", e)
					}
					ups = 1
					for range e {
						ups *= 10
					}
				}
				if ups == 0 {
					ups = 1
				}
			}
		case 14: // if_tsoffset
			if l >= 8 {
				if r.bigEndian {
					off = int64(binary.BigEndian.Uint64(v))
				} else {
					off = int64(binary.LittleEndian.Uint64(v))
				}
			}
		}
		adv := 4 + (l+3)&^3
		if adv > len(opts) {
			break
		}
		opts = opts[adv:]
	}
	return makeIface(link, snap, ups, off), nil
}

// IsTruncated reports whether err says the file ends inside a record (the
// packets before it were good).
func IsTruncated(err error) bool { return errors.Is(err, ErrTruncated) }

// packetBlock fills p from the body (at least 20 bytes) of an enhanced or
// obsolete packet block at start on interface id: timestamp at body[4:12],
// captured and original lengths at body[12:20], data from body[20:].
func (r *Reader) packetBlock(p *Packet, body []byte, start int, id uint32) error {
	if int(id) >= len(r.ifaces) {
		return r.errAt(start, ErrCorrupt, "packet on interface %d, only %d defined", id, len(r.ifaces))
	}
	ts := uint64(r.u32(body[4:]))<<32 | uint64(r.u32(body[8:]))
	capl, orig := r.u32(body[12:]), r.u32(body[16:])
	if uint64(capl) > uint64(len(body)-20) {
		return r.errAt(start, ErrCorrupt, "captured length %d exceeds block (%d)", capl, len(body)-20)
	}
	f := &r.ifaces[id]
	p.Data = body[20 : 20+capl : 20+capl]
	p.TimestampNs = f.toNs(ts)
	p.OrigLen = int(orig)
	p.LinkType = f.link
	p.Interface = int(id)
	p.Offset = r.base + int64(start)
	r.packets++
	return nil
}
