package main

import (
	"strings"
	"testing"

	"github.com/netmamba/netmamba/classify"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"512MiB": 512 << 20, "2GiB": 2 << 30, "2gib": 2 << 30, "1G": 1 << 30, "1.5GiB": 3 << 29,
		"1000000": 1000000, "64KB": 64000, "3MB": 3000000, "100B": 100, "0": 0, " 8 Mi ": 8 << 20,
	} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1GiB", "1XB", "lots", "NaN", "1e300GiB"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
}

// TestDeriveMemoryBound checks the split against a hand computation: 1 GiB,
// 2 capture workers of 64 MiB rings, a 32 MiB executable, 30 MiB of model,
// a 512-flow queue, 1 classifier with batches of 64.
func TestDeriveMemoryBound(t *testing.T) {
	const mib = 1 << 20
	b, err := deriveMemoryBound(1<<30, 2, 64*mib, 32*mib, 30*mib, 512, 1, 64, memoryExtra{})
	if err != nil {
		t.Fatal(err)
	}
	heap := int64(1<<30 - 2*64*mib - 32*mib)
	buffers := int64(64*(1600+4096)) + int64(float64(heap)*0.05) + 16*mib
	budget := (heap - 30*mib - 512*classify.FlowBytes - buffers) / 2
	if b.HeapLimit != heap || b.FlowBudget != budget || b.MaxFlows != int(budget/2/classify.FlowBytes) {
		t.Fatalf("got heap limit %d, flow budget %d, %d flows per table; want %d, %d, %d", b.HeapLimit, b.FlowBudget, b.MaxFlows, heap, budget, budget/2/classify.FlowBytes)
	}
	// What the tables may hold, the fixed costs and the GC headroom fit the bound.
	if used := b.Rings + b.Binary + b.Fixed + b.Queue + b.Buffers + 2*int64(2*b.MaxFlows)*classify.FlowBytes; used > b.Limit {
		t.Fatalf("split uses %d bytes of a %d bound", used, b.Limit)
	}
	if !strings.Contains(b.String(), "flow tables 2 × ") || !strings.Contains(b.String(), "memory bound 1 GiB") {
		t.Fatalf("start-up line: %s", b)
	}
	// Too small: an error that says how much is needed.
	_, err = deriveMemoryBound(100*mib, 1, 64*mib, 32*mib, 30*mib, 512, 1, 64, memoryExtra{})
	if err == nil || !strings.Contains(err.Error(), "too small") || !strings.Contains(err.Error(), "give at least") {
		t.Fatalf("100 MiB bound: %v", err)
	}
}

// TestClassifyMaxMemoryFlag: a bad or too small --max-memory is a clear
// error; a sufficient one on files prints the bound and its derived cap.
func TestClassifyMaxMemoryFlag(t *testing.T) {
	mpath := writeTinyRandomModel(t, []string{"a", "b"})
	if err := runCLIFail(t, "classify", "--model", mpath, "--max-memory", "lots", classifyHTTPDir); !strings.Contains(err.Error(), "--max-memory") {
		t.Fatalf("--max-memory lots: %v", err)
	}
	if err := runCLIFail(t, "classify", "--model", mpath, "--max-memory", "1MiB", classifyHTTPDir); !strings.Contains(err.Error(), "too small") {
		t.Fatalf("--max-memory 1MiB: %v", err)
	}
	if err := runCLIFail(t, "classify", "--model", mpath, "--drain-timeout", "-1s", classifyHTTPDir); !strings.Contains(err.Error(), "--drain-timeout") {
		t.Fatalf("--drain-timeout -1s: %v", err)
	}
	_, stderr := runCLIErr(t, "classify", "--model", mpath, "--max-memory", "256MiB", classifyHTTPDir)
	if !strings.Contains(stderr, "memory bound 256.0 MiB") || !strings.Contains(stderr, "flow tables 1 × ") {
		t.Fatalf("no bound on stderr:\n%s", stderr)
	}
}
