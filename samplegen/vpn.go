package samplegen

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

// IKEv2 constants (RFC 7296).
const (
	ikeSA      = 33
	ikeKE      = 34
	ikeNonce   = 40
	ikeNotify  = 41
	ikeSK      = 46
	ikeSAInit  = 34
	ikeAuthX   = 35
	ikeFlagI   = 0x08
	ikeFlagR   = 0x20
	natDetSrc  = 16388
	natDetDst  = 16389
	ikeVersion = 0x20
)

// ikePayload is one IKEv2 payload: its type and body (without the generic
// header, which ikeMessage writes with the chaining).
type ikePayload struct {
	typ  byte
	body []byte
}

// ikeMessage serialises an IKEv2 message with chained payload headers.
func ikeMessage(spiI, spiR []byte, exch, flags byte, msgID uint32, pls []ikePayload) []byte {
	b := append(append([]byte(nil), spiI...), spiR...)
	first := byte(0)
	if len(pls) > 0 {
		first = pls[0].typ
	}
	b = append(b, first, ikeVersion, exch, flags)
	b = binary.BigEndian.AppendUint32(b, msgID)
	b = binary.BigEndian.AppendUint32(b, 0) // length, set below
	for i, p := range pls {
		next := byte(0)
		if i+1 < len(pls) {
			next = pls[i+1].typ
		}
		if p.typ == ikeSK && len(pls) == 1 {
			next = ikeFirstInner // SK's next payload names the first encrypted one
		}
		b = append(b, next, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(4+len(p.body)))
		b = append(b, p.body...)
	}
	binary.BigEndian.PutUint32(b[24:28], uint32(len(b)))
	return b
}

// ikeFirstInner is the first payload inside IKE_AUTH's SK payload (IDi).
const ikeFirstInner = 35

// ikeProposal is an SA payload body with one IKE proposal:
// AES-GCM-16/256, PRF HMAC-SHA2-256, DH group 31 (Curve25519).
func ikeProposal(num byte) []byte {
	tr := func(last bool, typ byte, id uint16, attr []byte) []byte {
		more := byte(3)
		if last {
			more = 0
		}
		b := []byte{more, 0}
		b = binary.BigEndian.AppendUint16(b, uint16(8+len(attr)))
		b = append(b, typ, 0)
		b = binary.BigEndian.AppendUint16(b, id)
		return append(b, attr...)
	}
	var trs []byte
	trs = append(trs, tr(false, 1, 20, []byte{0x80, 0x0e, 0x01, 0x00})...) // ENCR_AES_GCM_16, key length 256
	trs = append(trs, tr(false, 2, 5, nil)...)                             // PRF_HMAC_SHA2_256
	trs = append(trs, tr(true, 4, 31, nil)...)                             // DH Curve25519
	p := []byte{0, 0}
	p = binary.BigEndian.AppendUint16(p, uint16(8+len(trs)))
	p = append(p, num, 1, 0, 3) // proposal #, protocol IKE, SPI size 0, 3 transforms
	return append(p, trs...)
}

// ikeNotifyBody is a Notify payload body without SPI.
func ikeNotifyBody(typ uint16, data []byte) []byte {
	b := []byte{0, 0}
	b = binary.BigEndian.AppendUint16(b, typ)
	return append(b, data...)
}

// ipsec plays an IKEv2 VPN setup (IKE_SA_INIT on UDP 500, IKE_AUTH over
// NAT traversal on UDP 4500) and ESP-in-UDP tunnel traffic.
func (w *world) ipsec(t int64, r *detRand) error {
	gw := netip.MustParseAddr("185.199.110.24")
	rtt := 28 * ms
	spiI, spiR := r.bytes(8), r.bytes(8)
	zero := make([]byte, 8)
	ke := func() []byte { return append([]byte{0, 31, 0, 0}, r.bytes(32)...) }
	init := ikeMessage(spiI, zero, ikeSAInit, ikeFlagI, 0, []ikePayload{
		{ikeSA, ikeProposal(1)}, {ikeKE, ke()}, {ikeNonce, r.bytes(32)},
		{ikeNotify, ikeNotifyBody(natDetSrc, r.bytes(20))}, {ikeNotify, ikeNotifyBody(natDetDst, r.bytes(20))},
	})
	resp := ikeMessage(spiI, spiR, ikeSAInit, ikeFlagR, 0, []ikePayload{
		{ikeSA, ikeProposal(1)}, {ikeKE, ke()}, {ikeNonce, r.bytes(32)},
		{ikeNotify, ikeNotifyBody(natDetSrc, r.bytes(20))}, {ikeNotify, ikeNotifyBody(natDetDst, r.bytes(20))},
	})
	cli500 := w.clientNode(500, false)
	w.addUDP("IPSec", "IKEv2 IKE_SA_INIT", cli500, w.remoteNode(netip.AddrPortFrom(gw, 500), 52), []dgram{
		{true, t, init}, {false, t + rtt + 2*ms, resp},
	})
	// NAT-T: non-ESP marker (4 zero bytes) before IKE; ESP packets start with their SPI.
	sk := func(n int) []ikePayload { return []ikePayload{{ikeSK, r.bytes(8 + n + 16)}} } // IV, ciphertext, ICV
	marker := []byte{0, 0, 0, 0}
	t1 := t + rtt + 8*ms
	auth := append(marker, ikeMessage(spiI, spiR, ikeAuthX, ikeFlagI, 1, sk(380))...)
	authR := append(marker, ikeMessage(spiI, spiR, ikeAuthX, ikeFlagR, 1, sk(290))...)
	dgs := []dgram{{true, t1, auth}, {false, t1 + rtt + 5*ms, authR}}
	spiOut, spiIn := r.bytes(4), r.bytes(4)
	esp := func(spi []byte, seq uint32, n int) []byte {
		b := append([]byte(nil), spi...)
		b = binary.BigEndian.AppendUint32(b, seq)
		return append(b, r.bytes(8+n+16)...) // IV, padded ciphertext, ICV
	}
	tt := t1 + rtt + 10*ms
	for i := 0; i < 8; i++ {
		dgs = append(dgs, dgram{true, tt, esp(spiOut, uint32(i+1), 64+16*r.intn(40))})
		dgs = append(dgs, dgram{false, tt + rtt + r.between(0, 2*ms), esp(spiIn, uint32(i+1), 96+16*r.intn(80))})
		tt += r.between(5*ms, 120*ms)
	}
	sortDgrams(dgs)
	w.addUDP("IPSec", "IKEv2 IKE_AUTH + ESP over UDP 4500 (NAT-T)", w.clientNode(4500, false), w.remoteNode(netip.AddrPortFrom(gw, 4500), 52), dgs)
	return nil
}

// dnscrypt plays a DNSCrypt v2 client: the certificate TXT query, then
// encrypted queries (client magic, public key, nonce, box) and answers
// (resolver magic, nonce, box) to the resolver on UDP 443.
func (w *world) dnscrypt(t int64, r *detRand) error {
	resolver := w.remoteNode(netip.MustParseAddrPort("51.158.166.97:443"), 50)
	rtt := 24 * ms
	provider := "2.dnscrypt-cert.scaleway-fr."
	q, err := dnsQuery(uint16(r.intn(65536)), provider, dnsmessage.TypeTXT)
	if err != nil {
		return fmt.Errorf("samplegen: DNSCrypt certificate query: %w", err)
	}
	clientMagic := r.bytes(8)
	cert := []byte("DNSC\x00\x02\x00\x00")
	cert = append(cert, r.bytes(64+32)...) // signature, resolver public key
	cert = append(cert, clientMagic...)
	cert = binary.BigEndian.AppendUint32(cert, uint32(t/1e9/86400)) // serial
	cert = binary.BigEndian.AppendUint32(cert, uint32(t/1e9-86400))
	cert = binary.BigEndian.AppendUint32(cert, uint32(t/1e9+86400*7))
	ans, err := txtAnswer(q, string(cert))
	if err != nil {
		return fmt.Errorf("samplegen: DNSCrypt certificate answer: %w", err)
	}
	w.addUDP("DNScrypt", "DNSCrypt certificate query", w.clientNode(w.ephemeral(), false), resolver, []dgram{
		{true, t, q}, {false, t + rtt, ans},
	})
	pk := r.bytes(32)
	var dgs []dgram
	tt := t + rtt + 2*ms
	for i := 0; i < 3; i++ {
		query := append(append(append([]byte(nil), clientMagic...), pk...), r.bytes(12)...)
		query = append(query, r.bytes(256+16)...) // padded query + MAC
		reply := append([]byte("r6fnvWj8"), r.bytes(24)...)
		reply = append(reply, r.bytes(int(r.between(60, 180))+16)...)
		dgs = append(dgs, dgram{true, tt, query}, dgram{false, tt + rtt + r.between(1*ms, 30*ms), reply})
		tt += r.between(50*ms, 900*ms)
	}
	sortDgrams(dgs)
	w.addUDP("DNScrypt", "DNSCrypt encrypted queries", w.clientNode(w.ephemeral(), false), resolver, dgs)
	return nil
}

// txtAnswer answers query with one TXT record.
func txtAnswer(query []byte, txt string) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	qn, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, Authoritative: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(qn); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if err := b.TXTResource(dnsmessage.ResourceHeader{Name: qn.Name, Class: dnsmessage.ClassINET, TTL: 86400}, dnsmessage.TXTResource{TXT: []string{txt}}); err != nil {
		return nil, err
	}
	return b.Finish()
}
