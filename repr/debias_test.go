package repr

import (
	"slices"
	"strings"
	"testing"
)

func TestParseDebias(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  Debias
		canon []string
	}{
		{nil, Debias{IP: IPZero}, []string{"zero_ip"}},
		{[]string{"zero_ip"}, Debias{IP: IPZero}, []string{"zero_ip"}},
		{[]string{"none"}, Debias{IP: IPKeep}, []string{"none"}},
		{[]string{"zero_port"}, Debias{IP: IPKeep, Port: PortZero}, []string{"zero_port"}},
		{[]string{" Zero_SNI", "random_ip", "relative_seq", "zero_ttl", "zero_checksum", "zero_window", "zero_options", "random_port"},
			Debias{IP: IPRandom, Port: PortRandom, TCPSeq: SeqRelative, TCPOptions: true, Window: true, Checksums: true, TTL: true, SNI: true},
			[]string{"random_ip", "random_port", "relative_seq", "zero_options", "zero_window", "zero_checksum", "zero_ttl", "zero_sni"}},
		{[]string{"relative_ip", "zero_seq"}, Debias{IP: IPRelative, TCPSeq: SeqZero}, []string{"relative_ip", "zero_seq"}},
	} {
		got, err := ParseDebias(c.names)
		if err != nil || got != c.want {
			t.Errorf("ParseDebias(%q) = %+v, %v; want %+v", c.names, got, err, c.want)
			continue
		}
		if n := got.Names(); !slices.Equal(n, c.canon) {
			t.Errorf("ParseDebias(%q).Names() = %q, want %q", c.names, n, c.canon)
		}
		back, err := ParseDebias(got.Names())
		if err != nil || back != got {
			t.Errorf("round trip of %q: %+v, %v", c.names, back, err)
		}
	}
	for _, c := range []struct {
		names []string
		want  string
	}{
		{[]string{"zero_ip", "random_ip"}, "both set the ip field"},
		{[]string{"zero_port", "random_port"}, "both set the port field"},
		{[]string{"none", "zero_ip"}, "cannot be combined"},
		{[]string{"zero_mac"}, `unknown strategy "zero_mac"`},
		{[]string{""}, "unknown strategy"},
	} {
		if _, err := ParseDebias(c.names); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseDebias(%q) err = %v, want %q", c.names, err, c.want)
		}
	}
	// Every listed name parses alone and names itself.
	for _, n := range DebiasNames() {
		d, err := ParseDebias([]string{n})
		if err != nil || !slices.Equal(d.Names(), []string{n}) {
			t.Errorf("%s: %+v %v names %q", n, d, err, d.Names())
		}
	}
}
