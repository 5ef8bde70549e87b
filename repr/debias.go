package repr

import (
	"fmt"
	"strings"
)

// DebiasNone is the debias name meaning "no rewrite at all" (IP addresses
// kept too); it cannot be combined with other names.
const DebiasNone = "none"

// debiasNames lists every debias strategy name in canonical order (the
// order Names returns), with how it sets a Debias field.
var debiasNames = []struct {
	name  string
	group string // strategies of one group exclude each other
	set   func(d *Debias)
	is    func(d *Debias) bool
}{
	{"zero_ip", "ip", func(d *Debias) { d.IP = IPZero }, func(d *Debias) bool { return d.IP == IPZero }},
	{"relative_ip", "ip", func(d *Debias) { d.IP = IPRelative }, func(d *Debias) bool { return d.IP == IPRelative }},
	{"random_ip", "ip", func(d *Debias) { d.IP = IPRandom }, func(d *Debias) bool { return d.IP == IPRandom }},
	{"server_prefix_ip", "ip", func(d *Debias) { d.IP = IPServerPrefix }, func(d *Debias) bool { return d.IP == IPServerPrefix }},
	{"zero_port", "port", func(d *Debias) { d.Port = PortZero }, func(d *Debias) bool { return d.Port == PortZero }},
	{"random_port", "port", func(d *Debias) { d.Port = PortRandom }, func(d *Debias) bool { return d.Port == PortRandom }},
	{"zero_ephemeral_port", "port", func(d *Debias) { d.Port = PortEphemeral }, func(d *Debias) bool { return d.Port == PortEphemeral }},
	{"zero_seq", "seq", func(d *Debias) { d.TCPSeq = SeqZero }, func(d *Debias) bool { return d.TCPSeq == SeqZero }},
	{"relative_seq", "seq", func(d *Debias) { d.TCPSeq = SeqRelative }, func(d *Debias) bool { return d.TCPSeq == SeqRelative }},
	{"zero_options", "options", func(d *Debias) { d.TCPOptions = true }, func(d *Debias) bool { return d.TCPOptions }},
	{"zero_window", "window", func(d *Debias) { d.Window = true }, func(d *Debias) bool { return d.Window }},
	{"zero_checksum", "checksum", func(d *Debias) { d.Checksums = true }, func(d *Debias) bool { return d.Checksums }},
	{"zero_ttl", "ttl", func(d *Debias) { d.TTL = true }, func(d *Debias) bool { return d.TTL }},
	{"zero_ipid", "ipid", func(d *Debias) { d.IPID = true }, func(d *Debias) bool { return d.IPID }},
	{"zero_sni", "sni", func(d *Debias) { d.SNI = true }, func(d *Debias) bool { return d.SNI }},
}

// DebiasNames returns every strategy name ParseDebias accepts, in canonical
// order, then DebiasNone.
func DebiasNames() []string {
	out := make([]string, 0, len(debiasNames)+1)
	for _, n := range debiasNames {
		out = append(out, n.name)
	}
	return append(out, DebiasNone)
}

// ParseDebias turns a list of strategy names (DebiasNames: zero_ip,
// relative_ip, random_ip, server_prefix_ip, zero_port, random_port, zero_ephemeral_port,
// zero_seq, relative_seq, zero_options, zero_window, zero_checksum,
// zero_ttl, zero_ipid, zero_sni) into a
// Debias. The list is complete: a field no name sets is kept unchanged, so
// IP addresses are kept unless zero_ip, relative_ip, random_ip or
// server_prefix_ip is listed.
// "none" alone rewrites nothing. An empty list is NetMamba's default,
// zero_ip (the zero Debias), so a missing list reads as the default. Names
// are case-insensitive and trimmed; unknown names, two strategies for one
// field (zero_ip,random_ip) and "none" with other names are errors. Seed is
// left 0: callers set it for the random strategies.
func ParseDebias(names []string) (Debias, error) {
	if len(names) == 0 {
		return Debias{}, nil
	}
	d := Debias{IP: IPKeep}
	used := map[string]string{} // group -> name
	for _, raw := range names {
		name := strings.ToLower(strings.TrimSpace(raw))
		if name == DebiasNone {
			if len(names) != 1 {
				return Debias{}, fmt.Errorf("debias %q: %q cannot be combined with other strategies", strings.Join(names, ","), DebiasNone)
			}
			return d, nil
		}
		found := false
		for _, n := range debiasNames {
			if n.name != name {
				continue
			}
			if prev, ok := used[n.group]; ok {
				return Debias{}, fmt.Errorf("debias %q: %s and %s both set the %s field", strings.Join(names, ","), prev, name, n.group)
			}
			used[n.group] = name
			n.set(&d)
			found = true
		}
		if !found {
			return Debias{}, fmt.Errorf("debias: unknown strategy %q (want %s)", raw, strings.Join(DebiasNames(), ", "))
		}
	}
	return d, nil
}

// Names returns the strategy names of d in canonical order, the inverse of
// ParseDebias (the seed is not named): the zero Debias gives ["zero_ip"],
// a Debias that rewrites nothing gives ["none"].
func (d Debias) Names() []string {
	var out []string
	for _, n := range debiasNames {
		if n.is(&d) {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return []string{DebiasNone}
	}
	return out
}
