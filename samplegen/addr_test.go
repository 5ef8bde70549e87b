package samplegen_test

import "net/netip"

// addrPort formats a flow.Key address the way netip.AddrPort does.
func addrPort(ip [16]byte, port uint16, version uint8) string {
	if version == 4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[:4])), port).String()
	}
	return netip.AddrPortFrom(netip.AddrFrom16(ip), port).String()
}
