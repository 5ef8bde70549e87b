package dataset

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netmamba/netmamba/extract"
)

const ndpiApp = "../../shared/data/ndpi-app"

// manifestRows reads ../shared/data/ndpi-app/manifest.csv: split -> file -> class.
func manifestRows(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(ndpiApp, "manifest.csv"))
	if err != nil {
		t.Fatalf("shared data missing: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, r := range rows[1:] {
		if out[r[0]] == nil {
			out[r[0]] = map[string]string{}
		}
		out[r[0]][r[2]] = r[1]
	}
	return out
}

func TestBuildNdpiValid(t *testing.T) {
	man := manifestRows(t)["valid"]
	dir := t.TempDir()
	out := filepath.Join(dir, "v.nmds")
	res, err := Build(BuildOptions{
		Inputs: []string{filepath.Join(ndpiApp, "valid")}, Output: out,
		Extract:     extract.Options{Bidirectional: true},
		ClassesFile: filepath.Join(ndpiApp, "classes.txt"),
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	want, _ := ReadClassesFile(filepath.Join(ndpiApp, "classes.txt"))
	if !slices.Equal(d.Classes(), want) || len(want) != 17 {
		t.Fatalf("classes %v", d.Classes())
	}
	// One bidirectional flow per file (README), labelled with its folder.
	if d.Len() != len(man) {
		t.Errorf("%d flows, manifest has %d valid files", d.Len(), len(man))
	}
	seen := map[string]int{}
	prev := ""
	for i := 0; i < d.Len(); i++ {
		rel := strings.TrimPrefix(filepath.ToSlash(d.Source(i)), ndpiApp+"/")
		seen[rel]++
		if cls, ok := man[rel]; !ok || cls != ClassName(d.Classes(), d.Label(i)) {
			t.Errorf("row %d: %s labelled %q, manifest %q (%v)", i, rel, ClassName(d.Classes(), d.Label(i)), cls, ok)
		}
		if d.Source(i) < prev {
			t.Errorf("row %d: %s after %s: not in sorted path order", i, d.Source(i), prev)
		}
		prev = d.Source(i)
	}
	for f := range man {
		if seen[f] != 1 {
			t.Errorf("%s: %d flows, want 1", f, seen[f])
		}
	}
	m := d.Meta()
	if m.Summary.Files != uint64(len(man)) || m.Summary.Packets == 0 || res.Report.Packets != m.Summary.Packets {
		t.Errorf("summary files %d packets %d (report %d)", m.Summary.Files, m.Summary.Packets, res.Report.Packets)
	}
	if m.Summary.FlowsPerClass["HTTP"] != 17 || m.Summary.FlowsPerClass["DNScrypt"] != 0 {
		t.Errorf("flows per class %v (README: HTTP 17, DNScrypt 0 in valid)", m.Summary.FlowsPerClass)
	}
}

func TestBuildSplitAndSampling(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "s.nmds")
	// valid: 89 flows; classes with < 5 flows dropped, cap 10.
	res, err := Build(BuildOptions{
		Inputs: []string{filepath.Join(ndpiApp, "valid")}, Output: base,
		Extract: extract.Options{Bidirectional: true}, Split: SplitSource, Seed: 1,
		MinPerClass: 5, MaxPerClass: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 3 || res.Outputs[0] != filepath.Join(dir, "s-train.nmds") {
		t.Fatalf("outputs %v", res.Outputs)
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Errorf("unsplit file %s left: %v", base, err)
	}
	if _, err := os.Stat(base + ".build"); !os.IsNotExist(err) {
		t.Errorf("intermediate file left: %v", err)
	}
	// README valid counts >= 5: DNS 7, Google 7, GoogleServices 16->10, HTTP 17->10,
	// MDNS 5, Microsoft 9, WhatsAppCall 7, Zoom 8 = 63.
	var total uint64
	srcSplit := map[string]string{}
	for i, p := range res.Outputs {
		d, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if d.Meta().Split != SplitNames()[i] || uint64(d.Len()) != res.Counts[i] {
			t.Errorf("%s: split %q, %d records (counted %d)", p, d.Meta().Split, d.Len(), res.Counts[i])
		}
		for j := 0; j < d.Len(); j++ {
			if s, ok := srcSplit[d.Source(j)]; ok && s != p {
				t.Errorf("capture %s in %s and %s", d.Source(j), s, p)
			}
			srcSplit[d.Source(j)] = p
		}
		total += uint64(d.Len())
		d.Close()
	}
	if total != 63 || res.Meta.Summary.Flows != 63 {
		t.Errorf("kept %d flows (summary %d), want 63", total, res.Meta.Summary.Flows)
	}
	if res.Meta.Summary.FlowsPerClass["HTTP"] != 10 || res.Meta.Summary.FlowsPerClass["NetBIOS"] != 0 {
		t.Errorf("per class %v", res.Meta.Summary.FlowsPerClass)
	}
	if res.Meta.Summary.DroppedFlows["class above 10 flows (--max-per-class)"] != 13 {
		t.Errorf("dropped %v", res.Meta.Summary.DroppedFlows)
	}
}

// BenchmarkBuildNdpiValid measures prep end to end (extraction + labels +
// writing) on the 89 captures of ndpi-app/valid.
func BenchmarkBuildNdpiValid(b *testing.B) {
	dir := b.TempDir()
	var packets uint64
	for i := 0; i < b.N; i++ {
		res, err := Build(BuildOptions{Inputs: []string{filepath.Join(ndpiApp, "valid")},
			Output: filepath.Join(dir, "v.nmds"), Extract: extract.Options{Bidirectional: true}})
		if err != nil {
			b.Fatal(err)
		}
		packets += res.Report.Packets
	}
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
}

// A file that is not a capture is a counted, reported skip, not a crash or a
// silent loss.
func TestBuildSkipsNonCapture(t *testing.T) {
	dir := t.TempDir()
	bogus := filepath.Join(dir, "notes.pcap")
	if err := os.WriteFile(bogus, []byte("this is not a capture file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(ndpiApp, "valid", "HTTP"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("shared data missing: %v", err)
	}
	good := filepath.Join(ndpiApp, "valid", "HTTP", ents[0].Name())
	res, err := Build(BuildOptions{Inputs: []string{bogus, good}, Output: filepath.Join(dir, "x.nmds"),
		Extract: extract.Options{Bidirectional: true}})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Meta.Summary
	if s.Flows != 1 || s.SkippedFiles["unreadable capture"] != 1 || s.Files != 2 {
		t.Errorf("summary %+v", s)
	}
	if len(res.Report.Warnings) != 1 || !strings.Contains(res.Report.Warnings[0], "notes.pcap") {
		t.Errorf("warnings %q", res.Report.Warnings)
	}
}

// With timeouts the extractor emits flows when they end; the dataset must
// still list a file's flows by first packet.
func TestBuildTimeoutsKeepFirstPacketOrder(t *testing.T) {
	trace := "../../shared/data/ndpi-trace.pcapng"
	opts := extract.Options{Bidirectional: true, IdleTimeout: time.Second}
	// The extractor alone emits some flows out of first-packet order...
	var last int64
	var emitted, late int
	if _, err := extract.Files([]string{trace}, opts, func(_ string, f *extract.Flow) error {
		if emitted > 0 && f.Stats.FirstSeenNs < last {
			late++
		}
		emitted++
		last = f.Stats.FirstSeenNs
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if late == 0 {
		t.Fatal("no flow emitted out of order: the test does not exercise reordering")
	}
	// ... and Build puts them back.
	out := filepath.Join(t.TempDir(), "t.nmds")
	if _, err := Build(BuildOptions{Inputs: []string{trace}, Output: out, Extract: opts}); err != nil {
		t.Fatal(err)
	}
	d, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Len() != emitted || d.Meta().Settings.IdleTimeout != "1s" {
		t.Errorf("%d flows (extractor %d), settings %+v", d.Len(), emitted, d.Meta().Settings)
	}
	for i := 1; i < d.Len(); i++ {
		if d.FirstSeenNs(i) < d.FirstSeenNs(i-1) {
			t.Fatalf("rows %d,%d out of first-packet order", i-1, i)
		}
	}
}

func TestBuildClean(t *testing.T) {
	res, err := Build(BuildOptions{Inputs: []string{filepath.Join(ndpiApp, "valid")},
		Output: filepath.Join(t.TempDir(), "c.nmds"), Extract: extract.Options{Bidirectional: true, Clean: true}})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Meta.Summary
	// valid holds DNS 7, MDNS 5, NetBIOS 3 flows (README), all on cleaned ports.
	for _, c := range []string{"DNS", "MDNS", "NetBIOS"} {
		if s.FlowsPerClass[c] != 0 {
			t.Errorf("%s: %d flows kept", c, s.FlowsPerClass[c])
		}
	}
	if got := s.DroppedFlows[extract.SkipCleaned]; got < 15 || s.Flows+got != 89 {
		t.Errorf("cleaned %d, kept %d of 89", got, s.Flows)
	}
	if _, ok := s.SkippedPkts[extract.SkipCleaned]; ok {
		t.Error("cleaned flows counted as skipped packets")
	}
}

// A build that stores no flow is an error naming the reasons, and leaves no
// empty dataset behind (with and without a split).
func TestBuildNothingStored(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pcap")
	if err := os.WriteFile(junk, []byte("this is not a capture file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "tree", "A", "readme.txt"))
	for _, split := range []SplitMode{SplitNone, SplitRandom} {
		out := filepath.Join(dir, "o.nmds")
		res, err := Build(BuildOptions{Inputs: []string{junk, filepath.Join(dir, "tree")}, Output: out, Split: split,
			Extract: extract.Options{Bidirectional: true}})
		if !errors.Is(err, ErrNoFlows) {
			t.Fatalf("split %q: err = %v, want ErrNoFlows", split, err)
		}
		for _, want := range []string{"1 files skipped: unreadable capture", "1 files skipped: " + SkipNotCapture, "junk.pcap", "not written"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("split %q: error %q does not say %q", split, err, want)
			}
		}
		if res == nil || res.Meta.Summary.Files != 1 || len(res.Outputs) != 0 {
			t.Errorf("split %q: result %+v", split, res)
		}
		left, _ := filepath.Glob(filepath.Join(dir, "o*"))
		if len(left) != 0 {
			t.Errorf("split %q: files left behind: %v", split, left)
		}
	}
}
