// Package flow decodes link-layer frames down to the transport header and
// assembles packets into bidirectional or unidirectional flows.
package flow

// Key identifies a flow: the 5-tuple plus the outermost VLAN ID.
// Addresses are stored in 16 bytes; IPv4 addresses use the first 4 bytes
// and IPVersion tells which.
type Key struct {
	SrcIP, DstIP     [16]byte
	SrcPort, DstPort uint16
	Proto            uint8 // IANA protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...)
	IPVersion        uint8 // 4 or 6
	VLAN             uint16
}

// Stats are a flow's nfstream-style counters. "Src" is the flow's initiator
// (the sender of its first packet), "Dst" the responder.
type Stats struct {
	FirstSeenNs, LastSeenNs int64  // timestamps of the first and last packet, ns since the Unix epoch
	Packets, Bytes          uint64 // both directions; bytes are IP-level lengths on the wire
	SrcPackets, SrcBytes    uint64 // initiator -> responder
	DstPackets, DstBytes    uint64 // responder -> initiator
}
