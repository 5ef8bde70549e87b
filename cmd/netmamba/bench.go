package main

import "github.com/spf13/cobra"

// newBenchCmd groups the throughput benchmarks (prep, model, classify).
func newBenchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput (flows/s, packets/s, Mb/s) on this machine",
	}
	c.AddCommand(
		newBenchModelCmd(),
		newBenchPrepCmd(),
		newBenchClassifyCmd(),
	// bench subcommands are added here, one constructor per file
	)
	return c
}
