package flow

import (
	"encoding/binary"

	"github.com/netmamba/netmamba/capture"
)

// Reason says why a packet was not assigned to a flow (or, for
// ReasonSnapCut, why it was assigned with fewer bytes than it had on the wire).
type Reason uint8

// Skip reasons, reported by extract.Report.
const (
	OK                   Reason = iota
	ReasonUnknownLink           // link type the decoder does not handle
	ReasonNonIP                 // ARP, LLDP, STP, ... (no IPv4/IPv6 inside)
	ReasonTruncated             // frame ends inside a link, IP or L4 header
	ReasonBadIP                 // IP header with an impossible version/length
	ReasonOrphanFragment        // non-first IP fragment whose first fragment was not seen
	ReasonSnapCut               // counted, not skipped: captured bytes end before the IP total length
	ReasonFiltered              // excluded by the BPF filter
	numReasons
)

var reasonNames = [...]string{
	OK: "ok", ReasonUnknownLink: "unknown link type", ReasonNonIP: "non-IP",
	ReasonTruncated: "truncated header", ReasonBadIP: "bad IP header",
	ReasonOrphanFragment: "fragment without its first", ReasonSnapCut: "snaplen-cut",
	ReasonFiltered: "filtered out",
}

// String describes the reason.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown reason"
}

// NumReasons is the number of Reason values (for counter arrays).
const NumReasons = int(numReasons)

// Packet is a decoded packet: where its IP header, L4 header and payload
// are within the frame, and its flow-key fields. Decoding only records
// offsets; nothing is copied out of Frame.
type Packet struct {
	Frame      []byte // the captured frame, link header included
	L3Offset   int    // offset of the (innermost decoded) IP header within Frame
	IPVersion  uint8  // 4 or 6
	Proto      uint8  // transport protocol (after IPv6 extension headers)
	SrcIP      [16]byte
	DstIP      [16]byte
	SrcPort    uint16
	DstPort    uint16
	VLAN       uint16 // outermost VLAN ID, 0 if none
	IPHdrLen   int    // IPv4 header with options, or IPv6 header plus extension headers
	L4HdrLen   int    // TCP/UDP/ICMP/SCTP header bytes present (0 for non-first fragments and other protocols)
	IPTotalLen int    // datagram length per the IP header (captured length when the field is 0, as with TSO)
	TCPFlags   uint8
	// Fragments: Fragmented is set for any fragment; FragOffset is in bytes.
	Fragmented    bool
	MoreFragments bool
	FragOffset    int
	FragID        uint32
	SnapCut       bool // captured bytes end before IPTotalLen
}

// L3 is the frame from the IP header on (captured bytes).
func (p *Packet) L3() []byte { return p.Frame[p.L3Offset:] }

// L3End is the end of the datagram within L3(): IPTotalLen cut to the
// captured bytes. Bytes after it (Ethernet trailer) are not part of the datagram.
func (p *Packet) L3End() int {
	return min(p.IPTotalLen, len(p.Frame)-p.L3Offset)
}

// HeaderLen is IPHdrLen + L4HdrLen (the byte view's "header").
func (p *Packet) HeaderLen() int { return p.IPHdrLen + p.L4HdrLen }

// Payload is the L4 payload cut at the IP total length (the byte view's "payload").
func (p *Packet) Payload() []byte {
	l3 := p.L3()
	s, e := p.HeaderLen(), p.L3End()
	if s >= e {
		return nil
	}
	return l3[s:e]
}

// IsNonFirstFragment reports a fragment that carries no L4 header.
func (p *Packet) IsNonFirstFragment() bool { return p.Fragmented && p.FragOffset > 0 }

// Decode fills p from a frame of the given link type. It never allocates
// and never panics on malformed input; a non-OK Reason means p must be ignored
// (ReasonSnapCut is never returned; p.SnapCut carries it).
func Decode(link capture.LinkType, frame []byte, p *Packet) Reason {
	*p = Packet{Frame: frame}
	switch link {
	case capture.LinkEthernet:
		return decodeEther(frame, 0, p)
	case capture.LinkRaw, capture.LinkRawOld12, capture.LinkRawOld14, capture.LinkIPv4, capture.LinkIPv6:
		return decodeIP(frame, 0, p)
	case capture.LinkLinuxSLL:
		if len(frame) < 16 {
			return ReasonTruncated
		}
		return decodeEtherType(frame, 16, binary.BigEndian.Uint16(frame[14:]), p)
	case capture.LinkLinuxSLL2:
		if len(frame) < 20 {
			return ReasonTruncated
		}
		return decodeEtherType(frame, 20, binary.BigEndian.Uint16(frame[0:]), p)
	case capture.LinkNull, capture.LinkLoop:
		if len(frame) < 4 {
			return ReasonTruncated
		}
		fam := binary.LittleEndian.Uint32(frame)
		if link == capture.LinkLoop || fam > 0xffff {
			fam = binary.BigEndian.Uint32(frame)
		}
		switch fam {
		case 2:
			return decodeIP(frame, 4, p)
		case 10, 23, 24, 28, 30:
			return decodeIP(frame, 4, p)
		}
		return ReasonNonIP
	case capture.LinkPPP, capture.LinkPPPHDLC:
		return decodePPP(frame, 0, p)
	case capture.LinkPPPEther:
		if len(frame) < 6 {
			return ReasonTruncated
		}
		return decodePPP(frame, 6, p)
	case capture.LinkCiscoHDLC:
		if len(frame) < 4 {
			return ReasonTruncated
		}
		return decodeEtherType(frame, 4, binary.BigEndian.Uint16(frame[2:]), p)
	case capture.LinkPPI:
		if len(frame) < 8 {
			return ReasonTruncated
		}
		hl := int(binary.LittleEndian.Uint16(frame[2:]))
		inner := capture.LinkType(binary.LittleEndian.Uint32(frame[4:]))
		if hl < 8 || hl > len(frame) {
			return ReasonTruncated
		}
		if inner == capture.LinkPPI {
			return ReasonUnknownLink
		}
		r := Decode(inner, frame[hl:], p)
		p.Frame = frame
		p.L3Offset += hl
		return r
	}
	return ReasonUnknownLink
}

func decodeEther(b []byte, off int, p *Packet) Reason {
	if len(b) < off+14 {
		return ReasonTruncated
	}
	return decodeEtherType(b, off+14, binary.BigEndian.Uint16(b[off+12:]), p)
}

// decodeEtherType follows VLAN tags, MPLS labels and PPPoE to an IP header.
func decodeEtherType(b []byte, off int, et uint16, p *Packet) Reason {
	for range 16 { // bounded: at most 16 nested tags/labels
		switch et {
		case 0x0800, 0x86dd:
			return decodeIP(b, off, p)
		case 0x8100, 0x88a8, 0x9100, 0x9200:
			if len(b) < off+4 {
				return ReasonTruncated
			}
			if p.VLAN == 0 {
				p.VLAN = binary.BigEndian.Uint16(b[off:]) & 0x0fff
			}
			et = binary.BigEndian.Uint16(b[off+2:])
			off += 4
		case 0x8847, 0x8848: // MPLS unicast/multicast
			for {
				if len(b) < off+4 {
					return ReasonTruncated
				}
				bos := b[off+2]&1 != 0
				off += 4
				if bos {
					break
				}
			}
			if len(b) <= off {
				return ReasonTruncated
			}
			switch b[off] >> 4 {
			case 4, 6:
				return decodeIP(b, off, p)
			}
			return ReasonNonIP
		case 0x8864: // PPPoE session
			if len(b) < off+6 {
				return ReasonTruncated
			}
			return decodePPP(b, off+6, p)
		default:
			if et < 0x0600 { // 802.3 length field (LLC): not IP
				return ReasonNonIP
			}
			return ReasonNonIP
		}
	}
	return ReasonNonIP
}

// decodePPP reads a PPP header (optional HDLC ff 03, 1- or 2-byte protocol).
func decodePPP(b []byte, off int, p *Packet) Reason {
	if len(b) < off+2 {
		return ReasonTruncated
	}
	if b[off] == 0xff && b[off+1] == 0x03 {
		off += 2
		if len(b) < off+1 {
			return ReasonTruncated
		}
	}
	var proto uint16
	if b[off]&1 != 0 { // compressed 1-byte protocol field
		proto = uint16(b[off])
		off++
	} else {
		if len(b) < off+2 {
			return ReasonTruncated
		}
		proto = binary.BigEndian.Uint16(b[off:])
		off += 2
	}
	switch proto {
	case 0x21, 0x57:
		return decodeIP(b, off, p)
	}
	return ReasonNonIP
}

func decodeIP(b []byte, off int, p *Packet) Reason {
	if len(b) <= off {
		return ReasonTruncated
	}
	switch b[off] >> 4 {
	case 4:
		return decodeIPv4(b, off, p)
	case 6:
		return decodeIPv6(b, off, p)
	}
	return ReasonBadIP
}

func decodeIPv4(b []byte, off int, p *Packet) Reason {
	ip := b[off:]
	if len(ip) < 20 {
		return ReasonTruncated
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 {
		return ReasonBadIP
	}
	if len(ip) < ihl {
		return ReasonTruncated
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total == 0 { // TSO/GRO: length not filled in
		total = len(ip)
	}
	if total < ihl {
		return ReasonBadIP
	}
	p.L3Offset = off
	p.IPVersion = 4
	p.Proto = ip[9]
	copy(p.SrcIP[:4], ip[12:16])
	copy(p.DstIP[:4], ip[16:20])
	p.IPHdrLen = ihl
	p.IPTotalLen = total
	p.SnapCut = len(ip) < total
	ff := binary.BigEndian.Uint16(ip[6:])
	if ff&0x3fff != 0 {
		p.Fragmented = true
		p.MoreFragments = ff&0x2000 != 0
		p.FragOffset = int(ff&0x1fff) * 8
		p.FragID = uint32(binary.BigEndian.Uint16(ip[4:]))
		if p.FragOffset > 0 {
			return OK
		}
	}
	return decodeL4(ip, p)
}

func decodeIPv6(b []byte, off int, p *Packet) Reason {
	ip := b[off:]
	if len(ip) < 40 {
		return ReasonTruncated
	}
	p.L3Offset = off
	p.IPVersion = 6
	copy(p.SrcIP[:], ip[8:24])
	copy(p.DstIP[:], ip[24:40])
	plen := int(binary.BigEndian.Uint16(ip[4:]))
	total := 40 + plen
	if plen == 0 { // jumbogram or TSO
		total = len(ip)
	}
	p.IPTotalLen = total
	p.SnapCut = len(ip) < total
	next := ip[6]
	hl := 40
	for range 16 { // bounded extension-header chain
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, dest opts, mobility, HIP, shim6
			if len(ip) < hl+8 {
				return ReasonTruncated
			}
			next = ip[hl]
			hl += 8 + int(ip[hl+1])*8
		case 51: // AH
			if len(ip) < hl+8 {
				return ReasonTruncated
			}
			next = ip[hl]
			hl += (int(ip[hl+1]) + 2) * 4
		case 44: // fragment
			if len(ip) < hl+8 {
				return ReasonTruncated
			}
			fo := binary.BigEndian.Uint16(ip[hl+2:])
			p.Fragmented = true
			p.MoreFragments = fo&1 != 0
			p.FragOffset = int(fo &^ 7)
			p.FragID = binary.BigEndian.Uint32(ip[hl+4:])
			next = ip[hl]
			hl += 8
			if p.FragOffset > 0 {
				p.Proto = next
				p.IPHdrLen = min(hl, len(ip))
				return OK
			}
		default:
			p.Proto = next
			if hl > len(ip) {
				return ReasonTruncated
			}
			p.IPHdrLen = hl
			return decodeL4(ip, p)
		}
	}
	return ReasonBadIP
}

// decodeL4 reads ports and the L4 header length from ip[p.IPHdrLen:].
func decodeL4(ip []byte, p *Packet) Reason {
	l4 := ip[p.IPHdrLen:]
	switch p.Proto {
	case 6: // TCP
		if len(l4) < 14 {
			return ReasonTruncated
		}
		p.SrcPort = binary.BigEndian.Uint16(l4)
		p.DstPort = binary.BigEndian.Uint16(l4[2:])
		p.TCPFlags = l4[13]
		hl := int(l4[12]>>4) * 4
		p.L4HdrLen = min(max(hl, 20), len(l4))
	case 17, 136: // UDP, UDP-Lite
		if len(l4) < 4 {
			return ReasonTruncated
		}
		p.SrcPort = binary.BigEndian.Uint16(l4)
		p.DstPort = binary.BigEndian.Uint16(l4[2:])
		p.L4HdrLen = min(8, len(l4))
	case 132: // SCTP
		if len(l4) < 4 {
			return ReasonTruncated
		}
		p.SrcPort = binary.BigEndian.Uint16(l4)
		p.DstPort = binary.BigEndian.Uint16(l4[2:])
		p.L4HdrLen = min(12, len(l4))
	case 1, 58: // ICMP, ICMPv6: ports stay 0, flows keyed by addresses
		p.L4HdrLen = min(8, len(l4))
	}
	return OK
}
