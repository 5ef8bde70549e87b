package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SyntaxError reports a problem in a filter expression and where it is.
type SyntaxError struct {
	Expr   string // the whole expression
	Offset int    // byte offset of the offending token in Expr
	Msg    string // what is wrong
}

// Error implements error: `filter "tcp port x": at offset 9: ...`.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter %q: at offset %d: %s", e.Expr, e.Offset, e.Msg)
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokWord
	tokLParen
	tokRParen
	tokNot // not, !
	tokAnd // and, &&
	tokOr  // or, ||
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == ':' || c == '/' || c == '-' || c == '_'
}

// lex splits expr into tokens.
func lex(expr string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tokLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tokRParen, ")", i})
			i++
		case c == '!':
			toks = append(toks, token{tokNot, "!", i})
			i++
		case c == '&' || c == '|':
			if i+1 >= len(expr) || expr[i+1] != c {
				return nil, &SyntaxError{expr, i, fmt.Sprintf("unexpected %q (use %q)", c, string([]byte{c, c}))}
			}
			k := tokAnd
			if c == '|' {
				k = tokOr
			}
			toks = append(toks, token{k, expr[i : i+2], i})
			i += 2
		case isWordByte(c):
			j := i
			for j < len(expr) && isWordByte(expr[j]) {
				j++
			}
			w := expr[i:j]
			switch strings.ToLower(w) {
			case "and":
				toks = append(toks, token{tokAnd, w, i})
			case "or":
				toks = append(toks, token{tokOr, w, i})
			case "not":
				toks = append(toks, token{tokNot, w, i})
			default:
				toks = append(toks, token{tokWord, w, i})
			}
			i = j
		default:
			return nil, &SyntaxError{expr, i, fmt.Sprintf("unexpected character %q", c)}
		}
	}
	toks = append(toks, token{tokEOF, "", len(expr)})
	return toks, nil
}

// primKind is the kind of a primitive.
type primKind uint8

const (
	primProto     primKind = iota // ip, ip6, tcp, udp, icmp, icmp6, proto N, ip proto N, ip6 proto N
	primHost                      // [src|dst] host ADDR
	primNet                       // [src|dst] net CIDR
	primPort                      // [tcp|udp] [src|dst] port N
	primPortrange                 // [tcp|udp] [src|dst] portrange A-B
)

// direction qualifier.
type dirQual uint8

const (
	dirAny dirQual = iota // src or dst
	dirSrc
	dirDst
)

// family restriction for proto primitives.
type family uint8

const (
	famAny family = iota
	famIPv4
	famIPv6
)

// prim is one parsed primitive.
type prim struct {
	kind     primKind
	dir      dirQual
	fam      family // for primProto: which IP versions; famAny with proto<0 means "ip or ip6"
	proto    int    // for primProto: L4 protocol, -1 for bare ip/ip6; for ports: 6, 17 or -1 (tcp, udp or sctp)
	prefix   netip.Prefix
	lo, hi   uint16 // port or port range
	hasProto bool   // a tcp/udp qualifier was given for a port primitive
}

type nodeKind uint8

const (
	nodePrim nodeKind = iota
	nodeAnd
	nodeOr
	nodeNot
)

type node struct {
	kind nodeKind
	a, b *node
	p    prim
}

type parser struct {
	expr string
	toks []token
	i    int
	last *prim // qualifiers of the last primitive, inherited by a bare value ("port 53 or 443")
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) errf(pos int, format string, args ...any) error {
	return &SyntaxError{p.expr, pos, fmt.Sprintf(format, args...)}
}

func describe(t token) string {
	if t.kind == tokEOF {
		return "end of expression"
	}
	return strconv.Quote(t.text)
}

// parse parses the whole expression. and/or have equal precedence and
// associate to the left, as in pcap-filter(7); not binds tightest.
func parse(expr string) (*node, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{expr: expr, toks: toks}
	if p.peek().kind == tokEOF {
		return nil, p.errf(0, "empty expression")
	}
	n, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errf(t.pos, "unexpected %s (missing \"and\"/\"or\"?)", describe(t))
	}
	return n, nil
}

func (p *parser) parseExpr() (*node, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		var k nodeKind
		switch t.kind {
		case tokAnd:
			k = nodeAnd
		case tokOr:
			k = nodeOr
		default:
			return left, nil
		}
		p.next()
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		left = &node{kind: k, a: left, b: right}
	}
}

func (p *parser) parseUnary() (*node, error) {
	t := p.peek()
	switch t.kind {
	case tokNot:
		p.next()
		a, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &node{kind: nodeNot, a: a}, nil
	case tokLParen:
		p.next()
		n, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, p.errf(c.pos, "expected \")\" to close \"(\" at offset %d, got %s", t.pos, describe(c))
		}
		return n, nil
	case tokWord:
		pr, err := p.parsePrimitive()
		if err != nil {
			return nil, err
		}
		p.last = &pr
		return &node{kind: nodePrim, p: pr}, nil
	default:
		return nil, p.errf(t.pos, "expected a primitive, \"not\" or \"(\", got %s", describe(t))
	}
}

func protoNumber(name string) (int, bool) {
	switch name {
	case "tcp":
		return 6, true
	case "udp":
		return 17, true
	case "icmp":
		return 1, true
	case "icmp6":
		return 58, true
	case "sctp":
		return 132, true
	}
	return 0, false
}

func (p *parser) parsePrimitive() (prim, error) {
	t := p.next()
	w := strings.ToLower(t.text)
	switch w {
	case "ip", "ip6":
		fam := famIPv4
		if w == "ip6" {
			fam = famIPv6
		}
		if n := p.peek(); n.kind == tokWord && strings.EqualFold(n.text, "proto") {
			p.next()
			num, err := p.protoValue()
			if err != nil {
				return prim{}, err
			}
			return prim{kind: primProto, fam: fam, proto: num}, nil
		}
		return prim{kind: primProto, fam: fam, proto: -1}, nil
	case "tcp", "udp":
		num, _ := protoNumber(w)
		if n := p.peek(); n.kind == tokWord {
			switch strings.ToLower(n.text) {
			case "port", "portrange", "src", "dst":
				pr, err := p.parseDirected()
				if err != nil {
					return prim{}, err
				}
				if pr.kind != primPort && pr.kind != primPortrange {
					return prim{}, p.errf(n.pos, "%q can only qualify \"port\" or \"portrange\"", t.text)
				}
				pr.proto, pr.hasProto = num, true
				return pr, nil
			}
		}
		return prim{kind: primProto, proto: num}, nil
	case "icmp": // like libpcap: icmp is IPv4 only, icmp6 IPv6 only
		return prim{kind: primProto, fam: famIPv4, proto: 1}, nil
	case "icmp6":
		return prim{kind: primProto, fam: famIPv6, proto: 58}, nil
	case "sctp":
		return prim{kind: primProto, proto: 132}, nil
	case "proto":
		num, err := p.protoValue()
		if err != nil {
			return prim{}, err
		}
		return prim{kind: primProto, proto: num}, nil
	case "src", "dst", "host", "net", "port", "portrange":
		p.i-- // let parseDirected see the qualifier
		return p.parseDirected()
	}
	// A bare value: inherit the last primitive's qualifiers ("port 53 or 443"),
	// otherwise it must be an address ("10.0.0.1" means "host 10.0.0.1").
	if p.last != nil && p.last.kind != primProto {
		pr := *p.last
		p.i--
		if err := p.parseValue(&pr); err != nil {
			return prim{}, err
		}
		return pr, nil
	}
	if _, err := netip.ParseAddr(t.text); err == nil {
		pr := prim{kind: primHost}
		p.i--
		if err := p.parseValue(&pr); err != nil {
			return prim{}, err
		}
		return pr, nil
	}
	return prim{}, p.errf(t.pos, "unknown primitive %q", t.text)
}

// parseDirected parses [src|dst] (host|net|port|portrange) VALUE, or src/dst ADDR.
func (p *parser) parseDirected() (prim, error) {
	var pr prim
	pr.proto = -1
	t := p.next()
	w := strings.ToLower(t.text)
	if w == "src" || w == "dst" {
		pr.dir = dirSrc
		if w == "dst" {
			pr.dir = dirDst
		}
		t = p.next()
		if t.kind != tokWord {
			return prim{}, p.errf(t.pos, "expected host, net, port, portrange or an address after %q, got %s", w, describe(t))
		}
		w = strings.ToLower(t.text)
	}
	switch w {
	case "host":
		pr.kind = primHost
	case "net":
		pr.kind = primNet
	case "port":
		pr.kind = primPort
	case "portrange":
		pr.kind = primPortrange
	default:
		if pr.dir == dirAny {
			return prim{}, p.errf(t.pos, "unknown primitive %q", t.text)
		}
		// "src 10.0.0.1" / "dst 10.0.0.0/8"
		pr.kind = primHost
		if strings.Contains(t.text, "/") {
			pr.kind = primNet
		}
		p.i--
	}
	if err := p.parseValue(&pr); err != nil {
		return prim{}, err
	}
	return pr, nil
}

// parseValue reads the value token of a host/net/port/portrange primitive into pr.
func (p *parser) parseValue(pr *prim) error {
	t := p.next()
	if t.kind != tokWord {
		return p.errf(t.pos, "expected a value, got %s", describe(t))
	}
	switch pr.kind {
	case primHost:
		a, err := netip.ParseAddr(t.text)
		if err != nil || a.Zone() != "" {
			return p.errf(t.pos, "expected an IPv4 or IPv6 address, got %q", t.text)
		}
		a = a.Unmap()
		pr.prefix = netip.PrefixFrom(a, a.BitLen())
	case primNet:
		var pf netip.Prefix
		var err error
		if strings.Contains(t.text, "/") {
			pf, err = netip.ParsePrefix(t.text)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(t.text)
			if err == nil {
				pf = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return p.errf(t.pos, "expected a network such as 10.0.0.0/8 or 2001:db8::/32, got %q", t.text)
		}
		if pf.Masked() != pf {
			return p.errf(t.pos, "network %q has host bits set (did you mean %s?)", t.text, pf.Masked())
		}
		pr.prefix = pf
	case primPort:
		v, err := strconv.ParseUint(t.text, 10, 16)
		if err != nil {
			return p.errf(t.pos, "expected a port number 0..65535, got %q", t.text)
		}
		pr.lo, pr.hi = uint16(v), uint16(v)
	case primPortrange:
		a, b, ok := strings.Cut(t.text, "-")
		lo, err1 := strconv.ParseUint(a, 10, 16)
		hi, err2 := strconv.ParseUint(b, 10, 16)
		if !ok || err1 != nil || err2 != nil {
			return p.errf(t.pos, "expected a port range such as 1000-2000, got %q", t.text)
		}
		if lo > hi {
			lo, hi = hi, lo // libpcap accepts reversed ranges
		}
		pr.lo, pr.hi = uint16(lo), uint16(hi)
	default:
		return p.errf(t.pos, "unexpected value %q", t.text)
	}
	return nil
}

func (p *parser) protoValue() (int, error) {
	t := p.next()
	if t.kind != tokWord {
		return 0, p.errf(t.pos, "expected a protocol number or name after \"proto\", got %s", describe(t))
	}
	if n, ok := protoNumber(strings.ToLower(t.text)); ok {
		return n, nil
	}
	v, err := strconv.ParseUint(t.text, 10, 8)
	if err != nil {
		return 0, p.errf(t.pos, "expected a protocol number 0..255 or tcp/udp/icmp/icmp6/sctp, got %q", t.text)
	}
	return int(v), nil
}
