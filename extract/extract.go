// Package extract runs the ingestion pipeline: capture files are read,
// packets decoded and assembled into flows, and each finished flow's
// representation (byte view, sequences) is emitted.
//
// IP fragments: a first fragment's ports are remembered (bounded table,
// keyed by addresses, protocol and IP ID) and the datagram's non-first
// fragments join its flow; a non-first fragment whose first was not seen is
// skipped and counted ("fragment without its first"). No reassembly: each
// fragment is its own packet in the flow, and in the byte view its header
// is the IP header and its payload the fragment data. That is also what the
// official extractor sees (scapy leaves non-first fragments as IP/Raw), so
// compat "official" mode treats them the same way; on ndpi-app this matches
// the golden views for every flow containing fragments.
//
// Compat "official" mode reproduces the official NetMamba byte views (see
// repr.OfficialSlot): 672 of the 673 ndpi-app flows are byte-identical to
// ../shared/golden/repr (the other is an SMB flow where scapy's SMB dissector
// leaves a message-dependent Raw tail). The official extractor reads the
// first 5 packets of a file (one flow per file); this package reads the
// first 5 packets of each flow, which is the same for one-flow files.
package extract

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/filter"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/repr"
)

// Options configure extraction.
type Options struct {
	Bidirectional bool   // true: bidirectional flows (default); false: unidirectional
	Compat        string // "" (offset-correct) or "official" (reproduce the official extractor)
	Filter        string // optional BPF filter expression (package filter), evaluated from the IP header on

	// Debias selects NetMamba+ header rewrites; the zero value zeroes IP
	// addresses only (NetMamba). Ignored with Compat "official".
	Debias repr.Debias
	// Clean drops flows of DNS, mDNS, LLMNR, NBNS, DHCP (v4/v6) and NTP
	// (by port, TCP or UDP), counted in Report.Skipped.
	Clean bool
	// IdleTimeout and ActiveTimeout end flows early (0: a file is read as
	// a whole, like ndpiReader). Flows ended by a timeout are emitted when
	// they end, so emission is then in end order, not first-packet order.
	IdleTimeout, ActiveTimeout time.Duration
	// MaxFlows caps live flows per file (0: no cap); evictions are counted
	// and the evicted flows emitted.
	MaxFlows int
	// Windows is the sliding-window augmentation (the official NetMamba
	// augmentation for small datasets; 0 or 1: off). Each flow is emitted
	// as today (Flow.Window 0), then once for every start packet
	// i = 1 … Windows-1 for which the flow has at least i+5 packets (full
	// windows only), with Flow.Window = i, in increasing i, right after the
	// flow's first view. Window i's View is the view of a flow made of
	// packets i, i+1, … of this flow: its initiator is the sender of packet
	// i (so Dirs and initiator-relative rewrites such as relative_ip may
	// flip), its sequences start at packet i (IATs[0] = 0), and
	// relative_seq counts from the first sequence number each direction
	// sends from packet i on (an ack before the other direction has sent
	// in the window is 0). Key and Stats stay those of the whole flow. The
	// window's packets are the flow's as the flow table assigned them, so
	// a non-first IP fragment whose first fragment precedes packet i still
	// belongs to the window. Each live flow keeps up to Windows-1 extra
	// builders (about 2 KB each) until it ends. At most MaxWindows.
	Windows int
}

// MaxWindows is the largest Options.Windows (the window index is stored as a uint16).
const MaxWindows = 1 << 16

// Compat mode names accepted in Options.Compat.
const (
	CompatNone     = ""
	CompatOfficial = "official"
)

// Flow is one finished flow and its representation.
type Flow struct {
	Key   flow.Key
	Stats flow.Stats
	View  repr.View
	// Window is 0 for the flow's own view and i for the sliding-window
	// view that starts at packet i (Options.Windows).
	Window int
}

// Report counts what was read and what was skipped, with reasons.
type Report struct {
	Packets uint64            // packets read
	Flows   uint64            // flows emitted
	Skipped map[string]uint64 // reason -> count (packets, or flows for "cleaned ..." / "evicted ..." entries)
	// Added fields:
	Files       int               // capture files read
	Bytes       uint64            // captured bytes of all packets (link headers included)
	LinkTypes   map[string]uint64 // packets per link type name
	SnapCut     uint64            // packets assigned to a flow with fewer captured bytes than their IP length
	Fragments   uint64            // non-first fragments joined to their datagram's flow
	Evicted     uint64            // flows ended early because MaxFlows was reached
	Windows     uint64            // sliding-window views emitted besides the flows' own (Options.Windows)
	TimedOut    uint64            // flows ended by the idle or active timeout
	Warnings    []string          // per-file problems that did not stop extraction (truncated or corrupt tail)
	linkCounter [512]uint64
	otherLinks  map[capture.LinkType]uint64
	reasons     [flow.NumReasons]uint64
}

// Skip-reason keys of Report.Skipped that are not flow.Reason names.
const (
	SkipCleaned       = "cleaned flow (DNS/mDNS/LLMNR/NBNS/DHCP/NTP)"
	SkipTruncatedFile = "truncated file"
	SkipCorruptFile   = "corrupt file tail"
)

func (r *Report) addSkip(key string, n uint64) {
	if n == 0 {
		return
	}
	if r.Skipped == nil {
		r.Skipped = map[string]uint64{}
	}
	r.Skipped[key] += n
}

// finish folds the fixed counters into the maps.
func (r *Report) finish() {
	for i, n := range r.reasons {
		if i != int(flow.OK) && i != int(flow.ReasonSnapCut) {
			r.addSkip(flow.Reason(i).String(), n)
		}
		r.reasons[i] = 0
	}
	for lt, n := range r.linkCounter {
		if n != 0 {
			if r.LinkTypes == nil {
				r.LinkTypes = map[string]uint64{}
			}
			r.LinkTypes[capture.LinkType(lt).String()] += n
			r.linkCounter[lt] = 0
		}
	}
	for lt, n := range r.otherLinks {
		if r.LinkTypes == nil {
			r.LinkTypes = map[string]uint64{}
		}
		r.LinkTypes[lt.String()] += n
		delete(r.otherLinks, lt)
	}
}

// String is a short multi-line summary (reasons sorted).
func (r *Report) String() string {
	s := fmt.Sprintf("%d files, %d packets, %d flows", r.Files, r.Packets, r.Flows)
	if r.Windows > 0 {
		s += fmt.Sprintf(", %d windowed views added", r.Windows)
	}
	keys := make([]string, 0, len(r.Skipped))
	for k := range r.Skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s += fmt.Sprintf("\n  skipped %s: %d", k, r.Skipped[k])
	}
	return s
}

// Files reads every capture in paths, in order, and calls emit for each
// finished flow, ordered by first packet within a file. The *Flow passed
// to emit is reused after emit returns: copy it to keep it. A file that is
// not a capture, or an I/O error, stops extraction with an error naming the
// file and byte offset; a truncated or corrupt tail is a Report warning.
func Files(paths []string, opts Options, emit func(source string, f *Flow) error) (*Report, error) {
	ex, err := New(opts)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	for _, p := range paths {
		r, err := capture.Open(p)
		if err != nil {
			rep.finish()
			return rep, fmt.Errorf("extract: %w", err)
		}
		err = ex.Capture(r, rep, func(f *Flow) error { return emit(p, f) })
		r.Close()
		if err != nil {
			rep.finish()
			return rep, err
		}
	}
	rep.finish()
	return rep, nil
}

// Extractor is a configured pipeline. It is not safe for concurrent use;
// use one per goroutine (parallel extraction = one Extractor per file or
// partition).
type Extractor struct {
	opts   Options
	ropts  repr.Options
	filter *filter.Filter
	table  *flow.Table[flowState]
	free   [][]window // window slices of ended flows, for reuse
	out    Flow
	emit   func(*Flow) error
	rep    *Report
	err    error
	pkt    flow.Packet
}

// New validates opts and builds an Extractor.
func New(opts Options) (*Extractor, error) {
	ex := &Extractor{opts: opts}
	switch opts.Compat {
	case CompatNone:
		ex.ropts.Compat = repr.CompatNone
	case CompatOfficial:
		ex.ropts.Compat = repr.CompatOfficial
	default:
		return nil, fmt.Errorf("extract: unknown compat mode %q (want \"\" or \"official\")", opts.Compat)
	}
	ex.ropts.Debias = opts.Debias
	if opts.Filter != "" {
		f, err := filter.Compile(opts.Filter)
		if err != nil {
			return nil, fmt.Errorf("extract: filter: %w", err)
		}
		ex.filter = f
	}
	cfg := flow.Config{
		Bidirectional: opts.Bidirectional,
		IdleTimeout:   opts.IdleTimeout,
		ActiveTimeout: opts.ActiveTimeout,
		MaxFlows:      opts.MaxFlows,
	}
	if opts.Windows < 0 || opts.Windows > MaxWindows {
		return nil, fmt.Errorf("extract: windows %d: want 0 … %d", opts.Windows, MaxWindows)
	}
	ex.table = flow.NewTable(cfg, flow.Handlers[flowState]{
		Packet: func(f *flow.Flow[flowState], p *flow.Packet, m flow.PacketMeta) {
			f.State.Add(p, m, &f.Key, &ex.ropts)
			if ex.opts.Windows > 1 {
				ex.addWindows(f, p, m)
			}
		},
		End: ex.end,
	})
	return ex, nil
}

// flowState is the per-flow state of the flow table: the flow's own
// builder and, with Options.Windows > 1, those of its windows.
type flowState struct {
	repr.Builder
	wins []window // in start order
}

// window builds the view of a flow's packets start, start+1, ….
type window struct {
	b     repr.Builder
	start uint64   // index of the window's first packet in the flow
	flip  bool     // packet start came from the flow's responder
	key   flow.Key // the flow's key oriented from the window's initiator
}

// addWindows starts window m.Index (below Options.Windows) and feeds p to
// every window whose sequences are not full yet.
func (ex *Extractor) addWindows(f *flow.Flow[flowState], p *flow.Packet, m flow.PacketMeta) {
	n := uint64(ex.opts.Windows)
	if m.Index >= n-1+repr.SeqLen {
		return // every window has its SeqLen packets
	}
	st := &f.State
	if m.Index >= 1 && m.Index < n {
		if st.wins == nil {
			if k := len(ex.free); k > 0 {
				st.wins, ex.free = ex.free[k-1], ex.free[:k-1]
			}
		}
		st.wins = append(st.wins, window{start: m.Index, flip: !m.FromInitiator, key: f.Key})
		if w := &st.wins[len(st.wins)-1]; w.flip {
			w.key.SrcIP, w.key.DstIP = w.key.DstIP, w.key.SrcIP
			w.key.SrcPort, w.key.DstPort = w.key.DstPort, w.key.SrcPort
		}
	}
	for i := range st.wins {
		w := &st.wins[i]
		rel := m.Index - w.start
		if rel >= repr.SeqLen {
			continue // windows are in start order, but later ones may still need packets
		}
		wm := m
		wm.Index = rel
		wm.FromInitiator = m.FromInitiator != w.flip
		w.b.Add(p, wm, &w.key, &ex.ropts)
	}
}

func (ex *Extractor) end(f *flow.Flow[flowState], why flow.EndReason) {
	if wins := f.State.wins; wins != nil {
		defer func() { ex.free = append(ex.free, wins[:0]) }()
	}
	switch why {
	case flow.EndEvicted:
		ex.rep.Evicted++
	case flow.EndIdle, flow.EndActive:
		ex.rep.TimedOut++
	}
	if ex.err != nil {
		return
	}
	if ex.opts.Clean && isCleanedService(&f.Key) {
		ex.rep.addSkip(SkipCleaned, 1)
		return
	}
	ex.out.Key = f.Key
	ex.out.Stats = f.Stats
	ex.out.View = f.State.View
	ex.out.Window = 0
	ex.rep.Flows++
	if err := ex.emit(&ex.out); err != nil {
		ex.err = err
		return
	}
	for i := range f.State.wins {
		w := &f.State.wins[i]
		if f.Stats.Packets < w.start+repr.ViewPackets {
			break // later windows start later: none is full
		}
		ex.out.View = w.b.View
		ex.out.Window = int(w.start)
		ex.rep.Windows++
		if err := ex.emit(&ex.out); err != nil {
			ex.err = err
			return
		}
	}
}

// cleanedPorts are the services dropped by Options.Clean.
var cleanedPorts = [...]uint16{53, 5353, 5355, 137, 67, 68, 546, 547, 123}

func isCleanedService(k *flow.Key) bool {
	if k.Proto != 6 && k.Proto != 17 {
		return false
	}
	for _, p := range cleanedPorts {
		if k.SrcPort == p || k.DstPort == p {
			return true
		}
	}
	return false
}

// Capture reads every packet of r, emits its flows (flushing the table at
// the end of the file) and adds to rep. Call Report-using code after the
// last Capture; rep's maps are filled by Files, or by Finish.
func (ex *Extractor) Capture(r *capture.Reader, rep *Report, emit func(f *Flow) error) error {
	ex.emit, ex.rep, ex.err = emit, rep, nil
	rep.Files++
	var cp capture.Packet
	p := &ex.pkt
	var readErr error
	for ex.err == nil {
		if err := r.Next(&cp); err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
		rep.Packets++
		rep.Bytes += uint64(len(cp.Data))
		if int(cp.LinkType) < len(rep.linkCounter) {
			rep.linkCounter[cp.LinkType]++
		} else {
			if rep.otherLinks == nil {
				rep.otherLinks = map[capture.LinkType]uint64{}
			}
			rep.otherLinks[cp.LinkType]++
		}
		reason := flow.Decode(cp.LinkType, cp.Data, p)
		if reason != flow.OK {
			rep.reasons[reason]++
			continue
		}
		if ex.filter != nil && !ex.filter.Match(p.L3()) {
			rep.reasons[flow.ReasonFiltered]++
			continue
		}
		if p.SnapCut {
			rep.SnapCut++
		}
		if reason = ex.table.Add(p, cp.TimestampNs, len(cp.Data)); reason != flow.OK {
			rep.reasons[reason]++
		} else if p.IsNonFirstFragment() {
			rep.Fragments++
		}
	}
	if ex.err == nil {
		ex.table.Flush()
	}
	if ex.err != nil {
		return ex.err
	}
	if readErr != nil {
		var ce *capture.Error
		switch {
		case errors.Is(readErr, capture.ErrTruncated):
			rep.addSkip(SkipTruncatedFile, 1)
			rep.Warnings = append(rep.Warnings, readErr.Error())
		case errors.Is(readErr, capture.ErrCorrupt) && errors.As(readErr, &ce):
			rep.addSkip(SkipCorruptFile, 1)
			rep.Warnings = append(rep.Warnings, readErr.Error())
		default:
			return fmt.Errorf("extract: %w", readErr)
		}
	}
	return nil
}

// Finish folds a Report's internal counters into its maps (Skipped,
// LinkTypes). Files calls it; call it after using Extractor.Capture directly.
func (r *Report) Finish() { r.finish() }

// FlowTableStats exposes the flow table's counters (for benchmarks and reports).
func (ex *Extractor) FlowTableStats() flow.TableStats { return ex.table.Stats() }
