// The sample capture is byte-identical for a seed only if Go's crypto uses
// the seeded tls.Config.Rand (see package samplegen).
//go:debug cryptocustomrand=1

package main

import (
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/samplegen"
)

// newSampleCmd writes the self-generated sample capture.
func newSampleCmd() *cobra.Command {
	var (
		out    string
		seed   uint64
		start  string
		keyLog string
		quiet  bool
	)
	c := &cobra.Command{
		Use:   "sample -o FILE.pcapng [--seed S]",
		Short: "Write a realistic sample capture generated from real protocol exchanges",
		Long: `sample runs real protocol exchanges in-process (HTTP/1.1, TLS 1.2/1.3 with SNI,
DNS, DNS over TLS and HTTPS, mDNS, SSDP, NetBIOS, BitTorrent, STUN/RTP) over a
simulated network with a virtual clock and writes their packets as pcapng
(Ethernet, IPv4/IPv6, TCP/UDP with valid checksums, handshakes, ACKs and
teardown). The same seed gives the same file, byte for byte.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("sample: -o FILE is required")
			}
			opts := samplegen.Options{Seed: seed}
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return fmt.Errorf("sample: --start %q: %w", start, err)
				}
				opts.Start = t
			}
			if keyLog != "" {
				kf, err := os.Create(keyLog)
				if err != nil {
					return fmt.Errorf("sample: %w", err)
				}
				defer kf.Close()
				opts.KeyLog = kf
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("sample: %w", err)
			}
			sum, err := samplegen.Generate(f, opts)
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("sample: closing %s: %w", out, cerr)
			}
			if err != nil {
				os.Remove(out)
				return err
			}
			if quiet {
				return nil
			}
			perApp := map[string]int{}
			for _, fl := range sum.Flows {
				perApp[fl.App]++
			}
			apps := make([]string, 0, len(perApp))
			for a := range perApp {
				apps = append(apps, a)
			}
			sort.Strings(apps)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %d flows, %d packets, %d bytes of frames (seed %d)\n", out, len(sum.Flows), sum.Packets, sum.Bytes, seed)
			for _, a := range apps {
				fmt.Fprintf(w, "  %-15s %d flows\n", a, perApp[a])
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "pcapng file to write")
	c.Flags().Uint64Var(&seed, "seed", 1, "random seed (same seed, same file)")
	c.Flags().StringVar(&start, "start", "", "time of the first packet, RFC 3339 (default 2026-01-15T09:00:00Z)")
	c.Flags().StringVar(&keyLog, "keylog", "", "also write the TLS/QUIC secrets (SSLKEYLOGFILE format) to this file, for Wireshark")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing")
	return c
}
