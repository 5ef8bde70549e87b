package samplegen

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"time"
)

// QUIC v1 (RFC 9000/9001) pieces: enough to carry a real crypto/tls QUIC
// handshake in correctly protected Initial, Handshake and 1-RTT packets.

// quicInitialSalt is the RFC 9001 v1 initial salt.
const quicInitialSalt = "\x38\x76\x2c\xf7\xf5\x59\x34\xb3\x4d\x17\x9a\xe6\xa4\xc8\x0c\xad\xcc\xbb\x7f\x0a"

// quicVarint appends v in QUIC's variable-length integer encoding.
func quicVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return binary.BigEndian.AppendUint16(b, uint16(v)|0x4000)
	case v < 1<<30:
		return binary.BigEndian.AppendUint32(b, uint32(v)|0x80000000)
	}
	return binary.BigEndian.AppendUint64(b, v|0xc000000000000000)
}

// hkdfExpandLabel is TLS 1.3's HKDF-Expand-Label with an empty context.
func hkdfExpandLabel[H hash.Hash](h func() H, secret []byte, label string, n int) ([]byte, error) {
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "+label...)
	info = append(info, 0)
	return hkdf.Expand(h, secret, string(info), n)
}

// quicKeys protect packets of one direction at one encryption level.
type quicKeys struct {
	aead cipher.AEAD
	iv   []byte
	hp   cipher.Block
}

// newQUICKeys derives packet and header protection keys from a secret for
// an AES-GCM suite.
func newQUICKeys(suite uint16, secret []byte) (*quicKeys, error) {
	var key, iv, hp []byte
	var err error
	derive := func(h func() hash.Hash, keyLen int) {
		if key, err = hkdfExpandLabel(h, secret, "quic key", keyLen); err != nil {
			return
		}
		if iv, err = hkdfExpandLabel(h, secret, "quic iv", 12); err != nil {
			return
		}
		hp, err = hkdfExpandLabel(h, secret, "quic hp", keyLen)
	}
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		derive(sha256.New, 16)
	case tls.TLS_AES_256_GCM_SHA384:
		derive(sha512.New384, 32)
	default:
		return nil, fmt.Errorf("QUIC packet protection for %s not implemented", tls.CipherSuiteName(suite))
	}
	if err != nil {
		return nil, err
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	hpb, err := aes.NewCipher(hp)
	if err != nil {
		return nil, err
	}
	return &quicKeys{aead: aead, iv: iv, hp: hpb}, nil
}

// initialKeys derives the client and server Initial keys from the
// client's first destination connection ID.
func initialKeys(dcid []byte) (client, server *quicKeys, err error) {
	prk, err := hkdf.Extract(sha256.New, dcid, []byte(quicInitialSalt))
	if err != nil {
		return nil, nil, err
	}
	cs, err := hkdfExpandLabel(sha256.New, prk, "client in", 32)
	if err != nil {
		return nil, nil, err
	}
	ss, err := hkdfExpandLabel(sha256.New, prk, "server in", 32)
	if err != nil {
		return nil, nil, err
	}
	if client, err = newQUICKeys(tls.TLS_AES_128_GCM_SHA256, cs); err != nil {
		return nil, nil, err
	}
	server, err = newQUICKeys(tls.TLS_AES_128_GCM_SHA256, ss)
	return client, server, err
}

// QUIC packet types (long header) and the short-header marker.
const (
	quicInitial   = 0
	quicHandshake = 2
	quicShort     = -1
)

// quicPacket builds one protected packet. For long headers dcid/scid are
// both written; a short header carries dcid only. pn uses 2 bytes.
func quicPacket(k *quicKeys, typ int, dcid, scid []byte, pn uint64, payload []byte) []byte {
	const pnLen = 2
	for pnLen+len(payload) < 8 { // the 16-byte sample at pnOff+4 must lie in the packet (tag included)
		payload = append(payload, 0) // PADDING
	}
	var hdr []byte
	if typ == quicShort {
		hdr = append([]byte{0x40 | (pnLen - 1)}, dcid...)
	} else {
		hdr = []byte{0xc0 | byte(typ)<<4 | (pnLen - 1), 0, 0, 0, 1, byte(len(dcid))}
		hdr = append(hdr, dcid...)
		hdr = append(hdr, byte(len(scid)))
		hdr = append(hdr, scid...)
		if typ == quicInitial {
			hdr = quicVarint(hdr, 0) // no token
		}
		hdr = quicVarint(hdr, uint64(pnLen+len(payload)+16))
	}
	pnOff := len(hdr)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(pn))
	nonce := append([]byte(nil), k.iv...)
	for i := 0; i < 8; i++ {
		nonce[len(nonce)-1-i] ^= byte(pn >> (8 * i))
	}
	pkt := k.aead.Seal(hdr, nonce, payload, hdr)
	var mask [16]byte
	k.hp.Encrypt(mask[:], pkt[pnOff+4:pnOff+4+16])
	if typ == quicShort {
		pkt[0] ^= mask[0] & 0x1f
	} else {
		pkt[0] ^= mask[0] & 0x0f
	}
	for i := 0; i < pnLen; i++ {
		pkt[pnOff+i] ^= mask[1+i]
	}
	return pkt
}

// QUIC frame builders.
func quicCrypto(off uint64, data []byte) []byte {
	b := quicVarint(quicVarint([]byte{0x06}, off), uint64(len(data)))
	return append(b, data...)
}

func quicAck(largest uint64, delay uint64) []byte {
	return quicVarint(quicVarint(quicVarint(quicVarint([]byte{0x02}, largest), delay), 0), largest)
}

func quicStream(id, off uint64, data []byte, fin bool) []byte {
	t := byte(0x0e) // OFF|LEN
	if fin {
		t |= 1
	}
	b := quicVarint(quicVarint(quicVarint([]byte{t}, id), off), uint64(len(data)))
	return append(b, data...)
}

// quicTransportParams encodes transport parameters (RFC 9000 §18).
func quicTransportParams(scid, odcid []byte) []byte {
	var b []byte
	put := func(id uint64, v []byte) {
		b = quicVarint(quicVarint(b, id), uint64(len(v)))
		b = append(b, v...)
	}
	num := func(v uint64) []byte { return quicVarint(nil, v) }
	if odcid != nil {
		put(0x00, odcid) // original_destination_connection_id
	}
	put(0x01, num(30000))    // max_idle_timeout, ms
	put(0x03, num(1472))     // max_udp_payload_size
	put(0x04, num(15728640)) // initial_max_data
	put(0x05, num(6291456))  // initial_max_stream_data_bidi_local
	put(0x06, num(6291456))  // initial_max_stream_data_bidi_remote
	put(0x07, num(6291456))  // initial_max_stream_data_uni
	put(0x08, num(100))      // initial_max_streams_bidi
	put(0x09, num(103))      // initial_max_streams_uni
	put(0x0f, scid)          // initial_source_connection_id
	return b
}

// quicEndpoint drives one crypto/tls QUIC handshake and collects its
// output per encryption level.
type quicEndpoint struct {
	conn   *tls.QUICConn
	out    [4][]byte // handshake bytes not yet sent, per level
	wkeys  [4]*quicKeys
	params []byte
}

// drain processes the connection's pending events.
func (q *quicEndpoint) drain() error {
	for {
		e := q.conn.NextEvent()
		switch e.Kind {
		case tls.QUICNoEvent:
			return nil
		case tls.QUICWriteData:
			q.out[e.Level] = append(q.out[e.Level], e.Data...)
		case tls.QUICSetWriteSecret:
			k, err := newQUICKeys(e.Suite, e.Data)
			if err != nil {
				return errQUICSuite
			}
			q.wkeys[e.Level] = k
		case tls.QUICTransportParametersRequired:
			q.conn.SetTransportParameters(q.params)
		}
	}
}

// take returns and clears the pending handshake bytes of a level.
func (q *quicEndpoint) take(level tls.QUICEncryptionLevel) []byte {
	d := q.out[level]
	q.out[level] = nil
	return d
}

// errQUICSuite reports a negotiated suite the generator cannot protect.
var errQUICSuite = errors.New("samplegen: QUIC needs an AES-GCM TLS 1.3 suite")

// padTo appends PADDING frames so a datagram of fixed bytes plus a packet
// with this payload reaches size bytes (header and tag are overhead bytes).
func padTo(payload []byte, fixed, overhead, size int) []byte {
	if n := size - fixed - overhead - len(payload); n > 0 {
		payload = append(payload, make([]byte, n)...)
	}
	return payload
}

// h3Frame is an HTTP/3 frame: type, length, payload.
func h3Frame(typ uint64, payload []byte) []byte {
	return append(quicVarint(quicVarint(nil, typ), uint64(len(payload))), payload...)
}

// quicFlow plays an HTTP/3 connection: a real crypto/tls QUIC handshake
// (SNI host, ALPN h3) in protected Initial and Handshake packets, then
// 1-RTT stream data both ways and a close, all correctly encrypted so
// dissectors can decrypt the Initial packets. Only AES-GCM suites are
// implemented: where crypto/tls negotiates ChaCha20-Poly1305 (CPUs without
// AES instructions) it returns errQUICSuite and the flow is left out.
func (w *world) quicFlow(t0 int64, app, host string, server netip.Addr, rtt int64, ttl uint8, r *detRand) error {
	ccfgf, scfgf, err := w.tlsConfigs(host, 0, []string{"h3"})
	if err != nil {
		return err
	}
	var clock [2]int64
	cc, sc := ccfgf(nil), scfgf(nil)
	cc.Time = func() time.Time { return time.Unix(0, clock[0]) }
	sc.Time = func() time.Time { return time.Unix(0, clock[1]) }
	cc.MinVersion, sc.MinVersion = tls.VersionTLS13, tls.VersionTLS13
	dcid, cscid, sscid := r.bytes(8), r.bytes(8), r.bytes(8)
	cli := &quicEndpoint{conn: tls.QUICClient(&tls.QUICConfig{TLSConfig: cc}), params: quicTransportParams(cscid, nil)}
	srv := &quicEndpoint{conn: tls.QUICServer(&tls.QUICConfig{TLSConfig: sc}), params: quicTransportParams(sscid, dcid)}
	defer cli.conn.Close()
	defer srv.conn.Close()
	cli.conn.SetTransportParameters(cli.params)
	ckeys, skeys, err := initialKeys(dcid)
	if err != nil {
		return err
	}
	const (
		lI = tls.QUICEncryptionLevelInitial
		lH = tls.QUICEncryptionLevelHandshake
		lA = tls.QUICEncryptionLevelApplication
	)
	longOv := func(initial bool) int { // header (8-byte CIDs, 2-byte length and PN) + tag
		n := 1 + 4 + 1 + 8 + 1 + 8 + 2 + 2 + 16
		if initial {
			n++
		}
		return n
	}
	owd := rtt / 2
	var dgs []dgram
	send := func(fromClient bool, at int64, pkts ...[]byte) {
		var d []byte
		for _, p := range pkts {
			d = append(d, p...)
		}
		if !fromClient {
			at += owd // captured next to the client
		}
		dgs = append(dgs, dgram{fromClient, at, d})
	}
	ctx := context.Background()

	// 1. Client Initial: ClientHello, datagram padded to 1200 bytes.
	clock[0] = t0
	if err := cli.conn.Start(ctx); err != nil {
		return fmt.Errorf("samplegen: QUIC client: %w", err)
	}
	if err := cli.drain(); err != nil {
		return err
	}
	ch := cli.take(lI)
	send(true, t0, quicPacket(ckeys, quicInitial, dcid, cscid, 0, padTo(quicCrypto(0, ch), 0, longOv(true), 1200)))

	// 2. Server: Initial (ACK, ServerHello) + Handshake (EE .. Finished).
	tS := t0 + owd + r.between(300_000, 1_500_000)
	clock[1] = tS
	if err := srv.conn.Start(ctx); err != nil {
		return fmt.Errorf("samplegen: QUIC server: %w", err)
	}
	if err := srv.conn.HandleData(lI, ch); err != nil {
		return fmt.Errorf("samplegen: QUIC server handshake: %w", err)
	}
	if err := srv.drain(); err != nil {
		return err
	}
	if srv.wkeys[lH] == nil || srv.wkeys[lA] == nil {
		return errQUICSuite
	}
	sh, hs := srv.take(lI), srv.take(lH)
	sInit := quicPacket(skeys, quicInitial, cscid, sscid, 0, append(quicAck(0, 40), quicCrypto(0, sh)...))
	var shsPN uint64
	for off, at := 0, tS; off < len(hs); at += 20_000 {
		fixed := 0
		if off == 0 {
			fixed = len(sInit)
		}
		end := min(off+1200-fixed-longOv(false)-8, len(hs))
		pl := padTo(quicCrypto(uint64(off), hs[off:end]), fixed, longOv(false), 1200)
		pkt := quicPacket(srv.wkeys[lH], quicHandshake, cscid, sscid, shsPN, pl)
		if off == 0 {
			send(false, at, sInit, pkt)
		} else {
			send(false, at, pkt)
		}
		shsPN++
		off = end
	}
	lastS := tS + int64(shsPN-1)*20_000

	// 3. Client: Initial ACK + Handshake (ACK, Finished), then the request.
	tC := lastS + owd + r.between(200_000, 900_000)
	clock[0] = tC
	if err := cli.conn.HandleData(lI, sh); err != nil {
		return fmt.Errorf("samplegen: QUIC client ServerHello: %w", err)
	}
	if err := cli.conn.HandleData(lH, hs); err != nil {
		return fmt.Errorf("samplegen: QUIC client handshake: %w", err)
	}
	if err := cli.drain(); err != nil {
		return err
	}
	if cli.wkeys[lH] == nil || cli.wkeys[lA] == nil {
		return errQUICSuite
	}
	fin := cli.take(lH)
	cInit := quicPacket(ckeys, quicInitial, sscid, cscid, 1, padTo(quicAck(0, 0), 0, 0, 20))
	cHS := quicPacket(cli.wkeys[lH], quicHandshake, sscid, cscid, 0,
		padTo(append(quicAck(shsPN-1, 30), quicCrypto(0, fin)...), len(cInit), longOv(false), 1200))
	send(true, tC, cInit, cHS)
	settings := h3Frame(0x04, []byte{0x01, 0x40, 0x00, 0x06, 0x44, 0x00, 0x07, 0x40, 0x64}) // QPACK table, max field section, blocked streams
	request := h3Frame(0x01, append([]byte{0x00, 0x00}, []byte(":method GET :scheme https :authority "+host+" :path /search?q=netmamba user-agent "+uaFirefox)...))
	req := append(quicStream(2, 0, append([]byte{0x00}, settings...), false), quicStream(0, 0, request, true)...)
	send(true, tC+25_000, quicPacket(cli.wkeys[lA], quicShort, sscid, nil, 0, req))

	// 4. Server: Handshake ACK, HANDSHAKE_DONE and settings, then the response.
	tS2 := tC + 25_000 + owd + r.between(500_000, 4_000_000)
	clock[1] = tS2
	if err := srv.conn.HandleData(lH, fin); err != nil {
		return fmt.Errorf("samplegen: QUIC server Finished: %w", err)
	}
	if err := srv.drain(); err != nil {
		return err
	}
	sHSAck := quicPacket(srv.wkeys[lH], quicHandshake, cscid, sscid, shsPN, quicAck(0, 10))
	first := append(append([]byte{0x1e}, quicAck(0, 20)...), quicStream(3, 0, append([]byte{0x00}, settings...), false)...)
	send(false, tS2, sHSAck, quicPacket(srv.wkeys[lA], quicShort, cscid, nil, 0, first))
	body := textBody(r, "netmamba - Google Search", 3000, true)
	resp := append(h3Frame(0x01, []byte(":status 200 content-type text/html; charset=UTF-8 server gws")), h3Frame(0x00, body)...)
	var spn uint64 = 1
	at := tS2 + 40_000
	for off := 0; off < len(resp); spn++ {
		end := min(off+1150, len(resp))
		send(false, at, quicPacket(srv.wkeys[lA], quicShort, cscid, nil, spn, quicStream(0, uint64(off), resp[off:end], end == len(resp))))
		off = end
		at += 25_000
	}

	// 5. Client acknowledges, then closes the idle connection (H3_NO_ERROR).
	tAck := at + owd
	send(true, tAck, quicPacket(cli.wkeys[lA], quicShort, sscid, nil, 1, quicAck(spn-1, 3000)))
	closeFrame := quicVarint(quicVarint([]byte{0x1d}, 0x100), 0)
	send(true, tAck+r.between(300*ms, 2000*ms), quicPacket(cli.wkeys[lA], quicShort, sscid, nil, 2, closeFrame))

	sortDgrams(dgs)
	w.addUDP(app, "QUIC/HTTP3 "+host, w.clientNode(w.ephemeral(), server.Is6()), w.remoteNode(netip.AddrPortFrom(server, 443), ttl), dgs)
	return nil
}
