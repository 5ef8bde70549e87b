package extract

import (
	"encoding/csv"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/netmamba/netmamba/internal/sharedtest"

	"github.com/netmamba/netmamba/flow"
)

// sharedDir is ../shared beside the repository (see internal/sharedtest).
func sharedDir(t testing.TB) string { return sharedtest.Dir(t) }

// readCSV returns the rows of a CSV file as maps keyed by the header.
func readCSV(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// extractOne returns the flows of one capture.
func extractOne(t testing.TB, path string, opts Options) ([]Flow, *Report) {
	t.Helper()
	var flows []Flow
	rep, err := Files([]string{path}, opts, func(_ string, f *Flow) error {
		flows = append(flows, *f)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return flows, rep
}

func keyAddr(k *flow.Key, src bool) netip.Addr {
	ip := k.DstIP
	if src {
		ip = k.SrcIP
	}
	if k.IPVersion == 4 {
		return netip.AddrFrom4([4]byte(ip[:4]))
	}
	return netip.AddrFrom16(ip)
}

// TestNdpiAppOneFlowPerFile checks every ndpi-app capture against
// manifest.csv: exactly one bidirectional flow with the listed protocol,
// endpoints and packet count.
func TestNdpiAppOneFlowPerFile(t *testing.T) {
	shared := sharedDir(t)
	base := filepath.Join(shared, "data", "ndpi-app")
	rows := readCSV(t, filepath.Join(base, "manifest.csv"))
	if len(rows) != 673 {
		t.Fatalf("manifest has %d rows, want 673", len(rows))
	}
	var total Report
	var frags uint64
	for _, m := range rows {
		flows, rep := extractOne(t, filepath.Join(base, m["file"]), Options{Bidirectional: true})
		frags += rep.Fragments
		for k, n := range rep.Skipped {
			total.addSkip(k, n)
		}
		if len(flows) != 1 {
			t.Errorf("%s: %d flows, want 1 (report: %v)", m["file"], len(flows), rep)
			continue
		}
		f := &flows[0]
		wantProto := map[string]uint8{"TCP": 6, "UDP": 17}[m["l4"]]
		if f.Key.Proto != wantProto {
			t.Errorf("%s: proto %d, want %s", m["file"], f.Key.Proto, m["l4"])
		}
		wantPkts, _ := strconv.Atoi(m["packets"])
		if f.Stats.Packets != uint64(wantPkts) {
			t.Errorf("%s: %d packets, want %d (report %v)", m["file"], f.Stats.Packets, wantPkts, rep)
		}
		src, dst := netip.MustParseAddr(m["src"]), netip.MustParseAddr(m["dst"])
		sp, _ := strconv.Atoi(m["sport"])
		dp, _ := strconv.Atoi(m["dport"])
		gs, gd := keyAddr(&f.Key, true), keyAddr(&f.Key, false)
		switch {
		case gs == src && gd == dst && int(f.Key.SrcPort) == sp && int(f.Key.DstPort) == dp:
		default:
			t.Errorf("%s: flow %v:%d -> %v:%d, manifest %v:%d -> %v:%d", m["file"], gs, f.Key.SrcPort, gd, f.Key.DstPort, src, sp, dst, dp)
		}
	}
	t.Logf("673 files, 673 flows checked; %d non-first fragments joined; skipped: %v", frags, total.Skipped)
	if frags == 0 {
		t.Error("expected IPv4 non-first fragments in ndpi-app (README), joined none")
	}
	if len(total.Skipped) != 0 {
		t.Errorf("packets skipped in ndpi-app: %v", total.Skipped)
	}
}
