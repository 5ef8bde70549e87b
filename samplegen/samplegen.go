// Package samplegen generates the repository's own sample capture: real
// protocol exchanges (net/http, crypto/tls, DNS, mDNS, SSDP, NetBIOS, ...)
// run in-process over a simulated network with a virtual clock, and their
// packets are written as pcapng with correct Ethernet, IPv4/IPv6, TCP and
// UDP headers, checksums, sequence and acknowledgement numbers, three-way
// handshakes, MSS segmentation, delayed ACKs and FIN teardown.
//
// Timestamps come from per-endpoint virtual clocks that advance only with
// causality (a side's clock moves to the arrival time of the data it reads,
// plus seeded think time), never with goroutine scheduling, so the output
// depends only on Options: for a seed it is byte-identical from run to run
// (and for any GOMAXPROCS), provided the process runs with GODEBUG
// cryptocustomrand=1 (the netmamba binary and this package's tests set it
// with //go:debug). Without it, Go 1.26's crypto ignores tls.Config.Rand
// for key exchange, so TLS key shares and ciphertexts differ between runs
// while everything else (sizes, timing, headers, flows) stays the same.
// Across machines the bytes are the same for the same Go version and AES
// support: crypto/tls prefers ChaCha20-Poly1305 on CPUs without AES
// instructions, and the QUIC flow (AES-GCM only) is then left out.
package samplegen

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"sort"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Options configure Generate.
type Options struct {
	// Seed selects the run; equal seeds give identical captures.
	Seed uint64
	// Start is the time of the first packet; zero means 2026-01-15 09:00 UTC.
	Start time.Time
	// KeyLog, if set, receives the TLS and QUIC secrets of every client in
	// NSS key log format (SSLKEYLOGFILE), so Wireshark can decrypt the
	// sample. It does not change the capture.
	KeyLog io.Writer
}

// FlowInfo describes one generated bidirectional flow (one 5-tuple).
type FlowInfo struct {
	// App is the intended application class, spelled like the ndpi-app
	// class names (e.g. "Google", "DNS", "HTTP", "DoH_DoT", "SSDP").
	App string
	// Desc says what the exchange is, e.g. "TLS 1.3 www.google.com".
	Desc string
	// Proto is the IANA transport protocol (6 TCP, 17 UDP).
	Proto uint8
	// Client and Server are the initiator's and responder's addresses.
	Client, Server netip.AddrPort
	// FirstNs is the capture time of the flow's first packet, ns since the epoch.
	FirstNs int64
	// ClientPackets and ServerPackets count frames in each direction.
	ClientPackets, ServerPackets int
	// Bytes is the sum of the flow's frame lengths (Ethernet included).
	Bytes int
}

// Summary describes a generated capture.
type Summary struct {
	Flows   []FlowInfo // in order of first packet
	Packets int        // frames written
	Bytes   int        // sum of frame lengths
}

// frame is one captured Ethernet frame.
type frame struct {
	t    int64 // capture time, ns since the epoch
	data []byte
}

// Generate runs the sample exchanges and writes them to w as a pcapng file
// with one Ethernet interface and nanosecond timestamps.
func Generate(w io.Writer, opts Options) (Summary, error) {
	start := opts.Start
	if start.IsZero() {
		start = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	}
	wd := newWorld(opts.Seed, start.UnixNano())
	wd.keyLog = opts.KeyLog
	if err := wd.run(); err != nil {
		return Summary{}, err
	}
	sort.SliceStable(wd.frames, func(i, j int) bool { return wd.frames[i].t < wd.frames[j].t })
	sort.SliceStable(wd.flows, func(i, j int) bool { return wd.flows[i].FirstNs < wd.flows[j].FirstNs })

	ngw, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name:                "eth0",
		Description:         "netmamba samplegen simulated LAN",
		LinkType:            layers.LinkTypeEthernet,
		SnapLength:          262144,
		TimestampResolution: 9,
	}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: "netmamba samplegen",
		Comment:     fmt.Sprintf("synthetic traffic, seed %d", opts.Seed),
	}})
	if err != nil {
		return Summary{}, fmt.Errorf("samplegen: pcapng header: %w", err)
	}
	sum := Summary{Flows: wd.flows}
	for i, f := range wd.frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.t).UTC(), CaptureLength: len(f.data), Length: len(f.data)}
		if err := ngw.WritePacket(ci, f.data); err != nil {
			return Summary{}, fmt.Errorf("samplegen: writing packet %d: %w", i, err)
		}
		sum.Packets++
		sum.Bytes += len(f.data)
	}
	if err := ngw.Flush(); err != nil {
		return Summary{}, fmt.Errorf("samplegen: flushing pcapng: %w", err)
	}
	return sum, nil
}

// world is the simulated LAN: one client host behind a home router, and the
// remote servers it talks to. All randomness comes from seed.
type world struct {
	seed    uint64
	start   int64
	rng     *detRand // schedule, ports, addresses
	streams uint64   // next per-flow random stream
	frames  []frame
	flows   []FlowInfo
	certs   map[string]tls.Certificate
	nextEph uint16
	keyLog  io.Writer // TLS key log of the clients, or nil

	clientMAC, routerMAC [6]byte
	client4, client6     netip.Addr
	router4              netip.Addr
	zone                 map[string][]netip.Addr // DNS answers
}

func newWorld(seed uint64, start int64) *world {
	w := &world{seed: seed, start: start, rng: newDetRand(seed, 0), streams: 1, certs: map[string]tls.Certificate{}}
	w.clientMAC = [6]byte{0x3c, 0x22, 0xfb, byte(w.rng.intn(256)), byte(w.rng.intn(256)), byte(w.rng.intn(256))}
	w.routerMAC = [6]byte{0xe4, 0x8d, 0x8c, byte(w.rng.intn(256)), byte(w.rng.intn(256)), byte(w.rng.intn(256))}
	w.client4 = netip.AddrFrom4([4]byte{192, 168, 1, byte(20 + w.rng.intn(80))})
	w.router4 = netip.AddrFrom4([4]byte{192, 168, 1, 1})
	w.client6 = netip.MustParseAddr(fmt.Sprintf("2001:db8:4a1c:100:%x:%x:%x:%x", w.rng.intn(65536), w.rng.intn(65536), w.rng.intn(65536), w.rng.intn(65536)))
	w.nextEph = uint16(w.rng.between(33000, 60000))
	w.zone = defaultZone()
	return w
}

// newRand returns the random stream of the next flow.
func (w *world) newRand() *detRand {
	r := newDetRand(w.seed, w.streams)
	w.streams++
	return r
}

// ephemeral returns the client's next ephemeral port (Linux-like: random
// start, small increments).
func (w *world) ephemeral() uint16 {
	w.nextEph += uint16(1 + w.rng.intn(7))
	if w.nextEph < 32768 || w.nextEph > 60999 {
		w.nextEph = 32768 + uint16(w.rng.intn(1000))
	}
	return w.nextEph
}

// clientNode is the local host with the given port, IPv4 or IPv6.
func (w *world) clientNode(port uint16, v6 bool) node {
	a := w.client4
	if v6 {
		a = w.client6
	}
	return node{mac: w.clientMAC, addr: netip.AddrPortFrom(a, port), ttl: 64}
}

// remoteNode is a host beyond the router: its frames carry the router's MAC.
func (w *world) remoteNode(a netip.AddrPort, ttl uint8) node {
	return node{mac: w.routerMAC, addr: a, ttl: ttl}
}

// cert returns a self-signed Ed25519 certificate for host, created from the
// seed (Ed25519 signatures are deterministic, unlike ECDSA/RSA-PSS in Go 1.26).
func (w *world) cert(host string) (tls.Certificate, error) {
	if c, ok := w.certs[host]; ok {
		return c, nil
	}
	r := w.newRand()
	priv := ed25519.NewKeyFromSeed(r.bytes(ed25519.SeedSize))
	notBefore := time.Unix(0, w.start).Add(-time.Duration(r.between(10, 60)) * 24 * time.Hour).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(r.bytes(16)),
		Subject:      pkix.Name{CommonName: host, Organization: []string{"netmamba sample " + host}},
		DNSNames:     []string{host, "*." + host},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(r, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("samplegen: certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("samplegen: parsing certificate for %s: %w", host, err)
	}
	c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}
	w.certs[host] = c
	return c, nil
}

// addFlow records a flow's frames and its summary entry.
func (w *world) addFlow(app, desc string, proto uint8, cli, srv node, frames []frame) {
	if len(frames) == 0 {
		return
	}
	fi := FlowInfo{App: app, Desc: desc, Proto: proto, Client: cli.addr, Server: srv.addr, FirstNs: frames[0].t}
	firstFromClient := srcIsClient(frames[0].data, cli.addr.Addr())
	for _, f := range frames {
		fromClient := srcIsClient(f.data, cli.addr.Addr())
		if f.t < fi.FirstNs || (f.t == fi.FirstNs && fromClient) {
			fi.FirstNs, firstFromClient = f.t, fromClient
		}
		if fromClient {
			fi.ClientPackets++
		} else {
			fi.ServerPackets++
		}
		fi.Bytes += len(f.data)
	}
	if !firstFromClient { // the initiator is the node we called the server
		fi.Client, fi.Server = fi.Server, fi.Client
		fi.ClientPackets, fi.ServerPackets = fi.ServerPackets, fi.ClientPackets
	}
	w.frames = append(w.frames, frames...)
	w.flows = append(w.flows, fi)
}

// srcIsClient reports whether the IP source address of an Ethernet frame is a.
func srcIsClient(f []byte, a netip.Addr) bool {
	if a.Is4() {
		return netip.AddrFrom4([4]byte(f[14+12:14+16])) == a
	}
	return netip.AddrFrom16([16]byte(f[14+8:14+24])) == a
}
