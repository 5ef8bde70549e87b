package samplegen

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// mdnsQuery builds an mDNS question set (ID 0, no recursion).
func mdnsQuery(services ...string) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 128), dnsmessage.Header{})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	for _, s := range services {
		n, err := dnsmessage.NewName(s)
		if err != nil {
			return nil, err
		}
		if err := b.Question(dnsmessage.Question{Name: n, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// mdnsAnnounce builds a device's mDNS response for a service instance:
// PTR answer, SRV/TXT/A additionals with the cache-flush bit.
func mdnsAnnounce(service, instance, hostname string, ip netip.Addr, port uint16, txt []string) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{Response: true, Authoritative: true})
	b.EnableCompression()
	svc, err := dnsmessage.NewName(service)
	if err != nil {
		return nil, err
	}
	inst, err := dnsmessage.NewName(instance + "." + service)
	if err != nil {
		return nil, err
	}
	host, err := dnsmessage.NewName(hostname)
	if err != nil {
		return nil, err
	}
	const flush = dnsmessage.Class(0x8001)
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if err := b.PTRResource(dnsmessage.ResourceHeader{Name: svc, Class: dnsmessage.ClassINET, TTL: 120}, dnsmessage.PTRResource{PTR: inst}); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	if err := b.SRVResource(dnsmessage.ResourceHeader{Name: inst, Class: flush, TTL: 120}, dnsmessage.SRVResource{Port: port, Target: host}); err != nil {
		return nil, err
	}
	if err := b.TXTResource(dnsmessage.ResourceHeader{Name: inst, Class: flush, TTL: 4500}, dnsmessage.TXTResource{TXT: txt}); err != nil {
		return nil, err
	}
	if err := b.AResource(dnsmessage.ResourceHeader{Name: host, Class: flush, TTL: 120}, dnsmessage.AResource{A: ip.As4()}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// nbnsName encodes a NetBIOS name (padded to 15 bytes plus a suffix byte)
// with RFC 1001 first-level encoding.
func nbnsName(name string, suffix byte) []byte {
	raw := []byte(fmt.Sprintf("%-15s", strings.ToUpper(name)))[:15]
	raw = append(raw, suffix)
	out := []byte{32}
	for _, c := range raw {
		out = append(out, 'A'+c>>4, 'A'+c&0x0f)
	}
	return append(out, 0)
}

// nbnsQuery is a broadcast NetBIOS name query (NB record, class IN).
func nbnsQuery(id uint16, name string, suffix byte) []byte {
	b := make([]byte, 12, 50)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], 0x0110) // query, RD, broadcast
	binary.BigEndian.PutUint16(b[4:], 1)
	b = append(b, nbnsName(name, suffix)...)
	return append(b, 0x00, 0x20, 0x00, 0x01)
}

// nbnsResponse is the positive name query response of the name's owner.
func nbnsResponse(id uint16, name string, suffix byte, ip netip.Addr) []byte {
	b := make([]byte, 12, 62)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], 0x8500) // response, AA, RD
	binary.BigEndian.PutUint16(b[6:], 1)
	b = append(b, nbnsName(name, suffix)...)
	b = append(b, 0x00, 0x20, 0x00, 0x01)
	b = binary.BigEndian.AppendUint32(b, 300000) // TTL
	b = append(b, 0x00, 0x06, 0x00, 0x00)        // RDLENGTH 6, NB flags: B-node, unique
	a := ip.As4()
	return append(b, a[:]...)
}

// ssdpMSearch is an SSDP discovery request (HTTP over UDP).
func ssdpMSearch(st string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: " + st +
		"\r\nUSER-AGENT: Linux/6.8 UPnP/2.0 netmamba-sample/1.0\r\n\r\n")
}

// ssdpReply is a device's unicast answer to an M-SEARCH.
func ssdpReply(st, location, usn, server, date string) []byte {
	return []byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nDATE: " + date + "\r\nEXT:\r\nLOCATION: " + location +
		"\r\nSERVER: " + server + "\r\nST: " + st + "\r\nUSN: " + usn + "::" + st + "\r\n\r\n")
}

// ssdpNotify is a device's multicast alive announcement.
func ssdpNotify(nt, location, usn, server string) []byte {
	return []byte("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\nLOCATION: " + location +
		"\r\nNT: " + nt + "\r\nNTS: ssdp:alive\r\nSERVER: " + server + "\r\nUSN: " + usn + "::" + nt + "\r\n\r\n")
}
