package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/samplegen"
)

// TestWriteEthernetPcap: every IP packet of a capture comes out as one
// Ethernet frame (the fixed replay MACs, the IP version's EtherType, the IP
// packet unchanged) with its timestamp (classic pcap: microseconds), in order.
func TestWriteEthernetPcap(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pcapng"), filepath.Join(dir, "out.pcap")
	var buf bytes.Buffer
	if _, err := samplegen.Generate(&buf, samplegen.Options{Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	written, skipped, err := writeEthernetPcap(in, out)
	if err != nil {
		t.Fatal(err)
	}
	type pkt struct {
		ts int64
		l3 []byte
		v  uint8
	}
	var want []pkt
	r, err := capture.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	var cp capture.Packet
	var p flow.Packet
	notIP := 0
	for r.Next(&cp) == nil {
		if flow.Decode(cp.LinkType, cp.Data, &p) != flow.OK {
			notIP++
			continue
		}
		want = append(want, pkt{cp.TimestampNs, append([]byte(nil), p.L3()...), p.IPVersion})
	}
	r.Close()
	if written != len(want) || skipped != notIP || written == 0 {
		t.Fatalf("wrote %d, skipped %d; the capture has %d IP packets and %d others", written, skipped, len(want), notIP)
	}
	r, err = capture.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, w := range want {
		if err := r.Next(&cp); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		et := uint16(0x0800)
		if w.v == 6 {
			et = 0x86DD
		}
		f := cp.Data
		if cp.LinkType != capture.LinkEthernet || cp.TimestampNs != w.ts-w.ts%1000 || len(f) != 14+len(w.l3) ||
			!bytes.Equal(f[:12], replayMACs[:]) || binary.BigEndian.Uint16(f[12:]) != et || !bytes.Equal(f[14:], w.l3) {
			t.Fatalf("frame %d: link %d ts %d len %d, want Ethernet ts %d and the %d-byte IPv%d packet behind the replay MACs",
				i, cp.LinkType, cp.TimestampNs, len(f), w.ts, len(w.l3), w.v)
		}
	}
	if err := r.Next(&cp); err != io.EOF {
		t.Fatalf("after %d frames: %v, want EOF", len(want), err)
	}
}
