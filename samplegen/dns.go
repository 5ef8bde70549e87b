package samplegen

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// defaultZone is the simulated resolver's view of the names the sample
// visits (addresses in the operators' real ranges, for realism).
func defaultZone() map[string][]netip.Addr {
	z := map[string][]netip.Addr{}
	add := func(name string, addrs ...string) {
		for _, a := range addrs {
			z[name] = append(z[name], netip.MustParseAddr(a))
		}
	}
	add("www.google.com.", "142.250.185.68", "2a00:1450:4001:82b::2004")
	add("www.gstatic.com.", "142.250.186.35")
	add("fonts.googleapis.com.", "142.250.185.106")
	add("connectivitycheck.gstatic.com.", "142.250.186.67")
	add("www.dropbox.com.", "162.125.66.18")
	add("discord.com.", "162.159.137.232", "162.159.128.233")
	add("teams.microsoft.com.", "52.113.194.132")
	add("login.microsoftonline.com.", "20.190.160.20")
	add("zoom.us.", "170.114.52.2")
	add("web.whatsapp.com.", "157.240.9.53")
	add("g.whatsapp.net.", "157.240.9.60")
	add("neverssl.com.", "34.223.124.45")
	add("deb.debian.org.", "151.101.66.132")
	add("dns.google.", "8.8.8.8", "8.8.4.4")
	add("cloudflare-dns.com.", "104.16.248.249")
	add("router.bittorrent.com.", "67.215.246.10")
	return z
}

// dnsQuery builds a recursive query for name with an EDNS0 OPT record.
func dnsQuery(id uint16, name string, qtype dnsmessage.Type) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, fmt.Errorf("dns name %q: %w", name, err)
	}
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: n, Type: qtype, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// dnsAnswer parses a query and answers it from zone, as a recursive
// resolver would (NXDOMAIN for unknown names, empty answer for a missing
// record type).
func dnsAnswer(query []byte, zone map[string][]netip.Addr, ttl uint32) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, fmt.Errorf("parsing DNS query: %w", err)
	}
	q, err := p.Question()
	if err != nil {
		return nil, fmt.Errorf("parsing DNS question: %w", err)
	}
	name := strings.ToLower(q.Name.String())
	addrs, known := zone[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 256), rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	for _, a := range addrs {
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: ttl}
		switch {
		case a.Is4() && q.Type == dnsmessage.TypeA:
			err = b.AResource(hdr, dnsmessage.AResource{A: a.As4()})
		case a.Is6() && q.Type == dnsmessage.TypeAAAA:
			err = b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// lookup runs a DNS query for name from a fresh ephemeral port to the home
// router's resolver at t0 and records the flow. It returns when the answer
// reached the client.
func (w *world) lookup(t0 int64, name string, qtype dnsmessage.Type) (int64, error) {
	r := w.newRand()
	q, err := dnsQuery(uint16(r.intn(65536)), name, qtype)
	if err != nil {
		return 0, fmt.Errorf("samplegen: DNS query %s: %w", name, err)
	}
	ans, err := dnsAnswer(q, w.zone, uint32(r.between(30, 300)))
	if err != nil {
		return 0, fmt.Errorf("samplegen: DNS answer %s: %w", name, err)
	}
	cli := w.clientNode(w.ephemeral(), false)
	srv := node{mac: w.routerMAC, addr: netip.AddrPortFrom(w.router4, 53), ttl: 64}
	tAns := t0 + r.between(400_000, 25_000_000) // cache hit .. upstream lookup
	w.addUDP("DNS", fmt.Sprintf("DNS %s %s", strings.TrimPrefix(qtype.String(), "Type"), name), cli, srv, []dgram{
		{fromClient: true, t: t0, payload: q},
		{fromClient: false, t: tAns, payload: ans},
	})
	return tAns, nil
}
