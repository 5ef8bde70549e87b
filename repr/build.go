package repr

import (
	"encoding/binary"
	"math"

	"github.com/netmamba/netmamba/flow"
)

// Compat selects whose byte-view semantics to follow.
type Compat uint8

// Byte-view compatibility modes.
const (
	// CompatNone is offset-correct: header = IP + L4 header, payload = L4
	// payload cut at the IP total length, IPv6 handled.
	CompatNone Compat = iota
	// CompatOfficial reproduces the official NetMamba extractor (scapy
	// bytes(packet["IP"]) and str.replace): see official.go.
	CompatOfficial
)

// IPMode is a debias strategy for IP addresses.
type IPMode uint8

// IP address strategies.
const (
	IPZero     IPMode = iota // 0.0.0.0 / :: (NetMamba, the default)
	IPKeep                   // unchanged
	IPRelative               // initiator 0.0.0.1 (::1), responder 0.0.0.2 (::2)
	IPRandom                 // a pseudo-random address per flow endpoint, from Debias.Seed
	// IPServerPrefix zeroes the initiator's address and keeps only the
	// network prefix of the responder's (the first ServerPrefixBytes4 bytes
	// of an IPv4 address, /16; ServerPrefixBytes6 of an IPv6 one, /32), the
	// rest zero. Not NetMamba's preprocessing: the server's network (a
	// cloud's or an application's address block) is an application signal
	// that survives a change of capture, the client's address is not.
	IPServerPrefix
)

// Prefix lengths kept by IPServerPrefix, in bytes.
const (
	ServerPrefixBytes4 = 2 // IPv4 /16
	ServerPrefixBytes6 = 4 // IPv6 /32
)

// PortMode is a debias strategy for transport ports.
type PortMode uint8

// Port strategies.
const (
	PortKeep   PortMode = iota // unchanged (NetMamba, the default)
	PortZero                   // 0
	PortRandom                 // pseudo-random per flow endpoint, from Debias.Seed
	// PortEphemeral zeroes the higher of the two ports when they differ: the
	// client's ephemeral port in client-server traffic, a number the client's
	// OS picks and so a capture fingerprint rather than an application's.
	// The lower (service) port is kept, and equal ports (MDNS 5353→5353,
	// NetBIOS 137→137, IKE 500→500) are both kept, as is a pair that
	// already holds a zero port.
	PortEphemeral
)

// SeqMode is a debias strategy for TCP sequence and acknowledgement numbers.
type SeqMode uint8

// TCP seq/ack strategies.
const (
	SeqKeep     SeqMode = iota // unchanged (default)
	SeqZero                    // 0
	SeqRelative                // relative to each direction's first seq (like Wireshark)
)

// Debias lists the header rewrites applied to the byte view's header part
// (NetMamba+ debias strategies). The zero value is NetMamba's: IPs zeroed,
// everything else kept.
type Debias struct {
	IP         IPMode
	Port       PortMode
	TCPSeq     SeqMode
	TCPOptions bool   // zero TCP option bytes
	Window     bool   // zero the TCP window
	Checksums  bool   // zero IPv4 header and L4 checksums
	TTL        bool   // zero IPv4 TTL / IPv6 hop limit
	IPID       bool   // zero the IPv4 identification and the IPv6 flow label
	SNI        bool   // zero the server name in a TLS ClientHello's SNI extension
	Seed       uint64 // seed for the random modes
}

// Options configure representation building.
type Options struct {
	Compat Compat
	Debias Debias // ignored in CompatOfficial (which zeroes IPv4 addresses only)
}

// Builder builds one flow's View packet by packet; it is the per-flow
// state kept in a flow.Table. The zero value is ready.
type Builder struct {
	View     View
	lastTsNs int64
	isn      [2]uint32
	haveISN  [2]bool
}

// Add records packet p (its flow position and timing in m) into the view.
func (b *Builder) Add(p *flow.Packet, m flow.PacketMeta, key *flow.Key, o *Options) {
	v := &b.View
	i := int(m.Index)
	if i < ViewPackets {
		slot := v.Bytes[i*SlotBytes : (i+1)*SlotBytes]
		if o.Compat == CompatOfficial {
			OfficialSlot(slot, p)
		} else {
			n := FillSlot(slot, p)
			b.debias(slot[:n], p, m, key, &o.Debias)
			if o.Debias.SNI {
				ZeroSNI(slot[HeaderBytes:])
			}
		}
	}
	if i < SeqLen {
		v.Sizes[i] = uint32(m.FrameLen)
		if m.FromInitiator {
			v.Dirs[i] = 1
		} else {
			v.Dirs[i] = -1
		}
		if i > 0 {
			v.IATs[i] = math.Round(float64(m.TimestampNs-b.lastTsNs)/1e3) / 1e6
		}
		v.NPackets = i + 1
	}
	b.lastTsNs = m.TimestampNs
}

// FillSlot writes one offset-correct 320-byte slot (header cropped/padded
// to 80 bytes, payload to 240) without debiasing and returns the number of
// header bytes written.
func FillSlot(slot []byte, p *flow.Packet) int {
	l3 := p.L3()
	hl := min(p.HeaderLen(), len(l3), HeaderBytes)
	copy(slot[:HeaderBytes], l3[:hl])
	clear(slot[hl:HeaderBytes])
	n := copy(slot[HeaderBytes:SlotBytes], p.Payload())
	clear(slot[HeaderBytes+n : SlotBytes])
	return hl
}

// debias rewrites the header bytes hdr (a prefix of the IP header + L4
// header, ≤ 80 bytes) in place.
func (b *Builder) debias(hdr []byte, p *flow.Packet, m flow.PacketMeta, key *flow.Key, d *Debias) {
	dir := 0
	if !m.FromInitiator {
		dir = 1
	}
	// The zero_* strategies (shared with Redebias), then the rewrites that
	// need the flow: they touch other bytes, so the order does not matter.
	zeroFields(hdr, byte(p.IPVersion), p.IPHdrLen, p.L4HdrLen != 0, p.Proto, p.L4HdrLen, d)
	var sOff, dOff, aLen int
	if p.IPVersion == 4 {
		sOff, dOff, aLen = 12, 16, 4
	} else {
		sOff, dOff, aLen = 8, 24, 16
	}
	switch d.IP {
	case IPRelative:
		zeroRange(hdr, sOff, aLen)
		zeroRange(hdr, dOff, aLen)
		setByte(hdr, sOff+aLen-1, byte(1+dir))
		setByte(hdr, dOff+aLen-1, byte(2-dir))
	case IPRandom:
		fillRandom(hdr, sOff, aLen, d.Seed, key, dir)
		fillRandom(hdr, dOff, aLen, d.Seed, key, 1-dir)
	case IPServerPrefix:
		keep := ServerPrefixBytes4
		if p.IPVersion != 4 {
			keep = ServerPrefixBytes6
		}
		client, server := sOff, dOff // a packet from the initiator
		if dir == 1 {
			client, server = dOff, sOff
		}
		zeroRange(hdr, client, aLen)
		zeroRange(hdr, server+keep, aLen-keep)
	}
	l4 := p.IPHdrLen
	if p.L4HdrLen == 0 {
		return
	}
	if d.Port == PortRandom && (p.Proto == 6 || p.Proto == 17 || p.Proto == 132) {
		h0 := mix(d.Seed, key, dir, 0x9e37)
		h1 := mix(d.Seed, key, 1-dir, 0x9e37)
		putU16(hdr, l4, uint16(h0))
		putU16(hdr, l4+2, uint16(h1))
	}
	if p.Proto == 6 && d.TCPSeq == SeqRelative && l4+12 <= len(hdr) {
		seq := binary.BigEndian.Uint32(hdr[l4+4:])
		ack := binary.BigEndian.Uint32(hdr[l4+8:])
		if !b.haveISN[dir] {
			b.isn[dir], b.haveISN[dir] = seq, true
		}
		binary.BigEndian.PutUint32(hdr[l4+4:], seq-b.isn[dir])
		if b.haveISN[1-dir] {
			binary.BigEndian.PutUint32(hdr[l4+8:], ack-b.isn[1-dir])
		} else {
			binary.BigEndian.PutUint32(hdr[l4+8:], 0)
		}
	}
}

// zeroFields applies d's zero_* strategies (zero_ip, zero_ttl,
// zero_checksum, zero_ipid, zero_port, zero_ephemeral_port, zero_seq,
// zero_window, zero_options) to the
// header bytes hdr of an IPv4 or IPv6 packet whose L4 header starts at l4
// (hasL4 false: none, e.g. a non-first fragment) with transport protocol
// proto and, for TCP, header length tcpHdrLen. Writes past len(hdr) are
// dropped. Used by (*Builder).debias and by Redebias, so a view re-debiased
// after the fact equals one built with the strategies.
func zeroFields(hdr []byte, version byte, l4 int, hasL4 bool, proto byte, tcpHdrLen int, d *Debias) {
	if version == 4 {
		if d.IP == IPZero {
			zeroRange(hdr, 12, 8)
		}
		if d.TTL {
			setByte(hdr, 8, 0)
		}
		if d.Checksums {
			zeroRange(hdr, 10, 2)
		}
		if d.IPID {
			zeroRange(hdr, 4, 2)
		}
	} else {
		if d.IP == IPZero {
			zeroRange(hdr, 8, 32)
		}
		if d.TTL {
			setByte(hdr, 7, 0)
		}
		if d.IPID && len(hdr) >= 4 { // flow label: the low 4 bits of byte 1, bytes 2-3
			hdr[1] &= 0xf0
			zeroRange(hdr, 2, 2)
		}
	}
	if !hasL4 {
		return
	}
	if proto == 6 || proto == 17 || proto == 132 {
		switch d.Port {
		case PortZero:
			zeroRange(hdr, l4, 4)
		case PortEphemeral:
			if l4+4 <= len(hdr) {
				sp := binary.BigEndian.Uint16(hdr[l4:])
				dp := binary.BigEndian.Uint16(hdr[l4+2:])
				// a zero port is taken as already rewritten, so applying
				// the strategy twice (Redebias) changes nothing more
				if sp > dp && dp != 0 {
					zeroRange(hdr, l4, 2)
				} else if dp > sp && sp != 0 {
					zeroRange(hdr, l4+2, 2)
				}
			}
		}
	}
	switch proto {
	case 6:
		if d.TCPSeq == SeqZero {
			zeroRange(hdr, l4+4, 8)
		}
		if d.Window {
			zeroRange(hdr, l4+14, 2)
		}
		if d.Checksums {
			zeroRange(hdr, l4+16, 2)
		}
		if d.TCPOptions && tcpHdrLen > 20 {
			zeroRange(hdr, l4+20, tcpHdrLen-20)
		}
	case 17:
		if d.Checksums {
			zeroRange(hdr, l4+6, 2)
		}
	case 1, 58:
		if d.Checksums {
			zeroRange(hdr, l4+2, 2)
		}
	}
}

func zeroRange(b []byte, off, n int) {
	if off >= len(b) {
		return
	}
	clear(b[off:min(off+n, len(b))])
}

func setByte(b []byte, off int, v byte) {
	if off < len(b) {
		b[off] = v
	}
}

func putU16(b []byte, off int, v uint16) {
	setByte(b, off, byte(v>>8))
	setByte(b, off+1, byte(v))
}

// mix hashes the seed, the flow key and an endpoint (splitmix64 steps).
func mix(seed uint64, key *flow.Key, endpoint int, salt uint64) uint64 {
	h := seed ^ salt
	step := func(x uint64) {
		h ^= x
		h += 0x9e3779b97f4a7c15
		z := h
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		h = z ^ (z >> 31)
	}
	ip, port := key.SrcIP, key.SrcPort
	if endpoint == 1 {
		ip, port = key.DstIP, key.DstPort
	}
	step(binary.LittleEndian.Uint64(ip[:8]))
	step(binary.LittleEndian.Uint64(ip[8:]))
	step(uint64(port) | uint64(key.Proto)<<16)
	return h
}

func fillRandom(b []byte, off, n int, seed uint64, key *flow.Key, endpoint int) {
	h := mix(seed, key, endpoint, 0x1f2e)
	h2 := mix(seed, key, endpoint, 0x3c4d)
	var r [16]byte
	binary.LittleEndian.PutUint64(r[:], h)
	binary.LittleEndian.PutUint64(r[8:], h2)
	for i := range n {
		setByte(b, off+i, r[i])
	}
}
