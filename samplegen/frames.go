package samplegen

import (
	"encoding/binary"
	"net/netip"
)

// IANA protocol numbers used by the generator.
const (
	protoTCP = 6
	protoUDP = 17
)

// TCP flag bits.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
)

// node is one side of an exchange as seen on the capture's Ethernet segment:
// the MAC address the frames carry (the gateway's for remote hosts) and the
// transport address.
type node struct {
	mac  [6]byte
	addr netip.AddrPort
	ttl  uint8 // TTL / hop limit of its packets as seen at the capture point
}

// frameBuilder serialises Ethernet + IPv4/IPv6 + TCP/UDP frames with valid
// lengths and checksums.
type frameBuilder struct {
	ipID uint16 // next IPv4 identification of the source being built
}

// build returns one Ethernet frame from src to dst carrying the transport
// segment l4 (header and payload; its checksum field is filled in here).
func (fb *frameBuilder) build(src, dst node, proto uint8, l4 []byte, df bool) []byte {
	v6 := src.addr.Addr().Is6() && !src.addr.Addr().Is4In6()
	ipLen := 20
	etherType := uint16(0x0800)
	if v6 {
		ipLen = 40
		etherType = 0x86dd
	}
	frame := make([]byte, 14+ipLen+len(l4))
	copy(frame[0:6], dst.mac[:])
	copy(frame[6:12], src.mac[:])
	binary.BigEndian.PutUint16(frame[12:14], etherType)
	ip := frame[14 : 14+ipLen]
	seg := frame[14+ipLen:]
	copy(seg, l4)
	sip, dip := src.addr.Addr(), dst.addr.Addr()
	if v6 {
		binary.BigEndian.PutUint32(ip[0:4], 6<<28)
		binary.BigEndian.PutUint16(ip[4:6], uint16(len(l4)))
		ip[6] = proto
		ip[7] = src.ttl
		s16, d16 := sip.As16(), dip.As16()
		copy(ip[8:24], s16[:])
		copy(ip[24:40], d16[:])
	} else {
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:4], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(ip[4:6], fb.ipID)
		fb.ipID++
		if df {
			ip[6] = 0x40
		}
		ip[8] = src.ttl
		ip[9] = proto
		s4, d4 := sip.As4(), dip.As4()
		copy(ip[12:16], s4[:])
		copy(ip[16:20], d4[:])
		binary.BigEndian.PutUint16(ip[10:12], ^onesSum(0, ip))
	}
	// Transport checksum over the pseudo-header and the segment.
	var sum uint32
	if v6 {
		sum = onesSumAcc(sum, ip[8:40])
		var tail [8]byte
		binary.BigEndian.PutUint32(tail[0:4], uint32(len(seg)))
		tail[7] = proto
		sum = onesSumAcc(sum, tail[:])
	} else {
		sum = onesSumAcc(sum, ip[12:20])
		var tail [4]byte
		tail[1] = proto
		binary.BigEndian.PutUint16(tail[2:4], uint16(len(seg)))
		sum = onesSumAcc(sum, tail[:])
	}
	off := 16
	if proto == protoUDP {
		off = 6
	}
	seg[off], seg[off+1] = 0, 0
	csum := ^fold(onesSumAcc(sum, seg))
	if proto == protoUDP && csum == 0 {
		csum = 0xffff
	}
	binary.BigEndian.PutUint16(seg[off:off+2], csum)
	return frame
}

// onesSumAcc adds b (big-endian 16-bit words, odd tail zero-padded) to sum.
func onesSumAcc(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// fold reduces a 32-bit one's-complement accumulator to 16 bits.
func fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// onesSum is the folded one's-complement sum of b added to sum.
func onesSum(sum uint32, b []byte) uint16 { return fold(onesSumAcc(sum, b)) }

// udpSegment returns a UDP header and payload (checksum filled by build).
func udpSegment(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	binary.BigEndian.PutUint16(b[4:6], uint16(8+len(payload)))
	copy(b[8:], payload)
	return b
}

// tcpSegment returns a TCP header with options opts (padded to 32 bits with
// NOPs placed in front, as stacks do) followed by payload.
func tcpSegment(sport, dport uint16, seq, ack uint32, flags uint8, win uint16, opts, payload []byte) []byte {
	pad := (4 - len(opts)%4) % 4
	hl := 20 + len(opts) + pad
	b := make([]byte, hl+len(payload))
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	binary.BigEndian.PutUint32(b[4:8], seq)
	binary.BigEndian.PutUint32(b[8:12], ack)
	b[12] = uint8(hl/4) << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:16], win)
	for i := 0; i < pad; i++ {
		b[20+i] = 1 // NOP
	}
	copy(b[20+pad:], opts)
	copy(b[hl:], payload)
	return b
}

// multicastMAC maps an IPv4 or IPv6 multicast group to its Ethernet address.
func multicastMAC(a netip.Addr) [6]byte {
	if a.Is4() {
		b := a.As4()
		return [6]byte{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}
	}
	b := a.As16()
	return [6]byte{0x33, 0x33, b[12], b[13], b[14], b[15]}
}
