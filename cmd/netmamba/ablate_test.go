package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAblateFlagErrors checks that bad ablate flags are refused with a
// clear error before anything is loaded or written.
func TestAblateFlagErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	base := []string{"ablate", "--train", "a.nmds", "--valid", "b.nmds", "--test", "c.nmds", "-o", out}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jobs", "0"}, "--jobs must be at least 1"},
		{[]string{"--threads", "-2"}, "--threads must be >= 0"},
		{[]string{"--variants", "netmamba,bogus"}, `unknown variant "bogus"`},
		{[]string{"--fractions", "1,1.5"}, `bad fraction "1.5"`},
		{[]string{"--losses", "ce,focal"}, `unknown loss "focal"`},
	} {
		cmd := newRootCmd()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(append(append([]string(nil), base...), tc.args...))
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused ablate created %s (%v)", out, err)
	}
}
