package train

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/repr"
)

// Data is a dataset loaded into memory as model inputs.
type Data struct {
	Path    string
	N       int
	Bytes   []byte // (N, repr.ViewBytes) raw byte views
	Labels  []int  // class index per flow; -1 when unlabelled
	Classes []string
	Sources []string // source capture per flow
	Views   []repr.View
	// Pseudo marks the flows whose label came from a teacher model (read
	// from a dataset written by `netmamba dataset pseudolabel`), not from
	// the data's own labels. Nil when no flow is pseudo-labelled.
	Pseudo []bool
	// Settings are how the (first) dataset was built: direction, compat
	// mode, debias — what a model trained on it expects at inference.
	Settings dataset.Settings
}

// LoadData reads one or more datasets written by `netmamba prep`. When
// several are given their class maps must agree (or be empty).
func LoadData(paths ...string) (*Data, error) {
	d := &Data{}
	for _, p := range paths {
		ds, err := dataset.Open(p)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		cls := ds.Classes()
		if len(d.Classes) == 0 {
			d.Classes = cls
		} else if len(cls) > 0 && !sameStrings(cls, d.Classes) {
			ds.Close()
			return nil, fmt.Errorf("train: %s: class map %v differs from %v of %s (build with prep --classes)", p, cls, d.Classes, d.Path)
		}
		if d.Path == "" {
			d.Path = p
			d.Settings = ds.Meta().Settings
		} else {
			if a, b := ReprMeta(d.Settings), ReprMeta(ds.Meta().Settings); !SameRepr(a, b) {
				ds.Close()
				return nil, fmt.Errorf("train: %s was built with %s, %s with %s: one model cannot learn both representations (prep them alike)",
					p, DescribeRepr(b), d.Path, DescribeRepr(a))
			}
			d.Path += "," + p
		}
		pseudo := ds.Meta().Settings.PseudoLabel != nil
		if pseudo && d.Pseudo == nil {
			d.Pseudo = make([]bool, d.N, d.N+ds.Len())
		}
		var r dataset.Record
		for i := 0; i < ds.Len(); i++ {
			if err := ds.ReadRecord(i, &r); err != nil {
				ds.Close()
				return nil, fmt.Errorf("train: %s: flow %d: %w", p, i, err)
			}
			d.Bytes = append(d.Bytes, r.View.Bytes[:]...)
			d.Labels = append(d.Labels, r.Label)
			d.Sources = append(d.Sources, r.Source)
			d.Views = append(d.Views, r.View)
			if d.Pseudo != nil {
				d.Pseudo = append(d.Pseudo, pseudo)
			}
			d.N++
		}
		ds.Close()
	}
	return d, nil
}

// Append adds b's flows to the end of d (labels as they are; b's class map
// must be d's), keeping Pseudo aligned with the flows.
func (d *Data) Append(b *Data) {
	if b.Pseudo != nil && d.Pseudo == nil {
		d.Pseudo = make([]bool, d.N, d.N+b.N)
	}
	if d.Pseudo != nil {
		if b.Pseudo != nil {
			d.Pseudo = append(d.Pseudo, b.Pseudo[:b.N]...)
		} else {
			d.Pseudo = append(d.Pseudo, make([]bool, b.N)...)
		}
	}
	d.Bytes = append(d.Bytes, b.Bytes[:b.N*repr.ViewBytes]...)
	d.Labels = append(d.Labels, b.Labels[:b.N]...)
	d.Sources = append(d.Sources, b.Sources[:b.N]...)
	d.Views = append(d.Views, b.Views[:b.N]...)
	d.N += b.N
}

// Subset returns the flows idx of d (sharing nothing with d).
func (d *Data) Subset(idx []int) *Data {
	s := &Data{Path: d.Path, Classes: d.Classes, Settings: d.Settings}
	for _, i := range idx {
		s.Bytes = append(s.Bytes, d.Bytes[i*repr.ViewBytes:(i+1)*repr.ViewBytes]...)
		s.Labels = append(s.Labels, d.Labels[i])
		s.Sources = append(s.Sources, d.Sources[i])
		s.Views = append(s.Views, d.Views[i])
		if d.Pseudo != nil {
			s.Pseudo = append(s.Pseudo, d.Pseudo[i])
		}
		s.N++
	}
	return s
}

// ClassCounts returns the number of flows per class (labels ≥ 0).
func (d *Data) ClassCounts() []int {
	return d.countClasses(false)
}

// LabelledClassCounts returns the number of flows per class whose label
// is the data's own, leaving out pseudo-labelled flows (see Pseudo).
func (d *Data) LabelledClassCounts() []int {
	return d.countClasses(true)
}

func (d *Data) countClasses(skipPseudo bool) []int {
	c := make([]int, len(d.Classes))
	for i, y := range d.Labels {
		if skipPseudo && d.Pseudo != nil && d.Pseudo[i] {
			continue
		}
		if y >= 0 && y < len(c) {
			c[y]++
		}
	}
	return c
}

// fillBytes writes the normalised byte inputs of flows idx into x
// (len(idx), byteLength), using the first byteLength bytes of each view.
func (d *Data) fillBytes(idx []int, byteLength int, x []float32) {
	for j, i := range idx {
		model.NormalizeBytes(d.Bytes[i*repr.ViewBytes:i*repr.ViewBytes+byteLength], x[j*byteLength:(j+1)*byteLength])
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ReprMeta is the representation a model trained on a dataset built with
// settings s expects (what its checkpoint records).
func ReprMeta(s dataset.Settings) checkpoint.ReprMeta {
	dir := s.Direction
	if dir == "" {
		dir = "bi"
	}
	debias := s.Debias
	if len(debias) == 0 && s.Compat == "" {
		debias = []string{"zero_ip"} // an empty list means NetMamba's default (repr.ParseDebias)
	}
	return checkpoint.ReprMeta{Direction: dir, Compat: s.Compat, Debias: debias, SizeMode: "unsigned"}
}

// SameRepr reports whether a and b describe the same byte views: equal
// direction, compat and size mode, and debias lists that set the same
// strategies (in any order; an empty list is NetMamba's zero_ip).
func SameRepr(a, b checkpoint.ReprMeta) bool {
	if a.Direction != b.Direction || a.Compat != b.Compat || a.SizeMode != b.SizeMode {
		return false
	}
	da, errA := repr.ParseDebias(a.Debias)
	db, errB := repr.ParseDebias(b.Debias)
	if errA != nil || errB != nil {
		return slices.Equal(a.Debias, b.Debias)
	}
	return slices.Equal(da.Names(), db.Names())
}

// DescribeRepr renders r for messages, with the debias strategies under
// their canonical names.
func DescribeRepr(r checkpoint.ReprMeta) string {
	debias := strings.Join(r.Debias, ",")
	if d, err := repr.ParseDebias(r.Debias); err == nil {
		debias = strings.Join(d.Names(), ",")
	}
	s := "direction " + r.Direction + ", debias " + debias
	if r.Compat != "" {
		s += ", compat " + r.Compat
	}
	if r.SizeMode != "" {
		s += ", size mode " + r.SizeMode
	}
	return s
}
