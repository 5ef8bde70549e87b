package dataset

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/netmamba/netmamba/flow"
)

// FlowFieldNames returns the nfstream-style names of the per-flow fields
// written by FlowWriter, in column order (extra columns follow).
func FlowFieldNames() []string {
	return []string{
		"src_ip", "src_port", "dst_ip", "dst_port", "protocol", "ip_version", "vlan_id",
		"bidirectional_first_seen_ms", "bidirectional_last_seen_ms", "bidirectional_duration_ms",
		"bidirectional_packets", "bidirectional_bytes",
		"src2dst_packets", "src2dst_bytes", "dst2src_packets", "dst2src_bytes",
	}
}

// KeyAddrs returns the flow's source and destination addresses.
func KeyAddrs(k *flow.Key) (src, dst netip.Addr) {
	if k.IPVersion == 4 {
		return netip.AddrFrom4([4]byte(k.SrcIP[:4])), netip.AddrFrom4([4]byte(k.DstIP[:4]))
	}
	return netip.AddrFrom16(k.SrcIP), netip.AddrFrom16(k.DstIP)
}

// FlowMillis returns a flow's first-seen and last-seen times in integer
// milliseconds since the Unix epoch (floored, so pre-1970 times round the
// same way as later ones) and its duration as last − first of those
// milliseconds. Every writer of the bidirectional_*_ms fields uses it, so
// `dataset export` and `classify` agree on the same flow.
func FlowMillis(s *flow.Stats) (first, last, duration int64) {
	first, last = floorMillis(s.FirstSeenNs), floorMillis(s.LastSeenNs)
	return first, last, last - first
}

// floorMillis converts nanoseconds to milliseconds, rounding toward −∞.
func floorMillis(ns int64) int64 {
	ms := ns / 1_000_000
	if ns%1_000_000 < 0 {
		ms--
	}
	return ms
}

// flowValues returns the fields of FlowFieldNames as strings, and whether
// each is numeric (for JSON).
func flowValues(k *flow.Key, s *flow.Stats, out []string) []string {
	src, dst := KeyAddrs(k)
	first, last, dur := FlowMillis(s)
	ms := func(v int64) string { return strconv.FormatInt(v, 10) }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return append(out[:0],
		src.String(), u(uint64(k.SrcPort)), dst.String(), u(uint64(k.DstPort)),
		u(uint64(k.Proto)), u(uint64(k.IPVersion)), u(uint64(k.VLAN)),
		ms(first), ms(last), ms(dur),
		u(s.Packets), u(s.Bytes), u(s.SrcPackets), u(s.SrcBytes), u(s.DstPackets), u(s.DstBytes),
	)
}

// FlowWriter writes one row per flow as CSV (with a header line) or JSON
// Lines, with the fields of FlowFieldNames followed by caller-defined
// string columns (e.g. label, source_file, prediction). Timestamps are
// integer milliseconds since the Unix epoch; addresses are text; numbers are
// JSON numbers; extra columns are JSON strings.
type FlowWriter struct {
	bw     *bufio.Writer
	cw     *csv.Writer
	extra  []string
	names  []string
	vals   []string
	line   []byte
	isJSON bool
}

// NewFlowWriter starts a flow table in format "csv" or "jsonl" with the
// given extra column names. The CSV header is written immediately.
func NewFlowWriter(w io.Writer, format string, extra ...string) (*FlowWriter, error) {
	fw := &FlowWriter{bw: bufio.NewWriter(w), extra: append([]string(nil), extra...)}
	fw.names = append(FlowFieldNames(), extra...)
	switch format {
	case "csv":
		fw.cw = csv.NewWriter(fw.bw)
		if err := fw.cw.Write(fw.names); err != nil {
			return nil, err
		}
	case "jsonl":
		fw.isJSON = true
	default:
		return nil, fmt.Errorf("flow table format %q: want csv or jsonl", format)
	}
	return fw, nil
}

// Write writes one flow; extra holds one value per extra column.
func (fw *FlowWriter) Write(k *flow.Key, s *flow.Stats, extra ...string) error {
	if len(extra) != len(fw.extra) {
		return fmt.Errorf("flow table: %d extra values for %d extra columns", len(extra), len(fw.extra))
	}
	fw.vals = append(flowValues(k, s, fw.vals), extra...)
	if !fw.isJSON {
		return fw.cw.Write(fw.vals)
	}
	nFlow := len(FlowFieldNames())
	b := append(fw.line[:0], '{')
	for i, name := range fw.names {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, name) // names are plain ASCII
		b = append(b, ':')
		numeric := i < nFlow && name != "src_ip" && name != "dst_ip"
		if numeric {
			b = append(b, fw.vals[i]...)
		} else {
			q, err := json.Marshal(fw.vals[i])
			if err != nil {
				return err
			}
			b = append(b, q...)
		}
	}
	b = append(b, '}', '\n')
	fw.line = b
	_, err := fw.bw.Write(b)
	return err
}

// Flush writes any buffered rows.
func (fw *FlowWriter) Flush() error {
	if fw.cw != nil {
		fw.cw.Flush()
		if err := fw.cw.Error(); err != nil {
			return err
		}
	}
	return fw.bw.Flush()
}
