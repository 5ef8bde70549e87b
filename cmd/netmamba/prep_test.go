package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/repr"
)

// prepNdpiApp is ../shared/data/ndpi-app as seen from this package's directory.
const prepNdpiApp = "../../../shared/data/ndpi-app"

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("netmamba %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func readCSVFile(t *testing.T, path string) [][]string {
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
	return rows
}

// TestPrepExportU8NdpiTrain is the acceptance check: prep on the ndpi-app
// train tree, export u8, and compare the index with manifest.csv.
func TestPrepExportU8NdpiTrain(t *testing.T) {
	man := readCSVFile(t, filepath.Join(prepNdpiApp, "manifest.csv"))
	want := map[string]string{} // path as reached from the INPUT argument -> class
	for _, r := range man[1:] {
		if r[0] == "train" {
			want[prepNdpiApp+"/"+r[2]] = r[1]
		}
	}
	if len(want) != 516 {
		t.Fatalf("manifest has %d train rows, README says 516", len(want))
	}
	dir := t.TempDir()
	ds := filepath.Join(dir, "train.nmds")
	out := runCLI(t, "prep", "-o", ds, prepNdpiApp+"/train")
	if !strings.Contains(out, "stored 516 flows in 17 classes") {
		t.Errorf("prep summary:\n%s", out)
	}
	u8, idx := filepath.Join(dir, "train.u8"), filepath.Join(dir, "train.csv")
	runCLI(t, "dataset", "export", "--format", "u8", "-o", u8, "--index", idx, ds)
	rows := readCSVFile(t, idx)
	if strings.Join(rows[0], ",") != "row,file,label" {
		t.Fatalf("index header %q", rows[0])
	}
	rows = rows[1:]
	if len(rows) != len(want) {
		t.Errorf("index has %d rows, manifest %d train flows", len(rows), len(want))
	}
	raw, err := os.ReadFile(u8)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1600*len(rows) {
		t.Fatalf("u8 file is %d bytes for %d rows", len(raw), len(rows))
	}
	seen := map[string]bool{}
	prev := ""
	for i, r := range rows {
		if r[0] != strconv.Itoa(i) {
			t.Errorf("row %d numbered %q", i, r[0])
		}
		cls, ok := want[r[1]]
		if !ok {
			t.Errorf("row %d: file %q not a train file of the manifest", i, r[1])
		} else if r[2] != cls {
			t.Errorf("row %d: %s labelled %q, manifest says %q", i, r[1], r[2], cls)
		}
		if seen[r[1]] {
			t.Errorf("row %d: %s appears twice (one flow per file)", i, r[1])
		}
		seen[r[1]] = true
		if r[1] < prev {
			t.Errorf("row %d: %s after %s: not sorted path order", i, r[1], prev)
		}
		prev = r[1]
		// Independent layout check: the row starts at the IP header; IPv4
		// addresses (bytes 12..19) are zeroed by the default debiasing.
		row := raw[1600*i : 1600*(i+1)]
		switch row[0] >> 4 {
		case 4:
			if !bytes.Equal(row[12:20], make([]byte, 8)) {
				t.Errorf("row %d (%s): IPv4 addresses not zeroed: % x", i, r[1], row[12:20])
			}
		case 6:
		default:
			t.Errorf("row %d (%s): first byte %#x is not an IP header", i, r[1], row[0])
		}
	}
}

func TestPrepSplitInspectAndPNGRoundTrip(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "v.nmds")
	out := runCLI(t, "prep", "-o", base, "--split", "time", "--seed", "1",
		"--classes", prepNdpiApp+"/classes.txt", prepNdpiApp+"/valid")
	for _, s := range []string{"v-train.nmds", "v-valid.nmds", "v-test.nmds"} {
		if !strings.Contains(out, s) {
			t.Errorf("prep output does not name %s:\n%s", s, out)
		}
	}
	js := runCLI(t, "inspect", "--json", filepath.Join(dir, "v-train.nmds"))
	var info struct {
		Kind      string `json:"kind"`
		Flows     int    `json:"flows"`
		Split     string `json:"split"`
		Integrity string `json:"integrity"`
		Classes   []struct {
			Name  string `json:"name"`
			Flows int    `json:"flows"`
		} `json:"classes"`
	}
	if err := json.Unmarshal([]byte(js), &info); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, js)
	}
	// valid HTTP has 17 flows: time split puts ⌊0.8·17⌋ = 13 in train.
	if info.Kind != "dataset" || info.Split != "train" || info.Integrity != "ok" || len(info.Classes) != 17 || info.Classes[8].Name != "HTTP" || info.Classes[8].Flows != 13 {
		t.Errorf("inspect: %+v", info)
	}
	// ImageFolder export of all three splits, then import of the train tree.
	png := filepath.Join(dir, "png")
	runCLI(t, "dataset", "export", "--format", "png", "-o", png, base)
	for _, s := range []string{"train", "valid", "test"} {
		if _, err := os.Stat(filepath.Join(png, s, "HTTP")); err != nil {
			t.Errorf("png tree: %v", err)
		}
	}
	back := filepath.Join(dir, "back.nmds")
	runCLI(t, "dataset", "import", "-o", back, filepath.Join(png, "train"))
	a, b := filepath.Join(dir, "a.u8"), filepath.Join(dir, "b.u8")
	runCLI(t, "dataset", "export", "--format", "u8", "-o", a, filepath.Join(dir, "v-train.nmds"))
	runCLI(t, "dataset", "export", "--format", "u8", "-o", b, back)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if len(ab) == 0 || !bytes.Equal(ab, bb) {
		t.Errorf("png round trip changed the bytes (%d vs %d bytes)", len(ab), len(bb))
	}
	// A capture: one flow, text report.
	txt := runCLI(t, "inspect", prepNdpiApp+"/valid/HTTP/"+firstFileIn(t, prepNdpiApp+"/valid/HTTP"))
	if !strings.Contains(txt, "flows (bidirectional): 1\n") || !strings.Contains(txt, "link types (packets):") {
		t.Errorf("inspect capture:\n%s", txt)
	}
}

func firstFileIn(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		t.Fatalf("%s: %v", dir, err)
	}
	return ents[0].Name()
}

func TestPrepErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"prep", "-o", dir + "/x", "--filter", "tcp port x", prepNdpiApp + "/valid"}, "offset 9"},
		{[]string{"prep", "-o", dir + "/x", "--split", "bogus", prepNdpiApp + "/valid"}, "unknown split"},
		{[]string{"prep", "-o", dir + "/x", dir + "/missing"}, "missing"},
		{[]string{"dataset", "export", "--format", "u8", "-o", dir + "/y", dir + "/none.nmds"}, "no such file"},
	} {
		root := newRootCmd()
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		root.SetArgs(c.args)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
		if err != nil && strings.Count(err.Error(), c.args[len(c.args)-1]) > 1 {
			t.Errorf("%v: err %q names the input more than once", c.args, err)
		}
	}
}

// TestPrepKeepsInputSpelling: the index "file" column is the INPUT argument
// as given ("./…/", trailing slash not doubled) joined with the path below.
func TestPrepKeepsInputSpelling(t *testing.T) {
	dir := t.TempDir()
	ds, idx := filepath.Join(dir, "v.nmds"), filepath.Join(dir, "v.csv")
	arg := "./" + prepNdpiApp + "/valid/"
	runCLI(t, "prep", "-q", "-o", ds, arg)
	runCLI(t, "dataset", "export", "--format", "u8", "-o", filepath.Join(dir, "v.u8"), "--index", idx, ds)
	rows := readCSVFile(t, idx)[1:]
	if len(rows) == 0 {
		t.Fatal("empty index")
	}
	for _, r := range rows {
		rest, ok := strings.CutPrefix(r[1], arg)
		if !ok || strings.HasPrefix(rest, "/") || !strings.HasPrefix(rest, r[2]+"/") {
			t.Errorf("index file %q (label %s): want %q + class + name", r[1], r[2], arg)
		}
		if _, err := os.Stat(r[1]); err != nil {
			t.Errorf("index file %q does not open: %v", r[1], err)
		}
	}
}

// TestPrepNothingStored: prep fails, says why, and leaves no dataset.
func TestPrepNothingStored(t *testing.T) {
	dir := t.TempDir()
	junk, out := filepath.Join(dir, "junk.pcap"), filepath.Join(dir, "o.nmds")
	if err := os.WriteFile(junk, []byte("not a capture"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"prep", "-q", "-o", out, junk})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "no flows stored") || !strings.Contains(err.Error(), "unreadable capture") ||
		!strings.Contains(err.Error(), "not a pcap or pcapng file") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("empty dataset left behind: %v", err)
	}
}

// TestPrepDebias: --debias rewrites the stored headers and is recorded in
// the dataset's settings.
func TestPrepDebias(t *testing.T) {
	dir := t.TempDir()
	in := prepNdpiApp + "/valid/HTTP"
	check := func(debias string, want []string, portsZero, ipsZero bool) {
		t.Helper()
		ds, u8 := filepath.Join(dir, "d.nmds"), filepath.Join(dir, "d.u8")
		args := []string{"prep", "-q", "-o", ds, in}
		if debias != "" {
			args = append(args, "--debias", debias)
		}
		runCLI(t, args...)
		var info struct {
			Settings struct {
				Debias []string `json:"debias"`
			} `json:"settings"`
		}
		js := runCLI(t, "inspect", "--json", ds)
		if err := json.Unmarshal([]byte(js), &info); err != nil {
			t.Fatal(err)
		}
		if strings.Join(info.Settings.Debias, ",") != strings.Join(want, ",") {
			t.Errorf("--debias %q: settings.debias %q, want %q", debias, info.Settings.Debias, want)
		}
		runCLI(t, "dataset", "export", "--format", "u8", "-o", u8, ds)
		raw, err := os.ReadFile(u8)
		if err != nil || len(raw) == 0 {
			t.Fatalf("%v", err)
		}
		v4 := 0
		for i := 0; i+1600 <= len(raw); i += 1600 {
			row := raw[i : i+1600]
			if row[0]>>4 != 4 || row[9] != 6 { // IPv4/TCP rows: ports right after the IHL*4-byte header
				continue
			}
			v4++
			ihl := int(row[0]&15) * 4
			ips, ports := row[12:20], row[ihl:ihl+4]
			if bytes.Equal(ports, make([]byte, 4)) != portsZero {
				t.Errorf("--debias %q: row %d ports % x", debias, i/1600, ports)
			}
			if bytes.Equal(ips, make([]byte, 8)) != ipsZero {
				t.Errorf("--debias %q: row %d addresses % x", debias, i/1600, ips)
			}
		}
		if v4 == 0 {
			t.Fatalf("no IPv4/TCP rows in %s", in)
		}
	}
	check("", []string{"zero_ip"}, false, true)
	check("zero_port", []string{"zero_port"}, true, false)
	check("zero_port,zero_ip,zero_ttl", []string{"zero_ip", "zero_port", "zero_ttl"}, true, true)
	check("none", []string{"none"}, false, false)

	for _, c := range []struct{ args []string }{
		{[]string{"--debias", "zero_ip,random_ip"}},
		{[]string{"--debias", "zero_mac"}},
		{[]string{"--debias", "zero_port", "--compat", "official"}},
	} {
		root := newRootCmd()
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		root.SetArgs(append([]string{"prep", "-q", "-o", filepath.Join(dir, "x.nmds"), in}, c.args...))
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--debias") {
			t.Errorf("%v: err = %v", c.args, err)
		}
	}
}

// prepWindowed builds ndpi-app/valid with the default model's debias,
// without and with --windows 4, and returns both paths and the windowed
// build's summary output.
func prepWindowed(t *testing.T) (plain, windowed, out string) {
	t.Helper()
	dir := t.TempDir()
	in := prepNdpiApp + "/valid"
	plain, windowed = filepath.Join(dir, "plain.nmds"), filepath.Join(dir, "win.nmds")
	runCLI(t, "prep", "-q", "--debias", modelDebias, "-o", plain, in)
	out = runCLI(t, "prep", "-q", "--debias", modelDebias, "--windows", "4", "-o", windowed, in)
	return plain, windowed, out
}

// TestPrepWindows: every flow's row is followed by its windows 1..3 (as many
// as it has full 5-packet windows), with the flow's source, label and key;
// with zero_* rewrites only (per-packet), window i's slot j is the flow's
// slot i+j and its sequences are the flow's shifted by i (directions
// relative to packet i's sender). The counts reach the metadata and the
// prep summary.
func TestPrepWindows(t *testing.T) {
	plainPath, winPath, out := prepWindowed(t)
	plain, err := dataset.Open(plainPath)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	win, err := dataset.Open(winPath)
	if err != nil {
		t.Fatal(err)
	}
	defer win.Close()
	if err := win.Verify(); err != nil {
		t.Fatal(err)
	}
	row := 0
	added := 0
	for f := 0; f < plain.Len(); f++ {
		p, err := plain.Record(f)
		if err != nil {
			t.Fatal(err)
		}
		nwin := min(3, max(0, int(p.Stats.Packets)-repr.ViewPackets)) // full windows among 1..3
		added += nwin
		for i := 0; i <= nwin; i++ {
			if row >= win.Len() {
				t.Fatalf("windowed dataset ends at row %d (flow %d, window %d)", row, f, i)
			}
			w, err := win.Record(row)
			if err != nil {
				t.Fatal(err)
			}
			row++
			if w.Window != i || w.Source != p.Source || w.Label != p.Label || w.Key != p.Key || w.Stats != p.Stats {
				t.Fatalf("row %d: window %d of %s, want window %d of %s (flow %d)", row-1, w.Window, w.Source, i, p.Source, f)
			}
			if i == 0 {
				if w.View != p.View {
					t.Errorf("row %d (%s): first view differs from plain prep", row-1, p.Source)
				}
				continue
			}
			for j := 0; i+j < repr.ViewPackets; j++ {
				a := w.View.Bytes[j*repr.SlotBytes : (j+1)*repr.SlotBytes]
				b := p.View.Bytes[(i+j)*repr.SlotBytes : (i+j+1)*repr.SlotBytes]
				if !bytes.Equal(a, b) {
					t.Errorf("%s window %d: slot %d is not the flow's slot %d", p.Source, i, j, i+j)
				}
			}
			for j := 0; i+j < repr.SeqLen; j++ {
				iat := p.View.IATs[i+j]
				if j == 0 {
					iat = 0
				}
				if w.View.Sizes[j] != p.View.Sizes[i+j] || w.View.Dirs[j] != p.View.Dirs[i+j]*p.View.Dirs[i] || w.View.IATs[j] != iat {
					t.Errorf("%s window %d: packet %d (size %d dir %d iat %g), flow's packet %d (size %d dir %d iat %g)",
						p.Source, i, j, w.View.Sizes[j], w.View.Dirs[j], w.View.IATs[j], i+j, p.View.Sizes[i+j], p.View.Dirs[i+j], iat)
				}
			}
			if want := min(repr.SeqLen, int(p.Stats.Packets)-i); w.View.NPackets != want {
				t.Errorf("%s window %d: %d packets in the sequences, want %d", p.Source, i, w.View.NPackets, want)
			}
		}
	}
	if row != win.Len() {
		t.Errorf("windowed dataset has %d rows, want %d", win.Len(), row)
	}
	if added == 0 {
		t.Fatal("no flow of ndpi-app/valid has windows: the checks above are vacuous")
	}
	m := win.Meta()
	if m.Settings.Windows != 4 || m.Summary.WindowedViews != uint64(added) || m.Summary.Flows != uint64(plain.Len()+added) || m.Summary.FlowsRead != uint64(plain.Len()) {
		t.Errorf("metadata: windows %d, windowed views %d, rows %d, flows read %d; want 4, %d, %d, %d",
			m.Settings.Windows, m.Summary.WindowedViews, m.Summary.Flows, m.Summary.FlowsRead, added, plain.Len()+added, plain.Len())
	}
	if pm := plain.Meta(); pm.Settings.Windows != 0 || pm.Summary.WindowedViews != 0 {
		t.Errorf("plain prep records windows %d, %d windowed views", pm.Settings.Windows, pm.Summary.WindowedViews)
	}
	want := "windows 4: " + strconv.Itoa(plain.Len()) + " flows, " + strconv.Itoa(added) + " windowed views added"
	if !strings.Contains(out, want) || !strings.Contains(out, "stored "+strconv.Itoa(plain.Len()+added)+" rows") {
		t.Errorf("prep summary does not say %q:\n%s", want, out)
	}
	wantHead := fmt.Sprintf("%d rows (%d flows + %d sliding-window views)", plain.Len()+added, plain.Len(), added)
	if txt := runCLI(t, "inspect", winPath); !strings.Contains(txt, wantHead) || !strings.Contains(txt, "sliding windows 4") {
		t.Errorf("inspect does not say %q and the window setting:\n%s", wantHead, txt)
	}
	t.Logf("ndpi-app/valid: %d flows, %d windowed views added by --windows 4", plain.Len(), added)
}

// TestPrepWindowsRefusesRowSampling: --windows with a split or sampling that
// picks rows (and would separate a flow's windows) is an error.
func TestPrepWindowsRefusesRowSampling(t *testing.T) {
	dir := t.TempDir()
	for _, extra := range [][]string{{"--split", "random"}, {"--split", "time"}, {"--split", "source"}, {"--max-per-class", "5"}, {"--min-per-class", "2"}, {"--windows", "-1"}} {
		root := newRootCmd()
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		args := append([]string{"prep", "-q", "--windows", "4", "-o", filepath.Join(dir, "x.nmds"), prepNdpiApp + "/valid/HTTP"}, extra...)
		root.SetArgs(args)
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--windows") {
			t.Errorf("%v: err = %v, want a --windows error", extra, err)
		}
	}
}

// TestWindowedEvalDataWarns: eval and finetune --valid/--test warn once per
// windowed evaluation dataset; a windowed training set and plain
// evaluation sets get no such warning.
func TestWindowedEvalDataWarns(t *testing.T) {
	plain, windowed, _ := prepWindowed(t)
	pd, err := dataset.Open(plain)
	if err != nil {
		t.Fatal(err)
	}
	classes := append([]string(nil), pd.Meta().Classes...)
	pd.Close()
	m := writeTinyReprModel(t, classes, checkpoint.ReprMeta{Direction: "bi", Debias: strings.Split(modelDebias, ","), SizeMode: "unsigned"}, "win")
	warn := "was built with --windows 4"
	if _, errs := evalJSON(t, m, windowed); strings.Count(errs, "eval: warning: "+windowed+" "+warn) != 1 {
		t.Errorf("eval on windowed data: stderr %q, want one windows warning", errs)
	}
	if _, errs := evalJSON(t, m, plain); strings.Contains(errs, warn) {
		t.Errorf("eval on plain data: stderr %q", errs)
	}
	_, errs := runCLIErr(t, "finetune", "--data", windowed, "--valid", windowed, "--test", plain, "--epochs", "1", "--batch", "16",
		"--embed-dim", "8", "--depth", "1", "--threads", "1", "--quiet", "-o", filepath.Join(t.TempDir(), "m.safetensors"))
	if strings.Count(errs, warn) != 1 || !strings.Contains(errs, "finetune: warning: "+windowed+" "+warn) {
		t.Errorf("finetune with windowed --data and --valid, plain --test: stderr %q, want one windows warning (for --valid)", errs)
	}
	// A few-shot fraction of windowed training data picks rows, not flows.
	_, errs = runCLIErr(t, "finetune", "--data", windowed, "--valid", plain, "--fraction", "0.5", "--epochs", "1", "--batch", "16",
		"--embed-dim", "8", "--depth", "1", "--threads", "1", "--quiet", "-o", filepath.Join(t.TempDir(), "m.safetensors"))
	if !strings.Contains(errs, "--fraction 0.5 picks rows of "+windowed) {
		t.Errorf("finetune --fraction 0.5 on windowed data: stderr %q, want the rows warning", errs)
	}
}
