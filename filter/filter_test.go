package filter

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// pkt describes a hand-built packet.
type pkt struct {
	v6           bool
	src, dst     string
	proto        uint8
	sport, dport uint16
	ipOptions    int    // IPv4 option bytes (multiple of 4)
	fragOff      uint16 // IPv4 fragment offset in 8-byte units / IPv6 fragment header offset
	v6Frag       bool   // insert an IPv6 fragment header
	payload      int
}

// build assembles the packet from the IP header on.
func (p pkt) build() []byte {
	var l4 []byte
	switch p.proto {
	case 6:
		l4 = make([]byte, 20+p.payload)
		l4[12] = 5 << 4
	case 17:
		l4 = make([]byte, 8+p.payload)
		l4[4], l4[5] = byte((8+p.payload)>>8), byte(8+p.payload)
	default:
		l4 = make([]byte, 8+p.payload)
	}
	if p.proto == 6 || p.proto == 17 || p.proto == 132 {
		l4[0], l4[1] = byte(p.sport>>8), byte(p.sport)
		l4[2], l4[3] = byte(p.dport>>8), byte(p.dport)
	}
	src, dst := netip.MustParseAddr(p.src), netip.MustParseAddr(p.dst)
	if !p.v6 {
		hl := 20 + p.ipOptions
		b := make([]byte, hl, hl+len(l4))
		b[0] = 0x40 | byte(hl/4)
		total := hl + len(l4)
		b[2], b[3] = byte(total>>8), byte(total)
		b[6], b[7] = byte(p.fragOff>>8)&0x1f, byte(p.fragOff)
		b[8] = 64
		b[9] = p.proto
		s, d := src.As4(), dst.As4()
		copy(b[12:], s[:])
		copy(b[16:], d[:])
		for i := 20; i < hl; i++ {
			b[i] = 1 // NOP options
		}
		return append(b, l4...)
	}
	b := make([]byte, 40)
	b[0] = 0x60
	next := p.proto
	if p.v6Frag {
		next = 44
	}
	b[6], b[7] = next, 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	if p.v6Frag {
		fh := make([]byte, 8)
		fh[0] = p.proto
		fh[2], fh[3] = byte(p.fragOff>>5), byte(p.fragOff<<3)
		b = append(b, fh...)
	}
	pl := len(b) - 40 + len(l4)
	b[4], b[5] = byte(pl>>8), byte(pl)
	return append(b, l4...)
}

var (
	tcp4     = pkt{src: "10.0.0.1", dst: "192.168.1.2", proto: 6, sport: 40000, dport: 443, payload: 10}
	udp4     = pkt{src: "10.0.0.1", dst: "8.8.8.8", proto: 17, sport: 5353, dport: 53, payload: 30}
	icmp4    = pkt{src: "10.0.0.1", dst: "10.0.0.2", proto: 1}
	tcp4opt  = pkt{src: "10.1.2.3", dst: "10.9.9.9", proto: 6, sport: 1234, dport: 80, ipOptions: 12}
	udp4frag = pkt{src: "10.0.0.1", dst: "8.8.8.8", proto: 17, sport: 5353, dport: 53, fragOff: 185}
	tcp6     = pkt{v6: true, src: "2001:db8::1", dst: "2001:db8:1::2", proto: 6, sport: 50000, dport: 443}
	udp6     = pkt{v6: true, src: "fe80::1", dst: "ff02::fb", proto: 17, sport: 5353, dport: 5353}
	icmp6    = pkt{v6: true, src: "fe80::1", dst: "fe80::2", proto: 58}
	udp6frag = pkt{v6: true, src: "2001:db8::1", dst: "2001:db8::2", proto: 17, sport: 1000, dport: 2000, v6Frag: true}
)

func TestMatch(t *testing.T) {
	cases := []struct {
		expr string
		p    pkt
		want bool
	}{
		{"ip", tcp4, true}, {"ip", tcp6, false}, {"ip6", tcp6, true}, {"ip6", udp4, false},
		{"tcp", tcp4, true}, {"tcp", udp4, false}, {"tcp", tcp6, true}, {"udp", udp6, true},
		{"icmp", icmp4, true}, {"icmp", pkt{src: "10.0.0.1", dst: "10.0.0.2", proto: 58}, false},
		{"icmp6", pkt{v6: true, src: "::1", dst: "::2", proto: 1}, false}, {"proto 58", pkt{src: "10.0.0.1", dst: "10.0.0.2", proto: 58}, true}, {"icmp", icmp6, false}, {"icmp6", icmp6, true}, {"icmp6", icmp4, false},
		{"proto 17", udp4, true}, {"proto 17", udp6, true}, {"proto 6", udp4, false},
		{"ip proto 17", udp6, false}, {"ip6 proto udp", udp6, true},
		{"udp", udp6frag, true}, {"proto 17", udp6frag, true}, // next header behind a fragment header
		{"host 10.0.0.1", tcp4, true}, {"host 192.168.1.2", tcp4, true}, {"host 10.0.0.3", tcp4, false},
		{"src host 10.0.0.1", tcp4, true}, {"dst host 10.0.0.1", tcp4, false}, {"dst 192.168.1.2", tcp4, true},
		{"host 2001:db8::1", tcp6, true}, {"dst host 2001:db8::1", tcp6, false}, {"src 2001:db8::1", tcp6, true},
		{"host 2001:db8::1", tcp4, false}, {"host 10.0.0.1", tcp6, false},
		{"net 10.0.0.0/8", tcp4, true}, {"net 10.0.0.0/8", udp6, false}, {"dst net 192.168.0.0/16", tcp4, true},
		{"src net 192.168.0.0/16", tcp4, false}, {"net 192.168.1.0/25", tcp4, true}, {"net 192.168.1.128/25", tcp4, false},
		{"net 2001:db8::/32", tcp6, true}, {"net 2001:db8:1::/48", tcp6, true}, {"src net 2001:db8:1::/48", tcp6, false},
		{"net 2001:db8::/31", tcp6, true}, {"net 2001:db9::/32", tcp6, false}, {"net fe80::/10", udp6, true},
		{"net 0.0.0.0/0", tcp4, true}, {"net 0.0.0.0/0", tcp6, false}, {"net 10.0.0.1", tcp4, true},
		{"port 443", tcp4, true}, {"port 40000", tcp4, true}, {"port 80", tcp4, false},
		{"src port 443", tcp4, false}, {"dst port 443", tcp4, true}, {"tcp port 443", tcp4, true}, {"udp port 443", tcp4, false},
		{"port 443", tcp6, true}, {"dst port 443", tcp6, true}, {"src port 50000", tcp6, true}, {"port 5353", udp6, true},
		{"port 80", tcp4opt, true}, {"src port 1234", tcp4opt, true}, {"dst port 1234", tcp4opt, false}, // IHL = 8
		{"port 53", udp4, true}, {"port 53", udp4frag, false}, {"udp", udp4frag, true}, // non-first fragment
		{"port 1000", udp6frag, false}, // like libpcap, ip6 port looks at the fixed header only
		{"port 0", icmp4, false}, {"port 0", icmp6, false},
		{"portrange 400-500", tcp4, true}, {"portrange 444-500", tcp4, false}, {"portrange 500-400", tcp4, true},
		{"src portrange 39999-40001", tcp4, true}, {"dst portrange 39999-40001", tcp4, false}, {"portrange 443-443", tcp6, true},
		{"tcp and port 443", tcp4, true}, {"tcp && port 53", udp4, false}, {"tcp or udp", udp4, true}, {"tcp || udp", icmp4, false},
		{"not tcp", tcp4, false}, {"! tcp", udp4, true}, {"not (tcp or udp)", icmp6, true}, {"!(tcp||udp)", tcp6, false},
		{"port 53 or 443", tcp4, true}, {"port 53 or 443", udp4, true}, {"port 53 or 80", tcp4, false},
		{"host 10.0.0.1 and not 8.8.8.8", udp4, false}, {"host 10.0.0.1 and not 8.8.8.8", tcp4, true},
		// and/or have equal precedence, left-associative: (icmp or tcp) and port 443.
		{"icmp or tcp and port 443", icmp4, false}, {"icmp or (tcp and port 443)", icmp4, true},
		{"10.0.0.1", tcp4, true}, {"ip and udp and src port 5353 and dst port 53", udp4, true},
		{"(ip6 and udp) or (ip and icmp)", icmp4, true}, {"(ip6 and udp) or (ip and icmp)", udp6, true},
		{"(ip6 and udp) or (ip and icmp)", tcp4, false},
	}
	for _, c := range cases {
		f, err := Compile(c.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", c.expr, err)
			continue
		}
		b := c.p.build()
		if got := f.Match(b); got != c.want {
			t.Errorf("%q on %+v: got %v, want %v", c.expr, c.p, got, c.want)
		}
		if got := vmMatch(t, f, b); got != c.want {
			t.Errorf("%q on %+v: bpf.VM got %v, want %v", c.expr, c.p, got, c.want)
		}
	}
}

func vmMatch(t testing.TB, f *Filter, b []byte) bool {
	vm, err := bpf.NewVM(f.Program())
	if err != nil {
		t.Fatalf("bpf.NewVM(%q): %v", f, err)
	}
	n, err := vm.Run(b)
	if err != nil {
		t.Fatalf("vm.Run: %v", err)
	}
	return n != 0
}

func TestTruncatedPacketRejected(t *testing.T) {
	f, err := Compile("port 443")
	if err != nil {
		t.Fatal(err)
	}
	b := tcp4.build()
	for n := 0; n < 24; n++ { // the port fields end at byte 24
		if f.Match(b[:n]) {
			t.Errorf("matched a %d-byte truncated packet", n)
		}
	}
	if !f.Match(b[:24]) {
		t.Error("did not match a packet cut right after the ports")
	}
}

func TestProgramShape(t *testing.T) {
	f, err := Compile("ip")
	if err != nil {
		t.Fatal(err)
	}
	want := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x40, SkipTrue: 0, SkipFalse: 1},
		bpf.RetConstant{Val: acceptLen},
		bpf.RetConstant{Val: 0},
	}
	got := f.Program()
	if len(got) != len(want) {
		t.Fatalf("program %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("instruction %d: %#v, want %#v", i, got[i], want[i])
		}
	}
}

// A long disjunction needs conditional jumps farther than 255 instructions:
// the generator must insert trampolines.
func TestLongExpressionTrampolines(t *testing.T) {
	var parts []string
	for i := 0; i < 60; i++ {
		parts = append(parts, "host 2001:db8::a"+itoa(i))
	}
	expr := strings.Join(parts, " or ")
	f, err := Compile(expr)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Program()) < 300 {
		t.Fatalf("program only %d instructions; test does not exercise far jumps", len(f.Program()))
	}
	hit := pkt{v6: true, src: "2001:db8::1", dst: "2001:db8::" + "a0", proto: 17, sport: 1, dport: 2}
	miss := pkt{v6: true, src: "2001:db8::1", dst: "2001:db8::2", proto: 17, sport: 1, dport: 2}
	for _, c := range []struct {
		p    pkt
		want bool
	}{{hit, true}, {miss, false}} {
		b := c.p.build()
		if got := f.Match(b); got != c.want {
			t.Errorf("Match(%s) = %v, want %v", c.p.dst, got, c.want)
		}
		if got := vmMatch(t, f, b); got != c.want {
			t.Errorf("VM(%s) = %v, want %v", c.p.dst, got, c.want)
		}
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		expr   string
		offset int
		msg    string
	}{
		{"", 0, "empty"},
		{"tcp port x", 9, "port number"},
		{"tcp port 70000", 9, "port number"},
		{"host 10.0.0.300", 5, "address"},
		{"net 10.0.0.1/8", 4, "host bits"},
		{"tcp and", 7, "expected a primitive"},
		{"(tcp or udp", 11, "\")\""},
		{"tcp udp", 4, "missing"},
		{"foo", 0, "unknown primitive"},
		{"tcp & udp", 4, "&&"},
		{"portrange 10", 10, "port range"},
		{"proto 300", 6, "protocol number"},
		{"tcp host 1.2.3.4", 4, "missing"},
		{"tcp src host 1.2.3.4", 4, "can only qualify"},
		{"tcp $", 4, "unexpected character"},
	}
	for _, c := range cases {
		_, err := Compile(c.expr)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%q) = %v, want a *SyntaxError", c.expr, err)
			continue
		}
		if se.Offset != c.offset || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("Compile(%q): offset %d msg %q, want offset %d containing %q", c.expr, se.Offset, se.Msg, c.offset, c.msg)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	f, err := Compile("(tcp port 443 or udp port 53) and net 10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	b := tcp4.build()
	if n := testing.AllocsPerRun(100, func() { f.Match(b) }); n != 0 {
		t.Errorf("Match allocates %v times per run", n)
	}
}

var benchExpr = "(tcp port 443 or udp port 53) and not net 192.168.0.0/16"

func BenchmarkMatch(b *testing.B) {
	f, err := Compile(benchExpr)
	if err != nil {
		b.Fatal(err)
	}
	pkts := [][]byte{tcp4.build(), udp4.build(), tcp6.build(), icmp4.build()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.Match(pkts[i&3])
	}
}

// BenchmarkMatchVM runs the same program in golang.org/x/net/bpf's VM, for comparison.
func BenchmarkMatchVM(b *testing.B) {
	f, err := Compile(benchExpr)
	if err != nil {
		b.Fatal(err)
	}
	vm, err := bpf.NewVM(f.Program())
	if err != nil {
		b.Fatal(err)
	}
	pkts := [][]byte{tcp4.build(), udp4.build(), tcp6.build(), icmp4.build()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = vm.Run(pkts[i&3])
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"tcp", "host 10.0.0.1 and port 80", "not (udp or icmp6) || net 2001:db8::/32",
		"src portrange 1-1024 && !dst host ::1", "port 53 or 443", "ip6 proto 58", "tcp port", "((", "a&&b"} {
		f.Add(s)
	}
	pkts := [][]byte{tcp4.build(), udp4frag.build(), tcp4opt.build(), tcp6.build(), udp6frag.build(), icmp6.build(), {0x45}, nil}
	f.Fuzz(func(t *testing.T, expr string) {
		flt, err := Compile(expr)
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && (se.Offset < 0 || se.Offset > len(expr)) {
				t.Fatalf("error offset %d outside expression of %d bytes", se.Offset, len(expr))
			}
			return
		}
		for _, p := range pkts {
			if got, want := flt.Match(p), vmMatch(t, flt, p); got != want {
				t.Fatalf("%q: fast interpreter %v, bpf.VM %v on % x", expr, got, want, p)
			}
		}
	})
}

func FuzzMatch(f *testing.F) {
	f.Add(tcp4.build())
	f.Add(tcp4opt.build())
	f.Add(udp6frag.build())
	flt, err := Compile("(tcp port 443 or udp portrange 50-60) or (net 2001:db8::/32 and not icmp6) or src host 10.1.2.3")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, want := flt.Match(p), vmMatch(t, flt, p); got != want {
			t.Fatalf("fast interpreter %v, bpf.VM %v on % x", got, want, p)
		}
	})
}
