package repr

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/flow"
)

// tcp4 builds a raw IPv4/TCP packet (20-byte IP header, 32-byte TCP header
// with 12 option bytes) carrying payload, plus trailer bytes after the datagram.
func tcp4(payload, trailer []byte) []byte {
	b := make([]byte, 20+32+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64                 // TTL
	b[9] = 6                  // TCP
	b[10], b[11] = 0xab, 0xcd // checksum
	copy(b[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	t := b[20:]
	binary.BigEndian.PutUint16(t, 40000)
	binary.BigEndian.PutUint16(t[2:], 443)
	binary.BigEndian.PutUint32(t[4:], 5000) // seq
	binary.BigEndian.PutUint32(t[8:], 9000) // ack
	t[12] = 8 << 4
	t[13] = 0x18
	t[14], t[15] = 0x10, 0x00 // window
	t[16], t[17] = 0x12, 0x34 // checksum
	for i := 20; i < 32; i++ {
		t[i] = 0xee // options
	}
	copy(t[32:], payload)
	return append(b, trailer...)
}

func decodeRaw(t *testing.T, frame []byte) *flow.Packet {
	var p flow.Packet
	if r := flow.Decode(capture.LinkRaw, frame, &p); r != flow.OK {
		t.Fatal(r)
	}
	return &p
}

func TestFillSlotAndDebias(t *testing.T) {
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = byte(i)
	}
	frame := tcp4(payload, []byte{0xaa, 0xbb})
	p := decodeRaw(t, frame)
	var b Builder
	key := flow.KeyOf(p)
	b.Add(p, flow.PacketMeta{TimestampNs: 1e9, FrameLen: len(frame), Index: 0, FromInitiator: true}, &key, &Options{})
	slot := b.View.Bytes[:SlotBytes]
	// header: 52 bytes, IPs zeroed, rest as in the frame, zero padded to 80
	for i := range 52 {
		want := frame[i]
		if i >= 12 && i < 20 {
			want = 0
		}
		if slot[i] != want {
			t.Fatalf("header byte %d = %#x, want %#x", i, slot[i], want)
		}
	}
	for i := 52; i < 80; i++ {
		if slot[i] != 0 {
			t.Fatalf("header padding byte %d = %#x", i, slot[i])
		}
	}
	// payload: first 240 payload bytes; the trailer is excluded
	for i := range 240 {
		if slot[80+i] != byte(i) {
			t.Fatalf("payload byte %d = %d", i, slot[80+i])
		}
	}
	if b.View.Sizes[0] != uint32(len(frame)) || b.View.Dirs[0] != 1 || b.View.NPackets != 1 {
		t.Errorf("sequence: %v %v %d", b.View.Sizes[0], b.View.Dirs[0], b.View.NPackets)
	}

	// every debias option
	var d Builder
	o := &Options{Debias: Debias{IP: IPRelative, Port: PortZero, TCPSeq: SeqRelative, TCPOptions: true, Window: true, Checksums: true, TTL: true}}
	d.Add(p, flow.PacketMeta{Index: 0, FromInitiator: true, FrameLen: len(frame)}, &key, o)
	h := d.View.Bytes[:80]
	checks := []struct {
		name string
		off  int
		want []byte
	}{
		{"ttl", 8, []byte{0}}, {"ip checksum", 10, []byte{0, 0}},
		{"src ip", 12, []byte{0, 0, 0, 1}}, {"dst ip", 16, []byte{0, 0, 0, 2}},
		{"ports", 20, []byte{0, 0, 0, 0}}, {"seq", 24, []byte{0, 0, 0, 0}}, {"ack", 28, []byte{0, 0, 0, 0}},
		{"window", 34, []byte{0, 0}}, {"tcp checksum", 36, []byte{0, 0}}, {"options", 40, make([]byte, 12)},
		{"flags kept", 33, []byte{0x18}},
	}
	for _, c := range checks {
		if string(h[c.off:c.off+len(c.want)]) != string(c.want) {
			t.Errorf("%s: % x, want % x", c.name, h[c.off:c.off+len(c.want)], c.want)
		}
	}
	// second packet of the same direction: seq relative to the first
	binary.BigEndian.PutUint32(frame[24:], 5100)
	p2 := decodeRaw(t, frame)
	d.Add(p2, flow.PacketMeta{Index: 1, FromInitiator: true, FrameLen: len(frame), TimestampNs: 1_500_000_400}, &key, o)
	if got := binary.BigEndian.Uint32(d.View.Bytes[SlotBytes+24:]); got != 100 {
		t.Errorf("relative seq %d, want 100", got)
	}
	// IAT: 1.5000004 s rounded to 1e-6
	if d.View.IATs[1] != 1.5 {
		t.Errorf("IAT %v, want 1.5", d.View.IATs[1])
	}
}

func TestModelInputs(t *testing.T) {
	var v View
	v.NPackets = 3
	v.Sizes = [SeqLen]uint32{60, 1514, 2000}
	v.Dirs = [SeqLen]int8{1, -1, -1}
	v.IATs = [SeqLen]float64{0, 0.5, 3}
	ids := make([]int32, SeqLen)
	SizeIDs(&v, ids)
	if ids[0] != 60 || ids[1] != 1500 || ids[2] != 1500 || ids[3] != 1500 || ids[19] != 1500 {
		t.Errorf("unsigned ids %v", ids)
	}
	SignedSizeIDs(&v, ids)
	if ids[0] != 1560 || ids[1] != 0 || ids[2] != 0 || ids[3] != SignedPad {
		t.Errorf("signed ids %v", ids)
	}
	v.Sizes[1] = 100
	SignedSizeIDs(&v, ids)
	if ids[1] != 1400 {
		t.Errorf("signed id of a 100-byte reply: %d, want 1400", ids[1])
	}
	iat := make([]float32, SeqLen)
	IATInputs(&v, iat)
	// (1+t)/(2+t): 0 -> 1/2, 0.5 -> 1.5/2.5 = 0.6, 3 -> 4/5 = 0.8, pad -> 1
	if iat[0] != 0.5 || iat[1] != 0.6 || iat[2] != 0.8 || iat[3] != 1 {
		t.Errorf("iat inputs %v", iat[:4])
	}
	v.Bytes[0], v.Bytes[1], v.Bytes[2] = 0, 255, 128
	in := make([]float32, ViewBytes)
	ByteInputs(&v, in)
	// golden README: float32(b)/255 then (v-0.5)/0.5, equal to b/127.5-1 in float32
	for b := range 256 {
		v.Bytes[3] = byte(b)
		ByteInputs(&v, in)
		want := float32(b)/127.5 - 1
		if in[3] != want {
			t.Fatalf("byte %d -> %v, want %v", b, in[3], want)
		}
	}
	if in[0] != -1 || in[1] != 1 || math.Abs(float64(in[2])-(128.0/127.5-1)) > 1e-7 {
		t.Errorf("byte inputs %v", in[:3])
	}
}

func TestZeroSNI(t *testing.T) {
	host := "example.com"
	// TLS record + ClientHello with one extension: server_name
	ext := []byte{0, 0, 0, byte(len(host) + 5), 0, byte(len(host) + 3), 0, 0, byte(len(host))}
	ext = append(ext, host...)
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // cipher suites
	body = append(body, 1, 0)                // compression
	body = append(body, 0, byte(len(ext)))   // extensions length
	body = append(body, ext...)
	hs := append([]byte{1, 0, 0, byte(len(body))}, body...)
	rec := append([]byte{22, 3, 1, 0, byte(len(hs))}, hs...)
	orig := append([]byte(nil), rec...)
	ZeroSNI(rec)
	n := len(rec) - len(host)
	for i := range rec {
		if i >= n && rec[i] != 0 {
			t.Fatalf("SNI byte %d not zeroed", i)
		}
		if i < n && rec[i] != orig[i] {
			t.Fatalf("byte %d outside the SNI changed", i)
		}
	}
}

func TestOfficialSlotReplace(t *testing.T) {
	// A payload whose hex also occurs in the header: str.replace removes
	// both occurrences, the header shrinks (documented case 4). TCP payload
	// "\x00\x00" occurs in the zeroed IP addresses.
	frame := tcp4([]byte{0xee, 0xee}, nil)
	p := decodeRaw(t, frame)
	slot := make([]byte, SlotBytes)
	OfficialSlot(slot, p)
	if ExplainOfficial(p)&CauseReplace == 0 {
		t.Errorf("replace case not detected")
	}
	// header = IP (IPs zeroed) + TCP with every "eeee" removed: the 12
	// option bytes 0xee and the payload are gone.
	want := append([]byte(nil), frame[:40]...)
	clear(want[12:20])
	if string(slot[:40]) != string(want) || slot[40] != 0 {
		t.Errorf("official header % x", slot[:44])
	}
	if slot[80] != 0xee || slot[81] != 0xee || slot[82] != 0 {
		t.Errorf("official payload % x", slot[80:84])
	}
	// IPv6: zero slot
	p.IPVersion = 6
	OfficialSlot(slot, p)
	for _, b := range slot {
		if b != 0 {
			t.Fatal("IPv6 slot not zero")
		}
	}
}

// TestServerPrefixIP: server_prefix_ip zeroes the initiator's address and
// keeps the responder's /16 (IPv4) or /32 (IPv6), whichever direction the
// packet goes; every other header byte is as with no IP rewrite.
func TestServerPrefixIP(t *testing.T) {
	client4, server4 := []byte{10, 1, 2, 3}, []byte{142, 250, 7, 8}
	v4 := func(fromInitiator bool) []byte {
		f := tcp4([]byte("GET / HTTP/1.1\r\n"), nil)
		src, dst := client4, server4
		if !fromInitiator {
			src, dst = server4, client4
		}
		copy(f[12:], src)
		copy(f[16:], dst)
		return f
	}
	v6 := func(fromInitiator bool) []byte {
		f := make([]byte, 40+20)
		f[0], f[6], f[7] = 0x60, 6, 64
		binary.BigEndian.PutUint16(f[4:], 20)
		client, server := 8, 24
		if !fromInitiator {
			client, server = 24, 8
		}
		for i := 0; i < 16; i++ {
			f[client+i] = byte(0x10 + i)
			f[server+i] = byte(0xa0 + i)
		}
		f[40+12] = 5 << 4
		return f
	}
	cases := []struct {
		name          string
		frame         func(bool) []byte
		srcOff, aLen  int
		keep          int
		fromInitiator bool
	}{
		{"ipv4 from client", v4, 12, 4, ServerPrefixBytes4, true},
		{"ipv4 from server", v4, 12, 4, ServerPrefixBytes4, false},
		{"ipv6 from client", v6, 8, 16, ServerPrefixBytes6, true},
		{"ipv6 from server", v6, 8, 16, ServerPrefixBytes6, false},
	}
	for _, c := range cases {
		frame := c.frame(c.fromInitiator)
		p := decodeRaw(t, frame)
		key := flow.KeyOf(p)
		meta := flow.PacketMeta{FromInitiator: c.fromInitiator, FrameLen: len(frame)}
		var got, kept Builder
		got.Add(p, meta, &key, &Options{Debias: Debias{IP: IPServerPrefix}})
		kept.Add(p, meta, &key, &Options{Debias: Debias{IP: IPKeep}})
		h, k := got.View.Bytes[:HeaderBytes], kept.View.Bytes[:HeaderBytes]
		clientOff, serverOff := c.srcOff, c.srcOff+c.aLen
		if !c.fromInitiator {
			clientOff, serverOff = serverOff, clientOff
		}
		for i := range h {
			want := k[i]
			switch {
			case i >= clientOff && i < clientOff+c.aLen:
				want = 0
			case i >= serverOff+c.keep && i < serverOff+c.aLen:
				want = 0
			}
			if h[i] != want {
				t.Errorf("%s: header byte %d = %#x, want %#x", c.name, i, h[i], want)
			}
		}
		if string(h[serverOff:serverOff+c.keep]) != string(frame[serverOff:serverOff+c.keep]) || h[serverOff] == 0 {
			t.Errorf("%s: server prefix % x, want % x", c.name, h[serverOff:serverOff+c.keep], frame[serverOff:serverOff+c.keep])
		}
	}
	if _, err := ParseDebias([]string{"server_prefix_ip", "zero_ip"}); err == nil {
		t.Error("server_prefix_ip with zero_ip: want an error (one IP strategy)")
	}
	d, err := ParseDebias([]string{"server_prefix_ip", "zero_seq"})
	if err != nil || d.IP != IPServerPrefix {
		t.Fatalf("ParseDebias: %+v, %v", d, err)
	}
	if CheckZeroOnly(d) == nil {
		t.Error("server_prefix_ip needs the direction: Redebias must refuse it")
	}
}

// FuzzServerPrefixIP: for any decodable raw-IP packet, in either direction,
// the server_prefix_ip view differs from the no-rewrite view only in the
// address bytes, where the client's address is zero and the server's keeps
// its prefix bytes (the rest zero); the payload part is untouched.
func FuzzServerPrefixIP(f *testing.F) {
	f.Add(tcp4([]byte("GET / HTTP/1.1\r\n"), nil), true)
	f.Add(tcp4(nil, []byte{1, 2}), false)
	v6 := make([]byte, 60)
	v6[0], v6[5], v6[6], v6[7], v6[52] = 0x60, 20, 6, 64, 5<<4
	for i := 8; i < 40; i++ {
		v6[i] = byte(i)
	}
	f.Add(v6, true)
	f.Add(v6, false)
	f.Fuzz(func(t *testing.T, frame []byte, fromInitiator bool) {
		var p flow.Packet
		if flow.Decode(capture.LinkRaw, frame, &p) != flow.OK {
			return
		}
		key := flow.KeyOf(&p)
		m := flow.PacketMeta{FromInitiator: fromInitiator, FrameLen: len(frame)}
		var got, kept Builder
		got.Add(&p, m, &key, &Options{Debias: Debias{IP: IPServerPrefix}})
		kept.Add(&p, m, &key, &Options{Debias: Debias{IP: IPKeep}})
		srcOff, aLen, keep := 12, 4, ServerPrefixBytes4
		if p.IPVersion != 4 {
			srcOff, aLen, keep = 8, 16, ServerPrefixBytes6
		}
		client, server := srcOff, srcOff+aLen
		if !fromInitiator {
			client, server = server, client
		}
		g, k := got.View.Bytes[:], kept.View.Bytes[:]
		for i := range g {
			want := k[i]
			if i < HeaderBytes && ((i >= client && i < client+aLen) || (i >= server+keep && i < server+aLen)) {
				want = 0
			}
			if g[i] != want {
				t.Fatalf("byte %d = %#x, want %#x (client at %d, server at %d)", i, g[i], want, client, server)
			}
		}
	})
}
