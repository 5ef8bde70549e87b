package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSampleCommand runs `netmamba sample` twice with one seed and checks
// the files are identical pcapng captures and the summary is printed.
func TestSampleCommand(t *testing.T) {
	dir := t.TempDir()
	var outs [2][]byte
	for i := range outs {
		path := filepath.Join(dir, []string{"a.pcapng", "b.pcapng"}[i])
		cmd := newRootCmd()
		var stdout bytes.Buffer
		cmd.SetOut(&stdout)
		cmd.SetArgs([]string{"sample", "-o", path, "--seed", "3"})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), "flows") || !strings.Contains(stdout.String(), "WhatsAppCall") {
			t.Errorf("summary missing: %q", stdout.String())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 12 || !bytes.Equal(b[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
			t.Fatalf("%s is not a pcapng file", path)
		}
		outs[i] = b
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatal("same seed gave different files")
	}
	cmd := newRootCmd()
	cmd.SetArgs([]string{"sample"})
	cmd.SetOut(&bytes.Buffer{})
	if err := cmd.Execute(); err == nil {
		t.Error("sample without -o succeeded")
	}
}
