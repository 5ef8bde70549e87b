package flow

import (
	"testing"
	"time"

	"github.com/netmamba/netmamba/capture"
)

type ended struct {
	key   Key
	stats Stats
	why   EndReason
	state int
}

// run feeds raw-IP frames with timestamps (seconds) into a table.
func run(t *testing.T, cfg Config, frames [][]byte, ts []float64) ([]ended, *Table[int], []Reason) {
	var out []ended
	tab := NewTable(cfg, Handlers[int]{
		Packet: func(f *Flow[int], p *Packet, m PacketMeta) { f.State++ },
		End: func(f *Flow[int], why EndReason) {
			out = append(out, ended{f.Key, f.Stats, why, f.State})
		},
	})
	var reasons []Reason
	for i, fr := range frames {
		var p Packet
		if r := Decode(capture.LinkRaw, fr, &p); r != OK {
			t.Fatalf("frame %d: %v", i, r)
		}
		reasons = append(reasons, tab.Add(&p, int64(ts[i]*1e9), len(fr)))
	}
	tab.Flush()
	return out, tab, reasons
}

func TestTableDirections(t *testing.T) {
	c := [4]byte{10, 0, 0, 3}
	frames := [][]byte{
		ipv4(6, b4, a4, 1, 0, tcp(80, 1234, "")),     // flow A initiator is b4:80
		ipv4(17, c, a4, 2, 0, udp(53, 53, "q")),      // flow B
		ipv4(6, a4, b4, 3, 0, tcp(1234, 80, "resp")), // flow A reply
		ipv4(6, b4, a4, 4, 0, tcp(80, 1234, "x")),    // flow A
	}
	ts := []float64{1, 2, 3, 4}
	bi, _, _ := run(t, Config{Bidirectional: true}, frames, ts)
	if len(bi) != 2 {
		t.Fatalf("bidirectional: %d flows, want 2", len(bi))
	}
	a := bi[0]
	if a.key.SrcPort != 80 || a.key.SrcIP[0] != 192 || a.stats.Packets != 3 || a.stats.SrcPackets != 2 || a.stats.DstPackets != 1 || a.state != 3 {
		t.Errorf("flow A: %+v", a)
	}
	if a.stats.FirstSeenNs != 1e9 || a.stats.LastSeenNs != 4e9 || a.stats.Bytes != 44+48+45 {
		t.Errorf("flow A times/bytes: %+v", a.stats)
	}
	uni, _, _ := run(t, Config{}, frames, ts)
	if len(uni) != 3 || uni[0].stats.Packets != 2 || uni[2].key.SrcPort != 1234 {
		t.Errorf("unidirectional: %+v", uni)
	}
}

func TestTableFragments(t *testing.T) {
	frames := [][]byte{
		ipv4(17, a4, b4, 77, 0x2000, udp(5000, 6000, "head")),
		ipv4(17, a4, b4, 77, 0x0002, []byte("tail")),
		ipv4(17, a4, b4, 78, 0x0002, []byte("orphan")),
		ipv4(17, b4, a4, 79, 0, udp(6000, 5000, "reply")),
	}
	fl, tab, reasons := run(t, Config{Bidirectional: true}, frames, []float64{1, 1, 1, 2})
	if len(fl) != 1 || fl[0].stats.Packets != 3 {
		t.Fatalf("flows %+v", fl)
	}
	if reasons[2] != ReasonOrphanFragment || tab.Stats().OrphanFragments != 1 || tab.Stats().JoinedFragments != 1 {
		t.Errorf("reasons %v stats %+v", reasons, tab.Stats())
	}
}

func TestTableTimeoutsAndCap(t *testing.T) {
	mk := func(sport uint16) []byte { return ipv4(17, a4, b4, 1, 0, udp(sport, 53, "q")) }
	// idle timeout 10 s: flow 1 silent from t=0 to t=20 -> ended, then restarted
	frames := [][]byte{mk(1), mk(2), mk(2), mk(2), mk(1)}
	fl, tab, _ := run(t, Config{Bidirectional: true, IdleTimeout: 10 * time.Second}, frames, []float64{0, 0, 8, 16, 20})
	if len(fl) != 3 || fl[0].why != EndIdle || fl[0].key.SrcPort != 1 || fl[0].stats.Packets != 1 {
		t.Fatalf("idle: %+v", fl)
	}
	if tab.Stats().Ended[EndIdle] != 1 {
		t.Errorf("idle stats %+v", tab.Stats())
	}
	// active timeout 10 s: flow 2 lasts 16 s with packets every 8 s
	fl, _, _ = run(t, Config{Bidirectional: true, ActiveTimeout: 10 * time.Second}, frames, []float64{0, 0, 8, 16, 20})
	if fl[0].why != EndActive {
		t.Errorf("active: %+v", fl)
	}
	// cap of 2 live flows: the third flow evicts the least recently seen
	frames = [][]byte{mk(1), mk(2), mk(1), mk(3)}
	fl, tab, _ = run(t, Config{Bidirectional: true, MaxFlows: 2}, frames, []float64{0, 1, 2, 3})
	if len(fl) != 3 || fl[0].why != EndEvicted || fl[0].key.SrcPort != 2 || tab.Stats().Ended[EndEvicted] != 1 {
		t.Errorf("cap: %+v", fl)
	}
	// flush order is first-packet order
	if fl[1].key.SrcPort != 1 || fl[2].key.SrcPort != 3 {
		t.Errorf("flush order: %+v", fl)
	}
}

func TestTableReady(t *testing.T) {
	var ready []uint64
	tab := NewTable(Config{Bidirectional: true, ReadyPackets: 2}, Handlers[struct{}]{
		Ready: func(f *Flow[struct{}]) { ready = append(ready, f.Stats.Packets) },
	})
	for i := range 5 {
		var p Packet
		fr := ipv4(17, a4, b4, 1, 0, udp(1, 2, "x"))
		if i%2 == 1 {
			fr = ipv4(17, b4, a4, 1, 0, udp(2, 1, "y"))
		}
		Decode(capture.LinkRaw, fr, &p)
		tab.Add(&p, int64(i), len(fr))
	}
	if len(ready) != 1 || ready[0] != 2 {
		t.Errorf("ready callbacks %v", ready)
	}
}

// BenchmarkTableAdd feeds 64 interleaved bidirectional flows.
func BenchmarkTableAdd(b *testing.B) {
	var pkts []Packet
	for i := range 64 {
		for _, fr := range [][]byte{
			ipv4(6, a4, b4, 1, 0, tcp(uint16(1000+i), 443, "x")),
			ipv4(6, b4, a4, 1, 0, tcp(443, uint16(1000+i), "y")),
		} {
			var p Packet
			Decode(capture.LinkRaw, fr, &p)
			pkts = append(pkts, p)
		}
	}
	tab := NewTable(Config{Bidirectional: true}, Handlers[[64]byte]{})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range pkts {
			tab.Add(&pkts[i], int64(n), 60)
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}

// TestCappedTableSlots: a capped table never reserves slots beyond its
// cap (append's doubling would reserve up to twice the cap), and still
// holds exactly the cap.
func TestCappedTableSlots(t *testing.T) {
	const maxFlows = 1000
	tb := NewTable(Config{MaxFlows: maxFlows}, Handlers[int]{})
	var p Packet
	p.IPVersion, p.Proto, p.IPTotalLen = 4, 17, 60
	for i := range 5000 {
		p.SrcIP = [16]byte{10, 0, byte(i >> 8), byte(i)}
		p.SrcPort = uint16(1000 + i)
		tb.Add(&p, int64(i), 74)
	}
	if tb.Len() != maxFlows || tb.Stats().Ended[EndEvicted] != 5000-maxFlows {
		t.Fatalf("%d live, %d evicted; want %d and %d", tb.Len(), tb.Stats().Ended[EndEvicted], maxFlows, 5000-maxFlows)
	}
	if c := cap(tb.flows); c != maxFlows {
		t.Fatalf("%d slots reserved for a cap of %d", c, maxFlows)
	}
}
