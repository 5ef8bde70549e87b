package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/extract"
)

// defaultBenchTrace is where bench prep looks for its default input,
// relative to the working directory.
const defaultBenchTrace = "../shared/data/ndpi-trace.pcapng"

// newBenchPrepCmd measures the ingestion pipeline's throughput.
func newBenchPrepCmd() *cobra.Command {
	var threads, loops int
	var asJSON, official bool
	c := &cobra.Command{
		Use:   "prep [--threads T] [--loops N] [--json] [FILE]",
		Short: "Measure read + decode + flow table + byte view throughput (packets/s, flows/s, Mb/s)",
		Long: `Reads FILE (default ` + defaultBenchTrace + ` relative to the working
directory) into memory once, then runs the whole ingestion pipeline over it
N times per thread, on 1 thread and on T threads. Parallel runs give each
goroutine its own pipeline and its own pass over the data, as prep does with
independent files. packets/cpu-s is the per-core rate (packets per CPU-second
used by the process).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := defaultBenchTrace
			if len(args) == 1 {
				path = args[0]
			}
			data, err := os.ReadFile(path)
			if err != nil {
				if len(args) == 0 {
					abs, _ := filepath.Abs(path)
					return fmt.Errorf("bench prep: no FILE given and the default trace was not found at %s: %w", abs, err)
				}
				return fmt.Errorf("bench prep: %w", err)
			}
			opts := extract.Options{Bidirectional: true}
			if official {
				opts.Compat = extract.CompatOfficial
			}
			counts := []int{1}
			if threads > 1 {
				counts = append(counts, threads)
			}
			var results []extract.Throughput
			for _, n := range counts {
				t, err := extract.MeasureThroughput(data, path, opts, n, loops)
				if err != nil {
					return fmt.Errorf("bench prep: %w", err)
				}
				results = append(results, t)
				if !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(),
						"%s: %d thread(s) x %d loop(s): %.0f packets/s, %.0f flows/s, %.1f Mb/s (%.0f packets/cpu-s; %d packets, %d flows in %.3f s)\n",
						filepath.Base(path), n, loops, t.PacketsPerSec, t.FlowsPerSec, t.MbitPerSec,
						t.PacketsPerCPUSec, t.Packets, t.Flows, t.Seconds)
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"file": path, "bidirectional": true, "compat": opts.Compat, "results": results})
			}
			return nil
		},
	}
	c.Flags().IntVar(&threads, "threads", 2, "also measure with this many goroutines (independent passes)")
	c.Flags().IntVar(&loops, "loops", 5, "passes over the capture per goroutine")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVar(&official, "official", false, "use --compat official byte views (slower, allocating)")
	return c
}
