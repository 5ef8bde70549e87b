// Command netmamba classifies network traffic with NetMamba / NetMamba+
// models: it builds datasets from captures, trains and evaluates models,
// and classifies captures or live traffic.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "netmamba:", err)
		os.Exit(1)
	}
}

// newRootCmd wires every subcommand. Each subcommand lives in its own file.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "netmamba",
		Short:         "Traffic classification with NetMamba / NetMamba+ on CPUs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newBenchCmd(),
		newPrepCmd(),
		newDatasetCmd(),
		newInspectCmd(),
		newPredictCmd(),
		newCheckpointCmd(),
		newSampleCmd(),
		newPretrainCmd(),
		newFinetuneCmd(),
		newEvalCmd(),
		newAblateCmd(),
		newClassifyCmd(),
		newServeCmd(),
		newReplayCmd(),
	// subcommands are added here, one constructor per file
	)
	return root
}
