package classify

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/repr"
)

// flowState is what the flow table keeps per flow: three pointers. The
// representation being built (about 1.9 KB) lives outside the table, in a
// pooled builder that the flow holds only until it is classified (queued,
// streamed or shed); after that the flow keeps only its job (verdict and
// counters). Before, the builder was inline in every flow slot for the
// flow's whole life and the job kept a second copy of the view: see
// TestFlowFootprint for the bytes per flow.
type flowState struct {
	b  *repr.Builder // representation until the flow is classified, nil after
	j  *job          // set once the flow is classified or queued
	st *model.Stream // streaming state (Options.Stream), nil otherwise
}

// counters are one Ingest's counts (guarded by Ingest.mu; results is
// filled from Ingest.results when read).
type counters struct {
	packets, bytes, filtered, results uint64
	reasons                           [flow.NumReasons]uint64
	table                             flow.TableStats
}

func (c *counters) add(o *counters) {
	c.packets += o.packets
	c.bytes += o.bytes
	c.filtered += o.filtered
	c.results += o.results
	for i := range c.reasons {
		c.reasons[i] += o.reasons[i]
	}
	c.table.Flows += o.table.Flows
	for i := range c.table.Ended {
		c.table.Ended[i] += o.table.Ended[i]
	}
	c.table.OrphanFragments += o.table.OrphanFragments
	c.table.JoinedFragments += o.table.JoinedFragments
	c.table.MaxLive = max(c.table.MaxLive, o.table.MaxLive)
}

// Ingest is one input partition (a file, a request body, a live fanout
// worker): its own flow table feeding the shared Pipeline. Its methods are
// safe for concurrent use (a mutex guards the table, so a clock goroutine
// can call Expire while a capture goroutine calls Packet).
type Ingest struct {
	p       *Pipeline
	source  string
	sink    func(*Result)
	mu      sync.Mutex
	table   *flow.Table[flowState]
	pkt     flow.Packet
	c       counters
	xbuf    []float32
	logits  []float32
	probs   []float64
	sinkMu  sync.Mutex
	results uint64 // results emitted (guarded by sinkMu)
	pending sync.WaitGroup
	closed  bool
}

// NewIngest starts a partition named source whose results go to sink.
// sink is called from the capture goroutine or a classifier worker, one
// call at a time per Ingest; the *Result is valid only during the call.
func (p *Pipeline) NewIngest(source string, sink func(*Result)) *Ingest {
	in := &Ingest{p: p, source: source, sink: sink}
	in.table = flow.NewTable(flow.Config{
		Bidirectional: p.opts.Bidirectional,
		IdleTimeout:   p.opts.IdleTimeout,
		ActiveTimeout: p.opts.ActiveTimeout,
		MaxFlows:      p.opts.MaxFlows,
		ReadyPackets:  p.opts.Early,
	}, flow.Handlers[flowState]{Packet: in.onPacket, Ready: in.onReady, End: in.onEnd})
	if p.streamM != nil {
		in.xbuf = make([]float32, repr.SlotBytes)
		in.logits = make([]float32, p.nclass)
		in.probs = make([]float64, p.nclass)
	}
	p.mu.Lock()
	p.ingests[in] = struct{}{}
	p.mu.Unlock()
	return in
}

// Packet decodes one captured frame and adds it to its flow. Frames that
// are not IP (or are malformed) and frames rejected by the filter are
// counted, not reported as flows. data is not retained.
func (in *Ingest) Packet(link capture.LinkType, data []byte, tsNs int64) {
	in.mu.Lock()
	in.c.packets++
	in.c.bytes += uint64(len(data))
	p := &in.pkt
	if reason := flow.Decode(link, data, p); reason != flow.OK {
		in.c.reasons[reason]++
	} else if in.p.filter != nil && !in.p.filter.Match(p.L3()) {
		in.c.filtered++
	} else if reason := in.table.Add(p, tsNs, len(data)); reason != flow.OK {
		in.c.reasons[reason]++
	}
	in.mu.Unlock()
}

// Expire ends flows idle or active for longer than the timeouts at time
// nowNs (live capture calls it on a clock).
func (in *Ingest) Expire(nowNs int64) {
	in.mu.Lock()
	in.table.Expire(nowNs)
	in.mu.Unlock()
}

// Len is the number of flows open in the partition's table.
func (in *Ingest) Len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.table.Len()
}

// Flush ends every live flow (end of a file).
func (in *Ingest) Flush() {
	in.mu.Lock()
	in.table.Flush()
	in.mu.Unlock()
}

// Close flushes the table, waits until every flow's final result has been
// emitted and folds the counters into the Pipeline's.
func (in *Ingest) Close() {
	in.Flush()
	in.pending.Wait()
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.closed = true
	in.c.table = in.table.Stats()
	in.mu.Unlock()
	in.p.mu.Lock()
	delete(in.p.ingests, in)
	in.sinkMu.Lock()
	in.c.results = in.results
	in.p.done.add(&in.c)
	in.sinkMu.Unlock()
	in.p.mu.Unlock()
}

// ReadCapture feeds every packet of r. A truncated or corrupt tail is
// returned as an error after the packets before it were fed (callers may
// treat capture.ErrTruncated as a warning). The error names the capture
// once: a *capture.Error (which names the file and offset) is returned as
// is, any other is prefixed with r.Name().
func (in *Ingest) ReadCapture(r *capture.Reader) error { return in.ReadCaptureUntil(r, nil) }

// ErrReadStopped is returned by ReadCaptureUntil when stop ended the read.
var ErrReadStopped = errors.New("classify: reading the capture was stopped")

// ReadCaptureUntil is ReadCapture that also ends, with ErrReadStopped,
// once stop is closed (checked every 256 packets; a nil stop never
// closes). The packets fed before stay in the flow table: Close reports
// their flows as usual.
func (in *Ingest) ReadCaptureUntil(r *capture.Reader, stop <-chan struct{}) error {
	var cp capture.Packet
	for n := 1; ; n++ {
		if n%256 == 0 && stop != nil {
			select {
			case <-stop:
				return ErrReadStopped
			default:
			}
		}
		if err := r.Next(&cp); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ce, ok := errors.AsType[*capture.Error](err); ok && ce.File == r.Name() {
				return err
			}
			return fmt.Errorf("%s: %w", r.Name(), err)
		}
		in.Packet(cp.LinkType, cp.Data, cp.TimestampNs)
	}
}

func (in *Ingest) onPacket(f *flow.Flow[flowState], p *flow.Packet, m flow.PacketMeta) {
	s := &f.State
	if s.j != nil { // classified: the representation is taken
		return
	}
	if s.b == nil {
		s.b = in.p.getBuilder()
	}
	s.b.Add(p, m, &f.Key, &in.p.opts.Repr)
	if in.p.streamM == nil {
		return
	}
	if m.Index == 0 {
		s.st = in.p.getStream()
	}
	if s.st != nil && m.Index < repr.ViewPackets {
		in.stepSlot(s.st, s.b.View.Bytes[int(m.Index)*repr.SlotBytes:(int(m.Index)+1)*repr.SlotBytes])
	}
}

// stepSlot feeds one packet's 320-byte slot through the stream.
func (in *Ingest) stepSlot(st *model.Stream, slot []byte) {
	model.NormalizeBytes(slot, in.xbuf)
	S := in.p.streamM.Cfg.Stride
	for t := 0; t+S <= len(in.xbuf); t += S {
		_ = st.StepBytes(in.xbuf[t : t+S]) // cannot fail: at most ViewBytes/Stride tokens are fed
	}
}

func (in *Ingest) onReady(f *flow.Flow[flowState]) { in.classifyFlow(f) }

func (in *Ingest) onEnd(f *flow.Flow[flowState], why flow.EndReason) {
	s := &f.State
	if s.j == nil {
		in.classifyFlow(f)
	}
	j := s.j
	if s.st != nil { // ended while streaming was pending (cannot happen after classifyFlow)
		in.p.putStream(s.st)
		s.st = nil
	}
	j.final = f.Stats
	j.end = why
	if j.state.Or(stEnded) == stClassified {
		in.emitFinal(j)
	}
}

// classifyFlow takes the flow's representation now and classifies it
// (streaming) or queues it.
func (in *Ingest) classifyFlow(f *flow.Flow[flowState]) {
	s := &f.State
	j := &job{in: in}
	j.res.Key = f.Key
	j.res.Stats = f.Stats
	j.res.Source = in.source
	j.res.ClassifiedAtPackets = int(f.Stats.Packets)
	s.j = j
	j.b, s.b = s.b, nil // the job takes the representation
	in.pending.Add(1)
	if s.st != nil {
		in.p.release(j)
		start := time.Now()
		zero := make([]byte, repr.SlotBytes)
		for i := int(min(f.Stats.Packets, repr.ViewPackets)); i < repr.ViewPackets; i++ {
			in.stepSlot(s.st, zero)
		}
		s.st.StepCLS(in.logits)
		in.p.putStream(s.st)
		s.st = nil
		in.p.verdict(in.logits, in.probs, &j.res)
		in.p.classified.Add(1)
		in.p.streamed.Add(1)
		in.p.lat.add(int64(time.Since(start)))
		in.p.complete(j)
		return
	}
	in.p.enqueue(j)
}

// emitFinal emits j's final result.
func (in *Ingest) emitFinal(j *job) {
	r := j.res
	r.Stats, r.End, r.Final = j.final, j.end.String(), true
	in.emit(&r)
	in.pending.Done()
}

func (in *Ingest) emit(r *Result) {
	in.sinkMu.Lock()
	in.results++
	if in.sink != nil {
		in.sink(r)
	}
	in.sinkMu.Unlock()
}

// getStream takes a stream from the bounded pool, or nil when all are in use.
func (p *Pipeline) getStream() *model.Stream {
	select {
	case st := <-p.streams:
		if st == nil {
			return p.streamM.NewStream()
		}
		st.Reset()
		return st
	default:
		p.streamFallback.Add(1)
		return nil
	}
}

func (p *Pipeline) putStream(st *model.Stream) { p.streams <- st }
