package dataset

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/repr"
)

// testRecord builds a distinctive record from i.
func testRecord(i, label int, source string) *Record {
	r := &Record{Label: label, Source: source}
	for j := range r.View.Bytes {
		r.View.Bytes[j] = byte(i*7 + j*13)
	}
	r.View.NPackets = 1 + i%repr.SeqLen
	for j := 0; j < r.View.NPackets; j++ {
		r.View.Sizes[j] = uint32(60 + i + j)
		r.View.IATs[j] = float64(j) * 0.000125
		r.View.Dirs[j] = int8(1 - 2*(j%2))
	}
	r.Key.SrcIP = [16]byte{10, 0, byte(i >> 8), byte(i)}
	r.Key.DstIP = [16]byte{192, 168, 1, 1}
	r.Key.SrcPort, r.Key.DstPort = uint16(40000+i), 443
	r.Key.Proto, r.Key.IPVersion, r.Key.VLAN = 6, 4, uint16(i%3)
	r.Stats.FirstSeenNs = int64(1_700_000_000_000_000_000 + i*1_000_000)
	r.Stats.LastSeenNs = r.Stats.FirstSeenNs + 2_500_000
	r.Stats.Packets, r.Stats.Bytes = uint64(r.View.NPackets), uint64(1000+i)
	r.Stats.SrcPackets, r.Stats.SrcBytes = 2, 600
	r.Stats.DstPackets, r.Stats.DstBytes = r.Stats.Packets-2, uint64(400+i)
	return r
}

func writeTestDataset(t *testing.T, path string, n int, classes []string) []*Record {
	t.Helper()
	w, err := Create(path, Meta{Classes: classes, Settings: Settings{Direction: "bi", Seed: 7}})
	if err != nil {
		t.Fatal(err)
	}
	var recs []*Record
	for i := 0; i < n; i++ {
		label := i%(len(classes)+1) - 1 // includes unlabelled records
		r := testRecord(i, label, fmt.Sprintf("caps/%s/f%d.pcap", ClassName(classes, label), i/4))
		recs = append(recs, r)
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Meta().Summary.Packets = 12345
	w.Meta().Summary.SkippedPkts = map[string]uint64{"non-IP": 3}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.nmds")
	classes := []string{"HTTP", "DNS", "Zoom"}
	recs := writeTestDataset(t, path, 50, classes)
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Len() != len(recs) {
		t.Fatalf("Len = %d, want %d", d.Len(), len(recs))
	}
	if !slices.Equal(d.Classes(), classes) {
		t.Errorf("Classes = %v", d.Classes())
	}
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	for i, want := range recs {
		got, err := d.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		if *got != *want {
			t.Fatalf("record %d differs:\n got %+v\nwant %+v", i, got.Key, want.Key)
		}
		if !bytes.Equal(d.ViewBytes(i), want.View.Bytes[:]) || d.Label(i) != want.Label || d.Source(i) != want.Source {
			t.Fatalf("record %d accessors differ", i)
		}
	}
	m := d.Meta()
	if m.Version != Version || m.Summary.Flows != 50 || m.Summary.Packets != 12345 || m.Summary.SkippedPkts["non-IP"] != 3 {
		t.Errorf("meta = %+v", m)
	}
	// 50 records, labels cycle -1,0,1,2: 13 unlabelled (i%4==0), then 13,12,12.
	if m.Summary.Unlabelled != 13 || m.Summary.FlowsPerClass["HTTP"] != 13 || m.Summary.FlowsPerClass["DNS"] != 12 || m.Summary.FlowsPerClass["Zoom"] != 12 {
		t.Errorf("summary counts = %+v unlabelled %d", m.Summary.FlowsPerClass, m.Summary.Unlabelled)
	}
	if m.Representation.RecordSize != RecordSize || m.Settings.Seed != 7 {
		t.Errorf("representation/settings = %+v %+v", m.Representation, m.Settings)
	}
	st, _ := os.Stat(path)
	wantSize := int64(HeaderSize + 50*RecordSize)
	if st.Size() <= wantSize {
		t.Errorf("file size %d, want more than %d", st.Size(), wantSize)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestEmptyDataset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.nmds")
	w, err := Create(path, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Len() != 0 || len(d.Classes()) != 0 {
		t.Errorf("Len %d classes %v", d.Len(), d.Classes())
	}
}

func TestAppendRejectsBadLabel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.nmds")
	w, err := Create(path, Meta{Classes: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Append(testRecord(0, 1, "x")); err == nil {
		t.Error("label 1 with one class accepted")
	}
	if err := w.Append(testRecord(0, -2, "x")); err == nil {
		t.Error("label -2 accepted")
	}
}

func TestTruncatedAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.nmds")
	writeTestDataset(t, path, 10, []string{"a", "b"})
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	try := func(name string, b []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Open(p)
		if err == nil {
			err = d.Verify()
			d.Close()
		}
		return err
	}
	for _, n := range []int{0, 5, HeaderSize - 1, HeaderSize, HeaderSize + 3*RecordSize, len(good) - 1} {
		err := try("trunc", good[:n])
		if err == nil || !strings.Contains(err.Error(), "truncated") && n != 0 {
			t.Errorf("truncated to %d bytes: err = %v, want a 'truncated' error", n, err)
		}
	}
	mut := func(off int, f func(byte) byte) []byte {
		b := slices.Clone(good)
		b[off] = f(b[off])
		return b
	}
	flip := func(b byte) byte { return b ^ 0x40 }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"magic", mut(0, flip), "not a netmamba dataset"},
		{"version", mut(8, flip), "corrupt header"},
		{"record", mut(HeaderSize+5*RecordSize+100, flip), "checksum"},
		{"meta", mut(len(good)-3, flip), "corrupt metadata"},
		{"extra", append(slices.Clone(good), 0), "unexpected bytes"},
	}
	for _, c := range cases {
		err := try(c.name, c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if err := try("record", mut(HeaderSize+5*RecordSize+100, flip)); !errors.Is(err, ErrChecksum) {
		t.Errorf("record corruption: %v does not wrap ErrChecksum", err)
	}
	// A header that is self-consistent but declares another version.
	h, err := decodeHeader(path, good, int64(len(good)), false)
	if err != nil {
		t.Fatal(err)
	}
	h.version = 99
	b := slices.Clone(good)
	copy(b, h.encode())
	if err := try("v99", b); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("version 99: %v", err)
	}
}

func TestSplitPath(t *testing.T) {
	for in, want := range map[string]string{
		"out/x.nmds": "out/x-train.nmds", "x": "x-train", "a.b/x": "a.b/x-train", ".hidden": ".hidden-train",
	} {
		if got := SplitPath(in, "train"); got != want {
			t.Errorf("SplitPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func entries(perClass []int) []Entry {
	var es []Entry
	for i := 0; i < 1000; i++ {
		for c, n := range perClass {
			if i < n {
				es = append(es, Entry{Label: c, FirstSeenNs: int64(len(es) * 10), Source: fmt.Sprintf("s%d", len(es)/7)})
			}
		}
	}
	return es
}

func TestSample(t *testing.T) {
	es := entries([]int{100, 30, 5})
	kept, dropped := Sample(es, 10, 50, false, 0)
	count := map[int]int{}
	for _, i := range kept {
		count[es[i].Label]++
	}
	if count[0] != 50 || count[1] != 30 || count[2] != 0 {
		t.Errorf("kept per class = %v, want 50/30/0", count)
	}
	if !slices.IsSorted(kept) {
		t.Error("kept indices not in dataset order")
	}
	if dropped["class with fewer than 10 flows (--min-per-class)"] != 5 || dropped["class above 50 flows (--max-per-class)"] != 50 {
		t.Errorf("dropped = %v", dropped)
	}
	again, _ := Sample(es, 10, 50, false, 0)
	other, _ := Sample(es, 10, 50, false, 1)
	if !slices.Equal(kept, again) {
		t.Error("same seed, different sample")
	}
	if slices.Equal(kept, other) {
		t.Error("seeds 0 and 1 gave the same sample")
	}
	early, _ := Sample(es, 0, 50, true, 0)
	var class0 []int
	for _, i := range early {
		if es[i].Label == 0 {
			class0 = append(class0, i)
		}
	}
	// the 50 earliest flows of class 0 are its first 50 in dataset order (times increase)
	for k, i := range class0 {
		if es[i].FirstSeenNs > es[class0[len(class0)-1]].FirstSeenNs || k >= 50 {
			t.Fatal("earliest sampling kept a late flow")
		}
	}
	var all0 []int
	for i, e := range es {
		if e.Label == 0 {
			all0 = append(all0, i)
		}
	}
	if !slices.Equal(class0, all0[:50]) {
		t.Error("earliest sampling did not keep the first 50 flows by time")
	}
}

func TestSplitRandomAndTime(t *testing.T) {
	es := entries([]int{100, 15, 3})
	for _, mode := range []SplitMode{SplitRandom, SplitTime} {
		sp, err := Split(es, mode, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		perClass := [3][3]int{}
		for s := range sp {
			if !slices.IsSorted(sp[s]) {
				t.Errorf("%s: split %d not in dataset order", mode, s)
			}
			for _, i := range sp[s] {
				if seen[i] {
					t.Fatalf("%s: record %d in two splits", mode, i)
				}
				seen[i] = true
				perClass[es[i].Label][s]++
			}
		}
		if len(seen) != len(es) {
			t.Errorf("%s: %d of %d records assigned", mode, len(seen), len(es))
		}
		// ⌊0.8n⌋ / ⌊0.1n⌋ / rest: 100 -> 80/10/10, 15 -> 12/1/2, 3 -> 2/0/1
		if perClass != [3][3]int{{80, 10, 10}, {12, 1, 2}, {2, 0, 1}} {
			t.Errorf("%s: per-class sizes %v", mode, perClass)
		}
		if mode == SplitTime {
			// every test flow of a class is later than every train/valid flow of it
			for c := 0; c < 3; c++ {
				var maxTV, minTest int64 = -1, 1 << 62
				for s := range sp {
					for _, i := range sp[s] {
						if es[i].Label != c {
							continue
						}
						if s == 2 {
							minTest = min(minTest, es[i].FirstSeenNs)
						} else {
							maxTV = max(maxTV, es[i].FirstSeenNs)
						}
					}
				}
				if maxTV >= minTest {
					t.Errorf("time split class %d: train/valid flow at %d after test flow at %d", c, maxTV, minTest)
				}
			}
		}
	}
}

func TestSplitSource(t *testing.T) {
	es := entries([]int{100, 50, 20})
	sp, err := Split(es, SplitSource, 3)
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]int{}
	total := 0
	for s := range sp {
		total += len(sp[s])
		for _, i := range sp[s] {
			if w, ok := where[es[i].Source]; ok && w != s {
				t.Fatalf("source %s in splits %d and %d", es[i].Source, w, s)
			}
			where[es[i].Source] = s
		}
	}
	if total != len(es) {
		t.Fatalf("%d of %d assigned", total, len(es))
	}
	// sources hold 7 flows: train stops at the first capture reaching 80 %.
	if n := len(sp[0]); n < 136 || n > 136+7 {
		t.Errorf("train has %d flows, want 136..143 (80%% of 170 rounded up to a capture)", n)
	}
	if len(sp[1]) == 0 || len(sp[2]) == 0 {
		t.Errorf("valid %d, test %d: want both non-empty", len(sp[1]), len(sp[2]))
	}
}

func TestExportU8AndIndex(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.nmds")
	classes := []string{"A", "B"}
	recs := writeTestDataset(t, path, 9, classes)
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var out, idx bytes.Buffer
	if err := ExportU8(d, &out, &idx); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 9*repr.ViewBytes {
		t.Fatalf("u8 output %d bytes", out.Len())
	}
	rows, err := csv.NewReader(&idx).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], []string{"row", "file", "label"}) || len(rows) != 10 {
		t.Fatalf("index header %v, %d rows", rows[0], len(rows))
	}
	for i, r := range recs {
		if !bytes.Equal(out.Bytes()[i*repr.ViewBytes:(i+1)*repr.ViewBytes], r.View.Bytes[:]) {
			t.Errorf("row %d bytes differ", i)
		}
		want := []string{fmt.Sprint(i), r.Source, ClassName(classes, r.Label)}
		if !slices.Equal(rows[i+1], want) {
			t.Errorf("index row %d = %v, want %v", i, rows[i+1], want)
		}
	}
}

func TestPNGRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.nmds")
	recs := writeTestDataset(t, path, 11, []string{"Zoom", "DNS"})
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tree := filepath.Join(dir, "png")
	n, err := ExportPNG(d, tree)
	if err != nil || n != 11 {
		t.Fatalf("ExportPNG = %d, %v", n, err)
	}
	back := filepath.Join(dir, "back.nmds")
	if m, err := ImportPNG(tree, back); err != nil || m != 11 {
		t.Fatalf("ImportPNG = %d, %v", m, err)
	}
	b, err := Open(back)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Imported classes are the sorted folder names.
	if !slices.Equal(b.Classes(), []string{"DNS", "Zoom"}) {
		t.Fatalf("imported classes %v", b.Classes())
	}
	found := 0
	for i := 0; i < b.Len(); i++ {
		var row int
		if _, err := fmt.Sscanf(filepath.Base(b.Source(i)), "%08d.png", &row); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.ViewBytes(i), recs[row].View.Bytes[:]) {
			t.Errorf("row %d: bytes differ after png round trip", row)
		}
		if ClassName(b.Classes(), b.Label(i)) != ClassName(d.Classes(), recs[row].Label) {
			t.Errorf("row %d: class %q, want %q", row, ClassName(b.Classes(), b.Label(i)), ClassName(d.Classes(), recs[row].Label))
		}
		found++
	}
	if found != 11 {
		t.Errorf("found %d rows", found)
	}
}

func TestExportMMJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.nmds")
	recs := writeTestDataset(t, path, 6, []string{"A", "B"})
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var buf bytes.Buffer
	if err := ExportMMJSON(d, &buf); err != nil {
		t.Fatal(err)
	}
	var items []struct {
		Data        []string `json:"data"`
		Sizes       string   `json:"sizes"`
		SignedSizes string   `json:"signed_sizes"`
		Intervals   string   `json:"intervals"`
		NumPacket   int      `json:"num_packet"`
		Label       int      `json:"label"`
		Name        string   `json:"name"`
		PcapFile    string   `json:"pcap_file"`
	}
	if err := json.Unmarshal(buf.Bytes(), &items); err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	if len(items) != 6 {
		t.Fatalf("%d items", len(items))
	}
	// record 2: label 1 ("B"), NPackets 3 -> 3 data strings; sizes 62 63 64; dirs + - +
	it, r := items[2], recs[2]
	if len(it.Data) != 3 {
		t.Fatalf("data has %d strings, want 3", len(it.Data))
	}
	first := strings.Fields(it.Data[1])
	if len(first) != 320 || first[0] != fmt.Sprint(r.View.Bytes[320]) || first[319] != fmt.Sprint(r.View.Bytes[639]) {
		t.Errorf("slot 1 = %d values starting %v", len(first), first[:2])
	}
	if it.Sizes != "62 63 64" || it.SignedSizes != "62 -63 64" || it.Intervals != "0 0.000125 0.00025" {
		t.Errorf("sequences: %q %q %q", it.Sizes, it.SignedSizes, it.Intervals)
	}
	if it.Label != 1 || it.Name != "B" || it.PcapFile != r.Source || it.NumPacket != 3 {
		t.Errorf("item 2: label %d name %q file %q num_packet %d", it.Label, it.Name, it.PcapFile, it.NumPacket)
	}
	if items[0].Label != -1 || items[0].Name != "" {
		t.Errorf("unlabelled item = label %d name %q", items[0].Label, items[0].Name)
	}
}

func TestFlowWriter(t *testing.T) {
	r := testRecord(2, 0, `dir/a "quoted".pcap`)
	r.Key.IPVersion = 6
	r.Key.SrcIP = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	r.Key.DstIP = [16]byte{0xfe, 0x80, 15: 2}
	var c, j bytes.Buffer
	for _, x := range []struct {
		f   string
		buf *bytes.Buffer
	}{{"csv", &c}, {"jsonl", &j}} {
		fw, err := NewFlowWriter(x.buf, x.f, "label", "source_file")
		if err != nil {
			t.Fatal(err)
		}
		if err := fw.Write(&r.Key, &r.Stats, "HTTP", r.Source); err != nil {
			t.Fatal(err)
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	wantCSV := "src_ip,src_port,dst_ip,dst_port,protocol,ip_version,vlan_id,bidirectional_first_seen_ms," +
		"bidirectional_last_seen_ms,bidirectional_duration_ms,bidirectional_packets,bidirectional_bytes," +
		"src2dst_packets,src2dst_bytes,dst2src_packets,dst2src_bytes,label,source_file\n" +
		`2001:db8::1,40002,fe80::2,443,6,6,2,1700000000002,1700000000004,2,3,1002,2,600,1,402,HTTP,"dir/a ""quoted"".pcap"` + "\n"
	if c.String() != wantCSV {
		t.Errorf("csv:\n%s\nwant:\n%s", c.String(), wantCSV)
	}
	var m map[string]any
	if err := json.Unmarshal(j.Bytes(), &m); err != nil {
		t.Fatalf("jsonl %q: %v", j.String(), err)
	}
	if m["src_ip"] != "2001:db8::1" || m["dst2src_bytes"] != 402.0 || m["bidirectional_duration_ms"] != 2.0 ||
		m["source_file"] != `dir/a "quoted".pcap` || len(m) != 18 {
		t.Errorf("jsonl = %v", m)
	}
}

func BenchmarkReadRecord(b *testing.B) {
	path := filepath.Join(b.TempDir(), "x.nmds")
	w, err := Create(path, Meta{Classes: []string{"a"}})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		if err := w.Append(testRecord(i, 0, "s")); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	d, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var r Record
	b.SetBytes(RecordSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.ReadRecord(i%1000, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzOpen feeds arbitrary bytes to the reader: it must return an error or
// a dataset whose every record can be read, never panic.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.nmds")
	w, err := Create(path, Meta{Classes: []string{"a", "b"}})
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := w.Append(testRecord(i, i-1, "s")); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:HeaderSize])
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, skip := range []bool{false, true} {
			d, err := openBytes("fuzz", b, skip)
			if err != nil {
				continue
			}
			_ = d.Verify()
			var r Record
			for i := 0; i < d.Len(); i++ {
				_ = d.ReadRecord(i, &r)
				_ = d.Source(i)
			}
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	path := filepath.Join(b.TempDir(), "x.nmds")
	w, err := Create(path, Meta{Classes: []string{"a"}})
	if err != nil {
		b.Fatal(err)
	}
	r := testRecord(1, 0, "source.pcap")
	b.SetBytes(RecordSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Append(r); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// TestWindowIndexField: Record.Window is stored as a little-endian uint16
// at record offset 1973 (docs/dataset-format.md), in what was zero padding,
// so a row without a window is byte-identical to the format before the
// field; windowed rows are counted in Summary.WindowedViews.
func TestWindowIndexField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.nmds")
	w, err := Create(path, Meta{Classes: []string{"A"}})
	if err != nil {
		t.Fatal(err)
	}
	windows := []int{0, 1, 3, 0, 65535}
	for i, win := range windows {
		r := testRecord(i, 0, "caps/A/f.pcap")
		r.Window = win
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, win := range windows {
		rec := raw[128+i*1984 : 128+(i+1)*1984]
		if got := int(rec[1973]) | int(rec[1974])<<8; got != win {
			t.Errorf("row %d: bytes 1973..1974 hold %d, want %d", i, got, win)
		}
		if !bytes.Equal(rec[1975:], make([]byte, 1984-1975)) || (win == 0 && !bytes.Equal(rec[1973:], make([]byte, 11))) {
			t.Errorf("row %d: padding % x", i, rec[1973:])
		}
		r, err := d.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		if r.Window != win {
			t.Errorf("row %d: Window %d, want %d", i, r.Window, win)
		}
	}
	if s := d.Meta().Summary; s.WindowedViews != 3 || s.Flows != 5 {
		t.Errorf("summary: %d windowed views of %d rows, want 3 of 5", s.WindowedViews, s.Flows)
	}
}
