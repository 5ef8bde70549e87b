package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/extract"
)

// newInspectCmd describes captures and datasets.
func newInspectCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "inspect [--json] FILE...",
		Short: "Describe captures (link types, packets, flows, skips) and datasets (classes, settings)",
		Long: `inspect explains what netmamba sees in a file. For a capture: format, link types
with packet counts, packets, bytes, bidirectional flows by protocol and IP version,
packets skipped with reasons, and the time range of the flows. For a dataset: flows,
classes with counts, split, how it was built, representation and sizes, and an
integrity check of every record.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var infos []any
			for _, p := range args {
				isDS, err := isDatasetFile(p)
				if err != nil {
					return fmt.Errorf("inspect: %w", err)
				}
				var info any
				if isDS {
					info, err = inspectDataset(p)
				} else {
					info, err = inspectCapture(p)
				}
				if err != nil {
					return fmt.Errorf("inspect: %w", err)
				}
				infos = append(infos, info)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if len(infos) == 1 {
					return enc.Encode(infos[0])
				}
				return enc.Encode(infos)
			}
			for i, info := range infos {
				if i > 0 {
					fmt.Fprintln(w)
				}
				switch v := info.(type) {
				case *datasetInfo:
					v.print(w)
				case *captureInfo:
					v.print(w)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func isDatasetFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	b := make([]byte, len(dataset.Magic))
	n, _ := io.ReadFull(f, b)
	return string(b[:n]) == dataset.Magic, nil
}

// captureInfo is inspect's view of a capture file.
type captureInfo struct {
	File             string            `json:"file"`
	Kind             string            `json:"kind"`
	Format           string            `json:"format"`
	Packets          uint64            `json:"packets"`
	Bytes            uint64            `json:"bytes"`
	LinkTypes        map[string]uint64 `json:"link_types"`
	Flows            uint64            `json:"flows"`
	FlowsByProto     map[string]uint64 `json:"flows_by_protocol"`
	FlowsByIPVersion map[string]uint64 `json:"flows_by_ip_version"`
	PacketsInFlows   map[string]uint64 `json:"packets_in_flows_by_ip_version"`
	Skipped          map[string]uint64 `json:"skipped"`
	Fragments        uint64            `json:"non_first_fragments"`
	SnapCut          uint64            `json:"snap_cut_packets"`
	FirstPacket      string            `json:"first_packet,omitempty"`
	LastPacket       string            `json:"last_packet,omitempty"`
	Warnings         []string          `json:"warnings,omitempty"`
}

func inspectProtoName(p uint8) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	case 132:
		return "SCTP"
	}
	return fmt.Sprintf("proto %d", p)
}

func inspectCapture(path string) (*captureInfo, error) {
	r, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	format := r.Format().String()
	r.Close()
	info := &captureInfo{File: path, Kind: "capture", Format: format,
		FlowsByProto: map[string]uint64{}, FlowsByIPVersion: map[string]uint64{}, PacketsInFlows: map[string]uint64{}}
	var first, last int64
	rep, err := extract.Files([]string{path}, extract.Options{Bidirectional: true}, func(_ string, f *extract.Flow) error {
		info.Flows++
		info.FlowsByProto[inspectProtoName(f.Key.Proto)]++
		v := fmt.Sprintf("IPv%d", f.Key.IPVersion)
		info.FlowsByIPVersion[v]++
		info.PacketsInFlows[v] += f.Stats.Packets
		if info.Flows == 1 || f.Stats.FirstSeenNs < first {
			first = f.Stats.FirstSeenNs
		}
		if info.Flows == 1 || f.Stats.LastSeenNs > last {
			last = f.Stats.LastSeenNs
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	info.Packets, info.Bytes, info.LinkTypes = rep.Packets, rep.Bytes, rep.LinkTypes
	info.Skipped, info.Fragments, info.SnapCut, info.Warnings = rep.Skipped, rep.Fragments, rep.SnapCut, rep.Warnings
	if info.Flows > 0 {
		info.FirstPacket = time.Unix(0, first).UTC().Format(time.RFC3339Nano)
		info.LastPacket = time.Unix(0, last).UTC().Format(time.RFC3339Nano)
	}
	return info, nil
}

func printReasonCounts(w io.Writer, title string, m map[string]uint64) {
	if len(m) == 0 {
		fmt.Fprintf(w, "%s: none\n", title)
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, k := range countsByValue(m) {
		fmt.Fprintf(w, "  %10d  %s\n", m[k], k)
	}
}

func (c *captureInfo) print(w io.Writer) {
	fmt.Fprintf(w, "%s: %s capture, %d packets, %d bytes\n", c.File, c.Format, c.Packets, c.Bytes)
	printReasonCounts(w, "link types (packets)", c.LinkTypes)
	fmt.Fprintf(w, "flows (bidirectional): %d\n", c.Flows)
	printReasonCounts(w, "flows by protocol", c.FlowsByProto)
	printReasonCounts(w, "flows by IP version", c.FlowsByIPVersion)
	printReasonCounts(w, "packets in flows by IP version", c.PacketsInFlows)
	printReasonCounts(w, "skipped (reason)", c.Skipped)
	if c.Fragments > 0 || c.SnapCut > 0 {
		fmt.Fprintf(w, "non-first fragments joined: %d; packets cut by the snap length: %d\n", c.Fragments, c.SnapCut)
	}
	if c.FirstPacket != "" {
		fmt.Fprintf(w, "time range of flow packets: %s .. %s\n", c.FirstPacket, c.LastPacket)
	}
	for _, x := range c.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
	if c.Flows == 0 {
		fmt.Fprintln(w, "no flows: every packet was skipped, see the reasons above")
	}
}

// datasetInfo is inspect's view of a dataset file.
type datasetInfo struct {
	File           string                 `json:"file"`
	Kind           string                 `json:"kind"`
	FormatVersion  int                    `json:"format_version"`
	FileBytes      int64                  `json:"file_bytes"`
	Flows          int                    `json:"flows"`
	Split          string                 `json:"split,omitempty"`
	Classes        []classCount           `json:"classes"`
	Unlabelled     int                    `json:"unlabelled"`
	Sources        int                    `json:"sources"`
	Integrity      string                 `json:"integrity"`
	Settings       dataset.Settings       `json:"settings"`
	Representation dataset.Representation `json:"representation"`
	Build          dataset.Summary        `json:"build_summary"`
}

type classCount struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Flows int    `json:"flows"`
}

func inspectDataset(path string) (*datasetInfo, error) {
	d, err := dataset.Open(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	m := d.Meta()
	info := &datasetInfo{File: path, Kind: "dataset", FormatVersion: m.Version, FileBytes: st.Size(),
		Flows: d.Len(), Split: m.Split, Sources: len(d.Sources()), Settings: m.Settings,
		Representation: m.Representation, Build: m.Summary, Integrity: "ok"}
	counts := make([]int, len(m.Classes))
	for i := 0; i < d.Len(); i++ {
		if l := d.Label(i); l >= 0 && l < len(counts) {
			counts[l]++
		} else {
			info.Unlabelled++
		}
	}
	for i, c := range m.Classes {
		info.Classes = append(info.Classes, classCount{i, c, counts[i]})
	}
	if err := d.Verify(); err != nil {
		info.Integrity = err.Error()
	}
	return info, nil
}

func (d *datasetInfo) print(w io.Writer) {
	if wv := d.Build.WindowedViews; wv > 0 {
		fmt.Fprintf(w, "%s: netmamba dataset v%d, %d rows (%d flows + %d sliding-window views), %d bytes", d.File, d.FormatVersion, d.Flows, uint64(d.Flows)-wv, wv, d.FileBytes)
	} else {
		fmt.Fprintf(w, "%s: netmamba dataset v%d, %d flows, %d bytes", d.File, d.FormatVersion, d.Flows, d.FileBytes)
	}
	if d.Split != "" {
		fmt.Fprintf(w, ", split %s", d.Split)
	}
	fmt.Fprintf(w, "\nintegrity: %s\n", d.Integrity)
	fmt.Fprintf(w, "classes: %d\n", len(d.Classes))
	width := len("(unlabelled)")
	for _, c := range d.Classes {
		width = max(width, len(c.Name))
	}
	for _, c := range d.Classes {
		fmt.Fprintf(w, "  %3d  %-*s %8d\n", c.Index, width, c.Name, c.Flows)
	}
	if d.Unlabelled > 0 {
		fmt.Fprintf(w, "       %-*s %8d\n", width, "(unlabelled)", d.Unlabelled)
	}
	r, s := d.Representation, d.Settings
	fmt.Fprintf(w, "representation: byte view %d packets x (%d header + %d payload) bytes, sequences of %d packets, %d-byte records\n",
		r.ViewPackets, r.HeaderBytes, r.PayloadBytes, r.SeqLen, r.RecordSize)
	compat := s.Compat
	if compat == "" {
		compat = "offset-correct"
	}
	fmt.Fprintf(w, "built by %s from %s: %s flows, %s extractor, seed %d", s.Origin, strings.Join(s.Inputs, " "), s.Direction, compat, s.Seed)
	if s.Filter != "" {
		fmt.Fprintf(w, ", filter %q", s.Filter)
	}
	if s.Clean {
		fmt.Fprint(w, ", cleaned")
	}
	if len(s.Debias) > 0 {
		fmt.Fprintf(w, ", debias %s", strings.Join(s.Debias, ","))
	}
	if s.Windows > 1 {
		fmt.Fprintf(w, ", sliding windows %d (%d windowed rows: for training only)", s.Windows, d.Build.WindowedViews)
	}
	if s.SplitMode != "" {
		fmt.Fprintf(w, ", split %s", s.SplitMode)
	}
	if s.MinPerClass > 0 || s.MaxPerClass > 0 {
		fmt.Fprintf(w, ", per class min %d max %d", s.MinPerClass, s.MaxPerClass)
	}
	if pl := s.PseudoLabel; pl != nil {
		temps := joinFloats(pl.Temperatures)
		if len(pl.Temperatures) == 0 {
			temps = "not recorded" // files written before temperatures were recorded
		}
		fmt.Fprintf(w, "\nlabels: PSEUDO-LABELS predicted by %s for %d of the %d flows of %s (temperature %s, min confidence %g",
			strings.Join(pl.Models, " + "), uint64(d.Flows)-d.Build.WindowedViews, pl.FlowsIn, pl.From, temps, pl.MinConfidence)
		if pl.MaxPerClass > 0 {
			fmt.Fprintf(w, ", at most %d per class", pl.MaxPerClass)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "\nsources: %d capture files\n", d.Sources)
	b := d.Build
	if b.Packets > 0 {
		fmt.Fprintf(w, "build: %d files, %d packets, %d flows read\n", b.Files, b.Packets, b.FlowsRead)
	}
	if len(b.SkippedPkts) > 0 {
		printReasonCounts(w, "build: skipped (reason)", b.SkippedPkts)
	}
	if len(b.DroppedFlows) > 0 {
		printReasonCounts(w, "build: dropped flows (reason)", b.DroppedFlows)
	}
	if len(b.SkippedFiles) > 0 {
		printReasonCounts(w, "build: skipped files (reason)", b.SkippedFiles)
	}
}
