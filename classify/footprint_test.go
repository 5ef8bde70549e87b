package classify

import (
	"encoding/binary"
	"os"
	"runtime"
	"testing"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/train"
)

// udpFrame is a raw IPv4/UDP packet (LinkRaw) of flow i (distinct source
// address and port per i) with a payload of n bytes.
func udpFrame(i int, n int) []byte {
	b := make([]byte, 28+n)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = 17
	binary.BigEndian.PutUint32(b[12:], 0x0a000000|uint32(i>>8))
	copy(b[16:], []byte{192, 0, 2, 1})
	binary.BigEndian.PutUint16(b[20:], uint16(1024+i&0xff))
	binary.BigEndian.PutUint16(b[22:], 53)
	binary.BigEndian.PutUint16(b[24:], uint16(8+n))
	for k := 28; k < len(b); k++ {
		b[k] = byte(k * i)
	}
	return b
}

// footprint feeds flows (packets per flow given) into one Ingest whose
// flows never end (no timeouts, no flush) with a classifier that answers
// at once, and returns the live heap per live flow after a GC: what the
// flow table and the state classify keeps cost per tracked flow (flow
// slot, index entry, representation, job and verdict), table growth
// included, GC slack (GOGC) not. trace feeds ndpi-trace instead (its mix
// of short and long flows).
func footprint(t testing.TB, flows, packets int, trace []byte) (perFlow float64, live int) {
	t.Helper()
	net := &recordNet{classes: len(testClasses)}
	p, err := New([]train.Classifier{net}, Options{Classes: testClasses, Bidirectional: true, Block: true, MaxFlows: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // twice: pooled builders of an earlier run survive one GC
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	in := p.NewIngest("footprint", nil)
	if trace != nil {
		r, err := capture.NewBytesReader(trace, "trace")
		if err != nil {
			t.Fatal(err)
		}
		if err := in.ReadCapture(r); err != nil {
			t.Fatal(err)
		}
	} else {
		frame := make([]byte, 0, 128)
		for i := range flows {
			for k := range packets {
				frame = append(frame[:0], udpFrame(i, 100)...)
				in.Packet(capture.LinkRaw, frame, int64(i)*1000+int64(k))
			}
		}
	}
	for p.Stats().QueueLen > 0 {
		runtime.Gosched()
	}
	runtime.GC()
	runtime.GC() // released builders are garbage after two
	runtime.ReadMemStats(&ms)
	live = p.Stats().LiveFlows
	used := float64(ms.HeapAlloc) - float64(base)
	in.Close()
	return used / float64(live), live
}

// TestFlowFootprint measures the bytes a tracked flow costs (reported with
// -v) and checks the worst case — a flow not yet classified, which holds
// its representation — against FlowBytes, the figure the memory bound
// derives flow-table caps from.
func TestFlowFootprint(t *testing.T) {
	const n = 50000
	pending, lp := footprint(t, n, 1, nil)
	classified, lc := footprint(t, n, 5, nil)
	if lp != n || lc != n {
		t.Fatalf("live flows %d and %d, want %d", lp, lc, n)
	}
	t.Logf("bytes of heap per live flow: %.0f not yet classified (1 packet), %.0f classified (5 packets); FlowBytes %d", pending, classified, FlowBytes)
	if !testing.Short() {
		raw, err := os.ReadFile(tracePath(t))
		if err != nil {
			t.Fatal(err)
		}
		mix, lm := footprint(t, 0, 0, raw)
		t.Logf("ndpi-trace: %d live flows, %.0f bytes per flow", lm, mix)
		runtime.KeepAlive(raw)
	}
	if pending > FlowBytes || classified > FlowBytes {
		t.Fatalf("a flow costs %.0f (pending) / %.0f (classified) bytes, more than FlowBytes = %d: raise it or cut the state", pending, classified, FlowBytes)
	}
	if classified > pending {
		t.Fatalf("a classified flow (%.0f B) costs more than a pending one (%.0f B): the representation is not released", classified, pending)
	}
}
