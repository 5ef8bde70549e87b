package extract

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/capture"
)

// TestTraceReport runs the pipeline over ndpi-trace.pcapng and checks the
// report's per-link-type counts against ../shared/data/README.md.
func TestTraceReport(t *testing.T) {
	path := filepath.Join(sharedDir(t), "data", "ndpi-trace.pcapng")
	var flows uint64
	rep, err := Files([]string{path}, Options{Bidirectional: true}, func(string, *Flow) error { flows++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"Ethernet": 88658, "Linux SLL": 5492, "raw IP": 1192, "NULL": 523,
		"raw IPv4": 25, "PPP": 15, "PPI": 6, "Cisco HDLC": 2}
	if rep.Packets != 95913 || flows != rep.Flows {
		t.Errorf("packets %d flows %d/%d", rep.Packets, flows, rep.Flows)
	}
	for k, n := range want {
		if rep.LinkTypes[k] != n {
			t.Errorf("%s: %d packets, want %d", k, rep.LinkTypes[k], n)
		}
	}
	var skipped uint64
	for _, n := range rep.Skipped {
		skipped += n
	}
	if skipped == 0 || skipped > rep.Packets/10 {
		t.Errorf("skipped %d of %d packets: %v", skipped, rep.Packets, rep.Skipped)
	}
	t.Logf("ndpi-trace: %v; %d flows, %d snaplen-cut, %d fragments joined, link types %v", rep, rep.Flows, rep.SnapCut, rep.Fragments, rep.LinkTypes)
}

// TestUnidirectionalCleanFilter checks the option paths on a real flow.
func TestUnidirectionalCleanFilter(t *testing.T) {
	base := filepath.Join(sharedDir(t), "data", "ndpi-app")
	dns := filepath.Join(base, "test/DNS/starcraft_battle__f22.pcap") // 4 packets, query/answer
	bi, _ := extractOne(t, dns, Options{Bidirectional: true})
	uni, _ := extractOne(t, dns, Options{})
	if len(bi) != 1 || len(uni) != 2 || uni[0].Stats.Packets+uni[1].Stats.Packets != bi[0].Stats.Packets {
		t.Fatalf("bidirectional %d flows, unidirectional %d", len(bi), len(uni))
	}
	if uni[1].Key.SrcPort != 53 || uni[1].View.Dirs[0] != 1 {
		t.Errorf("reply flow %+v", uni[1].Key)
	}
	cleaned, rep := extractOne(t, dns, Options{Bidirectional: true, Clean: true})
	if len(cleaned) != 0 || rep.Skipped[SkipCleaned] != 1 {
		t.Errorf("clean: %d flows, report %v", len(cleaned), rep.Skipped)
	}
	filtered, rep := extractOne(t, dns, Options{Bidirectional: true, Filter: "tcp"})
	if len(filtered) != 0 || rep.Skipped["filtered out"] != 4 {
		t.Errorf("filter tcp: %d flows, report %v", len(filtered), rep.Skipped)
	}
	kept, _ := extractOne(t, dns, Options{Bidirectional: true, Filter: "udp and port 53"})
	if len(kept) != 1 || kept[0].Stats.Packets != 4 {
		t.Errorf("filter udp port 53: %d flows", len(kept))
	}
	if _, err := New(Options{Filter: "port ("}); err == nil {
		t.Error("bad filter accepted")
	}
	if _, err := New(Options{Compat: "scapy"}); err == nil {
		t.Error("bad compat mode accepted")
	}
}

// TestPPPoEFlow: the only Discord flow of the ndpi-app test split is PPPoE.
func TestPPPoEFlow(t *testing.T) {
	base := filepath.Join(sharedDir(t), "data", "ndpi-app")
	rows := readCSV(t, filepath.Join(base, "manifest.csv"))
	found := 0
	for _, m := range rows {
		if m["split"] != "test" || m["class"] != "Discord" {
			continue
		}
		path := filepath.Join(base, m["file"])
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := capture.NewBytesReader(data, path)
		if err != nil {
			t.Fatal(err)
		}
		var p capture.Packet
		if err := r.Next(&p); err != nil {
			t.Fatal(err)
		}
		// Walk the VLAN tags (this flow is double-tagged) to the PPPoE session header.
		off := 12
		for et := binary.BigEndian.Uint16(p.Data[off:]); et == 0x8100 || et == 0x88a8; et = binary.BigEndian.Uint16(p.Data[off:]) {
			off += 4
		}
		if p.LinkType != capture.LinkEthernet || binary.BigEndian.Uint16(p.Data[off:]) != 0x8864 {
			t.Fatalf("%s: first frame is not PPPoE session", path)
		}
		outerVLAN := binary.BigEndian.Uint16(p.Data[14:]) & 0xfff
		flows, rep := extractOne(t, path, Options{Bidirectional: true})
		if len(flows) != 1 || len(rep.Skipped) != 0 || flows[0].View.Bytes[0]>>4 != 4 || flows[0].Key.VLAN != outerVLAN {
			t.Errorf("%s: %d flows, skipped %v", path, len(flows), rep.Skipped)
		}
		found++
	}
	if found != 1 {
		t.Errorf("%d Discord test flows, want 1", found)
	}
}

// TestTruncatedFileWarning: a capture cut inside a record keeps the flows
// read so far and reports the file and offset.
func TestTruncatedFileWarning(t *testing.T) {
	base := filepath.Join(sharedDir(t), "data", "ndpi-app")
	src := filepath.Join(base, "test/DNS/starcraft_battle__f22.pcap")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut.pcap")
	if err := os.WriteFile(cut, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	flows, rep := extractOne(t, cut, Options{Bidirectional: true})
	if len(flows) != 1 || flows[0].Stats.Packets != 3 || rep.Skipped[SkipTruncatedFile] != 1 ||
		len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "cut.pcap: offset ") {
		t.Errorf("flows %d, report %v %q", len(flows), rep.Skipped, rep.Warnings)
	}
	notCap := filepath.Join(dir, "x.pcap")
	os.WriteFile(notCap, bytes.Repeat([]byte("x"), 100), 0o644)
	if _, err := Files([]string{notCap}, Options{}, func(string, *Flow) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "x.pcap: offset 0") {
		t.Errorf("not a capture: %v", err)
	}
}

// TestCaptureAllocs: in steady state a whole pass over ndpi-trace.pcapng
// (95,913 packets, 7,278 flows) allocates a bounded handful of times, i.e.
// the per-packet path (read, decode, flow table, byte view) is allocation-free.
func TestCaptureAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the 34 MB trace several times")
	}
	data, err := os.ReadFile(filepath.Join(sharedDir(t), "data", "ndpi-trace.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := New(Options{Bidirectional: true})
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	pass := func() {
		r, err := capture.NewBytesReader(data, "trace")
		if err != nil {
			t.Fatal(err)
		}
		if err := ex.Capture(r, &rep, func(*Flow) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	pass() // grow the flow table once
	allocs := testing.AllocsPerRun(2, pass)
	if allocs > 100 {
		t.Errorf("%.0f allocations per pass over 95,913 packets", allocs)
	}
	t.Logf("%.0f allocations per pass", allocs)
}
