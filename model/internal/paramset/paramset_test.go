package paramset

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
)

// testViews are the typed views a model package would keep.
type testViews struct {
	cls, w, b []float32
}

// newTestSet lays out cls (1,1,2), w (3,2), b (3): 2+6+3 = 11 values.
func newTestSet() (Set, *testViews) {
	v := &testViews{}
	s := New([]Spec{
		{"cls_token", []int{1, 1, 2}, &v.cls},
		{"head.weight", []int{3, 2}, &v.w},
		{"head.bias", []int{3}, &v.b},
	})
	return s, v
}

func TestNewLayout(t *testing.T) {
	s, v := newTestSet()
	if s.Count() != 11 || len(s.Flat()) != 11 {
		t.Fatalf("Count %d, len(Flat) %d, want 11", s.Count(), len(s.Flat()))
	}
	for i := range s.Flat() {
		s.Flat()[i] = float32(i)
	}
	// Views are consecutive slices of the buffer in spec order.
	if want := []float32{0, 1}; !slices.Equal(v.cls, want) {
		t.Fatalf("cls view %v, want %v", v.cls, want)
	}
	if want := []float32{2, 3, 4, 5, 6, 7}; !slices.Equal(v.w, want) {
		t.Fatalf("weight view %v, want %v", v.w, want)
	}
	if want := []float32{8, 9, 10}; !slices.Equal(v.b, want) {
		t.Fatalf("bias view %v, want %v", v.b, want)
	}
	// Capacity is clipped: appending to a view must not overwrite the next.
	if cap(v.cls) != 2 || cap(v.w) != 6 {
		t.Fatalf("view capacities %d, %d, want 2, 6", cap(v.cls), cap(v.w))
	}
	_ = append(v.cls, 99)
	if v.w[0] != 2 {
		t.Fatalf("append to a view overwrote the next parameter: %g", v.w[0])
	}
	names := []string{}
	for _, q := range s.List() {
		names = append(names, q.Name)
	}
	if want := []string{"cls_token", "head.weight", "head.bias"}; !slices.Equal(names, want) {
		t.Fatalf("List order %v, want %v", names, want)
	}
	if &s.List()[1].Data[0] != &v.w[0] {
		t.Fatal("List Data does not alias the typed view")
	}
	s.Zero()
	for i, x := range s.Flat() {
		if x != 0 {
			t.Fatalf("after Zero, value %d is %g", i, x)
		}
	}
}

func TestNewWithoutView(t *testing.T) {
	s := New([]Spec{{"a", []int{2}, nil}, {"b", []int{}, nil}})
	if s.Count() != 3 || len(s.Get("b").Data) != 1 {
		t.Fatalf("Count %d, scalar len %d, want 3, 1", s.Count(), len(s.Get("b").Data))
	}
}

func TestNewPanicsOnDuplicateName(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"a"`) {
			t.Fatalf("recover() = %v, want a panic naming \"a\"", r)
		}
	}()
	New([]Spec{{"a", []int{1}, nil}, {"a", []int{2}, nil}})
}

func TestZeroSet(t *testing.T) {
	var s Set
	if s.Count() != 0 || s.Get("x") != nil || len(s.Tensors()) != 0 {
		t.Fatal("zero Set is not empty")
	}
	if err := s.Load(map[string]*checkpoint.Tensor{}); err != nil {
		t.Fatalf("zero Set loading nothing: %v", err)
	}
}

func TestGet(t *testing.T) {
	s, v := newTestSet()
	q := s.Get("head.weight")
	if q == nil || q.Name != "head.weight" || !slices.Equal(q.Shape, []int{3, 2}) {
		t.Fatalf("Get(head.weight) = %+v", q)
	}
	q.Data[5] = 7
	if v.w[5] != 7 {
		t.Fatal("Get Data does not alias the buffer")
	}
	if s.Get("head") != nil || s.Get("") != nil {
		t.Fatal("Get of an unknown name is not nil")
	}
}

func TestTensorsRoundTrip(t *testing.T) {
	s, _ := newTestSet()
	for i := range s.Flat() {
		s.Flat()[i] = float32(i) + .5
	}
	ts := s.Tensors()
	if len(ts) != 3 {
		t.Fatalf("%d tensors, want 3", len(ts))
	}
	w := ts["head.weight"]
	if w.DType != "F32" || !slices.Equal(w.Shape, []int{3, 2}) || !slices.Equal(w.F32, []float32{2.5, 3.5, 4.5, 5.5, 6.5, 7.5}) {
		t.Fatalf("head.weight tensor %+v", w)
	}
	// Tensors are copies: changing them or the set leaves the other alone.
	w.F32[0] = -1
	w.Shape[0] = 9
	if s.Flat()[2] != 2.5 || s.Get("head.weight").Shape[0] != 3 {
		t.Fatal("Tensors aliases the set")
	}
	w.F32[0], w.Shape[0] = 2.5, 3

	d, dv := newTestSet()
	if err := d.Load(ts); err != nil {
		t.Fatalf("Load of Tensors: %v", err)
	}
	if !slices.Equal(d.Flat(), s.Flat()) {
		t.Fatalf("round trip %v, want %v", d.Flat(), s.Flat())
	}
	if !slices.Equal(dv.b, []float32{8.5, 9.5, 10.5}) {
		t.Fatalf("loaded bias view %v", dv.b)
	}
}

func TestLoadAcceptsLeadingSingletons(t *testing.T) {
	s, v := newTestSet()
	ts := s.Tensors()
	ts["cls_token"] = &checkpoint.Tensor{DType: "F32", Shape: []int{2}, F32: []float32{3, 4}}
	ts["head.bias"] = &checkpoint.Tensor{DType: "F32", Shape: []int{1, 3}, F32: []float32{5, 6, 7}}
	if err := s.Load(ts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.cls, []float32{3, 4}) || !slices.Equal(v.b, []float32{5, 6, 7}) {
		t.Fatalf("cls %v, bias %v", v.cls, v.b)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	s, v := newTestSet()
	ts := s.Tensors()
	delete(ts, "head.bias")
	ts["head.weight"] = &checkpoint.Tensor{DType: "F32", Shape: []int{2, 3}, F32: make([]float32, 6)} // transposed
	ts["cls_token"] = &checkpoint.Tensor{DType: "F32", Shape: []int{1, 1, 2}, F32: []float32{1, 2}}
	ts["zz.extra"] = &checkpoint.Tensor{DType: "F32", Shape: []int{1}, F32: []float32{0}}
	ts["aa.extra"] = &checkpoint.Tensor{DType: "F32", Shape: []int{1}, F32: []float32{0}}
	err := s.Load(ts)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Load error %v (%T), want *MismatchError", err, err)
	}
	if !slices.Equal(me.Missing, []string{"head.bias"}) {
		t.Fatalf("Missing %v", me.Missing)
	}
	if !slices.Equal(me.Bad, []string{"head.weight: F32[2 3], want F32[3 2]"}) {
		t.Fatalf("Bad %v", me.Bad)
	}
	if !slices.Equal(me.Extra, []string{"aa.extra", "zz.extra"}) {
		t.Fatalf("Extra %v", me.Extra)
	}
	want := "1 missing tensors (head.bias); 1 tensors with wrong shape or dtype (head.weight: F32[2 3], want F32[3 2]); 2 unexpected tensors (aa.extra, zz.extra)"
	if err.Error() != want {
		t.Fatalf("message\n%s\nwant\n%s", err, want)
	}
	// The tensor that matched was copied.
	if !slices.Equal(v.cls, []float32{1, 2}) {
		t.Fatalf("matching tensor not copied: %v", v.cls)
	}
}

func TestLoadRejectsBadTensors(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    *checkpoint.Tensor
	}{
		{"dtype", &checkpoint.Tensor{DType: "I64", Shape: []int{3}, I64: []int64{1, 2, 3}}},
		{"data shorter than shape", &checkpoint.Tensor{DType: "F32", Shape: []int{3}, F32: []float32{1, 2}}},
		{"wrong size", &checkpoint.Tensor{DType: "F32", Shape: []int{4}, F32: []float32{1, 2, 3, 4}}},
		{"trailing singleton", &checkpoint.Tensor{DType: "F32", Shape: []int{3, 1}, F32: []float32{1, 2, 3}}},
		{"nil", nil},
	} {
		s, v := newTestSet()
		ts := s.Tensors()
		ts["head.bias"] = tc.t
		var me *MismatchError
		if err := s.Load(ts); !errors.As(err, &me) || len(me.Bad) != 1 || !strings.HasPrefix(me.Bad[0], "head.bias: ") || len(me.Missing)+len(me.Extra) != 0 {
			t.Fatalf("%s: Load error %v", tc.name, err)
		}
		if !slices.Equal(v.b, []float32{0, 0, 0}) {
			t.Fatalf("%s: rejected tensor was copied: %v", tc.name, v.b)
		}
	}
}

func TestAddFrom(t *testing.T) {
	s, _ := newTestSet()
	g, _ := newTestSet()
	for i := range s.Flat() {
		s.Flat()[i] = float32(i)
		g.Flat()[i] = 10 * float32(i)
	}
	s.AddFrom(&g)
	for i, x := range s.Flat() {
		if want := 11 * float32(i); x != want {
			t.Fatalf("value %d: %g, want %g", i, x, want)
		}
	}
	if g.Flat()[3] != 30 {
		t.Fatal("AddFrom changed its source")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("AddFrom of a different layout did not panic")
		}
	}()
	small := New([]Spec{{"a", []int{2}, nil}})
	s.AddFrom(&small)
}

func TestShortList(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b", "c", "d", "e", "f"}, "a, b, c, d, e, f"},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, "a, b, c, d, e, f, …"},
	} {
		if got := ShortList(tc.in); got != tc.want {
			t.Errorf("ShortList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSameShape(t *testing.T) {
	for _, tc := range []struct {
		a, b []int
		want bool
	}{
		{[]int{1, 1, 4}, []int{4}, true},
		{[]int{4}, []int{1, 4}, true},
		{[]int{3, 2}, []int{3, 2}, true},
		{[]int{3, 2}, []int{2, 3}, false},
		{[]int{4, 1}, []int{4}, false},
		{[]int{1, 1}, []int{}, true},
		{[]int{2, 1, 3}, []int{2, 3}, false},
	} {
		if got := SameShape(tc.a, tc.b); got != tc.want {
			t.Errorf("SameShape(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestNumel(t *testing.T) {
	if Numel(nil) != 1 || Numel([]int{2, 3, 4}) != 24 || Numel([]int{5, 0}) != 0 {
		t.Fatal("Numel")
	}
}

// LoadSubset fills only the accepted parameters, ignores other tensors,
// and reports accepted parameters that are missing, nil or mis-shaped.
func TestLoadSubset(t *testing.T) {
	s, v := newTestSet()
	head := func(name string) bool { return strings.HasPrefix(name, "head.") }
	ts := map[string]*checkpoint.Tensor{
		"head.weight": {DType: "F32", Shape: []int{3, 2}, F32: []float32{1, 2, 3, 4, 5, 6}},
		"head.bias":   {DType: "F32", Shape: []int{3}, F32: []float32{7, 8, 9}},
		"cls_token":   {DType: "F32", Shape: []int{1, 1, 2}, F32: []float32{-1, -1}}, // not accepted: left alone
		"other":       {DType: "F32", Shape: []int{1}, F32: []float32{0}},            // no parameter: ignored
	}
	if err := s.LoadSubset(ts, head); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.w, []float32{1, 2, 3, 4, 5, 6}) || !slices.Equal(v.b, []float32{7, 8, 9}) || !slices.Equal(v.cls, []float32{0, 0}) {
		t.Fatalf("after LoadSubset: w %v b %v cls %v", v.w, v.b, v.cls)
	}
	ts["head.bias"] = nil
	delete(ts, "head.weight")
	err := s.LoadSubset(ts, head)
	var me *MismatchError
	if !errors.As(err, &me) || !slices.Equal(me.Missing, []string{"head.weight"}) || len(me.Bad) != 1 || len(me.Extra) != 0 {
		t.Fatalf("missing weight, nil bias: %v", err)
	}
}
