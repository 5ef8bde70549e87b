package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/extract"
	"github.com/netmamba/netmamba/filter"
	"github.com/netmamba/netmamba/repr"
)

// newPrepCmd builds datasets from captures.
func newPrepCmd() *cobra.Command {
	var (
		out, compat, direction, classes, manifest, filterExpr, split string
		clean, quiet                                                 bool
		seed                                                         uint64
		minPer, maxPer, windows                                      int
		idle, active                                                 time.Duration
		debias                                                       []string
	)
	c := &cobra.Command{
		Use:   "prep -o DATASET [flags] INPUT...",
		Short: "Build a dataset from capture files and folder-per-class trees",
		Long: `prep reads every INPUT (a capture file, or a folder-per-class tree of captures:
INPUT/<class>/.../*.pcap[ng][.gz]) and writes one dataset (docs/dataset-format.md).
Flows of a tree's class folder are labelled with the folder name; plain files and
captures directly in INPUT are unlabelled; --manifest (CSV with file,label columns,
paths relative to the manifest) overrides labels. Classes are the sorted folder and
manifest names, or the names of --classes in that file's order (flows of other
classes are dropped and counted).

Dataset order: inputs in argument order, files of a tree in sorted path order, flows
of a file by first packet. --min-per-class drops smaller classes, --max-per-class keeps a
seeded random subset (the earliest flows with --split time). --split writes
DATASET-train, DATASET-valid and DATASET-test (before the extension):
random = per class seeded 80/10/10; time = per class, latest 10 % to test;
source = whole captures to one split, 80/10/10 of the flows.

--debias lists the header rewrites of the byte view (NetMamba+ debias strategies),
comma-separated; the list is complete (a field not named is kept):
  zero_ip | relative_ip | random_ip    IP addresses: 0.0.0.0 / initiator 0.0.0.1,
                                       responder 0.0.0.2 / pseudo-random per endpoint
  server_prefix_ip                     initiator 0.0.0.0, responder's /16 (IPv6 /32) kept:
                                       the server's network, not NetMamba's (experimental;
                                       the first packet's sender is taken as the client)
  zero_port | random_port              transport ports
  zero_ephemeral_port                  the higher of the two ports when they differ (the
                                       client's OS-chosen port; the service port is kept)
  zero_seq | relative_seq              TCP sequence and acknowledgement numbers
  zero_options, zero_window            TCP option bytes, TCP window
  zero_checksum, zero_ttl              IPv4 and L4 checksums, TTL / hop limit
  zero_ipid                            IPv4 identification, IPv6 flow label
  zero_sni                             server name of a TLS ClientHello
  none                                 no rewrite at all
The default, zero_ip, is NetMamba's. The random strategies are seeded by --seed.
The list is recorded in the dataset's settings (debias) for training and classify.
--compat official always zeroes IPv4 addresses only and takes no --debias.

--windows N is NetMamba's sliding-window augmentation, for the training split only:
besides its own view (packets 0-4), each flow with at least i+5 packets also gets a
row for the view of packets i..i+4, i = 1 ... N-1 (full windows only; the own view
is always stored). A window is built as if the flow began at packet i: same debias,
initiator = sender of packet i, sizes/IATs from packet i on, relative_seq from the
first sequence numbers seen from packet i on. Windowed rows follow their flow's row
with the same source capture. Do not use it for valid/test data: metrics would count
long flows several times (eval and finetune --valid/--test warn). It cannot be
combined with --split or --min/--max-per-class (they pick rows, not flows): prep
the training split on its own with --windows.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("prep: -o DATASET is required")
			}
			opts := dataset.BuildOptions{
				Inputs: args, Output: out, ClassesFile: classes, Manifest: manifest,
				Seed: seed, MinPerClass: minPer, MaxPerClass: maxPer,
				Extract: extract.Options{Compat: compat, Filter: filterExpr, Clean: clean,
					IdleTimeout: idle, ActiveTimeout: active, Windows: windows},
			}
			d, err := repr.ParseDebias(debias)
			if err != nil {
				return fmt.Errorf("prep: --debias: %w", err)
			}
			if compat != "" && !slices.Equal(d.Names(), []string{"zero_ip"}) {
				return fmt.Errorf("prep: --debias %s: --compat %s has its own fixed debiasing (IPv4 addresses zeroed)", strings.Join(debias, ","), compat)
			}
			d.Seed = seed
			opts.Extract.Debias = d
			switch direction {
			case "bi":
				opts.Extract.Bidirectional = true
			case "uni":
			default:
				return fmt.Errorf("prep: --direction %q: want bi or uni", direction)
			}
			if compat != "" && compat != extract.CompatOfficial {
				return fmt.Errorf("prep: --compat %q: want official (or leave it out)", compat)
			}
			if filterExpr != "" {
				if _, err := filter.Compile(filterExpr); err != nil {
					return fmt.Errorf("prep: --filter: %w", err)
				}
			}
			if minPer < 0 || maxPer < 0 || (maxPer > 0 && minPer > maxPer) {
				return fmt.Errorf("prep: need 0 <= --min-per-class <= --max-per-class (got %d, %d)", minPer, maxPer)
			}
			if windows < 0 || windows > extract.MaxWindows {
				return fmt.Errorf("prep: --windows %d: want 0 ... %d", windows, extract.MaxWindows)
			}
			mode, err := dataset.ParseSplitMode(split)
			if err != nil {
				return fmt.Errorf("prep: --split: %w", err)
			}
			opts.Split = mode
			var bar *progressbar.ProgressBar
			if !quiet && stderrIsTerminal(os.Stderr) {
				opts.Progress = func(p dataset.Progress) {
					if bar == nil {
						bar = progressbar.NewOptions64(p.BytesTotal, progressbar.OptionSetWriter(os.Stderr),
							progressbar.OptionShowBytes(true), progressbar.OptionThrottle(100*time.Millisecond),
							progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30))
					}
					pps := float64(p.Packets) / max(p.Elapsed.Seconds(), 1e-9)
					bar.Describe(fmt.Sprintf("%d/%d files, %d flows, %.0f packets/s", p.FilesDone, p.Files, p.Flows, pps))
					_ = bar.Set64(p.BytesDone)
				}
			}
			res, err := dataset.Build(opts)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return err
			}
			printPrepSummary(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "", "dataset file to write (recommended extension "+dataset.Ext+")")
	f.StringVar(&compat, "compat", "", `"official" reproduces the official extractor's byte view (default: offset-correct)`)
	f.StringVar(&direction, "direction", "bi", "flows: bi (bidirectional) or uni (unidirectional)")
	f.StringVar(&classes, "classes", "", "file of class names, one per line, fixing names and order")
	f.StringVar(&manifest, "manifest", "", "CSV with file,label columns giving labels")
	f.StringVar(&filterExpr, "filter", "", "BPF-style filter (package filter syntax), e.g. 'tcp port 443'")
	f.StringSliceVar(&debias, "debias", []string{"zero_ip"}, "header debias strategies, comma-separated (see above): "+strings.Join(repr.DebiasNames(), ", "))
	f.BoolVar(&clean, "clean", false, "drop DNS, mDNS, LLMNR, NBNS, DHCP and NTP flows")
	f.StringVar(&split, "split", "", "random, time or source: write DATASET-train/-valid/-test")
	f.Uint64Var(&seed, "seed", 0, "seed for sampling and splits")
	f.IntVar(&minPer, "min-per-class", 0, "drop classes with fewer flows (0: keep all)")
	f.IntVar(&maxPer, "max-per-class", 0, "keep at most this many flows per class (0: all)")
	f.DurationVar(&idle, "idle-timeout", 0, "end a flow after this idle time (0: a file is read as a whole)")
	f.DurationVar(&active, "active-timeout", 0, "end a flow after this duration (0: no limit)")
	f.IntVar(&windows, "windows", 0, "sliding-window augmentation (training data only): also store the views starting at packets 1..N-1 (0: off)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

// stderrIsTerminal reports whether f is a character device (a terminal).
func stderrIsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// countsByValue returns the keys of m by decreasing count, then name.
func countsByValue(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

func printPrepSummary(w io.Writer, res *dataset.BuildResult) {
	m := res.Meta
	s := m.Summary
	secs := res.Elapsed.Seconds()
	var outs []string
	for i, p := range res.Outputs {
		outs = append(outs, fmt.Sprintf("%s (%d)", p, res.Counts[i]))
	}
	fmt.Fprintf(w, "wrote %s\n", strings.Join(outs, ", "))
	fmt.Fprintf(w, "read %d files, %d packets, %d flows in %.2f s (%.0f packets/s)\n",
		s.Files, s.Packets, s.FlowsRead, secs, float64(s.Packets)/max(secs, 1e-9))
	stored := "flows"
	if m.Settings.Windows > 0 {
		stored = "rows"
	}
	fmt.Fprintf(w, "stored %d %s in %d classes (%s flows, seed %d, debias %s", s.Flows, stored, len(m.Classes), m.Settings.Direction, m.Settings.Seed, strings.Join(m.Settings.Debias, ","))
	if m.Settings.SplitMode != "" {
		fmt.Fprintf(w, ", split %s", m.Settings.SplitMode)
	}
	fmt.Fprintln(w, ")")
	if m.Settings.Windows > 0 {
		fmt.Fprintf(w, "windows %d: %d flows, %d windowed views added (per-class counts are rows)\n",
			m.Settings.Windows, s.Flows-s.WindowedViews, s.WindowedViews)
	}
	width := len("(unlabelled)")
	for _, c := range m.Classes {
		width = max(width, len(c))
	}
	for i, c := range m.Classes {
		fmt.Fprintf(w, "  %3d  %-*s %8d\n", i, width, c, s.FlowsPerClass[c])
	}
	if s.Unlabelled > 0 {
		fmt.Fprintf(w, "       %-*s %8d\n", width, "(unlabelled)", s.Unlabelled)
	}
	section := func(title string, m map[string]uint64) {
		if len(m) == 0 {
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		for _, k := range countsByValue(m) {
			fmt.Fprintf(w, "  %8d  %s\n", m[k], k)
		}
	}
	section("skipped (reason)", s.SkippedPkts)
	section("dropped flows (reason)", s.DroppedFlows)
	section("skipped files (reason)", s.SkippedFiles)
	if ws := res.Report.Warnings; len(ws) > 0 {
		fmt.Fprintf(w, "warnings (%d):\n", len(ws))
		for _, x := range ws[:min(len(ws), 5)] {
			fmt.Fprintf(w, "  %s\n", x)
		}
	}
}
