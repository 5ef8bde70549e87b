package samplegen

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
)

// vocabulary is the word list of generated page text.
const vocabulary = (`network traffic flow packet model state space mamba
	byte sequence classifier search result news weather video music image account
	settings privacy help about contact download update release notes server cloud
	storage share folder message call meeting chat channel team calendar document`)

// textBody returns about n bytes of HTML (or plain text when !html) made of
// seeded words.
func textBody(r *detRand, title string, n int, html bool) []byte {
	words := strings.Fields(vocabulary)
	var sb strings.Builder
	if html {
		sb.WriteString("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + title +
			"</title><link rel=\"stylesheet\" href=\"/static/site.css\"></head><body>\n")
	}
	for sb.Len() < n {
		if html {
			sb.WriteString("<p>")
		}
		for i := 0; i < 12; i++ {
			sb.WriteString(words[r.intn(len(words))])
			sb.WriteByte(' ')
		}
		if html {
			sb.WriteString("</p>")
		}
		sb.WriteByte('\n')
	}
	if html {
		sb.WriteString("</body></html>\n")
	}
	return []byte(sb.String())
}

// binaryBody returns n seeded bytes behind a file-type magic.
func binaryBody(r *detRand, magic []byte, n int) []byte {
	b := r.bytes(n)
	copy(b, magic)
	return b
}

// dotServer answers DNS-over-TLS queries (RFC 7858: 2-byte length prefix)
// until the client closes.
func dotServer(cfg func(p *pipe) *tls.Config, zone map[string][]netip.Addr) func(p *pipe, c net.Conn) error {
	return func(p *pipe, c net.Conn) error {
		tc := tls.Server(c, cfg(p))
		defer tc.Close()
		for {
			var l [2]byte
			if _, err := io.ReadFull(tc, l[:]); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return fmt.Errorf("DoT query length: %w", err)
			}
			q := make([]byte, binary.BigEndian.Uint16(l[:]))
			if _, err := io.ReadFull(tc, q); err != nil {
				return fmt.Errorf("DoT query: %w", err)
			}
			ans, err := dnsAnswer(q, zone, 300)
			if err != nil {
				return err
			}
			if _, err := tc.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(ans))), ans...)); err != nil {
				return fmt.Errorf("DoT answer: %w", err)
			}
		}
	}
}

// dotClient sends one DNS-over-TLS query per name and reads the answers.
func dotClient(cfg func(p *pipe) *tls.Config, r *detRand, names []string) func(p *pipe, c net.Conn) error {
	return func(p *pipe, c net.Conn) error {
		tc := tls.Client(c, cfg(p))
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("DoT handshake: %w", err)
		}
		for i, name := range names {
			if i > 0 {
				p.advance(sideClient, r.between(5_000_000, 300_000_000))
			}
			q, err := dnsQuery(uint16(r.intn(65536)), name, 1)
			if err != nil {
				return err
			}
			if _, err := tc.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
				return fmt.Errorf("DoT query %s: %w", name, err)
			}
			var l [2]byte
			if _, err := io.ReadFull(tc, l[:]); err != nil {
				return fmt.Errorf("DoT answer length: %w", err)
			}
			if _, err := io.ReadFull(tc, make([]byte, binary.BigEndian.Uint16(l[:]))); err != nil {
				return fmt.Errorf("DoT answer: %w", err)
			}
		}
		return tc.Close()
	}
}

// BitTorrent peer wire protocol (BEP 3) message ids.
const (
	btUnchoke    = 1
	btInterested = 2
	btBitfield   = 5
	btRequest    = 6
	btPiece      = 7
)

// btHandshake is the 68-byte peer wire handshake.
func btHandshake(infoHash, peerID []byte) []byte {
	b := append([]byte{19}, "BitTorrent protocol"...)
	b = append(b, 0, 0, 0, 0, 0, 0x10, 0, 0x05) // extension protocol, DHT, fast
	b = append(b, infoHash...)
	return append(b, peerID...)
}

// btMsg frames a peer wire message.
func btMsg(id byte, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
	return append(append(b, id), payload...)
}

// btRead reads one length-prefixed peer wire message and returns its id
// and payload.
func btRead(c io.Reader) (byte, []byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n == 0 || n > 1<<17 {
		return 0, nil, fmt.Errorf("bad BitTorrent message length %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, nil, err
	}
	return b[0], b[1:], nil
}

// btPeer is the remote seeder: handshake, bitfield, unchoke on interest,
// pieces on request, until the client closes.
func btPeer(r *detRand, infoHash []byte, pieces int) func(p *pipe, c net.Conn) error {
	return func(p *pipe, c net.Conn) error {
		defer c.Close()
		hs := make([]byte, 68)
		if _, err := io.ReadFull(c, hs); err != nil {
			return fmt.Errorf("BitTorrent handshake: %w", err)
		}
		if string(hs[1:20]) != "BitTorrent protocol" || string(hs[28:48]) != string(infoHash) {
			return errors.New("BitTorrent handshake: wrong protocol or info hash")
		}
		if _, err := c.Write(btHandshake(infoHash, append([]byte("-TR4060-"), r.bytes(12)...))); err != nil {
			return err
		}
		bf := make([]byte, (pieces+7)/8)
		for i := range bf {
			bf[i] = 0xff
		}
		if _, err := c.Write(btMsg(btBitfield, bf)); err != nil {
			return err
		}
		for {
			id, pl, err := btRead(c)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("BitTorrent message: %w", err)
			}
			switch id {
			case btInterested:
				_, err = c.Write(btMsg(btUnchoke, nil))
			case btRequest:
				if len(pl) != 12 {
					return errors.New("BitTorrent request: bad length")
				}
				n := int(binary.BigEndian.Uint32(pl[8:]))
				_, err = c.Write(btMsg(btPiece, append(append([]byte(nil), pl[:8]...), r.bytes(n)...)))
			}
			if err != nil {
				return err
			}
		}
	}
}

// btClient handshakes, declares interest and downloads blocks of piece 0.
func btClient(r *detRand, infoHash []byte, blocks int) func(p *pipe, c net.Conn) error {
	return func(p *pipe, c net.Conn) error {
		if _, err := c.Write(btHandshake(infoHash, append([]byte("-qB4650-"), r.bytes(12)...))); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, make([]byte, 68)); err != nil {
			return fmt.Errorf("BitTorrent peer handshake: %w", err)
		}
		if id, _, err := btRead(c); err != nil || id != btBitfield {
			return fmt.Errorf("BitTorrent bitfield: id %d: %v", id, err)
		}
		if _, err := c.Write(btMsg(btInterested, nil)); err != nil {
			return err
		}
		if id, _, err := btRead(c); err != nil || id != btUnchoke {
			return fmt.Errorf("BitTorrent unchoke: id %d: %v", id, err)
		}
		for b := 0; b < blocks; b++ {
			req := binary.BigEndian.AppendUint32(nil, 0)
			req = binary.BigEndian.AppendUint32(req, uint32(b*8192))
			req = binary.BigEndian.AppendUint32(req, 8192)
			if _, err := c.Write(btMsg(btRequest, req)); err != nil {
				return err
			}
			if id, pl, err := btRead(c); err != nil || id != btPiece || len(pl) != 8+8192 {
				return fmt.Errorf("BitTorrent piece: id %d: %v", id, err)
			}
		}
		return c.Close()
	}
}

// bencodeDHT builds a KRPC message (BEP 5) with the given already-bencoded
// argument dictionary body.
func bencodeDHT(kind, method, tid string, args string) []byte {
	s := "d"
	if kind == "q" {
		s += "1:ad" + args + "e1:q" + fmt.Sprintf("%d:%s", len(method), method)
	} else {
		s += "1:rd" + args + "e"
	}
	s += "1:t" + fmt.Sprintf("%d:%s", len(tid), tid) + "1:y1:" + kind + "e"
	return []byte(s)
}

// bstr bencodes a byte string.
func bstr(b []byte) string { return fmt.Sprintf("%d:%s", len(b), b) }

// stunMessage builds a STUN message (RFC 5389) with the given attributes.
func stunMessage(typ uint16, tid []byte, attrs ...[]byte) []byte {
	var body []byte
	for _, a := range attrs {
		body = append(body, a...)
	}
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	b = binary.BigEndian.AppendUint32(b, 0x2112A442)
	b = append(b, tid...)
	return append(b, body...)
}

// stunAttr encodes one attribute, padded to 32 bits.
func stunAttr(typ uint16, v []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// xorMappedAddress is the XOR-MAPPED-ADDRESS value for an IPv4 address.
func xorMappedAddress(a netip.AddrPort) []byte {
	ip := a.Addr().As4()
	v := []byte{0, 1}
	v = binary.BigEndian.AppendUint16(v, a.Port()^0x2112)
	return binary.BigEndian.AppendUint32(v, binary.BigEndian.Uint32(ip[:])^0x2112A442)
}

// rtpPacket builds an RTP packet (RFC 3550) with dynamic payload type 120.
func rtpPacket(seq uint16, ts, ssrc uint32, payload []byte, marker bool) []byte {
	pt := byte(120)
	if marker {
		pt |= 0x80
	}
	b := []byte{0x80, pt}
	b = binary.BigEndian.AppendUint16(b, seq)
	b = binary.BigEndian.AppendUint32(b, ts)
	b = binary.BigEndian.AppendUint32(b, ssrc)
	return append(b, payload...)
}
