package extract

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/repr"
)

// goldenViews loads ../shared/golden/repr: the official extractor's byte
// views and the files they came from.
func goldenViews(t *testing.T) (string, []string, []byte) {
	shared := sharedDir(t)
	rows := readCSV(t, filepath.Join(shared, "golden", "repr", "ndpi-app.csv"))
	u8, err := os.ReadFile(filepath.Join(shared, "golden", "repr", "ndpi-app.u8"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 673 || len(u8) != 673*repr.ViewBytes {
		t.Fatalf("golden: %d rows, %d bytes", len(rows), len(u8))
	}
	files := make([]string, len(rows))
	for i, r := range rows {
		files[i] = r["file"]
	}
	return filepath.Join(shared, "data", "ndpi-app"), files, u8
}

// filePackets decodes the first n packets of a capture (the official
// extractor reads the first packets of the file).
func filePackets(t *testing.T, path string, n int) []flow.Packet {
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []flow.Packet
	var cp capture.Packet
	for len(out) < n && r.Next(&cp) == nil {
		var p flow.Packet
		data := append([]byte(nil), cp.Data...)
		if flow.Decode(cp.LinkType, data, &p) != flow.OK {
			p = flow.Packet{Frame: data}
		}
		out = append(out, p)
	}
	return out
}

func TestGoldenByteViewOfficial(t *testing.T) {
	base, files, u8 := goldenViews(t)
	same := 0
	var diffs []string
	for i, f := range files {
		flows, _ := extractOne(t, filepath.Join(base, f), Options{Bidirectional: true, Compat: CompatOfficial})
		if len(flows) != 1 {
			t.Fatalf("%s: %d flows", f, len(flows))
		}
		want := u8[i*repr.ViewBytes : (i+1)*repr.ViewBytes]
		got := flows[0].View.Bytes[:]
		if string(got) == string(want) {
			same++
			continue
		}
		pk := filePackets(t, filepath.Join(base, f), 5)
		var slots []string
		for s := 0; s < repr.ViewPackets; s++ {
			g, w := got[s*repr.SlotBytes:(s+1)*repr.SlotBytes], want[s*repr.SlotBytes:(s+1)*repr.SlotBytes]
			if string(g) != string(w) {
				desc := fmt.Sprintf("slot %d", s)
				if s < len(pk) {
					p := &pk[s]
					desc += fmt.Sprintf(" (v%d proto %d %d->%d frag=%v)", p.IPVersion, p.Proto, p.SrcPort, p.DstPort, p.Fragmented)
				}
				slots = append(slots, desc)
			}
		}
		diffs = append(diffs, fmt.Sprintf("%s: %s", f, strings.Join(slots, "; ")))
	}
	share := float64(same) / float64(len(files))
	t.Logf("compat official: %d/%d flows byte-identical (%.2f %%)", same, len(files), 100*share)
	for _, d := range diffs {
		t.Logf("differs: %s", d)
	}
	if share < 0.98 {
		t.Errorf("compat official agreement %.2f %% < 98 %%", 100*share)
	}
}

// TestGoldenByteViewDefault compares the offset-correct view with the
// official one and requires every differing packet slot to be explained by
// one of the four documented causes (golden/repr/README.md).
func TestGoldenByteViewDefault(t *testing.T) {
	base, files, u8 := goldenViews(t)
	same, slotsDiff := 0, 0
	causes := map[string]int{}
	for i, f := range files {
		flows, _ := extractOne(t, filepath.Join(base, f), Options{Bidirectional: true})
		want := u8[i*repr.ViewBytes : (i+1)*repr.ViewBytes]
		got := flows[0].View.Bytes[:]
		if string(got) == string(want) {
			same++
			continue
		}
		pk := filePackets(t, filepath.Join(base, f), 5)
		for s := 0; s < repr.ViewPackets; s++ {
			g, w := got[s*repr.SlotBytes:(s+1)*repr.SlotBytes], want[s*repr.SlotBytes:(s+1)*repr.SlotBytes]
			if string(g) == string(w) {
				continue
			}
			slotsDiff++
			if s >= len(pk) {
				t.Errorf("%s slot %d: differs but the file has only %d packets", f, s, len(pk))
				continue
			}
			c := repr.ExplainOfficial(&pk[s])
			if c == 0 {
				t.Errorf("%s slot %d: unexplained difference", f, s)
				continue
			}
			var names []string
			for bit, name := range []string{"1 IPv6", "2 dissected protocol", "3 Ethernet trailer", "4 str.replace"} {
				if c&(1<<bit) != 0 {
					names = append(names, name)
				}
			}
			causes[strings.Join(names, "+")]++
		}
	}
	t.Logf("default mode: %d/%d flows byte-identical to the official extractor (%.2f %%); %d packet slots differ, by cause: %v",
		same, len(files), 100*float64(same)/float64(len(files)), slotsDiff, causes)
}
