// Package sharedtest locates ../shared — the read-only folder of golden
// tensors and real captures that lies beside the repository root in
// development and CI — for tests and benchmarks. A missing folder fails
// the test: CI always has it, so a skip would hide a broken setup.
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the path of ../shared next to the module root (the first
// directory above the working directory holding go.mod).
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("sharedtest: go.mod not found above the test directory")
		}
		dir = parent
	}
	s := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(filepath.Join(s, "SPEC.md")); err != nil {
		t.Fatalf("sharedtest: ../shared is missing beside the repository: %v", err)
	}
	return s
}

// Path returns the path of a file under ../shared and fails the test when
// it does not exist.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("sharedtest: %v", err)
	}
	return p
}
