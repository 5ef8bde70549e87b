//go:debug cryptocustomrand=1

package samplegen

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// generate returns the capture and summary for seed.
func generate(t testing.TB, seed uint64) ([]byte, Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Generate(&buf, Options{Seed: seed})
	if err != nil {
		t.Fatalf("Generate(seed %d): %v", seed, err)
	}
	return buf.Bytes(), sum
}

func TestDeterministic(t *testing.T) {
	a, sa := generate(t, 7)
	b, _ := generate(t, 7)
	if !bytes.Equal(a, b) {
		n := 0
		for n < len(a) && n < len(b) && a[n] == b[n] {
			n++
		}
		t.Fatalf("seed 7 gave different captures (%d and %d bytes, first difference at byte %d)", len(a), len(b), n)
	}
	c, _ := generate(t, 8)
	if bytes.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave identical captures")
	}
	if sa.Packets < 200 || sa.Packets > 1000 || len(a) > 400_000 || len(sa.Flows) < 30 || len(sa.Flows) > 60 {
		t.Errorf("sample size out of the intended range: %d flows, %d packets, %d bytes", len(sa.Flows), sa.Packets, len(a))
	}
}

// checksumOK verifies a one's-complement checksum: the sum over the covered
// bytes (checksum field included) plus pseudo must fold to 0xffff.
func checksumOK(pseudo []byte, data []byte) bool {
	var sum uint32
	for _, b := range [][]byte{pseudo, data} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}

// tcpDir tracks one direction of a TCP connection while checking it.
type tcpDir struct {
	isn, next    uint32 // ISN, next expected sequence number
	synSeen, fin bool
	maxAck       uint32
}

// TestFramesValid decodes every frame with gopacket (an independent
// decoder) and checks lengths, checksums and TCP sequence/ack bookkeeping.
func TestFramesValid(t *testing.T) {
	data, sum := generate(t, 3)
	r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	type dirKey struct {
		src, dst gopacket.Endpoint
		sp, dp   layers.TCPPort
	}
	dirs := map[dirKey]*tcpDir{}
	var last int64
	n, tcpPkts, synAcks, fins := 0, 0, 0, 0
	for {
		pkt, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", n+1, err)
		}
		n++
		if ts := ci.Timestamp.UnixNano(); ts < last {
			t.Fatalf("frame %d: timestamp goes back", n)
		} else {
			last = ts
		}
		p := gopacket.NewPacket(pkt, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: decode error: %v", n, el.Error())
		}
		var pseudo []byte
		var netFlow gopacket.Flow
		var ipPayload []byte
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			if int(ip.Length) != len(pkt)-14 || !checksumOK(nil, pkt[14:14+int(ip.IHL)*4]) {
				t.Fatalf("frame %d: bad IPv4 length %d or header checksum", n, ip.Length)
			}
			pseudo = append(append([]byte(nil), ip.SrcIP.To4()...), ip.DstIP.To4()...)
			pseudo = append(pseudo, 0, byte(ip.Protocol))
			pseudo = binary.BigEndian.AppendUint16(pseudo, ip.Length-uint16(ip.IHL)*4)
			ipPayload = ip.Payload
		case *layers.IPv6:
			if int(ip.Length) != len(pkt)-54 {
				t.Fatalf("frame %d: bad IPv6 payload length %d", n, ip.Length)
			}
			pseudo = append(append([]byte(nil), ip.SrcIP.To16()...), ip.DstIP.To16()...)
			pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(ip.Length))
			pseudo = append(pseudo, 0, 0, 0, byte(ip.NextHeader))
			ipPayload = ip.Payload
		default:
			t.Fatalf("frame %d: no IP layer", n)
		}
		netFlow = p.NetworkLayer().NetworkFlow()
		if !checksumOK(pseudo, ipPayload) {
			t.Fatalf("frame %d: bad transport checksum", n)
		}
		tcp, ok := p.TransportLayer().(*layers.TCP)
		if !ok {
			if _, ok := p.TransportLayer().(*layers.UDP); !ok {
				t.Fatalf("frame %d: neither TCP nor UDP", n)
			}
			continue
		}
		tcpPkts++
		mss := 1448
		if _, v6 := p.NetworkLayer().(*layers.IPv6); v6 {
			mss = 1428
		}
		if len(tcp.Payload) > mss {
			t.Fatalf("frame %d: %d-byte payload exceeds MSS %d", n, len(tcp.Payload), mss)
		}
		src, dst := netFlow.Endpoints()
		k := dirKey{src, dst, tcp.SrcPort, tcp.DstPort}
		rk := dirKey{dst, src, tcp.DstPort, tcp.SrcPort}
		d := dirs[k]
		if tcp.SYN {
			if d != nil {
				t.Fatalf("frame %d: second SYN", n)
			}
			d = &tcpDir{isn: tcp.Seq, next: tcp.Seq + 1, synSeen: true}
			dirs[k] = d
			if tcp.ACK {
				synAcks++
				if rd := dirs[rk]; rd == nil || tcp.Ack != rd.next {
					t.Fatalf("frame %d: SYN-ACK does not acknowledge the SYN", n)
				}
			}
			continue
		}
		if d == nil {
			t.Fatalf("frame %d: segment before SYN", n)
		}
		if tcp.Seq != d.next && !(len(tcp.Payload) == 0 && !tcp.FIN) {
			t.Fatalf("frame %d: seq %d, want %d", n, tcp.Seq-d.isn, d.next-d.isn)
		}
		if d.fin && (len(tcp.Payload) > 0 || tcp.FIN) {
			t.Fatalf("frame %d: data after FIN", n)
		}
		d.next += uint32(len(tcp.Payload))
		if tcp.FIN {
			d.next++
			d.fin = true
			fins++
		}
		rd := dirs[rk]
		if !tcp.ACK || rd == nil || int32(tcp.Ack-rd.next) > 0 || int32(tcp.Ack-d.maxAck) < 0 && d.maxAck != 0 {
			t.Fatalf("frame %d: ack %d out of range (peer next %d)", n, tcp.Ack, rd.next)
		}
		d.maxAck = tcp.Ack
	}
	if n != sum.Packets {
		t.Fatalf("read %d frames, summary says %d", n, sum.Packets)
	}
	tcpFlows := 0
	for _, f := range sum.Flows {
		if f.Proto == 6 {
			tcpFlows++
		}
	}
	if synAcks != tcpFlows || fins != 2*tcpFlows || len(dirs) != 2*tcpFlows {
		t.Fatalf("%d TCP flows but %d SYN-ACKs, %d FINs, %d directions", tcpFlows, synAcks, fins, len(dirs))
	}
	for k, d := range dirs {
		if rd := dirs[dirKey{k.dst, k.src, k.dp, k.sp}]; d.maxAck != rd.next {
			t.Fatalf("%v:%v -> %v:%v: final ack %d, peer sent up to %d", k.src, k.sp, k.dst, k.dp, d.maxAck-rd.isn, rd.next-rd.isn)
		}
	}
	t.Logf("%d frames, %d TCP segments in %d connections, all checksums valid", n, tcpPkts, tcpFlows)
}

// TestCoversClasses checks the sample has flows of every ndpi-app class
// (read from the data set's classes.txt) and no other label.
func TestCoversClasses(t *testing.T) {
	b, err := os.ReadFile("../../shared/data/ndpi-app/classes.txt")
	if err != nil {
		t.Fatalf("class list: %v", err)
	}
	want := map[string]bool{}
	for _, c := range strings.Fields(string(b)) {
		want[c] = true
	}
	_, sum := generate(t, 1)
	got := map[string]int{}
	for _, f := range sum.Flows {
		if !want[f.App] {
			t.Errorf("flow %q has label %q, not an ndpi-app class", f.Desc, f.App)
		}
		got[f.App]++
	}
	for c := range want {
		if got[c] == 0 {
			t.Errorf("no %s flow", c)
		}
	}
	if len(want) != 17 {
		t.Errorf("classes.txt lists %d classes, expected 17", len(want))
	}
}

func BenchmarkGenerate(b *testing.B) {
	var n int
	for i := 0; i < b.N; i++ {
		sum, err := Generate(io.Discard, Options{Seed: uint64(i)})
		if err != nil {
			b.Fatal(err)
		}
		n += sum.Packets
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}

// TestKeyLog checks the key log has one TLS 1.3 traffic secret (or TLS 1.2
// master secret) per TLS/QUIC client and leaves the capture unchanged.
func TestKeyLog(t *testing.T) {
	plain, sum := generate(t, 5)
	var capt, keys bytes.Buffer
	if _, err := Generate(&capt, Options{Seed: 5, KeyLog: &keys}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, capt.Bytes()) {
		t.Fatal("capture changed when a key log was requested")
	}
	tlsFlows := 0
	for _, f := range sum.Flows {
		if strings.HasPrefix(f.Desc, "HTTPS") || strings.HasPrefix(f.Desc, "QUIC") || strings.HasPrefix(f.Desc, "DNS over TLS") {
			tlsFlows++
		}
	}
	secrets := strings.Count(keys.String(), "\nCLIENT_TRAFFIC_SECRET_0 ") + strings.Count(keys.String(), "\nCLIENT_RANDOM ")
	if strings.HasPrefix(keys.String(), "CLIENT_RANDOM ") || strings.HasPrefix(keys.String(), "CLIENT_TRAFFIC_SECRET_0 ") {
		secrets++
	}
	if tlsFlows == 0 || secrets != tlsFlows {
		t.Fatalf("%d TLS/QUIC flows but %d client secrets in the key log", tlsFlows, secrets)
	}
}
