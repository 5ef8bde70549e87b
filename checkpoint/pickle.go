package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A restricted unpickler for the data.pkl of torch.save archives. It never
// calls anything: globals are recorded by name, torch's tensor rebuild
// functions and collections.OrderedDict are interpreted, every other
// callable yields an opaque pyObject. Storages (persistent ids) are
// recorded by key and read later from the archive.

// Python values produced by the unpickler.
type (
	pyGlobal struct{ module, name string }
	pyTuple  []any
	pyList   struct{ items []any }
	pyDict   struct {
		keys, vals []any
		index      map[string]int
	}
	// pyObject is the result of calling a callable we do not interpret.
	pyObject struct {
		callable any
		args     any
		state    any
	}
	pyBigInt struct{ raw []byte } // integer wider than 64 bits (little-endian two's complement)
	// storageRef is a torch storage named by a persistent id.
	storageRef struct {
		typ      string // torch storage class, e.g. "FloatStorage"
		key      string // record name under data/
		location string
		numel    int64
	}
	// tensorRef is a torch tensor view of a storage (_rebuild_tensor_v2).
	tensorRef struct {
		storage *storageRef
		offset  int64
		size    []int64
		stride  []int64
	}
)

func newPyDict() *pyDict { return &pyDict{index: map[string]int{}} }

// set inserts or replaces k (keeps the first insertion position, as Python).
func (d *pyDict) set(k, v any) error {
	h, err := hashKey(k)
	if err != nil {
		return err
	}
	if i, ok := d.index[h]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[h] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

// get returns the value under the string key k.
func (d *pyDict) get(k string) (any, bool) {
	i, ok := d.index["s"+k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// hashKey gives hashable Python values a unique string.
func hashKey(v any) (string, error) {
	budget := 1 << 16
	return hashKeyBudget(v, &budget, 0)
}

func hashKeyBudget(v any, budget *int, depth int) (string, error) {
	if depth > 64 || *budget <= 0 {
		return "", fmt.Errorf("dict key too large or too deeply nested")
	}
	*budget--
	switch x := v.(type) {
	case string:
		return "s" + x, nil
	case []byte:
		return "y" + string(x), nil
	case int64:
		return "i" + strconv.FormatInt(x, 10), nil
	case bool:
		// True == 1 and False == 0 in Python dicts.
		if x {
			return "i1", nil
		}
		return "i0", nil
	case nil:
		return "n", nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			return "i" + strconv.FormatInt(int64(x), 10), nil
		}
		return "f" + strconv.FormatFloat(x, 'g', -1, 64), nil
	case pyGlobal:
		return "g" + x.module + "." + x.name, nil
	case *pyBigInt:
		return "I" + string(x.raw), nil
	case pyTuple:
		parts := make([]string, len(x))
		for i, e := range x {
			h, err := hashKeyBudget(e, budget, depth+1)
			if err != nil {
				return "", err
			}
			parts[i] = strconv.Itoa(len(h)) + ":" + h
		}
		k := "t" + strings.Join(parts, ",")
		*budget -= len(k)
		if *budget <= 0 {
			return "", fmt.Errorf("dict key too large")
		}
		return k, nil
	}
	return "", fmt.Errorf("unhashable dict key of type %T", v)
}

// Limits that keep hostile pickles from exhausting memory.
const (
	maxPickleStack = 1 << 22
	maxPickleMemo  = 1 << 22
	maxPickleLong  = 1 << 16
)

type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[int]any
}

// unpickle runs the pickle program in data and returns the value it builds.
func unpickle(data []byte) (any, error) {
	u := &unpickler{data: data, memo: map[int]any{}}
	v, err := u.run()
	if err != nil {
		return nil, fmt.Errorf("pickle offset %d: %w", u.pos, err)
	}
	return v, nil
}

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, fmt.Errorf("truncated: need %d bytes, %d left", n, len(u.data)-u.pos)
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) readLine() (string, error) {
	for i := u.pos; i < len(u.data); i++ {
		if u.data[i] == '\n' {
			s := string(u.data[u.pos:i])
			u.pos = i + 1
			return s, nil
		}
	}
	return "", fmt.Errorf("truncated: unterminated line")
}

func (u *unpickler) readUint(n int) (uint64, error) {
	b, err := u.read(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxPickleStack {
		return fmt.Errorf("stack exceeds %d entries", maxPickleStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (any, error) {
	base := 0
	if len(u.marks) > 0 {
		base = u.marks[len(u.marks)-1]
	}
	if len(u.stack) <= base {
		return nil, fmt.Errorf("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	base := 0
	if len(u.marks) > 0 {
		base = u.marks[len(u.marks)-1]
	}
	if len(u.stack) <= base {
		return nil, fmt.Errorf("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the items pushed since the last MARK and removes them.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, fmt.Errorf("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any{}, u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoPut(i int) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[i]; !ok && len(u.memo) >= maxPickleMemo {
		return fmt.Errorf("memo exceeds %d entries", maxPickleMemo)
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) memoGet(i int) error {
	v, ok := u.memo[i]
	if !ok {
		return fmt.Errorf("memo key %d not defined", i)
	}
	return u.push(v)
}

// decodeLong decodes a little-endian two's complement integer.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) > 8 {
		return &pyBigInt{raw: append([]byte{}, b...)}
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	if len(b) < 8 && b[len(b)-1]&0x80 != 0 {
		v |= ^uint64(0) << (8 * len(b))
	}
	return int64(v)
}

func (u *unpickler) run() (any, error) {
	for {
		if u.pos >= len(u.data) {
			return nil, fmt.Errorf("truncated: no STOP opcode")
		}
		op := u.data[u.pos]
		u.pos++
		var err error
		switch op {
		case 0x80: // PROTO
			var p uint64
			if p, err = u.readUint(1); err == nil && p > 5 {
				err = fmt.Errorf("unsupported pickle protocol %d", p)
			}
		case 0x95: // FRAME
			_, err = u.readUint(8)
		case '.': // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case '(': // MARK
			u.marks = append(u.marks, len(u.stack))
			if len(u.marks) > maxPickleStack {
				err = fmt.Errorf("too many MARKs")
			}
		case '0': // POP
			_, err = u.pop()
		case '1': // POP_MARK
			_, err = u.popMark()
		case '2': // DUP
			var v any
			if v, err = u.top(); err == nil {
				err = u.push(v)
			}
		case 'N':
			err = u.push(nil)
		case 0x88:
			err = u.push(true)
		case 0x89:
			err = u.push(false)
		case 'K': // BININT1
			var v uint64
			if v, err = u.readUint(1); err == nil {
				err = u.push(int64(v))
			}
		case 'M': // BININT2
			var v uint64
			if v, err = u.readUint(2); err == nil {
				err = u.push(int64(v))
			}
		case 'J': // BININT
			var v uint64
			if v, err = u.readUint(4); err == nil {
				err = u.push(int64(int32(uint32(v))))
			}
		case 0x8a, 0x8b: // LONG1, LONG4
			var n uint64
			if op == 0x8a {
				n, err = u.readUint(1)
			} else {
				n, err = u.readUint(4)
			}
			if err == nil && n > maxPickleLong {
				err = fmt.Errorf("integer of %d bytes", n)
			}
			var b []byte
			if err == nil {
				b, err = u.read(int(n))
			}
			if err == nil {
				err = u.push(decodeLong(b))
			}
		case 'I': // INT (text)
			var s string
			if s, err = u.readLine(); err == nil {
				switch s {
				case "00":
					err = u.push(false)
				case "01":
					err = u.push(true)
				default:
					var v int64
					if v, err = strconv.ParseInt(s, 10, 64); err == nil {
						err = u.push(v)
					}
				}
			}
		case 'G': // BINFLOAT
			var b []byte
			if b, err = u.read(8); err == nil {
				err = u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
			}
		case 'X', 0x8c, 0x8d, 'T', 'U', 'B', 'C', 0x8e: // strings and bytes
			var n uint64
			switch op {
			case 0x8c, 'U', 'C':
				n, err = u.readUint(1)
			case 0x8d, 0x8e:
				n, err = u.readUint(8)
			default:
				n, err = u.readUint(4)
			}
			var b []byte
			if err == nil {
				if n > uint64(len(u.data)) {
					err = fmt.Errorf("truncated: string of %d bytes", n)
				} else {
					b, err = u.read(int(n))
				}
			}
			if err == nil {
				switch op {
				case 'B', 'C', 0x8e:
					err = u.push(append([]byte{}, b...))
				default:
					err = u.push(string(b))
				}
			}
		case ')':
			err = u.push(pyTuple{})
		case ']':
			err = u.push(&pyList{})
		case '}':
			err = u.push(newPyDict())
		case 0x8f: // EMPTY_SET: kept as a list
			err = u.push(&pyList{})
		case 't', 0x91: // TUPLE, FROZENSET
			var items []any
			if items, err = u.popMark(); err == nil {
				if op == 't' {
					err = u.push(pyTuple(items))
				} else {
					err = u.push(&pyList{items: items})
				}
			}
		case 0x85, 0x86, 0x87: // TUPLE1..3
			n := int(op - 0x84)
			t := make(pyTuple, n)
			for i := n - 1; i >= 0 && err == nil; i-- {
				t[i], err = u.pop()
			}
			if err == nil {
				err = u.push(t)
			}
		case 'l': // LIST
			var items []any
			if items, err = u.popMark(); err == nil {
				err = u.push(&pyList{items: items})
			}
		case 'd': // DICT
			var items []any
			if items, err = u.popMark(); err == nil {
				d := newPyDict()
				err = setItems(d, items)
				if err == nil {
					err = u.push(d)
				}
			}
		case 'a': // APPEND
			var v, l any
			if v, err = u.pop(); err == nil {
				if l, err = u.top(); err == nil {
					err = appendItems(l, []any{v})
				}
			}
		case 'e', 0x90: // APPENDS, ADDITEMS
			var items []any
			var l any
			if items, err = u.popMark(); err == nil {
				if l, err = u.top(); err == nil {
					err = appendItems(l, items)
				}
			}
		case 's': // SETITEM
			var k, v, d any
			if v, err = u.pop(); err == nil {
				if k, err = u.pop(); err == nil {
					if d, err = u.top(); err == nil {
						err = setItems(d, []any{k, v})
					}
				}
			}
		case 'u': // SETITEMS
			var items []any
			var d any
			if items, err = u.popMark(); err == nil {
				if d, err = u.top(); err == nil {
					err = setItems(d, items)
				}
			}
		case 'c': // GLOBAL
			var mod, name string
			if mod, err = u.readLine(); err == nil {
				if name, err = u.readLine(); err == nil {
					err = u.push(pyGlobal{mod, name})
				}
			}
		case 0x93: // STACK_GLOBAL
			var mod, name any
			if name, err = u.pop(); err == nil {
				if mod, err = u.pop(); err == nil {
					ms, ok1 := mod.(string)
					ns, ok2 := name.(string)
					if !ok1 || !ok2 {
						err = fmt.Errorf("STACK_GLOBAL needs two strings")
					} else {
						err = u.push(pyGlobal{ms, ns})
					}
				}
			}
		case 'R', 0x81: // REDUCE, NEWOBJ
			var fn, args any
			if args, err = u.pop(); err == nil {
				if fn, err = u.pop(); err == nil {
					var v any
					if v, err = call(fn, args); err == nil {
						err = u.push(v)
					}
				}
			}
		case 0x92: // NEWOBJ_EX
			var fn, args any
			if _, err = u.pop(); err == nil { // kwargs
				if args, err = u.pop(); err == nil {
					if fn, err = u.pop(); err == nil {
						err = u.push(&pyObject{callable: fn, args: args})
					}
				}
			}
		case 'b': // BUILD
			var state, obj any
			if state, err = u.pop(); err == nil {
				if obj, err = u.top(); err == nil {
					if o, ok := obj.(*pyObject); ok {
						o.state = state
					}
				}
			}
		case 'Q': // BINPERSID
			var pid, v any
			if pid, err = u.pop(); err == nil {
				if v, err = persistentLoad(pid); err == nil {
					err = u.push(v)
				}
			}
		case 'q':
			var i uint64
			if i, err = u.readUint(1); err == nil {
				err = u.memoPut(int(i))
			}
		case 'r':
			var i uint64
			if i, err = u.readUint(4); err == nil {
				err = u.memoPut(int(i))
			}
		case 0x94: // MEMOIZE
			err = u.memoPut(len(u.memo))
		case 'h':
			var i uint64
			if i, err = u.readUint(1); err == nil {
				err = u.memoGet(int(i))
			}
		case 'j':
			var i uint64
			if i, err = u.readUint(4); err == nil {
				err = u.memoGet(int(i))
			}
		default:
			err = fmt.Errorf("unsupported pickle opcode 0x%02x", op)
		}
		if err != nil {
			u.pos-- // report the offset of the opcode being run, approximately
			return nil, err
		}
	}
}

func appendItems(l any, items []any) error {
	switch x := l.(type) {
	case *pyList:
		if len(x.items)+len(items) > maxPickleStack {
			return fmt.Errorf("list exceeds %d items", maxPickleStack)
		}
		x.items = append(x.items, items...)
		return nil
	case *pyObject:
		return nil // e.g. a custom list subclass: contents ignored
	}
	return fmt.Errorf("APPEND to a %T", l)
}

func setItems(d any, items []any) error {
	if len(items)%2 != 0 {
		return fmt.Errorf("SETITEMS with an odd number (%d) of items", len(items))
	}
	switch x := d.(type) {
	case *pyDict:
		for i := 0; i < len(items); i += 2 {
			if err := x.set(items[i], items[i+1]); err != nil {
				return err
			}
		}
		return nil
	case *pyObject:
		return nil // e.g. a custom dict subclass: contents ignored
	}
	return fmt.Errorf("SETITEMS on a %T", d)
}

// persistentLoad interprets torch's persistent id
// ('storage', storage_type, key, location, numel).
func persistentLoad(pid any) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 {
		return nil, fmt.Errorf("persistent id %T is not a 5-tuple", pid)
	}
	if s, _ := t[0].(string); s != "storage" {
		return nil, fmt.Errorf("persistent id kind %s, want \"storage\"", brief(t[0]))
	}
	g, ok := t[1].(pyGlobal)
	if !ok || g.module != "torch" {
		return nil, fmt.Errorf("persistent id storage type %s, want torch.*Storage", brief(t[1]))
	}
	key, ok1 := t[2].(string)
	loc, _ := t[3].(string)
	numel, ok2 := t[4].(int64)
	if !ok1 || !ok2 || numel < 0 {
		return nil, fmt.Errorf("malformed persistent id %s", brief(t))
	}
	return &storageRef{typ: g.name, key: key, location: loc, numel: numel}, nil
}

func intTuple(v any) ([]int64, bool) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(t))
	for i, e := range t {
		n, ok := e.(int64)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// call interprets REDUCE / NEWOBJ of fn(*args) without running code.
func call(fn, args any) (any, error) {
	g, ok := fn.(pyGlobal)
	at, _ := args.(pyTuple)
	if ok {
		switch g.module + "." + g.name {
		case "collections.OrderedDict", "builtins.dict", "__builtin__.dict":
			return newPyDict(), nil
		case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
			if len(at) < 4 {
				return nil, fmt.Errorf("%s with %d arguments", g.name, len(at))
			}
			st, ok := at[0].(*storageRef)
			off, ok2 := at[1].(int64)
			size, ok3 := intTuple(at[2])
			stride, ok4 := intTuple(at[3])
			if !ok || !ok2 || !ok3 || !ok4 || len(size) != len(stride) {
				return nil, fmt.Errorf("%s: malformed arguments (storage %T, offset %T, size %s, stride %s)", g.name, at[0], at[1], brief(at[2]), brief(at[3]))
			}
			return &tensorRef{storage: st, offset: off, size: size, stride: stride}, nil
		case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
			if len(at) < 1 {
				return nil, fmt.Errorf("%s without arguments", g.name)
			}
			if tr, ok := at[0].(*tensorRef); ok {
				return tr, nil
			}
			return nil, fmt.Errorf("%s of a %T", g.name, at[0])
		}
	}
	return &pyObject{callable: fn, args: args}, nil
}

// brief is a short, bounded description of a Python value for error
// messages (values may be deeply nested or shared).
func brief(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool, float64:
		return fmt.Sprint(x)
	case pyGlobal:
		return x.module + "." + x.name
	case pyTuple:
		if len(x) > 8 {
			return fmt.Sprintf("tuple of %d items", len(x))
		}
		parts := make([]string, len(x))
		for i, e := range x {
			if _, nested := e.(pyTuple); nested {
				parts[i] = "(...)"
			} else {
				parts[i] = brief(e)
			}
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Sprintf("%T", v)
}
