package classify

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/flow"
)

// Verdict labels that are not class names.
const (
	// LabelUnknown is the label of a flow whose confidence is below the
	// unknown threshold.
	LabelUnknown = "unknown"
	// LabelUnclassified is the label of a flow that was not classified:
	// shed under overload (Result.Shed), a model error, or no model.
	LabelUnclassified = "unclassified"
)

// Prediction is one class and its calibrated probability.
type Prediction struct {
	Label      string  `json:"label"`
	Confidence float64 `json:"confidence"`
}

// Result is the verdict on one flow.
type Result struct {
	Key   flow.Key
	Stats flow.Stats // final counters (Final) or counters when classified (!Final)
	// Label is a class name, LabelUnknown or LabelUnclassified.
	Label string
	// Class is the arg-max class index (-1 when not classified).
	Class int
	// Confidence is the top class's probability: softmax(logits / T).
	Confidence float64
	// TopK are the best classes, most probable first.
	TopK []Prediction
	// ClassifiedAtPackets is the number of packets the flow had when its
	// representation was taken (Options.Early, or fewer for short flows).
	ClassifiedAtPackets int
	// Shed is set when the flow was not classified because the classifier
	// queue was full (overload).
	Shed bool
	// Final is set on the result emitted when the flow ended; with
	// Options.EmitEarly a non-final result precedes it as soon as the flow
	// is classified.
	Final bool
	// End says why the flow ended ("" for a non-final result).
	End string
	// Source names the input (file name or interface).
	Source string
}

// ExtraFieldNames are the names of the per-flow fields that follow
// dataset.FlowFieldNames in classify output, in column order.
func ExtraFieldNames() []string {
	return []string{"label", "confidence", "top_k", "classified_at_packets", "shed", "final", "end_reason", "source"}
}

// FieldNames returns every output field name, in order.
func FieldNames() []string { return append(dataset.FlowFieldNames(), ExtraFieldNames()...) }

// CSVExtra returns the values of ExtraFieldNames as strings (top_k as
// "label:prob;label:prob").
func (r *Result) CSVExtra() []string {
	var tk strings.Builder
	for i, p := range r.TopK {
		if i > 0 {
			tk.WriteByte(';')
		}
		tk.WriteString(p.Label)
		tk.WriteByte(':')
		tk.WriteString(strconv.FormatFloat(p.Confidence, 'f', 6, 64))
	}
	return []string{r.Label, strconv.FormatFloat(r.Confidence, 'f', 6, 64), tk.String(),
		strconv.Itoa(r.ClassifiedAtPackets), strconv.FormatBool(r.Shed), strconv.FormatBool(r.Final), r.End, r.Source}
}

// AppendJSON appends r as one JSON object (no newline) with the fields of
// FieldNames: the nfstream-style flow fields of package dataset (numbers as
// JSON numbers, addresses as strings, timestamps in ms since the epoch)
// then the verdict.
func (r *Result) AppendJSON(b []byte) []byte {
	k, s := &r.Key, &r.Stats
	src, dst := dataset.KeyAddrs(k)
	u := func(b []byte, name string, v uint64) []byte {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		return strconv.AppendUint(b, v, 10)
	}
	i := func(b []byte, name string, v int64) []byte {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		return strconv.AppendInt(b, v, 10)
	}
	b = append(b, `{"src_ip":`...)
	b = strconv.AppendQuote(b, src.String())
	b = u(b, "src_port", uint64(k.SrcPort))
	b = append(b, `,"dst_ip":`...)
	b = strconv.AppendQuote(b, dst.String())
	b = u(b, "dst_port", uint64(k.DstPort))
	b = u(b, "protocol", uint64(k.Proto))
	b = u(b, "ip_version", uint64(k.IPVersion))
	b = u(b, "vlan_id", uint64(k.VLAN))
	first, last, dur := dataset.FlowMillis(s)
	b = i(b, "bidirectional_first_seen_ms", first)
	b = i(b, "bidirectional_last_seen_ms", last)
	b = i(b, "bidirectional_duration_ms", dur)
	b = u(b, "bidirectional_packets", s.Packets)
	b = u(b, "bidirectional_bytes", s.Bytes)
	b = u(b, "src2dst_packets", s.SrcPackets)
	b = u(b, "src2dst_bytes", s.SrcBytes)
	b = u(b, "dst2src_packets", s.DstPackets)
	b = u(b, "dst2src_bytes", s.DstBytes)
	b = append(b, `,"label":`...)
	b = appendString(b, r.Label)
	b = append(b, `,"confidence":`...)
	b = appendProb(b, r.Confidence)
	b = append(b, `,"top_k":[`...)
	for j, p := range r.TopK {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"label":`...)
		b = appendString(b, p.Label)
		b = append(b, `,"confidence":`...)
		b = appendProb(b, p.Confidence)
		b = append(b, '}')
	}
	b = append(b, ']')
	b = i(b, "classified_at_packets", int64(r.ClassifiedAtPackets))
	b = append(b, `,"shed":`...)
	b = strconv.AppendBool(b, r.Shed)
	b = append(b, `,"final":`...)
	b = strconv.AppendBool(b, r.Final)
	b = append(b, `,"end_reason":`...)
	b = appendString(b, r.End)
	b = append(b, `,"source":`...)
	b = appendString(b, r.Source)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (r *Result) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

func appendString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil { // unreachable for strings
		return append(b, `""`...)
	}
	return append(b, q...)
}

func appendProb(b []byte, p float64) []byte {
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, p, 'g', 6, 64)
}
