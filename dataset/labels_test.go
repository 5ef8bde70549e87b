package dataset

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/extract"
)

func touch(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCollectInputs(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for _, p := range []string{"b/2.pcap", "b/1.pcapng", "a/sub/x.pcap.gz", "top.cap", "a/README.md", ".git/x.pcap", "b/.hidden.pcap"} {
		touch(t, filepath.Join(tree, p))
	}
	if err := os.MkdirAll(filepath.Join(tree, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(dir, "one.bin")
	touch(t, single)
	files, classes, skipped, err := CollectInputs([]string{single, tree})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path+"="+f.Label)
	}
	want := []string{
		single + "=",
		filepath.Join(tree, "a/sub/x.pcap.gz") + "=a",
		filepath.Join(tree, "b/1.pcapng") + "=b",
		filepath.Join(tree, "b/2.pcap") + "=b",
		filepath.Join(tree, "top.cap") + "=",
	}
	if !slices.Equal(got, want) {
		t.Errorf("files:\n%v\nwant\n%v", got, want)
	}
	if !slices.Equal(classes, []string{"a", "b", "empty"}) {
		t.Errorf("folder classes %v", classes)
	}
	// README.md, .hidden.pcap (.git is not descended)
	if len(skipped) != 2 || skipped[SkipNotCapture] != 1 || skipped[SkipHidden] != 1 {
		t.Errorf("skipped %v, want 1 not a capture, 1 hidden", skipped)
	}
	if _, _, _, err := CollectInputs([]string{filepath.Join(dir, "nope")}); err == nil {
		t.Error("missing input accepted")
	}
}

// TestCollectInputsSpelling checks that paths keep the INPUT argument as
// the user spelt it: "./", "../", absolute, trailing slash (not doubled).
func TestCollectInputsSpelling(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, "data/test/BitTorrent/x.pcap"))
	touch(t, filepath.Join(dir, "data/test/top.pcap"))
	t.Chdir(filepath.Join(dir, "data"))
	for _, c := range []struct{ arg, want string }{
		{"./test/", "./test/BitTorrent/x.pcap"},
		{"./test", "./test/BitTorrent/x.pcap"},
		{"test", "test/BitTorrent/x.pcap"},
		{"test/", "test/BitTorrent/x.pcap"},
		{"../data/test", "../data/test/BitTorrent/x.pcap"},
		{"./test/../test", "./test/../test/BitTorrent/x.pcap"},
		{dir + "/data/test/", dir + "/data/test/BitTorrent/x.pcap"},
		{dir + "/data/test", dir + "/data/test/BitTorrent/x.pcap"},
	} {
		files, classes, _, err := CollectInputs([]string{c.arg})
		if err != nil {
			t.Fatalf("%s: %v", c.arg, err)
		}
		if len(files) != 2 || files[0].Path != c.want || files[0].Label != "BitTorrent" {
			t.Errorf("CollectInputs(%q) = %+v, want first %q labelled BitTorrent", c.arg, files, c.want)
		}
		if files[1].Path != strings.TrimSuffix(c.want, "BitTorrent/x.pcap")+"top.pcap" || files[1].Label != "" {
			t.Errorf("CollectInputs(%q) second = %+v", c.arg, files[1])
		}
		if !slices.Equal(classes, []string{"BitTorrent"}) {
			t.Errorf("CollectInputs(%q) classes %v", c.arg, classes)
		}
	}
}

// TestCollectInputsSymlinks checks that symlinked captures, class folders
// and INPUT roots are followed, and that a link loop ends.
func TestCollectInputsSymlinks(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	touch(t, filepath.Join(real, "HTTP/a.pcap"))
	touch(t, filepath.Join(real, "DNS/d.pcap"))
	tree := filepath.Join(dir, "tree")
	for _, p := range []string{"HTTP", "DNS"} {
		if err := os.MkdirAll(filepath.Join(tree, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(old, new string) {
		t.Helper()
		if err := os.Symlink(old, new); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(real, "HTTP/a.pcap"), filepath.Join(tree, "HTTP/a.pcap")) // symlinked capture
	link(filepath.Join(real, "DNS"), filepath.Join(tree, "DNS/sub"))             // symlinked folder below a class
	link(filepath.Join(real, "HTTP"), filepath.Join(tree, "Web"))                // symlinked class folder
	link(tree, filepath.Join(tree, "DNS/loop"))                                  // loop back to the root
	link(filepath.Join(dir, "missing.pcap"), filepath.Join(tree, "HTTP/gone.pcap"))
	root := filepath.Join(dir, "root")
	link(tree, root) // symlinked INPUT root

	files, classes, skipped, err := CollectInputs([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path+"="+f.Label)
	}
	want := []string{
		root + "/DNS/sub/d.pcap=DNS",
		root + "/HTTP/a.pcap=HTTP",
		root + "/Web/a.pcap=Web",
	}
	if !slices.Equal(got, want) {
		t.Errorf("files:\n%v\nwant\n%v", got, want)
	}
	if !slices.Equal(classes, []string{"DNS", "HTTP", "Web"}) {
		t.Errorf("classes %v", classes)
	}
	if skipped[SkipLoop] != 1 || skipped[SkipNotRegular] != 1 {
		t.Errorf("skipped %v, want 1 loop, 1 dangling link", skipped)
	}
}

func TestReadClassesFileAndManifest(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "classes.txt")
	os.WriteFile(cf, []byte("# names\nZoom\n\nDNS \nHTTP\n"), 0o644)
	c, err := ReadClassesFile(cf)
	if err != nil || !slices.Equal(c, []string{"Zoom", "DNS", "HTTP"}) {
		t.Errorf("ReadClassesFile = %v, %v", c, err)
	}
	os.WriteFile(cf, []byte("a\nb\na\n"), 0o644)
	if _, err := ReadClassesFile(cf); err == nil {
		t.Error("duplicate class accepted")
	}
	mf := filepath.Join(dir, "m.csv")
	os.WriteFile(mf, []byte("label,file\nHTTP,caps/a.pcap\nDNS,/abs/b.pcap\n"), 0o644)
	m, err := ReadManifest(mf)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := m.Lookup(filepath.Join(dir, "caps", "x", "..", "a.pcap")); !ok || l != "HTTP" {
		t.Errorf("Lookup relative = %q %v", l, ok)
	}
	if l, ok := m.Lookup("/abs/b.pcap"); !ok || l != "DNS" {
		t.Errorf("Lookup absolute = %q %v", l, ok)
	}
	os.WriteFile(mf, []byte("path,label\nx,y\n"), 0o644)
	if _, err := ReadManifest(mf); err == nil {
		t.Error("manifest without a file column accepted")
	}
}

// Plain files are unlabelled unless the manifest (ndpi-app's, with a
// "class" column and paths relative to it) names them.
func TestBuildManifestLabels(t *testing.T) {
	man := manifestRows(t)["test"]
	var inputs []string
	for f := range man {
		inputs = append(inputs, filepath.Join(ndpiApp, f))
	}
	slices.Sort(inputs)
	inputs = inputs[:6]
	dir := t.TempDir()
	for _, manifest := range []string{"", filepath.Join(ndpiApp, "manifest.csv")} {
		out := filepath.Join(dir, "m.nmds")
		if _, err := Build(BuildOptions{Inputs: inputs, Output: out, Manifest: manifest,
			Extract: extract.Options{Bidirectional: true}}); err != nil {
			t.Fatal(err)
		}
		d, err := Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if d.Len() != 6 {
			t.Errorf("%d flows from 6 one-flow files", d.Len())
		}
		for i := 0; i < d.Len(); i++ {
			rel, _ := filepath.Rel(ndpiApp, d.Source(i))
			got := ClassName(d.Classes(), d.Label(i))
			want := ""
			if manifest != "" {
				want = man[filepath.ToSlash(rel)]
			}
			if got != want {
				t.Errorf("manifest %q: %s labelled %q, want %q", manifest, rel, got, want)
			}
		}
		d.Close()
	}
}
