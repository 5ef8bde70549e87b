// Package paramset holds the named parameter tensors of one model in a
// single contiguous float32 buffer, in a fixed order (the official
// state_dict order of the model packages that build it).
//
// A model package describes its parameters as a list of Specs (name,
// shape, and where to store the typed view); New lays them out back to
// back in one buffer and points every view into it. The Set then serves
// what every model needs from its parameters: the ordered list, the flat
// buffer for optimisers, look-up by name, copies as checkpoint tensors,
// loading from checkpoint tensors with a full report of what does not
// match, and gradient accumulation. Which tensors exist and how they are
// initialised stays with the model package.
package paramset

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/netmamba/netmamba/checkpoint"
)

// Param is one named parameter tensor; Data aliases the owning Set's
// contiguous buffer.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
}

// Spec describes one parameter for New: its official name, its official
// shape, and the typed view New sets to the parameter's slice of the
// buffer (nil when the caller keeps no view).
type Spec struct {
	Name  string
	Shape []int
	Dst   *[]float32
}

// Set is an ordered set of named parameters sharing one contiguous
// buffer. The zero Set is empty. A gradient set is a Set built from the
// same Specs (same names and layout).
type Set struct {
	list  []Param
	buf   []float32
	index map[string]int // name → position in list
}

// New allocates a zeroed buffer for specs, in their order, and points each
// spec's Dst (and the matching Param's Data) at its part of it. Each view
// has its capacity clipped to its length, so appending to one cannot
// overwrite the next. Spec names must be distinct and dimensions
// non-negative: specs are written by the model packages, so a violation is
// a programming error and panics.
func New(specs []Spec) Set {
	total := 0
	for _, s := range specs {
		total += Numel(s.Shape)
	}
	set := Set{
		list:  make([]Param, 0, len(specs)),
		buf:   make([]float32, total),
		index: make(map[string]int, len(specs)),
	}
	off := 0
	for i, s := range specs {
		if _, dup := set.index[s.Name]; dup {
			panic(fmt.Sprintf("paramset: parameter %q specified twice", s.Name))
		}
		set.index[s.Name] = i
		n := Numel(s.Shape)
		data := set.buf[off : off+n : off+n]
		if s.Dst != nil {
			*s.Dst = data
		}
		set.list = append(set.list, Param{Name: s.Name, Shape: s.Shape, Data: data})
		off += n
	}
	return set
}

// Numel is the number of elements of a tensor of the given shape (1 for a
// scalar, shape []). It panics on a negative dimension.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("paramset: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// List returns the parameters in layout order.
func (s *Set) List() []Param { return s.list }

// Flat returns all parameters as one contiguous slice (List order), for
// optimisers.
func (s *Set) Flat() []float32 { return s.buf }

// Count is the number of scalar parameters.
func (s *Set) Count() int { return len(s.buf) }

// Zero sets every parameter to 0.
func (s *Set) Zero() { clear(s.buf) }

// Get returns the parameter with the given name, or nil.
func (s *Set) Get(name string) *Param {
	i, ok := s.index[name]
	if !ok {
		return nil
	}
	return &s.list[i]
}

// Tensors returns copies of the parameters as F32 checkpoint tensors keyed
// by name, with their shapes.
func (s *Set) Tensors() map[string]*checkpoint.Tensor {
	m := make(map[string]*checkpoint.Tensor, len(s.list))
	for _, q := range s.list {
		m[q.Name] = &checkpoint.Tensor{DType: "F32", Shape: append([]int(nil), q.Shape...), F32: append([]float32(nil), q.Data...)}
	}
	return m
}

// Load copies tensors into s. Every parameter must be present as F32 with
// its shape (SameShape: leading singleton dimensions may differ), and no
// tensor may be left over. On a mismatch it returns a *MismatchError that
// lists every problem; the parameters that did match have been copied.
func (s *Set) Load(ts map[string]*checkpoint.Tensor) error {
	e := s.load(ts, nil)
	for name := range ts {
		if _, ok := s.index[name]; !ok {
			e.Extra = append(e.Extra, name)
		}
	}
	sort.Strings(e.Extra)
	if len(e.Missing)+len(e.Bad)+len(e.Extra) > 0 {
		return &e
	}
	return nil
}

// LoadSubset copies into the parameters whose name keep accepts the
// tensors of ts with those names; the others keep their values and the
// other tensors of ts are ignored. A *MismatchError lists the accepted
// parameters that are missing or mis-shaped (Extra is empty).
func (s *Set) LoadSubset(ts map[string]*checkpoint.Tensor, keep func(name string) bool) error {
	if e := s.load(ts, keep); len(e.Missing)+len(e.Bad) > 0 {
		return &e
	}
	return nil
}

// load copies the tensors of ts into the parameters keep accepts (nil:
// all) and returns what was missing or mis-shaped.
func (s *Set) load(ts map[string]*checkpoint.Tensor, keep func(string) bool) MismatchError {
	var e MismatchError
	for _, q := range s.list {
		if keep != nil && !keep(q.Name) {
			continue
		}
		t, ok := ts[q.Name]
		if !ok {
			e.Missing = append(e.Missing, q.Name)
			continue
		}
		if t == nil {
			e.Bad = append(e.Bad, fmt.Sprintf("%s: no tensor, want F32%v", q.Name, q.Shape))
			continue
		}
		if t.DType != "F32" || t.Numel() != len(q.Data) || len(t.F32) != len(q.Data) || !SameShape(t.Shape, q.Shape) {
			e.Bad = append(e.Bad, fmt.Sprintf("%s: %s%v, want F32%v", q.Name, t.DType, t.Shape, q.Shape))
			continue
		}
		copy(q.Data, t.F32)
	}
	return e
}

// AddFrom sets s += q element by element. q must have the same layout
// (built from the same Specs); a different size is a programming error
// and panics.
func (s *Set) AddFrom(q *Set) {
	if len(q.buf) != len(s.buf) {
		panic(fmt.Sprintf("paramset: AddFrom of %d values into %d", len(q.buf), len(s.buf)))
	}
	for i, v := range q.buf {
		s.buf[i] += v
	}
}

// MismatchError reports every way a tensor map failed to match a Set in
// Load. Its message has no package prefix: callers add their own context.
type MismatchError struct {
	Missing []string // parameters with no tensor, in layout order
	Bad     []string // "name: DTYPE[shape], want F32[shape]", in layout order
	Extra   []string // tensors that name no parameter, sorted
}

// Error lists the counts and (the first few of) the names of each kind of
// problem, e.g. "1 missing tensors (norm.bias); 2 unexpected tensors (a, b)".
func (e *MismatchError) Error() string {
	var msgs []string
	if len(e.Missing) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d missing tensors (%s)", len(e.Missing), ShortList(e.Missing)))
	}
	if len(e.Bad) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d tensors with wrong shape or dtype (%s)", len(e.Bad), ShortList(e.Bad)))
	}
	if len(e.Extra) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d unexpected tensors (%s)", len(e.Extra), ShortList(e.Extra)))
	}
	return strings.Join(msgs, "; ")
}

// shortListMax is how many items ShortList shows.
const shortListMax = 6

// ShortList joins items with ", ", showing at most the first six and
// marking the cut with ", …", for error messages about many tensors.
func ShortList(items []string) string {
	if len(items) > shortListMax {
		return strings.Join(items[:shortListMax], ", ") + ", …"
	}
	return strings.Join(items, ", ")
}

// SameShape reports whether a and b are the same shape once leading
// singleton dimensions are dropped, so that the official shape and the
// same sizes with leading 1s dropped or added both match (cls_token
// [1,1,D] vs [D]).
func SameShape(a, b []int) bool {
	trim := func(s []int) []int {
		for len(s) > 0 && s[0] == 1 {
			s = s[1:]
		}
		return s
	}
	return slices.Equal(trim(a), trim(b))
}
