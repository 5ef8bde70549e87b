package repr

import (
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/netmamba/netmamba/flow"
)

// OfficialSlot writes one 320-byte slot the way the official NetMamba
// extractor (read_5hp_list, scapy 2.5) does, for CompatOfficial:
//
//   - only IPv4 has scapy's "IP" layer: IPv6 packets give 320 zero bytes;
//   - header = hex(bytes(packet["IP"])) with src/dst 0.0.0.0 — which runs to
//     the end of the frame, so Ethernet trailer padding is included — with
//     every occurrence of hex(bytes(packet["Raw"])) removed (str.replace on
//     hex strings, so matches at odd nibble offsets count too);
//   - payload = hex(bytes(packet["Raw"])) (Raw plus any trailer padding), or
//     empty when scapy dissects the application protocol (DNS, NTP, DHCP,
//     NetBIOS, SNMP, ISAKMP, ESP, ...: see scapyRawStart) so those bytes
//     stay in the header;
//   - header hex cut/padded to 160 nibbles, payload to 480.
//
// It allocates (hex strings); it is not on the default hot path.
func OfficialSlot(slot []byte, p *flow.Packet) {
	clear(slot[:SlotBytes])
	if p.IPVersion != 4 {
		return
	}
	ip := make([]byte, len(p.L3()))
	copy(ip, p.L3())
	clear(ip[12:20])
	hdrHex := hex.EncodeToString(ip)
	payHex := ""
	if rs := scapyRawStart(p); rs >= 0 && rs < p.L3End() {
		payHex = hex.EncodeToString(ip[rs:])
		hdrHex = strings.ReplaceAll(hdrHex, payHex, "")
	}
	putHexNibbles(slot[:HeaderBytes], hdrHex)
	putHexNibbles(slot[HeaderBytes:SlotBytes], payHex)
}

// putHexNibbles writes hex digits s (possibly of odd length) into dst,
// cropping or zero padding to 2·len(dst) nibbles.
func putHexNibbles(dst []byte, s string) {
	for i := range dst {
		var hi, lo byte
		if 2*i < len(s) {
			hi = unhex(s[2*i])
		}
		if 2*i+1 < len(s) {
			lo = unhex(s[2*i+1])
		}
		dst[i] = hi<<4 | lo
	}
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 0
}

// scapyUDPPorts are UDP ports whose payload scapy 2.5 dissects with its
// default layers (so no Raw layer is left).
var scapyUDPPorts = map[uint16]bool{
	53: true, 5353: true, 5355: true, // DNS, mDNS, LLMNR
	67: true, 68: true, // BOOTP/DHCP
	123: true,            // NTP
	137: true, 138: true, // NBNS, NetBIOS datagram
	161: true, 162: true, // SNMP
	500: true, 4500: true, // ISAKMP, ESP-in-UDP
	520: true, 521: true, // RIP
	1701: true,             // L2TP
	1812: true, 1813: true, // RADIUS
	69:   true,             // TFTP
	1985: true,             // HSRP
	2727: true,             // MGCP
	4789: true,             // VXLAN
	2123: true, 2152: true, // GTP
	546: true, 547: true, // DHCPv6
}

// scapyTCPPorts are TCP ports scapy 2.5 dissects by default.
var scapyTCPPorts = map[uint16]bool{
	139: true, // NetBIOS session
	// SMB over TCP: scapy 2.5 dissects NBTSession + SMB headers and leaves
	// the rest (dialect lists, ...) Raw at a message-dependent offset; not
	// emulated (the 3 ndpi-app SMB flows differ from the golden views).
	445:  true,
	2000: true, // Skinny
}

// scapyRawStart returns where scapy's Raw layer would start within the IP
// datagram (an offset into p.L3()), or -1 when scapy dissects everything.
func scapyRawStart(p *flow.Packet) int {
	if p.IsNonFirstFragment() {
		return p.IPHdrLen
	}
	switch p.Proto {
	case 6:
		if scapyTCPPorts[p.SrcPort] || scapyTCPPorts[p.DstPort] {
			return -1
		}
		return p.IPHdrLen + p.L4HdrLen
	case 17:
		udp := p.IPHdrLen + p.L4HdrLen
		switch {
		case p.SrcPort == 138 || p.DstPort == 138:
			// NBTDatagram: 14 fixed bytes and two 34-byte NetBIOS names;
			// what follows (SMB) is Raw.
			return udp + 14 + 34 + 34
		case p.SrcPort == 137 || p.DstPort == 137:
			// NBNSHeader (12 bytes); the NBNS message kinds this flow set
			// carries (refresh, registration, ...) stay Raw.
			if nbnsDissected(p.L3()[min(udp, len(p.L3())):]) {
				return -1
			}
			return udp + 12
		case p.SrcPort == 500 || p.DstPort == 500:
			// ISAKMP header (28 bytes); with the encryption flag set scapy
			// leaves the body Raw, otherwise it walks the payload chain.
			l3 := p.L3()
			if udp+28 <= len(l3) && l3[udp+19]&1 != 0 {
				return udp + 28
			}
			return -1
		case scapyUDPPorts[p.SrcPort] || scapyUDPPorts[p.DstPort]:
			return -1
		}
		return udp
	case 1:
		l3 := p.L3()
		if p.IPHdrLen < len(l3) {
			switch l3[p.IPHdrLen] {
			case 3, 4, 5, 11, 12: // errors quote an IP header: IPerror/TCPerror/UDPerror
				in := p.IPHdrLen + 8
				if in < len(l3) && l3[in]>>4 == 4 {
					ihl := int(l3[in]&0xf) * 4
					s := in + ihl
					if in+10 <= len(l3) {
						switch l3[in+9] {
						case 6:
							if s+13 <= len(l3) {
								s += int(l3[s+12]>>4) * 4
							} else {
								return -1
							}
						case 17:
							s += 8
						case 1:
							s += 8
						}
					}
					return s
				}
			}
		}
		return p.IPHdrLen + p.L4HdrLen
	case 50: // ESP: spi, seq, data — no Raw
		return -1
	}
	return p.IPHdrLen
}

// nbnsDissected reports whether scapy 2.5 binds a message layer after the
// NBNS header (query request/response, node status request, registration,
// WACK), so no Raw remains; other NBNS messages keep a Raw body.
func nbnsDissected(m []byte) bool {
	if len(m) < 12 {
		return false
	}
	flags := binary.BigEndian.Uint16(m[2:])
	resp, op, nm := flags>>15, (flags>>11)&0xf, (flags>>4)&0x7f
	qd, an, ar := binary.BigEndian.Uint16(m[4:]), binary.BigEndian.Uint16(m[6:]), binary.BigEndian.Uint16(m[10:])
	switch {
	case op == 0 && nm == 0x11 && qd == 1: // query request
	case op == 0 && nm == 0x40 && resp == 1 && an == 1: // query / node status response
	case op == 0 && nm == 0x00 && qd == 1: // node status request
	case op == 5 && nm == 0x11 && qd == 1 && ar == 1: // registration request
	case op == 7 && nm == 0x40 && resp == 1 && an == 1: // WACK response
	default:
		return false
	}
	return true
}

// Official-extractor difference causes, for ExplainOfficial.
const (
	CauseIPv6      = 1 << iota // no scapy "IP" layer: zero slot
	CauseDissected             // scapy dissects the application protocol: header/payload split differs
	CauseTrailer               // bytes after the IP datagram (Ethernet trailer) land in the header or payload
	CauseReplace               // str.replace removes payload hex found elsewhere in the header
)

// ExplainOfficial says which of the four documented differences between
// the official extractor and the offset-correct slot apply to p (a bit set
// of Cause* values; 0 means the two slots must be identical).
func ExplainOfficial(p *flow.Packet) int {
	if p.IPVersion != 4 {
		return CauseIPv6
	}
	c := 0
	rs := scapyRawStart(p)
	off := p.HeaderLen()
	if off > p.L3End() {
		off = p.L3End()
	}
	if rs >= p.L3End() {
		rs = -1
	}
	if rs != off && !(rs == -1 && off == p.L3End()) {
		c |= CauseDissected
	}
	l3 := p.L3()
	if len(l3) > p.L3End() {
		c |= CauseTrailer
	}
	if rs >= 0 {
		h := hex.EncodeToString(l3)
		pay := h[2*rs:]
		if strings.Count(h, pay) > 1 || strings.Index(h, pay) != 2*rs {
			c |= CauseReplace
		}
	}
	return c
}

// ZeroSNI zeroes the host name of a TLS ClientHello's server_name
// extension found in payload (the start of a TLS record), as far as it lies
// within payload. Other payloads are left alone.
func ZeroSNI(payload []byte) {
	b := payload
	// record: type 22, version, length; handshake: type 1, length(3), version(2), random(32)
	if len(b) < 5+4+2+32+1 || b[0] != 22 || b[1] != 3 || b[5] != 1 {
		return
	}
	i := 5 + 4 + 2 + 32
	sid := int(b[i])
	i += 1 + sid
	if i+2 > len(b) {
		return
	}
	i += 2 + int(binary.BigEndian.Uint16(b[i:])) // cipher suites
	if i+1 > len(b) {
		return
	}
	i += 1 + int(b[i]) // compression methods
	if i+2 > len(b) {
		return
	}
	i += 2 // extensions length
	for i+4 <= len(b) {
		et := binary.BigEndian.Uint16(b[i:])
		el := int(binary.BigEndian.Uint16(b[i+2:]))
		i += 4
		if et == 0 {
			// list length(2), type(1), name length(2), name
			j := i + 2
			for j+3 <= len(b) && j+3 <= i+el {
				nl := int(binary.BigEndian.Uint16(b[j+1:]))
				j += 3
				clear(b[min(j, len(b)):min(j+nl, len(b))])
				j += nl
			}
			return
		}
		i += el
	}
}
