package repr_test

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/extract"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/internal/sharedtest"
	"github.com/netmamba/netmamba/repr"
)

// allZero is every zero_* strategy.
var allZero = []string{"zero_ip", "zero_port", "zero_seq", "zero_options", "zero_window", "zero_checksum", "zero_ttl", "zero_sni"}

func mustDebias(t testing.TB, names ...string) repr.Debias {
	t.Helper()
	d, err := repr.ParseDebias(names)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func extractAll(t *testing.T, paths []string, d repr.Debias) []extract.Flow {
	t.Helper()
	var out []extract.Flow
	_, err := extract.Files(paths, extract.Options{Bidirectional: true, Debias: d}, func(_ string, f *extract.Flow) error {
		out = append(out, *f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRedebiasMatchesBuild is the identity check on real traffic: every
// flow of ndpi-app (all splits) and ndpi-trace.pcapng built with one debias
// set, then re-debiased to a larger zero_* set, is byte-identical to the
// flow built directly with the larger set.
func TestRedebiasMatchesBuild(t *testing.T) {
	app := sharedtest.Path(t, "data", "ndpi-app")
	var appFiles []string
	err := filepath.WalkDir(app, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".pcap") {
			appFiles = append(appFiles, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(appFiles) != 673 {
		t.Fatalf("ndpi-app: %d captures, want 673", len(appFiles))
	}
	trace := []string{sharedtest.Path(t, "data", "ndpi-trace.pcapng")}
	model := []string{"zero_ip", "zero_seq", "zero_options", "zero_checksum", "zero_ttl"}
	cases := []struct {
		name       string
		files      []string
		have, want []string
	}{
		{"ndpi-app default->model", appFiles, nil, model},
		{"ndpi-app default->all", appFiles, nil, allZero},
		{"ndpi-app none->all", appFiles, []string{"none"}, allZero},
		{"trace default->model", trace, nil, model},
		{"trace default->all", trace, nil, allZero},
		{"trace none->all", trace, []string{"none"}, allZero},
		{"ndpi-app model->model+ipid+ephemeral", appFiles, model, append(model, "zero_ipid", "zero_ephemeral_port")},
		{"trace none->ipid+ephemeral", trace, []string{"none"}, []string{"zero_ipid", "zero_ephemeral_port"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			have, want := mustDebias(t, c.have...), mustDebias(t, c.want...)
			add, err := repr.DebiasToAdd(have, want)
			if err != nil {
				t.Fatal(err)
			}
			base, direct := extractAll(t, c.files, have), extractAll(t, c.files, want)
			if len(base) != len(direct) || len(base) == 0 {
				t.Fatalf("%d flows built with %v, %d with %v", len(base), c.have, len(direct), c.want)
			}
			var st repr.RedebiasStats
			changed, differ := 0, 0
			for i := range base {
				if base[i].Key != direct[i].Key {
					t.Fatalf("flow %d: keys differ between the two builds", i)
				}
				v := base[i].View.Bytes
				s, err := repr.Redebias(v[:], add)
				if err != nil {
					t.Fatal(err)
				}
				st.Add(s)
				if v != base[i].View.Bytes {
					changed++
				}
				if v != direct[i].View.Bytes {
					differ++
					if differ <= 3 {
						for k := range v {
							if v[k] != direct[i].View.Bytes[k] {
								t.Errorf("flow %d (%v): first difference at byte %d (slot %d offset %d): %#x, direct build %#x",
									i, base[i].Key, k, k/repr.SlotBytes, k%repr.SlotBytes, v[k], direct[i].View.Bytes[k])
								break
							}
						}
					}
				}
			}
			t.Logf("%d flows, %d slots, %d flows changed by re-debias, %d differ from the direct build, %d slots with the L4 header past byte 80, %d unknown slots",
				len(base), st.Slots, changed, differ, st.L4Outside, st.Unknown)
			if differ != 0 {
				t.Errorf("%d of %d flows differ from the direct build", differ, len(base))
			}
			if changed == 0 {
				t.Error("re-debias changed no flow: the check is vacuous")
			}
			if st.Unknown != 0 || st.L4Outside != 0 {
				t.Errorf("stats %+v: want no unknown slot and no L4 header past byte 80 in these captures", st)
			}
		})
	}
}

func TestDebiasToAdd(t *testing.T) {
	for _, c := range []struct {
		have, want []string
		add        string // names of the result, "" when an error is expected
		errHas     string
	}{
		{nil, []string{"zero_ip", "zero_seq", "zero_options", "zero_checksum", "zero_ttl"}, "zero_seq,zero_options,zero_checksum,zero_ttl", ""},
		{[]string{"none"}, []string{"zero_ip"}, "zero_ip", ""},
		{[]string{"zero_ip"}, []string{"zero_ip"}, "none", ""},
		{[]string{"relative_ip"}, []string{"relative_ip", "zero_ttl"}, "zero_ttl", ""},
		{[]string{"zero_ip", "zero_port"}, []string{"zero_ip", "zero_ttl"}, "", "dataset has zero_port"},
		{[]string{"zero_ip"}, []string{"zero_ip", "relative_seq"}, "", "model's relative_seq"},
		{[]string{"zero_ip"}, []string{"random_ip"}, "", "dataset has zero_ip"},
		{[]string{"relative_ip"}, []string{"zero_ip"}, "", "dataset has relative_ip"},
	} {
		add, err := repr.DebiasToAdd(mustDebias(t, c.have...), mustDebias(t, c.want...))
		if c.add == "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("%v -> %v: err %v, want one containing %q", c.have, c.want, err, c.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v -> %v: %v", c.have, c.want, err)
			continue
		}
		if got := strings.Join(add.Names(), ","); got != c.add {
			t.Errorf("%v -> %v: add %s, want %s", c.have, c.want, got, c.add)
		}
	}
}

func TestRedebiasErrors(t *testing.T) {
	v := make([]byte, repr.ViewBytes)
	if _, err := repr.Redebias(v[:100], mustDebias(t, "zero_ttl")); err == nil {
		t.Error("short view accepted")
	}
	for _, bad := range []string{"relative_ip", "random_ip", "random_port", "relative_seq"} {
		_, err := repr.Redebias(v, mustDebias(t, bad, "zero_ttl"))
		if err == nil || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "zero_ttl") {
			t.Errorf("%s: err %v, want one naming %s only", bad, err, bad)
		}
	}
}

// Raw packets for the fuzz seeds.
func ipv4(proto byte, l4 []byte, fragOff uint16) []byte {
	b := make([]byte, 20, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(b[6:], fragOff)
	b[8], b[9], b[10], b[11] = 64, proto, 0xab, 0xcd
	copy(b[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	return append(b, l4...)
}

func ipv6(next byte, ext, l4 []byte) []byte {
	b := make([]byte, 40, 40+len(ext)+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(ext)+len(l4)))
	b[6], b[7] = next, 64
	for i := 8; i < 40; i++ {
		b[i] = byte(i)
	}
	return append(append(b, ext...), l4...)
}

func tcpHdr(optWords int, payload []byte) []byte {
	t := make([]byte, 20+4*optWords, 20+4*optWords+len(payload))
	for i := range t {
		t[i] = 0xee
	}
	t[12], t[13] = byte(5+optWords)<<4, 0x18
	return append(t, payload...)
}

func clientHello() []byte {
	name := []byte("example.org")
	ext := binary.BigEndian.AppendUint16(nil, 0)                  // server_name
	ext = binary.BigEndian.AppendUint16(ext, uint16(5+len(name))) // extension length
	ext = binary.BigEndian.AppendUint16(ext, uint16(3+len(name))) // list length
	ext = append(ext, 0)
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(name)))
	ext = append(ext, name...)
	hs := []byte{3, 3}
	hs = append(hs, make([]byte, 32)...)
	hs = append(hs, 0, 0, 2, 0x13, 0x01, 1, 0) // session id, one suite, one compression method
	hs = binary.BigEndian.AppendUint16(hs, uint16(len(ext)))
	hs = append(hs, ext...)
	rec := []byte{22, 3, 1, 0, 0, 1, 0, 0, 0}
	rec = append(rec, hs...)
	binary.BigEndian.PutUint16(rec[3:], uint16(len(rec)-5))
	return rec
}

func fuzzPackets() [][]byte {
	hop := []byte{6, 0, 1, 4, 0, 0, 0, 0}       // hop-by-hop -> TCP
	fragFirst := []byte{6, 0, 0, 1, 0, 0, 0, 9} // fragment offset 0, more -> TCP
	fragLater := []byte{6, 0, 0, 0x18, 0, 0, 0, 9}
	bigDst := append([]byte{6, 4}, make([]byte, 38)...) // 40-byte destination options -> TCP at 80
	return [][]byte{
		ipv4(6, tcpHdr(3, clientHello()), 0),
		ipv4(6, tcpHdr(10, []byte("x")), 0),
		ipv4(17, []byte{0, 53, 0, 53, 0, 12, 0xaa, 0xbb, 1, 2, 3, 4}, 0),
		ipv4(1, []byte{8, 0, 0xaa, 0xbb, 0, 1, 0, 1, 9, 9}, 0),
		ipv4(6, tcpHdr(0, []byte("fragment data")), 0x0003),
		ipv4(132, make([]byte, 16), 0),
		ipv6(6, nil, tcpHdr(2, []byte("abc"))),
		ipv6(0, hop, tcpHdr(1, nil)),
		ipv6(44, fragFirst, tcpHdr(0, []byte("frag"))),
		ipv6(44, fragLater, []byte("later fragment data")),
		ipv6(60, bigDst, tcpHdr(0, nil)),
		ipv6(58, nil, []byte{128, 0, 0xaa, 0xbb, 0, 1, 0, 1}),
	}
}

// zeroSubset picks the zero_* strategies whose bit is set in mask.
func zeroSubset(mask uint8) []string {
	var out []string
	for i, n := range allZero {
		if mask&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// FuzzRedebiasPacket is a differential check: a packet put in a view with
// one zero_* set and re-debiased to a larger one equals the packet put in a
// view with the larger set directly.
func FuzzRedebiasPacket(f *testing.F) {
	for i, p := range fuzzPackets() {
		f.Add(p, uint8(i), uint8(0xff))
		f.Add(p, uint8(1), uint8(0x7e))
	}
	f.Fuzz(func(t *testing.T, frame []byte, haveMask, addMask uint8) {
		var p flow.Packet
		if flow.Decode(capture.LinkRaw, frame, &p) != flow.OK {
			return
		}
		have := mustDebias(t, zeroSubset(haveMask)...)
		want := mustDebias(t, zeroSubset(haveMask|addMask)...)
		key := flow.KeyOf(&p)
		m := flow.PacketMeta{Index: 0, FrameLen: len(frame), FromInitiator: true}
		var base, direct repr.Builder
		base.Add(&p, m, &key, &repr.Options{Debias: have})
		direct.Add(&p, m, &key, &repr.Options{Debias: want})
		add, err := repr.DebiasToAdd(have, want)
		if err != nil {
			t.Fatal(err)
		}
		v := base.View.Bytes
		if _, err := repr.Redebias(v[:], add); err != nil {
			t.Fatal(err)
		}
		if v != direct.View.Bytes {
			t.Fatalf("have %v + %v:\nredebiased % x\ndirect     % x", have.Names(), add.Names(), v[:repr.SlotBytes], direct.View.Bytes[:repr.SlotBytes])
		}
	})
}

// FuzzRedebiasSlot feeds arbitrary bytes as a view: Redebias never panics,
// only clears bits (whole bytes, or the IPv6 flow label's nibble), writes
// nothing outside the view, is idempotent, and each strategy stays in its
// range (IP-level fields in the fixed IP header,
// L4 fields past it, zero_sni in the payload part).
func FuzzRedebiasSlot(f *testing.F) {
	for _, p := range fuzzPackets() {
		var slot [repr.SlotBytes]byte
		copy(slot[:], p)
		f.Add(slot[:])
	}
	f.Add([]byte{0x4f, 0, 0, 0, 0, 0, 0, 0, 0, 6})
	f.Add([]byte{0x60, 0, 0, 0, 0, 0, 44})
	f.Fuzz(func(t *testing.T, in []byte) {
		const guard = 64
		buf := make([]byte, guard+repr.ViewBytes+guard)
		for i := range buf {
			buf[i] = 0xa5
		}
		view := buf[guard : guard+repr.ViewBytes]
		copy(view, bytes.Repeat(in, 1+repr.ViewBytes/max(len(in), 1)))
		orig := bytes.Clone(buf)
		check := func(names []string, allowed func(slotOff int, version byte) bool) {
			copy(buf, orig)
			if _, err := repr.Redebias(view, mustDebias(t, names...)); err != nil {
				t.Fatal(err)
			}
			for i := range buf {
				if buf[i] == orig[i] {
					continue
				}
				if i < guard || i >= guard+repr.ViewBytes {
					t.Fatalf("%v wrote outside the view at %d", names, i-guard)
				}
				o := i - guard
				if buf[i]&^orig[i] != 0 {
					t.Fatalf("%v wrote %#x over %#x at %d: only clearing bits is allowed", names, buf[i], orig[i], o)
				}
				slot := view[o/repr.SlotBytes*repr.SlotBytes:]
				if !allowed(o%repr.SlotBytes, slot[0]>>4) {
					t.Fatalf("%v zeroed byte %d of an IPv%d slot", names, o%repr.SlotBytes, slot[0]>>4)
				}
			}
			once := bytes.Clone(buf)
			if _, err := repr.Redebias(view, mustDebias(t, names...)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(once, buf) {
				t.Fatalf("%v is not idempotent", names)
			}
		}
		ipHdr := func(v byte) int {
			if v == 6 {
				return 40
			}
			return 20
		}
		check([]string{"zero_ip"}, func(o int, v byte) bool {
			return v == 4 && o >= 12 && o < 20 || v == 6 && o >= 8 && o < 40
		})
		check([]string{"zero_ttl"}, func(o int, v byte) bool { return v == 4 && o == 8 || v == 6 && o == 7 })
		check([]string{"zero_checksum"}, func(o int, v byte) bool {
			return v == 4 && (o == 10 || o == 11) || o >= ipHdr(v) && o < repr.HeaderBytes
		})
		for _, n := range []string{"zero_port", "zero_seq", "zero_options", "zero_window"} {
			check([]string{n}, func(o int, v byte) bool { return (v == 4 || v == 6) && o >= ipHdr(v) && o < repr.HeaderBytes })
		}
		check([]string{"zero_sni"}, func(o int, v byte) bool { return (v == 4 || v == 6) && o >= repr.HeaderBytes })
		check([]string{"zero_ipid"}, func(o int, v byte) bool { return v == 4 && (o == 4 || o == 5) || v == 6 && o >= 1 && o <= 3 })
		check([]string{"zero_ephemeral_port"}, func(o int, v byte) bool {
			return (v == 4 || v == 6) && o >= ipHdr(v) && o < repr.HeaderBytes
		})
		check(allZero, func(o int, v byte) bool { return v == 4 || v == 6 })
	})
}

// TestZeroEphemeralPortAndIPID checks the two fields by hand: the higher
// port of a pair is zeroed in either direction, equal ports are kept, the
// IPv4 identification and the IPv6 flow label (not the traffic class) are
// zeroed, and nothing else changes.
func TestZeroEphemeralPortAndIPID(t *testing.T) {
	udp := func(sp, dp uint16) []byte {
		b := binary.BigEndian.AppendUint16(nil, sp)
		b = binary.BigEndian.AppendUint16(b, dp)
		return append(b, 0, 12, 0xaa, 0xbb, 1, 2, 3, 4)
	}
	tcp := func(sp, dp uint16) []byte {
		b := tcpHdr(0, []byte("hello"))
		binary.BigEndian.PutUint16(b[0:], sp)
		binary.BigEndian.PutUint16(b[2:], dp)
		return b
	}
	withID := func(p []byte) []byte { p[4], p[5] = 0x12, 0x34; return p }
	type testCase struct {
		name     string
		pkt      []byte
		ipHdr    int
		sp, dp   uint16 // ports expected after zero_ephemeral_port
		zeroedID []int  // bytes zero_ipid zeroes (value before: non-zero)
	}
	cases := []testCase{
		{"tcp client->server", withID(ipv4(6, tcp(51234, 443), 0)), 20, 0, 443, []int{4, 5}},
		{"tcp server->client", withID(ipv4(6, tcp(443, 51234), 0)), 20, 443, 0, []int{4, 5}},
		{"udp equal ports (mdns)", withID(ipv4(17, udp(5353, 5353), 0)), 20, 5353, 5353, []int{4, 5}},
		{"udp stun", withID(ipv4(17, udp(40436, 3478), 0)), 20, 0, 3478, []int{4, 5}},
	}
	v6 := ipv6(17, nil, udp(3478, 61000))
	v6[0], v6[1], v6[2], v6[3] = 0x6a, 0xbc, 0xde, 0xf1 // traffic class 0xab, flow label 0xcdef1
	cases = append(cases, testCase{"ipv6 udp", v6, 40, 3478, 0, []int{2, 3}})
	for _, c := range cases {
		var p flow.Packet
		if r := flow.Decode(capture.LinkRaw, c.pkt, &p); r != flow.OK {
			t.Fatalf("%s: decode %v", c.name, r)
		}
		key := flow.KeyOf(&p)
		m := flow.PacketMeta{FrameLen: len(c.pkt), FromInitiator: true}
		var plain, eph, ipid repr.Builder
		plain.Add(&p, m, &key, &repr.Options{Debias: mustDebias(t, "none")})
		eph.Add(&p, m, &key, &repr.Options{Debias: mustDebias(t, "zero_ephemeral_port")})
		ipid.Add(&p, m, &key, &repr.Options{Debias: mustDebias(t, "zero_ipid")})
		pv, ev, iv := plain.View.Bytes, eph.View.Bytes, ipid.View.Bytes
		if sp, dp := binary.BigEndian.Uint16(ev[c.ipHdr:]), binary.BigEndian.Uint16(ev[c.ipHdr+2:]); sp != c.sp || dp != c.dp {
			t.Errorf("%s: zero_ephemeral_port gave ports %d -> %d, want %d -> %d", c.name, sp, dp, c.sp, c.dp)
		}
		for i := range pv {
			if i >= c.ipHdr && i < c.ipHdr+4 {
				continue
			}
			if ev[i] != pv[i] {
				t.Errorf("%s: zero_ephemeral_port changed byte %d", c.name, i)
			}
		}
		for i := range pv {
			zeroed := false
			for _, z := range c.zeroedID {
				zeroed = zeroed || i == z
			}
			switch {
			case zeroed && (pv[i] == 0 || iv[i] != 0):
				t.Errorf("%s: zero_ipid byte %d: %#x -> %#x, want non-zero -> 0", c.name, i, pv[i], iv[i])
			case !zeroed && c.ipHdr == 40 && i == 1:
				if iv[1] != 0xb0 { // traffic class low nibble kept, flow label nibble zeroed
					t.Errorf("%s: zero_ipid byte 1 %#x, want 0xb0", c.name, iv[1])
				}
			case !zeroed && iv[i] != pv[i]:
				t.Errorf("%s: zero_ipid changed byte %d", c.name, i)
			}
		}
	}
}
