package extract

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/repr"
)

// rawPacket is one captured packet, copied out of the reader.
type rawPacket struct {
	tsNs int64
	data []byte
	orig int
}

// flowPackets reads path and returns its link type and the packets that
// decode to an IP packet (the flow's packets, for a one-flow capture).
func flowPackets(t *testing.T, path string) (capture.LinkType, []rawPacket) {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var (
		cp   capture.Packet
		p    flow.Packet
		out  []rawPacket
		link capture.LinkType
	)
	for {
		if err := r.Next(&cp); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(out) > 0 && cp.LinkType != link {
			t.Fatalf("%s: several link types", path)
		}
		link = cp.LinkType
		if flow.Decode(cp.LinkType, cp.Data, &p) != flow.OK {
			continue
		}
		out = append(out, rawPacket{cp.TimestampNs, bytes.Clone(cp.Data), cp.OrigLen})
	}
	return link, out
}

// extractPcap writes pkts into a new pcap and extracts it with opts.
func extractPcap(t *testing.T, link capture.LinkType, pkts []rawPacket, opts Options) []Flow {
	t.Helper()
	var buf bytes.Buffer
	w, err := capture.NewPcapWriter(&buf, capture.PcapWriterOptions{LinkType: link, Nanoseconds: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.tsNs, p.data, p.orig); err != nil {
			t.Fatal(err)
		}
	}
	r, err := capture.NewBytesReader(buf.Bytes(), "window.pcap")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var flows []Flow
	rep := &Report{}
	if err := ex.Capture(r, rep, func(f *Flow) error { flows = append(flows, *f); return nil }); err != nil {
		t.Fatal(err)
	}
	return flows
}

// TestWindowsMatchTruncatedCaptures is the independent check of
// Options.Windows: on the ndpi-app train flows, window i must be
// byte-identical (view and sequences) to the only flow of a new capture
// holding the flow's packets from i on, under debias settings that depend
// on the window's initiator (relative_ip, random_*) and its first sequence
// numbers (relative_seq), the project's zero_* list, and compat official.
func TestWindowsMatchTruncatedCaptures(t *testing.T) {
	const W = 8
	root := filepath.Join(sharedDir(t), "data", "ndpi-app", "train")
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".pcap" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if testing.Short() {
		files = files[:len(files)/8]
	}
	project, err := repr.ParseDebias([]string{"zero_ip", "zero_seq", "zero_checksum", "zero_ttl", "zero_options"})
	if err != nil {
		t.Fatal(err)
	}
	relative, err := repr.ParseDebias([]string{"relative_ip", "random_port", "relative_seq"})
	if err != nil {
		t.Fatal(err)
	}
	relative.Seed = 7
	random, err := repr.ParseDebias([]string{"random_ip", "zero_ttl"})
	if err != nil {
		t.Fatal(err)
	}
	random.Seed = 3
	optSets := []Options{
		{Bidirectional: true, Debias: project},
		{Bidirectional: true, Debias: relative},
		{Bidirectional: true, Debias: random},
		{Bidirectional: true, Compat: CompatOfficial},
		{Debias: relative}, // unidirectional
	}
	var checked, flipped, short, tcpRelSeq int
	for _, path := range files {
		link, pkts := flowPackets(t, path)
		for oi, opts := range optSets {
			base, rep := extractOne(t, path, opts)
			if len(base) != 1 || rep.Fragments > 0 || base[0].Stats.Packets != uint64(len(pkts)) {
				continue // several flows, fragments, or packets the flow table refused
			}
			wopts := opts
			wopts.Windows = W
			got, wrep := extractOne(t, path, wopts)
			n := len(pkts)
			// Hand count: the first view, then windows 1..W-1 that hold 5 packets.
			want := 1 + max(0, min(W-1, n-repr.ViewPackets))
			if len(got) != want || wrep.Flows != 1 || wrep.Windows != uint64(want-1) {
				t.Fatalf("%s opts %d: %d packets, %d views (report %d flows, %d windows), want %d",
					path, oi, n, len(got), wrep.Flows, wrep.Windows, want)
			}
			if want == 1 {
				short++
			}
			for k, f := range got {
				if f.Window != k || f.Key != base[0].Key || f.Stats != base[0].Stats {
					t.Fatalf("%s opts %d: view %d: window %d, key/stats differ from the flow's", path, oi, k, f.Window)
				}
				exp := base[0].View
				if k > 0 {
					sub := extractPcap(t, link, pkts[k:], opts)
					if len(sub) != 1 {
						t.Fatalf("%s opts %d: packets %d.. give %d flows", path, oi, k, len(sub))
					}
					exp = sub[0].View
					if sub[0].Key != f.Key {
						flipped++
					}
					if f.Key.Proto == 6 && opts.Debias.TCPSeq == repr.SeqRelative {
						tcpRelSeq++
					}
					checked++
				}
				if f.View != exp {
					t.Errorf("%s opts %d: window %d differs from the capture of packets %d.. (bytes equal %v, sizes %v, dirs %v, iats %v, n %d/%d)",
						path, oi, k, k, f.View.Bytes == exp.Bytes, f.View.Sizes == exp.Sizes, f.View.Dirs == exp.Dirs,
						f.View.IATs == exp.IATs, f.View.NPackets, exp.NPackets)
				}
			}
		}
	}
	t.Logf("%d files: %d windows checked (%d start with a responder packet, %d TCP with relative_seq), %d flow views without windows",
		len(files), checked, flipped, tcpRelSeq, short)
	if checked == 0 || flipped == 0 || tcpRelSeq == 0 || short == 0 {
		t.Errorf("coverage: %d windows, %d flipped, %d relative_seq, %d short flows", checked, flipped, tcpRelSeq, short)
	}
}

// TestWindowsOptionBounds: negative and too many windows are refused.
func TestWindowsOptionBounds(t *testing.T) {
	for _, w := range []int{-1, MaxWindows + 1} {
		if _, err := New(Options{Windows: w}); err == nil {
			t.Errorf("Windows %d accepted", w)
		}
	}
	if _, err := New(Options{Windows: MaxWindows}); err != nil {
		t.Errorf("Windows %d: %v", MaxWindows, err)
	}
}
