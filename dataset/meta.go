package dataset

import "github.com/netmamba/netmamba/repr"

// Meta is the JSON metadata block stored in every dataset file.
type Meta struct {
	Version        int            `json:"version"`         // format version (set by Close)
	Classes        []string       `json:"classes"`         // class map: label index -> name
	Split          string         `json:"split,omitempty"` // "train", "valid", "test" or "" (unsplit)
	Settings       Settings       `json:"settings"`        // how the dataset was built
	Representation Representation `json:"representation"`  // shape of the stored views (set by Close)
	Summary        Summary        `json:"summary"`         // what went in and what was left out
}

// Settings record how a dataset was built, so results can be reproduced.
type Settings struct {
	Inputs        []string `json:"inputs,omitempty"`         // prep INPUT arguments, in order
	Compat        string   `json:"compat,omitempty"`         // "" (offset-correct) or "official"
	Direction     string   `json:"direction,omitempty"`      // "bi" or "uni"
	Filter        string   `json:"filter,omitempty"`         // BPF filter expression
	Clean         bool     `json:"clean,omitempty"`          // DNS/mDNS/LLMNR/NBNS/DHCP/NTP flows dropped
	Debias        []string `json:"debias,omitempty"`         // header debias strategies (repr.ParseDebias names); absent: ["zero_ip"]
	ClassesFile   string   `json:"classes_file,omitempty"`   // --classes
	Manifest      string   `json:"manifest,omitempty"`       // --manifest
	SplitMode     string   `json:"split_mode,omitempty"`     // random, time or source
	Seed          uint64   `json:"seed"`                     // sampling and split seed
	MinPerClass   int      `json:"min_per_class,omitempty"`  // classes with fewer flows were dropped
	MaxPerClass   int      `json:"max_per_class,omitempty"`  // classes were capped at this many flows
	IdleTimeout   string   `json:"idle_timeout,omitempty"`   // flow idle timeout (Go duration)
	ActiveTimeout string   `json:"active_timeout,omitempty"` // flow active timeout (Go duration)
	Origin        string   `json:"origin,omitempty"`         // "prep", "import", "subset", "pseudolabel"
	// Windows is prep --windows: besides its own view, each flow with
	// enough packets has rows for the views starting at packets 1 … Windows-1
	// (Record.Window). 0: off. Meant for training data only.
	Windows int `json:"windows,omitempty"`
	// PseudoLabel is set when the labels were predicted by a teacher model
	// (netmamba dataset pseudolabel), not given by a folder or manifest.
	PseudoLabel *PseudoLabelSettings `json:"pseudo_label,omitempty"`
}

// PseudoLabelSettings record how a dataset's labels were predicted.
type PseudoLabelSettings struct {
	Models        []string       `json:"models"`                  // teacher checkpoints (several: their ensemble)
	Temperatures  []float64      `json:"temperatures"`            // each model's logits were divided by its temperature before the softmax
	MinConfidence float64        `json:"min_confidence"`          // flows below this top probability were left out
	MaxPerClass   int            `json:"max_per_class,omitempty"` // most confident flows kept per class (0: no cap)
	From          string         `json:"from"`                    // the dataset the flows came from
	FlowsIn       uint64         `json:"flows_in"`                // flows (own rows) in it
	Kept          map[string]int `json:"kept"`                    // class name -> flows kept
}

// Representation describes the stored per-flow views.
type Representation struct {
	ViewPackets  int `json:"view_packets"`  // packets in the byte view
	HeaderBytes  int `json:"header_bytes"`  // header bytes per packet slot
	PayloadBytes int `json:"payload_bytes"` // payload bytes per packet slot
	SeqLen       int `json:"seq_len"`       // packets in the size/direction/IAT sequences
	RecordSize   int `json:"record_size"`   // bytes per stored record
}

// CurrentRepresentation is the representation this build writes.
func CurrentRepresentation() Representation {
	return Representation{
		ViewPackets: repr.ViewPackets, HeaderBytes: repr.HeaderBytes, PayloadBytes: repr.PayloadBytes,
		SeqLen: repr.SeqLen, RecordSize: RecordSize,
	}
}

// Summary counts the flows stored and what was read or left out, with reasons.
type Summary struct {
	Flows         uint64            `json:"flows"`                     // records in this file (set by Close)
	FlowsPerClass map[string]uint64 `json:"flows_per_class"`           // class name -> records (set by Close)
	Unlabelled    uint64            `json:"unlabelled"`                // records with label -1 (set by Close)
	WindowedViews uint64            `json:"windowed_views,omitempty"`  // records that are sliding-window views (Window > 0), included in Flows (set by Close)
	Files         uint64            `json:"files,omitempty"`           // capture files read
	Packets       uint64            `json:"packets,omitempty"`         // packets read (extract.Report)
	FlowsRead     uint64            `json:"flows_read,omitempty"`      // flows assembled before dropping
	SkippedPkts   map[string]uint64 `json:"skipped_packets,omitempty"` // reason -> packets (extract.Report; "truncated file" and "corrupt file tail" count files)
	DroppedFlows  map[string]uint64 `json:"dropped_flows,omitempty"`   // reason -> flows not stored
	SkippedFiles  map[string]uint64 `json:"skipped_files,omitempty"`   // reason -> input files not read
	Seconds       float64           `json:"seconds,omitempty"`         // wall time of the build
}
