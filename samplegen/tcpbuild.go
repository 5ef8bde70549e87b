package samplegen

import (
	"encoding/binary"
	"sort"
)

// Acknowledgement timing (ns).
const (
	quickAckNs   = 25_000     // immediate ACK (every second segment, FIN)
	delayedAckNs = 40_000_000 // Linux delayed-ACK timer
)

// tcpParams fixes one simulated TCP connection's addresses and per-side
// constants.
type tcpParams struct {
	ends   [2]node   // client, server
	isn    [2]uint32 // initial sequence numbers
	tsOff  [2]uint32 // TCP timestamp clock offsets
	win    [2]uint16 // advertised (scaled) window field after the handshake
	wscale [2]uint8
	synWin [2]uint16
	t0     int64 // client SYN time, ns
	owd    int64 // one-way delay, ns
	synAck int64 // server delay before its SYN-ACK, ns
}

// tcpSeg is one TCP segment of a simulated connection.
type tcpSeg struct {
	side    int
	t       int64 // send time
	seq     uint32
	ack     uint32
	flags   uint8
	payload []byte
	syn     bool // carries SYN options
}

// handshakeClocks returns the client's and the server's clocks when the
// three-way handshake is done.
func (tp *tcpParams) handshakeClocks() (client, server int64) {
	server = tp.t0 + tp.owd + tp.synAck
	client = server + tp.owd + 20_000
	return client, server
}

// captureTime is when the capture point (next to the client) sees s.
func (tp *tcpParams) captureTime(s *tcpSeg) int64 {
	if s.side == sideClient {
		return s.t + 2_000
	}
	return s.t + tp.owd - 2_000
}

// buildTCP turns the write log of a finished pipe into the connection's
// segments: handshake, MSS-sized data segments, delayed/quick pure ACKs, FINs,
// with sequence, acknowledgement and timestamp fields filled in. It returns
// the frames with their capture times.
func buildTCP(tp *tcpParams, p *pipe, fb *[2]frameBuilder) []frame {
	_, srvT := tp.handshakeClocks()
	var own [2][]*tcpSeg // data and FIN segments per side, in send order
	next := [2]uint32{tp.isn[0] + 1, tp.isn[1] + 1}
	for _, m := range p.log {
		for off := 0; off < len(m.data); off += p.mss {
			end := min(off+p.mss, len(m.data))
			s := &tcpSeg{side: m.side, t: m.t + int64(off/p.mss)*segGapNs, seq: next[m.side], flags: flagACK, payload: m.data[off:end]}
			if end == len(m.data) {
				s.flags |= flagPSH
			}
			next[m.side] += uint32(end - off)
			own[m.side] = append(own[m.side], s)
		}
	}
	for side := 0; side < 2; side++ {
		if p.closed[side] {
			own[side] = append(own[side], &tcpSeg{side: side, t: p.finT[side], seq: next[side], flags: flagFIN | flagACK})
			next[side]++
		}
	}
	// Pure ACKs sent by each side for what it receives.
	var acks [2][]*tcpSeg
	for x := 0; x < 2; x++ {
		acks[x] = pureAcks(x, own[x], own[1-x], tp.owd)
	}
	all := []*tcpSeg{
		{side: sideClient, t: tp.t0, seq: tp.isn[0], flags: flagSYN, syn: true},
		{side: sideServer, t: srvT, seq: tp.isn[1], ack: tp.isn[0] + 1, flags: flagSYN | flagACK, syn: true},
		{side: sideClient, t: srvT + tp.owd + 20_000, seq: tp.isn[0] + 1, ack: tp.isn[1] + 1, flags: flagACK},
	}
	for x := 0; x < 2; x++ {
		all = append(all, own[x]...)
		all = append(all, acks[x]...)
	}
	// Acknowledgement numbers and sequence numbers of pure ACKs.
	for _, s := range all[3:] {
		peer := own[1-s.side]
		ack := tp.isn[1-s.side] + 1
		for _, q := range peer {
			if q.t+tp.owd > s.t {
				break
			}
			ack = q.seq + uint32(len(q.payload))
			if q.flags&flagFIN != 0 {
				ack++
			}
		}
		s.ack = ack
		if s.payload == nil && s.flags == flagACK {
			seq := tp.isn[s.side] + 1
			for _, q := range own[s.side] {
				if q.t >= s.t {
					break
				}
				seq = q.seq + uint32(len(q.payload))
				if q.flags&flagFIN != 0 {
					seq++
				}
			}
			s.seq = seq
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return tp.captureTime(all[i]) < tp.captureTime(all[j]) })
	// Timestamp option: TSecr echoes the newest TSval that reached the sender.
	byArrival := [2][]*tcpSeg{}
	for _, s := range all {
		byArrival[s.side] = append(byArrival[s.side], s)
	}
	for x := 0; x < 2; x++ {
		sort.SliceStable(byArrival[x], func(i, j int) bool { return byArrival[x][i].t < byArrival[x][j].t })
	}
	frames := make([]frame, 0, len(all))
	for _, s := range all {
		tsval := tp.tsOff[s.side] + uint32(s.t/1_000_000)
		var tsecr uint32
		for _, q := range byArrival[1-s.side] {
			if q.t+tp.owd > s.t {
				break
			}
			tsecr = tp.tsOff[q.side] + uint32(q.t/1_000_000)
		}
		var opts []byte
		win := tp.win[s.side]
		if s.syn {
			win = tp.synWin[s.side]
			mss := uint16(p.mss + 12)
			opts = make([]byte, 0, 20)
			opts = append(opts, 2, 4, byte(mss>>8), byte(mss), 4, 2, 8, 10)
			opts = binary.BigEndian.AppendUint32(opts, tsval)
			opts = binary.BigEndian.AppendUint32(opts, tsecr)
			opts = append(opts, 1, 3, 3, tp.wscale[s.side])
		} else {
			opts = make([]byte, 0, 12)
			opts = append(opts, 1, 1, 8, 10)
			opts = binary.BigEndian.AppendUint32(opts, tsval)
			opts = binary.BigEndian.AppendUint32(opts, tsecr)
		}
		src, dst := tp.ends[s.side], tp.ends[1-s.side]
		seg := tcpSegment(src.addr.Port(), dst.addr.Port(), s.seq, s.ack, s.flags, win, opts, s.payload)
		frames = append(frames, frame{t: tp.captureTime(s), data: fb[s.side].build(src, dst, protoTCP, seg, true)})
	}
	return frames
}

// pureAcks returns the ACK-only segments side x sends for the peer's
// segments in: every second full segment and every FIN at once, otherwise
// after the delayed-ACK timer, unless x's own data (which carries the
// acknowledgement) goes out first.
func pureAcks(x int, mine, in []*tcpSeg, owd int64) []*tcpSeg {
	var out []*tcpSeg
	ownSendIn := func(lo, hi int64) bool { // own segment sent in (lo, hi]
		for _, s := range mine {
			if s.t > lo && s.t <= hi {
				return true
			}
		}
		return false
	}
	unacked := 0
	var deadline, last int64
	resolve := func(limit int64) {
		if unacked == 0 {
			return
		}
		if ownSendIn(last, min(deadline, limit)) {
			unacked = 0
			return
		}
		if deadline <= limit {
			out = append(out, &tcpSeg{side: x, t: deadline, flags: flagACK})
			unacked = 0
		}
	}
	for _, s := range in {
		a := s.t + owd
		resolve(a)
		last = a
		unacked++
		d := a + delayedAckNs
		if s.flags&flagFIN != 0 || unacked >= 2 {
			d = a + quickAckNs
		}
		if unacked == 1 || d < deadline {
			deadline = d
		}
	}
	resolve(1 << 62)
	return out
}
