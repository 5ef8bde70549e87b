package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PcapWriterOptions configure a classic pcap writer.
type PcapWriterOptions struct {
	LinkType    LinkType
	Snaplen     uint32 // 0 means 262144
	Nanoseconds bool   // write the nanosecond magic (a1b23c4d) and ns timestamps
	BigEndian   bool   // write big-endian headers (default little-endian)
}

// PcapWriter writes a classic pcap file.
type PcapWriter struct {
	w     io.Writer
	order binary.ByteOrder
	nanos bool
	hdr   [16]byte
}

// NewPcapWriter writes the 24-byte file header and returns the writer.
func NewPcapWriter(w io.Writer, o PcapWriterOptions) (*PcapWriter, error) {
	pw := &PcapWriter{w: w, order: binary.LittleEndian, nanos: o.Nanoseconds}
	if o.BigEndian {
		pw.order = binary.BigEndian
	}
	snap := o.Snaplen
	if snap == 0 {
		snap = 262144
	}
	var h [24]byte
	magic := uint32(magicMicros)
	if o.Nanoseconds {
		magic = magicNanos
	}
	pw.order.PutUint32(h[0:], magic)
	pw.order.PutUint16(h[4:], 2)
	pw.order.PutUint16(h[6:], 4)
	pw.order.PutUint32(h[16:], snap)
	pw.order.PutUint32(h[20:], uint32(o.LinkType))
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap writer: file header: %w", err)
	}
	return pw, nil
}

// WritePacket appends one record. origLen < len(data) is raised to len(data).
func (pw *PcapWriter) WritePacket(tsNs int64, data []byte, origLen int) error {
	if len(data) > MaxRecordBytes {
		return fmt.Errorf("pcap writer: packet of %d bytes exceeds %d", len(data), MaxRecordBytes)
	}
	origLen = max(origLen, len(data))
	sec, frac := tsNs/1e9, tsNs%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	if !pw.nanos {
		frac /= 1e3
	}
	pw.order.PutUint32(pw.hdr[0:], uint32(sec))
	pw.order.PutUint32(pw.hdr[4:], uint32(frac))
	pw.order.PutUint32(pw.hdr[8:], uint32(len(data)))
	pw.order.PutUint32(pw.hdr[12:], uint32(origLen))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return fmt.Errorf("pcap writer: record header: %w", err)
	}
	if _, err := pw.w.Write(data); err != nil {
		return fmt.Errorf("pcap writer: record data: %w", err)
	}
	return nil
}

// PcapNGWriter writes a pcapng file with one section and any number of
// interfaces. Timestamps are written with nanosecond resolution
// (if_tsresol = 9) unless an interface asks for microseconds.
type PcapNGWriter struct {
	w      io.Writer
	order  binary.ByteOrder
	ifaces []bool // true: ns resolution
	buf    []byte
}

// NewPcapNGWriter writes a section header block.
func NewPcapNGWriter(w io.Writer, bigEndian bool) (*PcapNGWriter, error) {
	nw := &PcapNGWriter{w: w, order: binary.LittleEndian}
	if bigEndian {
		nw.order = binary.BigEndian
	}
	b := make([]byte, 28)
	nw.order.PutUint32(b[0:], blockSHB)
	nw.order.PutUint32(b[4:], 28)
	nw.order.PutUint32(b[8:], ngByteOrderMagic)
	nw.order.PutUint16(b[12:], 1)
	nw.order.PutUint16(b[14:], 0)
	nw.order.PutUint64(b[16:], ^uint64(0)) // section length unknown
	nw.order.PutUint32(b[24:], 28)
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("pcapng writer: section header: %w", err)
	}
	return nw, nil
}

// AddInterface writes an interface description block and returns its index.
// nanoseconds selects if_tsresol 9 (else the default microseconds).
func (nw *PcapNGWriter) AddInterface(link LinkType, snaplen uint32, nanoseconds bool) (int, error) {
	n := 20
	if nanoseconds {
		n += 8 + 4 // if_tsresol option (4+1 padded to 8) and opt_endofopt
	}
	b := make([]byte, n)
	nw.order.PutUint32(b[0:], blockIDB)
	nw.order.PutUint32(b[4:], uint32(n))
	nw.order.PutUint16(b[8:], uint16(link))
	nw.order.PutUint32(b[12:], snaplen)
	if nanoseconds {
		nw.order.PutUint16(b[16:], 9)
		nw.order.PutUint16(b[18:], 1)
		b[20] = 9
		// b[24:28] opt_endofopt = 0
	}
	nw.order.PutUint32(b[n-4:], uint32(n))
	if _, err := nw.w.Write(b); err != nil {
		return 0, fmt.Errorf("pcapng writer: interface block: %w", err)
	}
	nw.ifaces = append(nw.ifaces, nanoseconds)
	return len(nw.ifaces) - 1, nil
}

// WritePacket writes an enhanced packet block on interface iface.
func (nw *PcapNGWriter) WritePacket(iface int, tsNs int64, data []byte, origLen int) error {
	if iface < 0 || iface >= len(nw.ifaces) {
		return errors.New("pcapng writer: packet on an undefined interface")
	}
	if len(data) > MaxRecordBytes-64 {
		return fmt.Errorf("pcapng writer: packet of %d bytes exceeds %d", len(data), MaxRecordBytes-64)
	}
	origLen = max(origLen, len(data))
	ts := uint64(tsNs)
	if !nw.ifaces[iface] {
		ts = uint64(tsNs / 1e3)
	}
	pad := (4 - len(data)%4) % 4
	n := 32 + len(data) + pad
	if cap(nw.buf) < n {
		nw.buf = make([]byte, n)
	}
	b := nw.buf[:n]
	nw.order.PutUint32(b[0:], blockEPB)
	nw.order.PutUint32(b[4:], uint32(n))
	nw.order.PutUint32(b[8:], uint32(iface))
	nw.order.PutUint32(b[12:], uint32(ts>>32))
	nw.order.PutUint32(b[16:], uint32(ts))
	nw.order.PutUint32(b[20:], uint32(len(data)))
	nw.order.PutUint32(b[24:], uint32(origLen))
	copy(b[28:], data)
	clear(b[28+len(data) : 28+len(data)+pad])
	nw.order.PutUint32(b[n-4:], uint32(n))
	if _, err := nw.w.Write(b); err != nil {
		return fmt.Errorf("pcapng writer: packet block: %w", err)
	}
	return nil
}
