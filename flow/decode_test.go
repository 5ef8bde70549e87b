package flow

import (
	"encoding/binary"
	"testing"

	"github.com/netmamba/netmamba/capture"
)

// Frame builders for hand-made packets (no captures copied).

func ipv4(proto uint8, src, dst [4]byte, id uint16, fragField uint16, l4 []byte) []byte {
	b := make([]byte, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], fragField)
	b[8] = 64
	b[9] = proto
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	copy(b[20:], l4)
	return b
}

func ipv6(next uint8, src, dst [16]byte, ext []byte, l4 []byte) []byte {
	b := make([]byte, 40+len(ext)+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(ext)+len(l4)))
	b[6] = next
	b[7] = 64
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	copy(b[40:], ext)
	copy(b[40+len(ext):], l4)
	return b
}

func tcp(sport, dport uint16, payload string) []byte {
	b := make([]byte, 24+len(payload)) // 4 bytes of options
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	b[12] = 6 << 4
	b[13] = 0x18
	b[20] = 1 // NOP options
	b[21], b[22], b[23] = 1, 1, 1
	copy(b[24:], payload)
	return b
}

func udp(sport, dport uint16, payload string) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], payload)
	return b
}

func ether(et uint16, inner []byte) []byte {
	b := make([]byte, 14, 14+len(inner))
	binary.BigEndian.PutUint16(b[12:], et)
	return append(b, inner...)
}

func vlan(id uint16, et uint16, inner []byte) []byte {
	b := make([]byte, 4, 4+len(inner))
	binary.BigEndian.PutUint16(b, id)
	binary.BigEndian.PutUint16(b[2:], et)
	return append(b, inner...)
}

var (
	a4 = [4]byte{10, 0, 0, 1}
	b4 = [4]byte{192, 168, 1, 2}
	a6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	b6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
)

type decodeCase struct {
	name       string
	link       capture.LinkType
	frame      []byte
	want       Reason
	l3off      int
	proto      uint8
	sport      uint16
	dport      uint16
	vlan       uint16
	hdr        int // IP + L4 header length
	payload    string
	ipVersion  uint8
	nonFirst   bool
	snapCutted bool
}

func decodeCases() []decodeCase {
	t4 := ipv4(6, a4, b4, 7, 0, tcp(1234, 80, "GET /"))
	u4 := ipv4(17, a4, b4, 8, 0, udp(5353, 53, "query"))
	t6 := ipv6(6, a6, b6, nil, tcp(4321, 443, "hello"))
	// IPv6 with hop-by-hop (8 bytes) and destination options (16 bytes)
	hbh := []byte{60, 0, 1, 4, 0, 0, 0, 0}
	dst := make([]byte, 16)
	dst[0], dst[1] = 17, 1
	u6ext := ipv6(0, a6, b6, append(hbh, dst...), udp(1000, 2000, "x"))
	frag1 := ipv4(17, a4, b4, 99, 0x2000, udp(7, 9, "first"))
	frag2 := ipv4(17, a4, b4, 99, 0x0002, []byte("second fragment"))
	f6 := []byte{17, 0, 0, 16 + 1, 0, 0, 0, 42} // offset 16 bytes, M=1
	frag6 := ipv6(44, a6, b6, f6, []byte("data"))
	pppoe := append([]byte{0x11, 0x00, 0x00, 0x01, 0x00, byte(len(t4) + 2), 0x00, 0x21}, t4...)
	mpls := append([]byte{0, 0, 0x10, 64, 0, 0, 0x21, 64}, u4...) // two labels, BoS on the second
	sll := append(make([]byte, 14), 0x08, 0x00)
	sll2 := []byte{0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	null := []byte{2, 0, 0, 0}
	loop := []byte{0, 0, 0, 24}
	trailer := append(ether(0x0800, t4), 0, 0, 0, 0, 0, 0)
	cut := ether(0x0800, t4)[:14+20+24+2]
	ppi := append([]byte{0, 0, 8, 0, 1, 0, 0, 0}, ether(0x0800, u4)...)
	return []decodeCase{
		{"ether tcp4", capture.LinkEthernet, ether(0x0800, t4), OK, 14, 6, 1234, 80, 0, 44, "GET /", 4, false, false},
		{"ether trailer", capture.LinkEthernet, trailer, OK, 14, 6, 1234, 80, 0, 44, "GET /", 4, false, false},
		{"snaplen cut", capture.LinkEthernet, cut, OK, 14, 6, 1234, 80, 0, 44, "GE", 4, false, true},
		{"qinq udp4", capture.LinkEthernet, ether(0x88a8, vlan(100, 0x8100, vlan(200, 0x0800, u4))), OK, 22, 17, 5353, 53, 100, 28, "query", 4, false, false},
		{"pppoe", capture.LinkEthernet, ether(0x8864, pppoe), OK, 22, 6, 1234, 80, 0, 44, "GET /", 4, false, false},
		{"mpls", capture.LinkEthernet, ether(0x8847, mpls), OK, 22, 17, 5353, 53, 0, 28, "query", 4, false, false},
		{"ipv6 tcp", capture.LinkEthernet, ether(0x86dd, t6), OK, 14, 6, 4321, 443, 0, 64, "hello", 6, false, false},
		{"ipv6 ext headers", capture.LinkRaw, u6ext, OK, 0, 17, 1000, 2000, 0, 40 + 24 + 8, "x", 6, false, false},
		{"first fragment", capture.LinkIPv4, frag1, OK, 0, 17, 7, 9, 0, 28, "first", 4, false, false},
		{"non-first fragment", capture.LinkRaw, frag2, OK, 0, 17, 0, 0, 0, 20, "second fragment", 4, true, false},
		{"ipv6 non-first fragment", capture.LinkIPv6, frag6, OK, 0, 17, 0, 0, 0, 48, "data", 6, true, false},
		{"sll", capture.LinkLinuxSLL, append(sll, u4...), OK, 16, 17, 5353, 53, 0, 28, "query", 4, false, false},
		{"sll2", capture.LinkLinuxSLL2, append(sll2, t6...), OK, 20, 6, 4321, 443, 0, 64, "hello", 6, false, false},
		{"null", capture.LinkNull, append(null, t4...), OK, 4, 6, 1234, 80, 0, 44, "GET /", 4, false, false},
		{"loop v6", capture.LinkLoop, append(loop, t6...), OK, 4, 6, 4321, 443, 0, 64, "hello", 6, false, false},
		{"ppp", capture.LinkPPP, append([]byte{0xff, 0x03, 0x00, 0x21}, t4...), OK, 4, 6, 1234, 80, 0, 44, "GET /", 4, false, false},
		{"cisco hdlc", capture.LinkCiscoHDLC, append([]byte{0x0f, 0, 0x08, 0}, u4...), OK, 4, 17, 5353, 53, 0, 28, "query", 4, false, false},
		{"ppi", capture.LinkPPI, ppi, OK, 22, 17, 5353, 53, 0, 28, "query", 4, false, false},
		{"arp", capture.LinkEthernet, ether(0x0806, make([]byte, 28)), ReasonNonIP, 0, 0, 0, 0, 0, 0, "", 0, false, false},
		{"short ether", capture.LinkEthernet, []byte{1, 2, 3}, ReasonTruncated, 0, 0, 0, 0, 0, 0, "", 0, false, false},
		{"short tcp", capture.LinkEthernet, ether(0x0800, t4)[:14+20+6], ReasonTruncated, 0, 0, 0, 0, 0, 0, "", 0, false, false},
		{"bad version", capture.LinkRaw, []byte{0x50, 1, 2, 3}, ReasonBadIP, 0, 0, 0, 0, 0, 0, "", 0, false, false},
		{"unknown link", capture.LinkType(147), t4, ReasonUnknownLink, 0, 0, 0, 0, 0, 0, "", 0, false, false},
	}
}

func TestDecode(t *testing.T) {
	for _, c := range decodeCases() {
		var p Packet
		r := Decode(c.link, c.frame, &p)
		if r != c.want {
			t.Errorf("%s: reason %v, want %v", c.name, r, c.want)
			continue
		}
		if r != OK {
			continue
		}
		if p.L3Offset != c.l3off || p.Proto != c.proto || p.SrcPort != c.sport || p.DstPort != c.dport ||
			p.VLAN != c.vlan || p.HeaderLen() != c.hdr || string(p.Payload()) != c.payload ||
			p.IPVersion != c.ipVersion || p.IsNonFirstFragment() != c.nonFirst || p.SnapCut != c.snapCutted {
			t.Errorf("%s: got l3 %d proto %d ports %d/%d vlan %d hdr %d payload %q v%d nonfirst %v cut %v",
				c.name, p.L3Offset, p.Proto, p.SrcPort, p.DstPort, p.VLAN, p.HeaderLen(), p.Payload(), p.IPVersion,
				p.IsNonFirstFragment(), p.SnapCut)
		}
	}
}

func TestDecodeZeroAlloc(t *testing.T) {
	cases := decodeCases()
	var p Packet
	n := testing.AllocsPerRun(100, func() {
		for _, c := range cases {
			Decode(c.link, c.frame, &p)
		}
	})
	if n != 0 {
		t.Errorf("Decode allocates %.1f times per run", n)
	}
}

// FuzzDecode: seeds are the hand-built frames above, for each link type.
func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases() {
		f.Add(uint16(c.link), c.frame)
	}
	f.Fuzz(func(t *testing.T, link uint16, frame []byte) {
		var p Packet
		if Decode(capture.LinkType(link), frame, &p) != OK {
			return
		}
		l3 := p.L3()
		if p.L3Offset > len(frame) || p.HeaderLen() < 0 || p.IPHdrLen > len(l3)+8 {
			t.Fatalf("offsets out of range: l3 %d hdr %d len %d", p.L3Offset, p.HeaderLen(), len(frame))
		}
		_ = p.Payload()
		if e := p.L3End(); e > len(l3) {
			t.Fatalf("L3End %d > %d", e, len(l3))
		}
	})
}

// BenchmarkDecode decodes the hand-built frames (every link type).
func BenchmarkDecode(b *testing.B) {
	cases := decodeCases()
	var p Packet
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range cases {
			Decode(cases[i].link, cases[i].frame, &p)
		}
		n += len(cases)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}
