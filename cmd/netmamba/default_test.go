package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/samplegen"
)

// The README's first command: classify with no argument classifies the
// built-in sample traffic with the embedded default model, one result per
// generated flow, labels from the model's class map.
func TestClassifyEmbeddedSample(t *testing.T) {
	out, errs := runCLIErr(t, "classify", "--format", "jsonl")
	var buf bytes.Buffer
	sum, err := samplegen.Generate(&buf, samplegen.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := defaultModelFile()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := checkpoint.ParseMeta(f.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"unknown": true}
	for _, c := range meta.Classes {
		known[c] = true
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(sum.Flows) {
		t.Fatalf("%d results for %d generated flows\nstderr: %s", len(lines), len(sum.Flows), errs)
	}
	for _, l := range lines {
		var r struct {
			Label      string  `json:"label"`
			Confidence float64 `json:"confidence"`
			Packets    int     `json:"bidirectional_packets"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if !known[r.Label] || r.Confidence <= 0 || r.Confidence > 1 || r.Packets < 1 {
			t.Fatalf("bad result %s", l)
		}
	}
}
