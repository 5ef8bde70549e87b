package flow

import (
	"encoding/binary"
	"slices"
	"time"
)

// Config configures a flow Table.
type Config struct {
	// Bidirectional keys a flow by its unordered endpoint pair (like nDPI and
	// nfstream); otherwise each direction is its own flow.
	Bidirectional bool
	// IdleTimeout ends a flow with no packet for this long; ActiveTimeout
	// ends a flow this long after its first packet. 0 disables them (a file
	// is then read as a whole, like ndpiReader). Live capture should use
	// DefaultIdleTimeout and DefaultActiveTimeout. Time is packet time (the
	// largest timestamp seen), so replays behave like live traffic.
	IdleTimeout, ActiveTimeout time.Duration
	// MaxFlows caps live flows (0: no cap). At the cap, the least recently
	// seen flow is ended with EndEvicted to make room.
	MaxFlows int
	// ReadyPackets makes the table call Handlers.Ready once, when a flow
	// has this many packets (0: never). A streaming classifier sets it to
	// the number of packets its model reads.
	ReadyPackets int
	// MaxFragments bounds the IP-fragment table that lets non-first
	// fragments join their datagram's flow (0: 4096).
	MaxFragments int
}

// Default timeouts for live capture (nfstream's defaults).
const (
	DefaultIdleTimeout   = 120 * time.Second
	DefaultActiveTimeout = 1800 * time.Second
)

// EndReason says why a flow ended.
type EndReason uint8

// End reasons.
const (
	EndFlush   EndReason = iota // Flush: end of input
	EndIdle                     // idle timeout
	EndActive                   // active timeout
	EndEvicted                  // MaxFlows reached; least recently seen flow evicted
)

// String names the reason.
func (r EndReason) String() string {
	switch r {
	case EndFlush:
		return "end of input"
	case EndIdle:
		return "idle timeout"
	case EndActive:
		return "active timeout"
	case EndEvicted:
		return "evicted"
	}
	return "unknown"
}

// Flow is a live flow of a Table. S is caller state kept with the flow
// (a representation being built, a classifier's buffer, ...); it is zeroed
// when the flow starts. Pointers to a Flow are valid only during the
// callback that receives them.
type Flow[S any] struct {
	Key   Key    // oriented initiator -> responder
	Stats Stats  // counters so far
	Seq   uint64 // creation order within the table (0, 1, ...)
	State S

	prev, next int32 // LRU list (only with timeouts or a cap)
	ready      bool
	live       bool
}

// PacketMeta describes a packet as it is added to a flow.
type PacketMeta struct {
	TimestampNs   int64
	FrameLen      int    // captured frame length, link header included
	Index         uint64 // 0-based position of the packet in its flow
	FromInitiator bool   // sent by the flow's initiator
}

// Handlers are the Table's callbacks; nil ones are skipped.
type Handlers[S any] struct {
	// Packet is called for every packet, after the flow's Stats are updated.
	Packet func(f *Flow[S], p *Packet, m PacketMeta)
	// Ready is called once when the flow reaches Config.ReadyPackets packets.
	Ready func(f *Flow[S])
	// End is called when the flow ends; the flow is gone after it returns.
	End func(f *Flow[S], why EndReason)
}

// TableStats count what the table did.
type TableStats struct {
	Flows           uint64 // flows started
	Ended           [4]uint64
	OrphanFragments uint64 // non-first fragments whose first fragment was not seen
	JoinedFragments uint64 // non-first fragments joined to a flow
	MaxLive         int    // high-water mark of live flows
}

// Table assembles decoded packets into flows. Feed packets one at a time
// with Add (file or live); Flush ends the remaining flows. Not safe for
// concurrent use: run one table per goroutine/partition.
type Table[S any] struct {
	cfg        Config
	h          Handlers[S]
	flows      []Flow[S]
	free       []int32
	index      keyIndex
	head, tail int32 // LRU: head least recently seen
	live       int
	seq        uint64
	nowNs      int64
	nextScanNs int64
	scanEvery  int64
	frags      fragCache
	stats      TableStats
	scratch    []int32
	lru        bool // keep the LRU list (timeouts or MaxFlows set)
}

const nilSlot = -1

// NewTable makes an empty table.
func NewTable[S any](cfg Config, h Handlers[S]) *Table[S] {
	t := &Table[S]{cfg: cfg, h: h, head: nilSlot, tail: nilSlot}
	t.index.init(1024)
	nf := cfg.MaxFragments
	if nf <= 0 {
		nf = 4096
	}
	t.frags.init(nf)
	t.lru = cfg.IdleTimeout > 0 || cfg.MaxFlows > 0
	if cfg.IdleTimeout > 0 || cfg.ActiveTimeout > 0 {
		m := cfg.IdleTimeout
		if m == 0 || (cfg.ActiveTimeout > 0 && cfg.ActiveTimeout < m) {
			m = cfg.ActiveTimeout
		}
		t.scanEvery = max(int64(m/8), int64(time.Millisecond))
		t.nextScanNs = -1 << 63
	}
	return t
}

// Stats returns the table's counters.
func (t *Table[S]) Stats() TableStats { return t.stats }

// Len is the number of live flows.
func (t *Table[S]) Len() int { return t.live }

// KeyOf returns the flow key of p in initiator orientation (no lookup).
func KeyOf(p *Packet) Key {
	return Key{SrcIP: p.SrcIP, DstIP: p.DstIP, SrcPort: p.SrcPort, DstPort: p.DstPort,
		Proto: p.Proto, IPVersion: p.IPVersion, VLAN: p.VLAN}
}

// Canonical returns k with its endpoints ordered (lower address/port first),
// the lookup key of a bidirectional flow.
func (k Key) Canonical() Key {
	c := compareIP(&k.SrcIP, &k.DstIP)
	if c > 0 || (c == 0 && k.SrcPort > k.DstPort) {
		k.SrcIP, k.DstIP = k.DstIP, k.SrcIP
		k.SrcPort, k.DstPort = k.DstPort, k.SrcPort
	}
	return k
}

// Add assigns a decoded packet to its flow, creating the flow if needed,
// and runs the callbacks. It returns OK, or ReasonOrphanFragment for a
// non-first fragment whose first fragment was not seen (the packet is
// dropped and counted).
func (t *Table[S]) Add(p *Packet, tsNs int64, frameLen int) Reason {
	if p.Fragmented {
		if p.FragOffset > 0 {
			if !t.frags.lookup(p) {
				t.stats.OrphanFragments++
				return ReasonOrphanFragment
			}
			t.stats.JoinedFragments++
		} else {
			t.frags.insert(p)
		}
	}
	if t.scanEvery != 0 {
		if tsNs > t.nowNs {
			t.nowNs = tsNs
		}
		if t.nowNs >= t.nextScanNs {
			t.Expire(t.nowNs)
			t.nextScanNs = t.nowNs + t.scanEvery
		}
	}
	var lk Key
	swapped := false
	if t.cfg.Bidirectional {
		c := compareIP(&p.SrcIP, &p.DstIP)
		swapped = c > 0 || (c == 0 && p.SrcPort > p.DstPort)
	}
	if swapped {
		lk = Key{SrcIP: p.DstIP, DstIP: p.SrcIP, SrcPort: p.DstPort, DstPort: p.SrcPort,
			Proto: p.Proto, IPVersion: p.IPVersion, VLAN: p.VLAN}
	} else {
		lk = Key{SrcIP: p.SrcIP, DstIP: p.DstIP, SrcPort: p.SrcPort, DstPort: p.DstPort,
			Proto: p.Proto, IPVersion: p.IPVersion, VLAN: p.VLAN}
	}
	h := hashKey(&lk)
	slot, ok := t.index.getHashed(&lk, h)
	var f *Flow[S]
	if !ok {
		slot = t.newFlow(&lk, swapped, h, tsNs)
		f = &t.flows[slot]
	} else {
		f = &t.flows[slot]
		if t.lru {
			t.touch(slot)
		}
	}
	fromInit := true
	if t.cfg.Bidirectional && (p.SrcPort != f.Key.SrcPort || p.SrcIP != f.Key.SrcIP) {
		fromInit = false
	}
	st := &f.Stats
	idx := st.Packets
	wire := uint64(p.IPTotalLen)
	st.Packets++
	st.Bytes += wire
	if fromInit {
		st.SrcPackets++
		st.SrcBytes += wire
	} else {
		st.DstPackets++
		st.DstBytes += wire
	}
	if tsNs > st.LastSeenNs {
		st.LastSeenNs = tsNs
	}
	if t.h.Packet != nil {
		t.h.Packet(f, p, PacketMeta{TimestampNs: tsNs, FrameLen: frameLen, Index: idx, FromInitiator: fromInit})
	}
	if !f.ready && t.cfg.ReadyPackets > 0 && st.Packets >= uint64(t.cfg.ReadyPackets) {
		f.ready = true
		if t.h.Ready != nil {
			t.h.Ready(f)
		}
	}
	return OK
}

func (t *Table[S]) newFlow(lk *Key, swapped bool, h uint64, tsNs int64) int32 {
	if t.cfg.MaxFlows > 0 && t.live >= t.cfg.MaxFlows && t.lru && t.head != nilSlot {
		t.end(t.head, EndEvicted)
	}
	var slot int32
	if n := len(t.free); n > 0 {
		slot = t.free[n-1]
		t.free = t.free[:n-1]
		clear(t.flows[slot : slot+1])
	} else {
		if len(t.flows) == cap(t.flows) && t.cfg.MaxFlows > 0 {
			// Grow by doubling but never beyond the cap: the slots are
			// most of a capped table's memory, and append's growth would
			// reserve up to twice the cap.
			if n := min(max(2*cap(t.flows), 256), t.cfg.MaxFlows); n > len(t.flows) {
				grown := make([]Flow[S], len(t.flows), n) // exactly n: slices.Grow may round up past the cap
				copy(grown, t.flows)
				t.flows = grown
			}
		}
		t.flows = append(t.flows, Flow[S]{})
		slot = int32(len(t.flows) - 1)
	}
	f := &t.flows[slot]
	f.Key = *lk
	if swapped { // the initiator is the packet's sender
		f.Key.SrcIP, f.Key.DstIP = lk.DstIP, lk.SrcIP
		f.Key.SrcPort, f.Key.DstPort = lk.DstPort, lk.SrcPort
	}
	f.Seq = t.seq
	t.seq++
	f.Stats.FirstSeenNs = tsNs
	f.Stats.LastSeenNs = tsNs
	f.prev, f.next = nilSlot, nilSlot
	f.live = true
	t.index.putHashed(lk, slot, h)
	if t.lru {
		t.pushBack(slot)
	}
	t.live++
	t.stats.Flows++
	t.stats.MaxLive = max(t.stats.MaxLive, t.live)
	return slot
}

func (t *Table[S]) pushBack(s int32) {
	f := &t.flows[s]
	f.prev, f.next = t.tail, nilSlot
	if t.tail != nilSlot {
		t.flows[t.tail].next = s
	} else {
		t.head = s
	}
	t.tail = s
}

func (t *Table[S]) unlink(s int32) {
	f := &t.flows[s]
	if f.prev != nilSlot {
		t.flows[f.prev].next = f.next
	} else {
		t.head = f.next
	}
	if f.next != nilSlot {
		t.flows[f.next].prev = f.prev
	} else {
		t.tail = f.prev
	}
}

func (t *Table[S]) touch(s int32) {
	if t.tail == s {
		return
	}
	t.unlink(s)
	t.pushBack(s)
}

func (t *Table[S]) end(s int32, why EndReason) {
	f := &t.flows[s]
	if t.h.End != nil {
		t.h.End(f, why)
	}
	f = &t.flows[s]
	lk := f.Key
	if t.cfg.Bidirectional {
		lk = lk.Canonical()
	}
	t.index.del(&lk)
	if t.lru {
		t.unlink(s)
	}
	f.live = false
	t.free = append(t.free, s)
	t.live--
	t.stats.Ended[why]++
}

// Expire ends flows whose idle or active timeout has passed at nowNs. Add
// calls it as packet time advances; a live reader calls it on a clock too.
func (t *Table[S]) Expire(nowNs int64) {
	if idle := int64(t.cfg.IdleTimeout); idle > 0 {
		for t.head != nilSlot && nowNs-t.flows[t.head].Stats.LastSeenNs > idle {
			t.end(t.head, EndIdle)
		}
	}
	if act := int64(t.cfg.ActiveTimeout); act > 0 {
		for s := range t.flows {
			if t.flows[s].live && nowNs-t.flows[s].Stats.FirstSeenNs > act {
				t.end(int32(s), EndActive)
			}
		}
	}
}

// Flush ends every live flow, in order of first packet, with EndFlush.
func (t *Table[S]) Flush() {
	t.scratch = t.scratch[:0]
	for s := range t.flows {
		if t.flows[s].live {
			t.scratch = append(t.scratch, int32(s))
		}
	}
	slices.SortFunc(t.scratch, func(a, b int32) int {
		sa, sb := t.flows[a].Seq, t.flows[b].Seq
		if sa < sb {
			return -1
		}
		if sa > sb {
			return 1
		}
		return 0
	})
	for _, s := range t.scratch {
		t.end(s, EndFlush)
	}
}

// fragCache remembers the ports of recent first fragments so that the
// datagram's other fragments join the same flow. It is bounded: the oldest
// entry is forgotten when full.
type fragCache struct {
	m    map[fragKey][2]uint16
	ring []fragKey
	pos  int
}

type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
	ver      uint8
	vlan     uint16
}

func (c *fragCache) init(n int) {
	c.m = make(map[fragKey][2]uint16)
	c.ring = make([]fragKey, 0, n)
}

func fragKeyOf(p *Packet) fragKey {
	return fragKey{src: p.SrcIP, dst: p.DstIP, id: p.FragID, proto: p.Proto, ver: p.IPVersion, vlan: p.VLAN}
}

func (c *fragCache) insert(p *Packet) {
	k := fragKeyOf(p)
	if _, ok := c.m[k]; !ok {
		if len(c.ring) < cap(c.ring) {
			c.ring = append(c.ring, k)
		} else {
			delete(c.m, c.ring[c.pos])
			c.ring[c.pos] = k
			c.pos = (c.pos + 1) % len(c.ring)
		}
	}
	c.m[k] = [2]uint16{p.SrcPort, p.DstPort}
}

func (c *fragCache) lookup(p *Packet) bool {
	ports, ok := c.m[fragKeyOf(p)]
	if ok {
		p.SrcPort, p.DstPort = ports[0], ports[1]
	}
	return ok
}

// compareIP orders two 16-byte addresses like bytes.Compare, with two
// 64-bit compares.
func compareIP(a, b *[16]byte) int {
	a0, b0 := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if a0 != b0 {
		if a0 < b0 {
			return -1
		}
		return 1
	}
	a1, b1 := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	if a1 < b1 {
		return -1
	}
	if a1 > b1 {
		return 1
	}
	return 0
}
