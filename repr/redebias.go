package repr

import (
	"fmt"
	"strings"
)

// RedebiasStats counts what Redebias found in a byte view's slots.
type RedebiasStats struct {
	// Slots is the number of non-empty slots holding an IPv4 or IPv6 header
	// (the ones rewritten).
	Slots int
	// L4Outside counts slots whose L4 header starts at or after byte
	// HeaderBytes (an IPv6 extension-header chain that fills the 80 header
	// bytes): their IP-level fields were rewritten, their L4 part was left
	// alone, as the view holds no L4 header bytes for them.
	L4Outside int
	// Unknown counts non-empty slots whose first byte is no IPv4/IPv6
	// version: left unchanged (a view built by package repr has none).
	Unknown int
}

// Add adds o's counts to s.
func (s *RedebiasStats) Add(o RedebiasStats) {
	s.Slots += o.Slots
	s.L4Outside += o.L4Outside
	s.Unknown += o.Unknown
}

// CheckZeroOnly returns an error naming the strategies of d that cannot be
// applied to an already-built view (relative_ip, random_ip,
// server_prefix_ip, random_port, relative_seq: they depend on the flow
// key, the direction, the seed or the other packets), or nil when d only zeroes fields or keeps them.
func CheckZeroOnly(d Debias) error {
	var bad []string
	for _, n := range d.Names() {
		if n != DebiasNone && !strings.HasPrefix(n, "zero_") {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("debias %s cannot be applied to built byte views (only zero_* strategies can): rebuild the dataset with prep --debias", strings.Join(bad, ","))
	}
	return nil
}

// DebiasToAdd returns the strategies that turn a view built with have into
// one built with want, when want is have plus zero_* strategies only. The
// result keeps every field want and have agree on (its IP field is IPKeep
// unless zero_ip must be added), so Redebias(view, add) rewrites only what
// have did not. It is an error when have rewrites something want does not
// (the dataset holds rewrites the model did not see), when a field differs
// in a way other than keep -> zero (e.g. zero_ip vs relative_ip), or when
// want needs a relative_*/random_* strategy have lacks.
func DebiasToAdd(have, want Debias) (Debias, error) {
	add := Debias{IP: IPKeep}
	var extra, other []string
	for _, n := range debiasNames {
		h, w := n.is(&have), n.is(&want)
		switch {
		case h == w:
		case h && !w:
			extra = append(extra, n.name)
		case !strings.HasPrefix(n.name, "zero_"):
			other = append(other, n.name)
		default:
			n.set(&add)
		}
	}
	// a zero_* strategy whose group have fills with another strategy
	// (relative_ip -> zero_ip) is listed in extra through have's name.
	if len(extra) > 0 || len(other) > 0 {
		var why []string
		if len(extra) > 0 {
			why = append(why, "the dataset has "+strings.Join(extra, ",")+" which the model's inputs did not have")
		}
		if len(other) > 0 {
			why = append(why, "the model's "+strings.Join(other, ",")+" cannot be applied to built views")
		}
		return Debias{}, fmt.Errorf("debias %s vs %s: %s", strings.Join(have.Names(), ","), strings.Join(want.Names(), ","), strings.Join(why, "; "))
	}
	return add, nil
}

// Redebias applies the zero_* strategies of d to an offset-correct
// (CompatNone) byte view b of ViewBytes bytes, in place, with exactly the
// result (*Builder).Add gives when d's strategies are added to those the
// view was built with: each non-empty slot's header part is parsed (IPv4
// header length, protocol and fragment offset, or the IPv6 header and its
// extension-header chain as flow.Decode walks it, then the TCP header
// length from its data offset) and the named fields are zeroed; zero_sni
// zeroes the TLS server name in the payload part. Fields of d that keep
// (IPKeep, PortKeep, SeqKeep, false) are not touched. relative_* and
// random_* strategies are an error (CheckZeroOnly), as is a b of another
// size. Views in compat "official" mode have another slot layout: do not
// pass them.
func Redebias(b []byte, d Debias) (RedebiasStats, error) {
	var st RedebiasStats
	if len(b) != ViewBytes {
		return st, fmt.Errorf("redebias: view of %d bytes, want %d", len(b), ViewBytes)
	}
	if err := CheckZeroOnly(d); err != nil {
		return st, fmt.Errorf("redebias: %w", err)
	}
	for i := range ViewPackets {
		st.Add(redebiasSlot(b[i*SlotBytes:(i+1)*SlotBytes], &d))
	}
	return st, nil
}

// redebiasSlot rewrites one SlotBytes slot (d holds zero/keep strategies only).
func redebiasSlot(slot []byte, d *Debias) RedebiasStats {
	var st RedebiasStats
	hdr := slot[:HeaderBytes]
	var version byte
	switch hdr[0] >> 4 {
	case 4, 6:
		version = hdr[0] >> 4
	default:
		if !allZero(slot) {
			st.Unknown++
		}
		return st
	}
	st.Slots++
	if d.SNI {
		ZeroSNI(slot[HeaderBytes:])
	}
	// Bytes past the packet's header are the slot's zero padding, so
	// zeroing up to HeaderBytes equals zeroing up to the header length the
	// builder saw.
	l4, proto, ok := l4Start(hdr, version)
	if ok && l4 >= HeaderBytes {
		st.L4Outside++
		zeroFields(hdr, version, 0, false, 0, 0, d) // IP-level fields only
		return st
	}
	tcpHdrLen := 0
	if ok && proto == 6 && l4+12 < HeaderBytes {
		// the decoder takes max(data offset, 20) bytes, cut to the captured
		// bytes (the cut part is zero padding here)
		tcpHdrLen = int(hdr[l4+12]>>4) * 4
	}
	zeroFields(hdr, version, l4, ok, proto, tcpHdrLen, d)
	return st
}

// l4Start returns where the L4 header starts in a slot's header part and
// the transport protocol, as flow.Decode finds them; ok is false when the
// packet has no L4 header (a non-first fragment, an IPv4 header length
// below 20, an over-long extension chain). An offset ≥ HeaderBytes means the
// L4 header lies past the header part (a chain the 80 bytes cannot hold);
// walking then stops, as nothing past byte 80 is in the view.
func l4Start(hdr []byte, version byte) (l4 int, proto byte, ok bool) {
	if version == 4 {
		ihl := int(hdr[0]&0x0f) * 4
		if ihl < 20 {
			return 0, 0, false
		}
		if (int(hdr[6])<<8|int(hdr[7]))&0x1fff != 0 { // non-first fragment
			return 0, 0, false
		}
		return ihl, hdr[9], true
	}
	next, hl := hdr[6], 40
	for range 16 { // flow.Decode's bound
		if hl+2 > len(hdr) { // the next header and its length lie past the view
			return HeaderBytes, next, true
		}
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, dest opts, mobility, HIP, shim6
			next = hdr[hl]
			hl += 8 + int(hdr[hl+1])*8
		case 51: // AH
			next = hdr[hl]
			hl += (int(hdr[hl+1]) + 2) * 4
		case 44: // fragment
			if hl+4 > len(hdr) { // the L4 header, if any, starts at hl+8 > 80
				return HeaderBytes, next, true
			}
			fragOff := (int(hdr[hl+2])<<8 | int(hdr[hl+3])) &^ 7
			next = hdr[hl]
			hl += 8
			if fragOff > 0 {
				return 0, 0, false
			}
		default:
			return hl, next, true
		}
	}
	return 0, 0, false
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
