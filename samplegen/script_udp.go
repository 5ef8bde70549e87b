package samplegen

import (
	"fmt"
	"net/netip"
	"time"
)

// bittorrent plays a DHT lookup with the bootstrap node and a peer wire
// download of two blocks from a seeder.
func (w *world) bittorrent(t int64, r *detRand) error {
	nodeID, infoHash := r.bytes(20), r.bytes(20)
	cli := w.clientNode(6881, false)
	boot := w.remoteNode(netip.MustParseAddrPort("67.215.246.10:6881"), 49)
	rid := r.bytes(20)
	var nodes []byte
	for i := 0; i < 8; i++ {
		nodes = append(nodes, r.bytes(20)...)
		nodes = append(nodes, 0x5b, byte(r.intn(256)), byte(r.intn(256)), byte(r.intn(256)), 0x1a, 0xe1)
	}
	rtt := 95 * ms
	w.addUDP("BitTorrent", "BitTorrent DHT ping/get_peers router.bittorrent.com", cli, boot, []dgram{
		{true, t, bencodeDHT("q", "ping", "pn", "2:id"+bstr(nodeID))},
		{false, t + rtt, bencodeDHT("r", "", "pn", "2:id"+bstr(rid))},
		{true, t + rtt + 2*ms, bencodeDHT("q", "get_peers", "gp", "2:id"+bstr(nodeID)+"9:info_hash"+bstr(infoHash))},
		{false, t + 2*rtt + 3*ms, bencodeDHT("r", "", "gp", "2:id"+bstr(rid)+"5:nodes"+bstr(nodes)+"5:token"+bstr(r.bytes(8)))},
	})
	peer := netip.AddrPortFrom(netip.AddrFrom4([4]byte{85, 214, byte(r.intn(256)), byte(1 + r.intn(250))}), 51413)
	pr, cr := w.newRand(), w.newRand()
	_, err := w.runTCP(t+2*rtt+40*ms, tcpExchange{app: "BitTorrent", desc: "BitTorrent peer wire download", server: peer,
		ttl: 52, rtt: 38 * ms, client: btClient(cr, infoHash, 2), serve: btPeer(pr, infoHash, 1200)})
	return err
}

// call plays a WhatsApp voice call's media path: STUN binding with the
// relay, then 20 ms RTP audio packets both ways.
func (w *world) call(t int64, r *detRand) error {
	cli := w.clientNode(w.ephemeral(), false)
	relay := w.remoteNode(netip.MustParseAddrPort("157.240.9.60:3478"), 57)
	wan := netip.AddrPortFrom(netip.AddrFrom4([4]byte{81, 2, 69, byte(2 + r.intn(250))}), cli.addr.Port())
	tid := r.bytes(12)
	rtt := 36 * ms
	dgs := []dgram{
		{true, t, stunMessage(0x0001, tid, stunAttr(0x0006, []byte("wa:"+fmt.Sprint(r.between(1e9, 9e9)))), stunAttr(0x8022, []byte("WhatsApp")))},
		{false, t + rtt, stunMessage(0x0101, tid, stunAttr(0x0020, xorMappedAddress(wan)))},
	}
	ssrc := [2]uint32{r.r.Uint32(), r.r.Uint32()}
	seq := [2]uint16{uint16(r.intn(65536)), uint16(r.intn(65536))}
	ts := [2]uint32{r.r.Uint32(), r.r.Uint32()}
	start := t + rtt + 15*ms
	for i := 0; i < 14; i++ {
		for d := 0; d < 2; d++ {
			at := start + int64(i)*20*ms + r.between(0, 3*ms)
			if d == 1 {
				at += rtt / 2
			}
			dgs = append(dgs, dgram{d == 0, at, rtpPacket(seq[d], ts[d], ssrc[d], r.bytes(int(r.between(58, 96))), i == 0)})
			seq[d]++
			ts[d] += 960
		}
	}
	sortDgrams(dgs)
	w.addUDP("WhatsAppCall", "WhatsApp call STUN + RTP", cli, relay, dgs)
	return nil
}

// sortDgrams orders datagrams by time (insertion sort; lists are short).
func sortDgrams(d []dgram) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j].t < d[j-1].t; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// lanChatter adds the home network's discovery traffic between start and
// end: mDNS, SSDP and NetBIOS name service.
func (w *world) lanChatter(start, end int64, r *detRand) error {
	at := func() int64 { return start + r.between(0, end-start) }
	tv4 := netip.AddrFrom4([4]byte{192, 168, 1, byte(100 + r.intn(50))})
	tvMAC := [6]byte{0xf4, 0xf5, 0xd8, byte(r.intn(256)), byte(r.intn(256)), byte(r.intn(256))}
	tv := func(port uint16) node { return node{mac: tvMAC, addr: netip.AddrPortFrom(tv4, port), ttl: 255} }
	group := func(a string) node {
		ap := netip.MustParseAddrPort(a)
		return node{mac: multicastMAC(ap.Addr()), addr: ap}
	}

	// mDNS: the client browses for cast devices (IPv4 and IPv6), the TV answers.
	q, err := mdnsQuery("_googlecast._tcp.local.", "_spotify-connect._tcp.local.")
	if err != nil {
		return fmt.Errorf("samplegen: mDNS query: %w", err)
	}
	t := at()
	c5353 := w.clientNode(5353, false)
	c5353.ttl = 255
	w.addUDP("MDNS", "mDNS query _googlecast/_spotify-connect", c5353, group("224.0.0.251:5353"),
		[]dgram{{true, t, q}, {true, t + 1000*ms, q}, {true, t + 3000*ms, q}})
	ll := netip.MustParseAddr(fmt.Sprintf("fe80::%x:%x:%x:%x", 0x3e22|0x0200, 0xfbff, 0xfe00|int(w.clientMAC[3]), int(w.clientMAC[4])<<8|int(w.clientMAC[5])))
	w.addUDP("MDNS", "mDNS query over IPv6", node{mac: w.clientMAC, addr: netip.AddrPortFrom(ll, 5353), ttl: 255}, group("[ff02::fb]:5353"),
		[]dgram{{true, t + 150_000, q}, {true, t + 1000*ms + 150_000, q}})
	ann, err := mdnsAnnounce("_googlecast._tcp.local.", "Living-Room-TV-"+fmt.Sprintf("%x", r.bytes(4)), "living-room-tv.local.", tv4, 8009,
		[]string{"id=" + fmt.Sprintf("%x", r.bytes(16)), "md=Chromecast", "fn=Living Room TV", "ca=463365", "st=0", "rs="})
	if err != nil {
		return fmt.Errorf("samplegen: mDNS answer: %w", err)
	}
	w.addUDP("MDNS", "mDNS response from TV", tv(5353), group("224.0.0.251:5353"),
		[]dgram{{true, t + r.between(20*ms, 120*ms), ann}, {true, t + 1000*ms + r.between(20*ms, 120*ms), ann}})

	// SSDP: the client searches, the router and the TV answer by unicast,
	// the router announces itself.
	t = at()
	date := time.Unix(0, t).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
	cs := w.clientNode(w.ephemeral(), false)
	cs.ttl = 2
	ms1 := ssdpMSearch("ssdp:all")
	w.addUDP("SSDP", "SSDP M-SEARCH", cs, group("239.255.255.250:1900"), []dgram{{true, t, ms1}, {true, t + 1000*ms, ms1}})
	rtrUUID := fmt.Sprintf("uuid:%x-%x-%x-%x-%x", r.bytes(4), r.bytes(2), r.bytes(2), r.bytes(2), r.bytes(6))
	rtr := node{mac: w.routerMAC, addr: netip.AddrPortFrom(w.router4, 1900), ttl: 64}
	rtrServer := "Linux/5.4 UPnP/1.0 MiniUPnPd/2.3.3"
	loc := "http://192.168.1.1:5000/rootDesc.xml"
	var replies []dgram
	for i, st := range []string{"upnp:rootdevice", "urn:schemas-upnp-org:device:InternetGatewayDevice:1", "urn:schemas-upnp-org:service:WANIPConnection:1"} {
		replies = append(replies, dgram{false, t + r.between(2*ms, 400*ms) + int64(i)*ms, ssdpReply(st, loc, rtrUUID, rtrServer, date)})
	}
	sortDgrams(replies)
	w.addUDP("SSDP", "SSDP replies from router", cs, rtr, replies)
	tvUUID := fmt.Sprintf("uuid:%x-%x-%x-%x-%x", r.bytes(4), r.bytes(2), r.bytes(2), r.bytes(2), r.bytes(6))
	w.addUDP("SSDP", "SSDP reply from TV", cs, tv(1900), []dgram{{false, t + r.between(100*ms, 900*ms),
		ssdpReply("urn:dial-multiscreen-org:service:dial:1", "http://"+tv4.String()+":8008/ssdp/device-desc.xml", tvUUID, "Linux/3.8.13+, UPnP/1.0, Portable SDK for UPnP devices/1.6.18", date)}})
	tn := at()
	var notes []dgram
	for i, nt := range []string{"upnp:rootdevice", rtrUUID, "urn:schemas-upnp-org:device:InternetGatewayDevice:1", "urn:schemas-upnp-org:service:Layer3Forwarding:1"} {
		notes = append(notes, dgram{true, tn + int64(i)*200_000, ssdpNotify(nt, loc, rtrUUID, rtrServer)})
	}
	rtrN := rtr
	rtrN.ttl = 4
	w.addUDP("SSDP", "SSDP NOTIFY from router", rtrN, group("239.255.255.250:1900"), notes)

	// NetBIOS name service: a resolved query and an unanswered one.
	t = at()
	bcast := node{mac: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, addr: netip.MustParseAddrPort("192.168.1.255:137")}
	c137 := w.clientNode(137, false)
	nas := node{mac: [6]byte{0x00, 0x11, 0x32, byte(r.intn(256)), byte(r.intn(256)), byte(r.intn(256))}, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, 1, 10}), 137), ttl: 64}
	id1, id2 := uint16(r.intn(65536)), uint16(r.intn(65536))
	w.addUDP("NetBIOS", "NetBIOS name queries (broadcast)", c137, bcast, []dgram{
		{true, t, nbnsQuery(id1, "DISKSTATION", 0x20)},
		{true, t + 2000*ms, nbnsQuery(id2, "PRINTER", 0x20)},
		{true, t + 2750*ms, nbnsQuery(id2, "PRINTER", 0x20)},
		{true, t + 3500*ms, nbnsQuery(id2, "PRINTER", 0x20)},
	})
	w.addUDP("NetBIOS", "NetBIOS name response from NAS", c137, nas, []dgram{{false, t + r.between(300_000, 3*ms), nbnsResponse(id1, "DISKSTATION", 0x20, nas.addr.Addr())}})
	return nil
}
