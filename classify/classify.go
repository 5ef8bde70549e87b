// Package classify runs trained classifiers on traffic: packets (from
// capture files or a live interface) go through a flow table per input
// partition, each flow's representation is taken when it has Options.Early
// packets (or when it ends, zero-padded), a batcher groups flows (max batch,
// max wait) for classifier workers, and a verdict is emitted per flow.
//
// Memory is bounded: the flow table of each Ingest is capped
// (Options.MaxFlows, least recently seen flow evicted and reported), the
// classifier queue is a bounded channel, and when it is full a flow is shed
// — reported with Label "unclassified" and Shed set, and counted — rather
// than blocking capture (unless Options.Block, for files). Every flow that
// enters a table is reported exactly once with a final result.
//
// Streaming (Options.Stream, NetMamba byte model only): each flow keeps a
// recurrent model.Stream and the byte tokens of each packet are fed through
// the model's Step as the packet arrives, so the verdict needs only the CLS
// step when the flow reaches Early packets. It runs in the capture
// goroutine (no batching), uses about 0.3 MB of state per streamed flow, and
// is bounded by Options.MaxStreams (other flows use the batch path).
package classify

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netmamba/netmamba/filter"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/train"
)

// Options configure a Pipeline. Zero values take the documented defaults.
type Options struct {
	// Classes names the model's outputs (default "class_0", ...).
	Classes []string
	// Temperature divides the logits before the softmax (0: 1; negative,
	// NaN or infinite values are an error).
	Temperature float64
	// UnknownThreshold: a flow whose confidence is below it is labelled
	// LabelUnknown (0: never).
	UnknownThreshold float64
	// TopK is the number of classes listed per flow (0: 3).
	TopK int
	// Early is the number of packets after which a flow is classified
	// (0: DefaultEarly of the model). Shorter flows are classified when they end.
	Early int
	// Stream feeds packets through the model's recurrent Step as they
	// arrive (NetMamba byte model only).
	Stream bool
	// MaxStreams bounds the flows streamed at once (0: 64).
	MaxStreams int
	// Bidirectional keys flows by their unordered endpoint pair.
	Bidirectional bool
	// Repr configures the representation (compat, debias); it must match
	// what the model was trained on.
	Repr repr.Options
	// IdleTimeout and ActiveTimeout end flows (0: never; files are read as a whole).
	IdleTimeout, ActiveTimeout time.Duration
	// MaxFlows caps the live flows of each Ingest (0: 1<<18).
	MaxFlows int
	// Filter is a BPF-style expression (package filter) applied from the IP header on.
	Filter string
	// MaxBatch is the largest classifier batch (0: 64); MaxWait the
	// longest a queued flow waits for its batch to fill (0: 5 ms).
	MaxBatch int
	MaxWait  time.Duration
	// QueueLen bounds the classifier queue (0: 8 × MaxBatch × workers).
	QueueLen int
	// Block makes a full queue block the producer instead of shedding
	// (reading files, where back-pressure is harmless).
	Block bool
	// EmitEarly also emits a non-final result as soon as a flow is
	// classified (live dashboards); the final result follows at its end.
	EmitEarly bool
	// WorkerSetup, if set, is called once at the start of each classifier
	// worker, on the OS thread the worker is locked to for its lifetime
	// (runtime.LockOSThread): live capture lowers that thread's scheduling
	// priority there, so that the model never starves capture. A model
	// with more than one thread (train.Pooled) then runs its other workers
	// on a kernels.Pool of the worker's own, whose helper threads run
	// WorkerSetup too: every thread of the model gets the setting.
	WorkerSetup func()
	// HelperRun, if set (with WorkerSetup), runs each pool helper's share
	// of a batch on the helper's thread: live capture measures the
	// helper's CPU time there.
	HelperRun func(run func())
}

// DefaultEarly is the number of packets a model reads: 20 (its sequence
// length) when it reads size/IAT sequences (fuse3, fuse3_nettrans), else
// the byte view's 5.
func DefaultEarly(cfg arch.Config) int {
	if strings.HasPrefix(cfg.Arch, "fuse3") || slices.Contains(cfg.Modalities, "sizes") || slices.Contains(cfg.Modalities, "iats") {
		if cfg.SeqLen > 0 {
			return min(cfg.SeqLen, repr.SeqLen)
		}
		return repr.SeqLen
	}
	return repr.ViewPackets
}

// Pipeline is the shared back end: the classifier queue and workers, and
// the counters. Feed it through one Ingest per input partition.
type Pipeline struct {
	opts    Options
	nets    []train.Classifier
	nclass  int
	filter  *filter.Filter
	jobs    chan *job
	workers sync.WaitGroup
	streamM *model.Model
	streams chan *model.Stream

	mu      sync.Mutex // guards ingests, closed, done
	ingests map[*Ingest]struct{}
	done    counters // folded counters of closed ingests
	closed  bool

	// builders recycles the per-flow representation builders (about
	// 1.9 KB each): a flow holds one only until it is classified or shed.
	builders sync.Pool
	epoch    time.Time // origin of job.start (monotonic clock)

	// Drain: once started, a full queue blocks until expired is closed;
	// after that flows are shed (and counted in shedAtShutdown).
	drainOnce   sync.Once
	expired     chan struct{}
	expiredFlag atomic.Bool

	classified, shed, unknown, errors, batches, streamed, streamFallback atomic.Uint64
	shedAtShutdown                                                       atomic.Uint64
	queueHigh                                                            atomic.Int64
	block                                                                atomic.Bool // a full queue blocks the producer (Options.Block, SetBlocking)
	lat                                                                  latencyRing
}

// New starts a pipeline with one classifier worker per net (each net is
// used by one goroutine only). With no nets every flow is reported
// unclassified (measuring capture, flow table and representation alone).
func New(nets []train.Classifier, opts Options) (*Pipeline, error) {
	switch t := opts.Temperature; {
	case t == 0:
		opts.Temperature = 1
	case !(t > 0) || math.IsInf(t, 1):
		return nil, fmt.Errorf("classify: temperature %v: must be a finite number > 0", t)
	}
	if opts.TopK <= 0 {
		opts.TopK = 3
	}
	if opts.Early <= 0 {
		opts.Early = repr.ViewPackets
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 64
	}
	if opts.MaxFlows <= 0 {
		opts.MaxFlows = 1 << 18
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 5 * time.Millisecond
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 8 * opts.MaxBatch * max(len(nets), 1)
	}
	p := &Pipeline{opts: opts, nets: nets, ingests: map[*Ingest]struct{}{}, epoch: time.Now(), expired: make(chan struct{})}
	p.builders.New = func() any { return new(repr.Builder) }
	if len(nets) > 0 {
		p.nclass = nets[0].NumClasses()
		for i, n := range nets {
			if n.NumClasses() != p.nclass {
				return nil, fmt.Errorf("classify: net %d has %d classes, net 0 has %d", i, n.NumClasses(), p.nclass)
			}
		}
		if len(opts.Classes) > 0 && len(opts.Classes) != p.nclass {
			return nil, fmt.Errorf("classify: %d class names for a model with %d outputs", len(opts.Classes), p.nclass)
		}
	}
	if opts.Filter != "" {
		f, err := filter.Compile(opts.Filter)
		if err != nil {
			return nil, fmt.Errorf("classify: filter: %w", err)
		}
		p.filter = f
	}
	if opts.Stream {
		nm, ok := firstNet(nets).(*train.NetMambaClassifier)
		if !ok {
			return nil, fmt.Errorf("classify: streaming needs a NetMamba byte model")
		}
		if nm.M.Cfg.ByteLength != repr.ViewBytes {
			return nil, fmt.Errorf("classify: streaming needs byte_length %d, model has %d", repr.ViewBytes, nm.M.Cfg.ByteLength)
		}
		p.streamM = nm.M
		p.streams = make(chan *model.Stream, opts.MaxStreams)
		for range opts.MaxStreams {
			p.streams <- nil // created lazily
		}
	}
	p.block.Store(opts.Block)
	p.jobs = make(chan *job, opts.QueueLen)
	for _, n := range nets {
		p.workers.Add(1)
		go p.worker(n)
	}
	return p, nil
}

func firstNet(nets []train.Classifier) train.Classifier {
	if len(nets) == 0 {
		return nil
	}
	return nets[0]
}

// SetBlocking switches between shedding (false) and waiting (true) when the
// classifier queue is full, with no time limit; live capture uses Drain at
// shutdown instead, which waits for at most a timeout.
func (p *Pipeline) SetBlocking(b bool) { p.block.Store(b) }

// Drain bounds the shutdown: from now on a full classifier queue makes
// the producer wait (flows flushed at shutdown are classified rather than
// shed) but only until timeout has passed; after that, flows still to be
// classified — those being flushed and those waiting in the queue — are
// shed: reported with Shed set and counted in Stats.Shed and
// Stats.ShedAtShutdown, never missing. A timeout <= 0 sheds at once.
// Later calls do nothing.
func (p *Pipeline) Drain(timeout time.Duration) {
	p.drainOnce.Do(func() {
		p.block.Store(true)
		expire := func() {
			p.expiredFlag.Store(true)
			close(p.expired)
		}
		if timeout <= 0 {
			expire()
			return
		}
		time.AfterFunc(timeout, expire)
	})
}

// getBuilder takes a zeroed representation builder from the pool.
func (p *Pipeline) getBuilder() *repr.Builder {
	b := p.builders.Get().(*repr.Builder)
	*b = repr.Builder{}
	return b
}

// Options returns the effective options (defaults filled in).
func (p *Pipeline) Options() Options { return p.opts }

// Close stops the classifier workers after the queued flows are
// classified. Close every Ingest first.
func (p *Pipeline) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.jobs)
	p.workers.Wait()
}

// job is one flow's classification: its representation (until a worker
// has copied it), the prediction and the flow's final counters, joined by
// state. It is what a classified flow keeps until it ends (about 300
// bytes, plus its top-k list), so it holds no copy of the byte view.
type job struct {
	in    *Ingest
	b     *repr.Builder // the flow's representation, returned to the pool once copied (nil after)
	res   Result        // Key/Stats: snapshot at classification; prediction fields
	final flow.Stats    // counters of the ended flow
	start int64         // when queued, ns since Pipeline.epoch (monotonic)
	end   flow.EndReason
	state atomic.Uint32
}

// release returns j's representation builder to the pool.
func (p *Pipeline) release(j *job) {
	if j.b != nil {
		p.builders.Put(j.b)
		j.b = nil
	}
}

// shedJob reports j unclassified because of overload or shutdown.
func (p *Pipeline) shedJob(j *job) {
	p.release(j)
	p.shed.Add(1)
	if p.expiredFlag.Load() {
		p.shedAtShutdown.Add(1)
	}
	j.setUnclassified(true)
	p.complete(j)
}

const (
	stClassified = 1
	stEnded      = 2
)

// enqueue queues j for a classifier, or sheds it when the queue is full.
func (p *Pipeline) enqueue(j *job) {
	if len(p.nets) == 0 {
		p.release(j)
		j.setUnclassified(false)
		p.complete(j)
		return
	}
	j.start = int64(time.Since(p.epoch))
	switch {
	case p.expiredFlag.Load():
		p.shedJob(j)
		return
	case p.block.Load():
		select {
		case p.jobs <- j:
		case <-p.expired:
			p.shedJob(j)
			return
		}
	default:
		select {
		case p.jobs <- j:
		default:
			p.shedJob(j)
			return
		}
	}
	if n := int64(len(p.jobs)); n > p.queueHigh.Load() {
		p.queueHigh.Store(n)
	}
}

func (j *job) setUnclassified(shed bool) {
	j.res.Label = LabelUnclassified
	j.res.Class = -1
	j.res.Confidence = 0
	j.res.TopK = nil
	j.res.Shed = shed
}

// complete marks j classified; if its flow already ended the final result
// is emitted now.
func (p *Pipeline) complete(j *job) {
	if p.opts.EmitEarly && j.state.Load()&stEnded == 0 {
		r := j.res
		r.Final = false
		j.in.emit(&r)
	}
	if j.state.Or(stClassified) == stEnded {
		j.in.emitFinal(j)
	}
}

// worker batches queued flows and classifies them.
func (p *Pipeline) worker(net train.Classifier) {
	defer p.workers.Done()
	if p.opts.WorkerSetup != nil {
		// Locked for the worker's life so that what WorkerSetup sets on
		// the thread (its priority) applies to this worker only. Never
		// unlocked: the thread exits with the worker rather than return,
		// still set up, to run other goroutines (capture).
		runtime.LockOSThread()
		p.opts.WorkerSetup()
		if pn, ok := net.(train.Pooled); ok && pn.Threads() > 1 {
			pool := kernels.NewPool(pn.Threads(), p.opts.WorkerSetup, p.opts.HelperRun)
			defer pool.Close()
			pn.UsePool(pool)
			defer pn.UsePool(nil) // before Close
		}
	}
	B, C := p.opts.MaxBatch, p.nclass
	d := &train.Data{Bytes: make([]byte, B*repr.ViewBytes), Views: make([]repr.View, B), Labels: make([]int, B)}
	idx := make([]int, B)
	for i := range idx {
		idx[i] = i
		d.Labels[i] = -1
	}
	logits := make([]float32, B*C)
	probs := make([]float64, C)
	batch := make([]*job, 0, B)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		j, ok := <-p.jobs
		if !ok {
			return
		}
		batch = append(batch[:0], j)
		open := true
		// One deadline per batch, counted from its first job: a trickle
		// of flows never holds the first one longer than MaxWait.
		deadline := time.Now().Add(p.opts.MaxWait)
		armed := false
	fill:
		for len(batch) < B {
			select {
			case j, ok := <-p.jobs:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, j)
				continue
			default:
			}
			if !armed {
				wait := time.Until(deadline)
				if wait <= 0 {
					break fill
				}
				timer.Reset(wait)
				armed = true
			}
			select {
			case j, ok := <-p.jobs:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, j)
			case <-timer.C:
				armed = false
				break fill
			}
		}
		if armed {
			timer.Stop()
		}
		if p.expiredFlag.Load() {
			// shutdown deadline passed: report the batch shed, unclassified
			for i, j := range batch {
				p.shedJob(j)
				batch[i] = nil
			}
			if !open {
				return
			}
			continue
		}
		n := len(batch)
		d.N = n
		for i, j := range batch {
			if j.b != nil {
				d.Views[i] = j.b.View
			} else {
				d.Views[i] = repr.View{}
			}
			copy(d.Bytes[i*repr.ViewBytes:], d.Views[i].Bytes[:])
			p.release(j)
		}
		p.batches.Add(1)
		err := net.Forward(&train.Data{N: n, Bytes: d.Bytes[:n*repr.ViewBytes], Views: d.Views[:n], Labels: d.Labels[:n]}, idx[:n], logits[:n*C])
		end := time.Now()
		for i, j := range batch {
			if err != nil {
				p.errors.Add(1)
				j.setUnclassified(false)
			} else {
				p.verdict(logits[i*C:(i+1)*C], probs, &j.res)
				p.classified.Add(1)
			}
			p.lat.add(int64(end.Sub(p.epoch)) - j.start)
			p.complete(j)
			batch[i] = nil
		}
		if !open {
			return
		}
	}
}

// verdict fills r's prediction from one flow's logits.
func (p *Pipeline) verdict(logits []float32, probs []float64, r *Result) {
	T := p.opts.Temperature
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = max(mx, float64(v)/T)
	}
	var sum float64
	for c, v := range logits {
		e := math.Exp(float64(v)/T - mx)
		probs[c] = e
		sum += e
	}
	best := 0
	for c := range probs {
		probs[c] /= sum
		if probs[c] > probs[best] {
			best = c
		}
	}
	r.Class = best
	r.Confidence = probs[best]
	r.Label = p.className(best)
	if p.opts.UnknownThreshold > 0 && r.Confidence < p.opts.UnknownThreshold {
		r.Label = LabelUnknown
		p.unknown.Add(1)
	}
	k := min(p.opts.TopK, len(probs))
	order := make([]int, len(probs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
	r.TopK = make([]Prediction, k)
	for i := range k {
		r.TopK[i] = Prediction{Label: p.className(order[i]), Confidence: probs[order[i]]}
	}
	r.Shed = false
}

func (p *Pipeline) className(c int) string {
	if c < len(p.opts.Classes) {
		return p.opts.Classes[c]
	}
	return fmt.Sprintf("class_%d", c)
}

// latencyRing keeps the last classification latencies for percentiles.
type latencyRing struct {
	mu  sync.Mutex
	buf [4096]int64
	n   int
}

func (l *latencyRing) add(ns int64) {
	l.mu.Lock()
	l.buf[l.n%len(l.buf)] = ns
	l.n++
	l.mu.Unlock()
}

// percentiles returns the p50 and p99 of the recorded latencies.
func (l *latencyRing) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	n := min(l.n, len(l.buf))
	s := slices.Clone(l.buf[:n])
	l.mu.Unlock()
	if n == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return time.Duration(s[(n-1)*50/100]), time.Duration(s[(n-1)*99/100])
}

// FlowBytes bounds the heap one tracked flow costs (flow-table slot,
// index entry, pooled representation builder, and job with its verdict),
// the worst case being a flow not yet classified; TestFlowFootprint
// measures it (about 2.3 KB for a pending flow, 0.6 KB for a classified
// one) and fails if a flow costs more. Memory bounds derive flow-table
// caps from it.
const FlowBytes = 2560
