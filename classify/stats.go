package classify

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/netmamba/netmamba/flow"
)

// Stats are a Pipeline's counters over all its ingests (open and closed).
type Stats struct {
	Packets uint64 // frames read
	Bytes   uint64 // captured bytes of those frames
	// NotAssigned counts frames that joined no flow (non-IP, malformed,
	// orphan fragments), by reason in Skipped.
	NotAssigned uint64
	Filtered    uint64 // frames rejected by Options.Filter
	Flows       uint64 // flows started
	LiveFlows   int    // flows in the tables now
	Results     uint64 // results emitted (final, plus early ones with EmitEarly)
	Classified  uint64 // flows the model classified
	Shed        uint64 // flows not classified because the queue was full (or the shutdown drain timed out)
	// ShedAtShutdown counts the flows of Shed that were shed because the
	// shutdown drain (Pipeline.Drain) ran out of time.
	ShedAtShutdown uint64
	Unknown        uint64 // classified flows below the unknown threshold
	Errors         uint64 // flows not classified because the model failed
	Evicted        uint64 // flows ended early by the flow-table cap
	TimedOut       uint64 // flows ended by the idle or active timeout
	Streamed       uint64 // flows classified by the recurrent stream
	// StreamFallback counts flows that found no free stream (batch path).
	StreamFallback uint64
	Batches        uint64 // classifier batches run
	QueueLen       int    // flows waiting for a classifier now
	QueueCap       int    // queue bound
	QueueHigh      int    // queue high-water mark
	// LatencyP50 and LatencyP99 are over the last 4096 classifications,
	// from queueing to verdict.
	LatencyP50, LatencyP99 time.Duration
	Skipped                map[string]uint64 // reason -> frames
}

// Stats returns the current counters.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	var c counters
	c.add(&p.done)
	live := 0
	for in := range p.ingests {
		in.mu.Lock()
		o := in.c
		o.table = in.table.Stats()
		live += in.table.Len()
		in.mu.Unlock()
		in.sinkMu.Lock()
		o.results = in.results
		in.sinkMu.Unlock()
		c.add(&o)
	}
	p.mu.Unlock()
	s := Stats{
		Packets: c.packets, Bytes: c.bytes, Filtered: c.filtered, Flows: c.table.Flows,
		LiveFlows: live, Results: c.results,
		Classified: p.classified.Load(), Shed: p.shed.Load(), ShedAtShutdown: p.shedAtShutdown.Load(), Unknown: p.unknown.Load(),
		Errors: p.errors.Load(), Evicted: c.table.Ended[flow.EndEvicted],
		TimedOut: c.table.Ended[flow.EndIdle] + c.table.Ended[flow.EndActive],
		Streamed: p.streamed.Load(), StreamFallback: p.streamFallback.Load(),
		Batches: p.batches.Load(), QueueLen: len(p.jobs), QueueCap: cap(p.jobs), QueueHigh: int(p.queueHigh.Load()),
		Skipped: map[string]uint64{},
	}
	for i, n := range c.reasons {
		if n != 0 && flow.Reason(i) != flow.ReasonSnapCut {
			s.NotAssigned += n
			s.Skipped[flow.Reason(i).String()] += n
		}
	}
	s.LatencyP50, s.LatencyP99 = p.lat.percentiles()
	return s
}

// String is a one-paragraph summary.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d packets (%d bytes), %d flows: %d classified, %d unknown, %d shed (%d at shutdown), %d errors; %d not assigned to a flow, %d filtered; %d evicted, %d timed out; latency p50 %v p99 %v",
		s.Packets, s.Bytes, s.Flows, s.Classified, s.Unknown, s.Shed, s.ShedAtShutdown, s.Errors, s.NotAssigned, s.Filtered,
		s.Evicted, s.TimedOut, s.LatencyP50.Round(time.Microsecond), s.LatencyP99.Round(time.Microsecond))
	keys := make([]string, 0, len(s.Skipped))
	for k := range s.Skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  not assigned, %s: %d", k, s.Skipped[k])
	}
	return b.String()
}

// LatencyMark is a position in the stream of classification latencies,
// for LatencySince.
type LatencyMark uint64

// LatencySince returns the p50 and p99 classification latency (queueing
// to verdict) of the flows classified since mark (at most the last 4096
// of them), how many that is, and the mark for the next call: the
// latency of an interval, where Stats gives the last 4096 flows'
// whatever their age. n is 0 (and the percentiles 0) when none was
// classified since mark.
func (p *Pipeline) LatencySince(mark LatencyMark) (p50, p99 time.Duration, n int, next LatencyMark) {
	return p.lat.since(mark)
}

// since is LatencySince on the ring.
func (l *latencyRing) since(mark LatencyMark) (p50, p99 time.Duration, n int, next LatencyMark) {
	l.mu.Lock()
	total := l.n
	k := min(total-int(mark), len(l.buf))
	if int(mark) > total {
		k = 0
	}
	s := make([]int64, 0, max(k, 0))
	for i := total - k; i < total; i++ {
		s = append(s, l.buf[i%len(l.buf)])
	}
	l.mu.Unlock()
	if len(s) == 0 {
		return 0, 0, 0, LatencyMark(total)
	}
	slices.Sort(s)
	return time.Duration(s[(len(s)-1)*50/100]), time.Duration(s[(len(s)-1)*99/100]), len(s), LatencyMark(total)
}
