package dataset

import (
	"os"
	"path/filepath"
	"slices"
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
	if skipped != 2 { // README.md, .hidden.pcap (.git is not descended)
		t.Errorf("skipped %d, want 2", skipped)
	}
	if _, _, _, err := CollectInputs([]string{filepath.Join(dir, "nope")}); err == nil {
		t.Error("missing input accepted")
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
