package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/kernels"
	"github.com/netmamba/netmamba/live"
	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/samplegen"
	"github.com/netmamba/netmamba/train"
)

// pipelineFlags are the classification options shared by classify, serve
// and bench classify.
type pipelineFlags struct {
	modelPath        string
	unknownThreshold float64
	temperature      float64
	topK, early      int
	stream           bool
	maxStreams       int
	direction        string
	compat           string
	filterExpr       string
	idle, active     time.Duration
	maxFlows         int
	batch            int
	maxWait          time.Duration
	queue            int
	classifiers      int
	threads          int
	emitEarly        bool
	// workerCPU, if set, receives the CPU time classifier workers spend
	// in the model, on their own threads and (live, --threads > 1) their
	// pools' helper threads (not with --stream).
	workerCPU *atomic.Int64
	// maxMemory (bytes, 0: none) is a memory bound for the whole process
	// (classify --max-memory): build derives the flow-table cap per
	// capture worker from it (unless --max-flows is set), with
	// memWorkers tables and memRingBytes of capture ring each, plus
	// memExtra (serve's uploads), and stores the split in bound
	// (setMaxMemory sets these). The caller sets the Go memory limit.
	maxMemory    int64
	memWorkers   int
	memRingBytes int64
	memExtra     memoryExtra
	bound        *memoryBound
	// workerSetup runs on each classifier worker's locked thread
	// (classify.Options.WorkerSetup).
	workerSetup func()
}

func (pf *pipelineFlags) register(f *pflag.FlagSet) {
	f.StringVar(&pf.modelPath, "model", "", "classifier (.safetensors or .pth); default: the embedded default model")
	f.Float64Var(&pf.unknownThreshold, "unknown-threshold", 0, `label a flow "unknown" when its confidence is below this (default: the checkpoint's calibration, else 0 = never)`)
	f.Float64Var(&pf.temperature, "temperature", 0, "softmax temperature (default: the checkpoint's calibration, else 1)")
	f.IntVar(&pf.topK, "top-k", 3, "classes listed per flow")
	f.IntVar(&pf.early, "early", 0, "classify a flow when it has its first N packets (default: what the model reads, 5 for byte models, 20 for fuse3)")
	f.BoolVar(&pf.stream, "stream", false, "update a recurrent state per flow packet by packet (NetMamba byte model only; runs in the capture goroutine)")
	f.IntVar(&pf.maxStreams, "max-streams", 64, "with --stream: flows streamed at once (about 0.3 MB each for the default model); others use the batch path")
	f.StringVar(&pf.direction, "direction", "", "flows: bi or uni (default: the checkpoint's, else bi)")
	f.StringVar(&pf.compat, "compat", "", `byte view: "" (offset-correct) or "official" (default: the checkpoint's)`)
	f.StringVar(&pf.filterExpr, "filter", "", "BPF-style filter (package filter syntax), e.g. 'tcp port 443'")
	f.DurationVar(&pf.idle, "idle-timeout", 0, "end a flow after this idle time; 0 = off (unless set: off for files, read as a whole; 120s for live capture)")
	f.DurationVar(&pf.active, "active-timeout", 0, "end a flow this long after its first packet; 0 = off (unless set: off for files; 1800s for live capture)")
	f.IntVar(&pf.maxFlows, "max-flows", 1<<18, "live flows per flow table; at the cap the least recently seen flow is ended and reported")
	f.IntVar(&pf.batch, "batch", 64, "largest classifier batch")
	f.DurationVar(&pf.maxWait, "max-wait", 5*time.Millisecond, "longest a flow waits for its batch to fill")
	f.IntVar(&pf.queue, "queue", 0, "classifier queue bound in flows (0: 8 × batch × classifiers); beyond it flows are shed (live) or capture waits (files)")
	f.IntVar(&pf.classifiers, "classifiers", 1, "classifier workers (each with its own model copy)")
	f.IntVar(&pf.threads, "threads", 0, "threads per classifier worker (0: all CPUs)")
}

// Flow timeouts of live capture when the flags are not set (files: off).
const (
	liveIdleTimeout   = 120 * time.Second
	liveActiveTimeout = 1800 * time.Second
)

// build loads the model (classifiers copies) and makes the pipeline.
// isLive selects the live timeout defaults; block makes a full queue wait.
func (pf *pipelineFlags) build(f *pflag.FlagSet, isLive, block, noModel bool) (*classify.Pipeline, string, error) {
	opts := classify.Options{
		TopK: pf.topK, Early: pf.early, Stream: pf.stream, MaxStreams: pf.maxStreams,
		Filter: pf.filterExpr, MaxFlows: pf.maxFlows, MaxBatch: pf.batch, MaxWait: pf.maxWait,
		QueueLen: pf.queue, Block: block, EmitEarly: pf.emitEarly,
		IdleTimeout: pf.idle, ActiveTimeout: pf.active, WorkerSetup: pf.workerSetup,
	}
	if total := pf.workerCPU; total != nil && pf.workerSetup != nil && !pf.stream {
		opts.HelperRun = func(run func()) { addThreadCPU(total, run) }
	}
	if pf.idle < 0 || pf.active < 0 {
		return nil, "", fmt.Errorf("--idle-timeout %v, --active-timeout %v: must be >= 0 (0 = off)", pf.idle, pf.active)
	}
	if isLive && !f.Changed("idle-timeout") {
		opts.IdleTimeout = liveIdleTimeout
	}
	if isLive && !f.Changed("active-timeout") {
		opts.ActiveTimeout = liveActiveTimeout
	}
	if f.Changed("temperature") && !(pf.temperature > 0 && !math.IsInf(pf.temperature, 1)) {
		return nil, "", fmt.Errorf("--temperature %v: must be a finite number > 0 (leave it unset for the checkpoint's calibration, else 1)", pf.temperature)
	}
	direction, compat := pf.direction, pf.compat
	name := "no model"
	var nets []train.Classifier
	if !noModel {
		if pf.classifiers < 1 {
			return nil, "", fmt.Errorf("--classifiers %d must be >= 1", pf.classifiers)
		}
		for i := range pf.classifiers {
			l, n, err := loadClassifier(pf.modelPath, pf.batch, pf.threads)
			if err != nil {
				return nil, "", err
			}
			if pf.maxMemory > 0 {
				// Run the model once so that the memory it allocates on
				// first use (activations) is in the measured fixed heap.
				if err := warmUp(l.Net, pf.batch); err != nil {
					return nil, "", fmt.Errorf("%s: %w", n, err)
				}
			}
			if pf.workerCPU != nil && !pf.stream {
				nets = append(nets, cpuNet{l.Net, pf.workerCPU})
			} else {
				nets = append(nets, l.Net)
			}
			if i > 0 {
				continue
			}
			name = n
			opts.Classes = l.Meta.Classes
			opts.Temperature = l.Meta.Calib.Temperature
			if l.Meta.Calib.HasThreshold {
				opts.UnknownThreshold = l.Meta.Calib.UnknownThreshold
			}
			if pf.early <= 0 {
				opts.Early = classify.DefaultEarly(l.Config)
			}
			if direction == "" {
				direction = l.Meta.Repr.Direction
			}
			if !f.Changed("compat") && l.Meta.Repr.Compat != "" {
				compat = l.Meta.Repr.Compat
			}
			if len(l.Meta.Repr.Debias) > 0 {
				// the header rewrites the model was trained with (empty = zero IPs, the default)
				d, err := repr.ParseDebias(l.Meta.Repr.Debias)
				if err != nil {
					return nil, "", fmt.Errorf("%s: %w", name, err)
				}
				opts.Repr.Debias = d
			}
		}
	}
	if f.Changed("unknown-threshold") {
		opts.UnknownThreshold = pf.unknownThreshold
	}
	if f.Changed("temperature") {
		opts.Temperature = pf.temperature
	}
	switch direction {
	case "", "bi":
		opts.Bidirectional = true
	case "uni":
	default:
		return nil, "", fmt.Errorf("--direction %q: want bi or uni", direction)
	}
	switch compat {
	case "":
		opts.Repr.Compat = repr.CompatNone
	case "official":
		opts.Repr.Compat = repr.CompatOfficial
	default:
		return nil, "", fmt.Errorf("--compat %q: want \"\" or official", compat)
	}
	if pf.maxMemory > 0 {
		queue := opts.QueueLen
		if queue <= 0 { // classify.New's default
			queue = 8 * max(opts.MaxBatch, 1) * max(len(nets), 1)
		}
		b, err := deriveMemoryBound(pf.maxMemory, pf.memWorkers, pf.memRingBytes, executableSize(), heapInUse(), queue, len(nets), max(pf.batch, 1), pf.memExtra)
		if err != nil {
			return nil, "", err
		}
		if !f.Changed("max-flows") {
			opts.MaxFlows = b.MaxFlows
		}
		pf.bound = &b
	}
	p, err := classify.New(nets, opts)
	return p, name, err
}

// warmUp runs net once on an all-zero batch.
func warmUp(net train.Classifier, batch int) error {
	batch = max(batch, 1)
	d := &train.Data{N: batch, Bytes: make([]byte, batch*repr.ViewBytes), Views: make([]repr.View, batch), Labels: make([]int, batch)}
	idx := make([]int, batch)
	for i := range idx {
		idx[i] = i
		d.Labels[i] = -1
	}
	if err := net.Forward(d, idx, make([]float32, batch*net.NumClasses())); err != nil {
		return fmt.Errorf("warm-up run: %w", err)
	}
	return nil
}

// cpuNet adds the CPU time its Forward uses on the calling worker's
// thread (locked to it for the call) to total. The model's other workers
// (--threads > 1) run on the helper threads of the worker's pool
// (classify.Options.WorkerSetup), measured by classify.Options.HelperRun.
type cpuNet struct {
	train.Classifier
	total *atomic.Int64
}

var _ train.Pooled = cpuNet{}

// Forward runs the wrapped classifier on a pinned thread and measures it.
func (c cpuNet) Forward(d *train.Data, idx []int, logits []float32) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	addThreadCPU(c.total, func() { err = c.Classifier.Forward(d, idx, logits) })
	return err
}

// Threads implements train.Pooled: the wrapped classifier's (1 if it is
// not Pooled).
func (c cpuNet) Threads() int {
	if pn, ok := c.Classifier.(train.Pooled); ok {
		return pn.Threads()
	}
	return 1
}

// UsePool implements train.Pooled (nothing if the wrapped classifier is
// not Pooled).
func (c cpuNet) UsePool(p *kernels.Pool) {
	if pn, ok := c.Classifier.(train.Pooled); ok {
		pn.UsePool(p)
	}
}

// addThreadCPU runs run on the calling goroutine, which must be locked to
// its thread, and adds the thread CPU time it used to total (nothing if
// the thread's clock cannot be read).
func addThreadCPU(total *atomic.Int64, run func()) {
	t0, err0 := live.ThreadCPUTime()
	run()
	if t1, err1 := live.ThreadCPUTime(); err0 == nil && err1 == nil {
		total.Add(int64(t1 - t0))
	}
}

// resultWriter writes results as JSON Lines or CSV, one call at a time.
type resultWriter struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	fw     *dataset.FlowWriter // CSV
	line   []byte
	labels map[string]uint64
	err    error
}

func newResultWriter(w io.Writer, format string) (*resultWriter, error) {
	rw := &resultWriter{labels: map[string]uint64{}}
	switch format {
	case "jsonl":
		rw.bw = bufio.NewWriterSize(w, 1<<16)
	case "csv":
		fw, err := dataset.NewFlowWriter(w, "csv", classify.ExtraFieldNames()...)
		if err != nil {
			return nil, err
		}
		rw.fw = fw
	default:
		return nil, fmt.Errorf("--format %q: want jsonl or csv", format)
	}
	return rw, nil
}

func (rw *resultWriter) write(r *classify.Result) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if r.Final {
		rw.labels[r.Label]++
	}
	if rw.err != nil {
		return
	}
	if rw.fw != nil {
		rw.err = rw.fw.Write(&r.Key, &r.Stats, r.CSVExtra()...)
		return
	}
	rw.line = append(r.AppendJSON(rw.line[:0]), '\n')
	_, rw.err = rw.bw.Write(rw.line)
}

func (rw *resultWriter) flush() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.err != nil {
		return rw.err
	}
	if rw.fw != nil {
		return rw.fw.Flush()
	}
	return rw.bw.Flush()
}

// labelSummary lists the final labels by decreasing count.
func (rw *resultWriter) labelSummary() string {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	keys := make([]string, 0, len(rw.labels))
	for k := range rw.labels {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if rw.labels[keys[i]] != rw.labels[keys[j]] {
			return rw.labels[keys[i]] > rw.labels[keys[j]]
		}
		return keys[i] < keys[j]
	})
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, rw.labels[k])
	}
	return s
}

func newClassifyCmd() *cobra.Command {
	var (
		pf                  pipelineFlags
		format, out, iface  string
		promisc, ignoreOut  bool
		noModel             bool
		workers             int
		statsEvery, runTime time.Duration
		maxMemory           string
		drainTimeout        time.Duration
	)
	c := &cobra.Command{
		Use:   "classify [FILE…|-i IFACE] [--model FILE] [--format jsonl|csv]",
		Short: "Classify the flows of captures or a live interface with a trained model",
		Long: `classify reads pcap/pcapng(.gz) files (or, with no argument, the sample traffic
generated in memory, as 'netmamba sample' writes it) or captures live on an interface
(-i, Linux AF_PACKET with fanout across --workers), groups packets into flows and writes
one result per flow to stdout (or -o): nfstream-style fields (src_ip/src_port = the
initiator, dst_ip, dst_port, protocol, ip_version, vlan_id, bidirectional_first_seen_ms,
bidirectional_last_seen_ms, bidirectional_/src2dst_/dst2src_ packets and bytes) then
label, confidence (softmax of logits / temperature), top_k, classified_at_packets, shed,
final, end_reason and source. A flow is classified as soon as it has --early packets
(flows that end sooner are classified at their end, zero-padded as in training); its
result is written when it ends, with its final counters. Below --unknown-threshold the
label is "unknown". Live, flows end on the idle/active timeouts; under overload flows are
shed (label "unclassified", shed true) and counted, never silently dropped. Non-IP frames
are counted, not reported. A summary goes to stderr (every --stats-interval when live).

Live statistics (latency over the last 4096 classified flows) end with the CPU used
per stage over the interval, in % of one core, each stage's goroutine pinned to its
thread and measured by the thread's CPU clock: capture (the capture workers: ring,
decoding, flow table, byte views, and results written from them; while packets arrive
the flow table also ends timed-out flows itself), expiry (the once-a-second clock: flow
timeouts when traffic pauses, the results of the flows they end, statistics), classifier (the
classifier workers, in the model, with --threads > 1 on all of the model's threads) and
other (the rest of the process: shutting-down work, GC, output written by classifier
workers), then the interval's own counts: flows
shed, flows classified and their latency p50/p99. At start live capture prints the
bounds that cap its memory: flow-table size, classifier queue and capture rings.

Memory: --max-memory (live default 1GiB; files only if set) bounds the whole process:
the Go memory limit is set to it less the capture rings and the executable, and the
flow-table cap per capture worker is derived from what is left after the model (measured
after one warm-up batch) and the queue, at ` + fmt.Sprint(classify.FlowBytes) + ` bytes per flow (the measured worst case) with as much
again for GC headroom; the split is printed at start. --max-flows overrides the cap.
Classifier worker threads run at nice +10 so the model never starves capture; with
--threads > 1 each worker runs the model on a pool of threads of its own, all at +10. At shutdown (SIGINT,
--duration) flows still open are classified for at most --drain-timeout, the rest are
reported shed and counted ("N shed (M at shutdown)").

--stream (NetMamba byte model only) feeds each packet's 80 byte tokens through the
model's recurrent Step as the packet arrives; at --early packets only the CLS step is
left. It gives the batch path's results, costs about 0.3 MB per streamed flow (bounded
by --max-streams) and runs in the capture goroutine instead of the batched workers.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			isLive := iface != ""
			if isLive && len(args) > 0 {
				return fmt.Errorf("classify: give FILEs or -i IFACE, not both")
			}
			var w io.Writer = cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("classify: %w", err)
				}
				defer f.Close()
				w = f
			}
			rw, err := newResultWriter(w, format)
			if err != nil {
				return fmt.Errorf("classify: %w", err)
			}
			stderr := cmd.ErrOrStderr()
			if err := checkDrainTimeout(drainTimeout); err != nil {
				return fmt.Errorf("classify: %w", err)
			}
			var workerCPU atomic.Int64
			if isLive || cmd.Flags().Changed(maxMemoryFlag) {
				if err := pf.setMaxMemory(maxMemory, workers, isLive, memoryExtra{}); err != nil {
					return fmt.Errorf("classify: %w", err)
				}
			}
			if isLive {
				pf.workerCPU = &workerCPU
				pf.workerSetup = lowerClassifierPriority("classify", stderr)
			}
			p, name, err := pf.build(cmd.Flags(), isLive, !isLive, noModel)
			if err != nil {
				return fmt.Errorf("classify: %w", err)
			}
			if pf.bound != nil {
				defer debug.SetMemoryLimit(debug.SetMemoryLimit(pf.bound.HeapLimit))
				if !isLive {
					fmt.Fprintf(stderr, "classify: %v\n", *pf.bound)
				}
			}
			start := time.Now()
			if isLive {
				err = runLive(cmd.Context(), p, rw.write, liveOptions{iface: iface, workers: workers, promisc: promisc,
					ignoreOutgoing: ignoreOutgoingOption(cmd.Flags(), ignoreOut), statsEvery: statsEvery, duration: runTime,
					workerCPU: &workerCPU, bound: pf.bound, drainTimeout: drainTimeout}, stderr)
			} else {
				err = classifyInputs(p, args, rw.write, stderr)
			}
			p.Close()
			if ferr := rw.flush(); err == nil && ferr != nil {
				err = fmt.Errorf("classify: writing results: %w", ferr)
			}
			st := p.Stats()
			el := time.Since(start)
			fmt.Fprintf(stderr, "classify: model %s, %v\n  %.1f s, %.2f Mb/s, %.0f flows/s\n  labels: %s\n",
				name, st, el.Seconds(), float64(st.Bytes)*8/1e6/el.Seconds(), float64(st.Flows)/el.Seconds(), rw.labelSummary())
			return err
		},
	}
	f := c.Flags()
	pf.register(f)
	f.StringVar(&format, "format", "jsonl", "output: jsonl or csv")
	f.StringVarP(&out, "output", "o", "", "write results here (default stdout)")
	f.StringVarP(&iface, "interface", "i", "", "capture live on this interface (Linux, needs CAP_NET_RAW)")
	f.BoolVar(&promisc, "promisc", false, "live: put the interface in promiscuous mode")
	f.BoolVar(&ignoreOut, ignoreOutgoingFlag, false, ignoreOutgoingHelp)
	f.IntVar(&workers, "workers", 1, "live: fanout capture workers, each with its own flow table")
	f.DurationVar(&statsEvery, "stats-interval", 10*time.Second, "live: print statistics to stderr this often (0: never)")
	f.DurationVar(&runTime, "duration", 0, "live: stop after this long (0: until interrupted)")
	f.BoolVar(&pf.emitEarly, "emit-early", false, "live: also write a non-final result as soon as a flow is classified")
	f.BoolVar(&noModel, "no-model", false, "load no model: every flow is reported unclassified (not shed); measures capture + flow table + representation alone")
	f.StringVar(&maxMemory, maxMemoryFlag, maxMemoryDefault, "live (files: only if set): bound the process's memory (e.g. 512MiB, 2GiB; 0 = none): sets the Go memory limit and derives the flow-table cap per worker from it (--max-flows overrides)")
	f.DurationVar(&drainTimeout, drainTimeoutFlag, drainTimeoutDefault, drainTimeoutHelp)
	return c
}

// classifyInputs classifies files in order (a directory is walked for
// capture files in sorted order, as prep does), or the in-memory sample
// when there are none.
func classifyInputs(p *classify.Pipeline, args []string, sink func(*classify.Result), stderr io.Writer) error {
	if len(args) == 0 {
		var buf bytes.Buffer
		if _, err := samplegen.Generate(&buf, samplegen.Options{Seed: 1}); err != nil {
			return fmt.Errorf("classify: generating the sample: %w", err)
		}
		r, err := capture.NewBytesReader(buf.Bytes(), "sample")
		if err != nil {
			return fmt.Errorf("classify: %w", err)
		}
		fmt.Fprintln(stderr, "classify: no file given: classifying the built-in sample traffic (netmamba sample --seed 1)")
		return classifyReader(p, r, sink, stderr)
	}
	inputs, _, skipped, err := dataset.CollectInputs(args)
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	for _, reason := range slices.Sorted(maps.Keys(skipped)) {
		fmt.Fprintf(stderr, "classify: skipped %d files: %s\n", skipped[reason], reason)
	}
	if len(inputs) == 0 {
		return fmt.Errorf("classify: no capture files (.pcap, .pcapng, .cap[.gz]) in %s", strings.Join(args, " "))
	}
	for _, in := range inputs {
		r, err := capture.Open(in.Path)
		if err != nil {
			if _, ok := errors.AsType[*capture.Error](err); ok {
				return fmt.Errorf("classify: %w", err) // names the file
			}
			if _, ok := errors.AsType[*fs.PathError](err); ok {
				return fmt.Errorf("classify: %w", err) // "open FILE: …"
			}
			return fmt.Errorf("classify: %s: %w", in.Path, err)
		}
		err = classifyReader(p, r, sink, stderr)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// classifyReader classifies one capture; a truncated or corrupt tail is a
// warning (the packets before it are classified).
func classifyReader(p *classify.Pipeline, r *capture.Reader, sink func(*classify.Result), stderr io.Writer) error {
	in := p.NewIngest(r.Name(), sink)
	err := in.ReadCapture(r)
	in.Close()
	if err != nil {
		if errors.Is(err, capture.ErrTruncated) || errors.Is(err, capture.ErrCorrupt) {
			fmt.Fprintf(stderr, "classify: warning: %v\n", err)
			return nil
		}
		return fmt.Errorf("classify: %w", err)
	}
	return nil
}

// ignoreOutgoingFlag is the --ignore-outgoing flag shared by classify and
// serve.
const (
	ignoreOutgoingFlag = "ignore-outgoing"
	ignoreOutgoingHelp = "live: drop frames this host sends (default: on for a loopback interface, where each packet is otherwise captured twice; off otherwise)"
)

// ignoreOutgoingOption is --ignore-outgoing when the user set it, else nil
// (runLive decides from the interface).
func ignoreOutgoingOption(f *pflag.FlagSet, v bool) *bool {
	if !f.Changed(ignoreOutgoingFlag) {
		return nil
	}
	return &v
}

// liveOptions configure runLive.
type liveOptions struct {
	iface   string
	workers int
	promisc bool
	// ignoreOutgoing drops frames the host sends; nil: on for a loopback
	// interface (where each packet is otherwise seen twice), else off.
	ignoreOutgoing *bool
	statsEvery     time.Duration
	duration       time.Duration
	// workerCPU is the classifier workers' CPU time (pipelineFlags.workerCPU), nil if not measured.
	workerCPU *atomic.Int64
	// bound is the memory bound's split (classify --max-memory), nil if none.
	bound *memoryBound
	// drainTimeout bounds the shutdown: flows still open are classified
	// for at most this long, the rest are shed (0: wait for every flow).
	drainTimeout time.Duration
}

// classifierNice is how much live classify lowers the scheduling priority
// (raises the nice value) of the classifier worker threads.
const classifierNice = 10

// lowerClassifierPriority is a classify.Options.WorkerSetup that raises
// the calling thread's nice value by classifierNice, so that the model
// never starves live capture of the CPU. The first failure is reported
// on stderr (prefixed with cmd), once.
func lowerClassifierPriority(cmd string, stderr io.Writer) func() {
	var once sync.Once
	return func() {
		if err := live.LowerThreadPriority(classifierNice); err != nil {
			once.Do(func() {
				fmt.Fprintf(stderr, "%s: warning: classifier threads keep their priority: %v\n", cmd, err)
			})
		}
	}
}

// liveRingMiB is the size of one capture worker's ring in MiB.
func liveRingMiB(c live.Config) int {
	bs, nb := c.BlockSize, c.NumBlocks
	if bs <= 0 {
		bs = 1 << 20 // live.Config defaults
	}
	if nb <= 0 {
		nb = 64
	}
	return bs * nb >> 20
}

// runLive captures on an interface until interrupted (or duration), with
// one Ingest per fanout worker, expiring flows on a clock and printing
// statistics every statsEvery.
func runLive(ctx context.Context, p *classify.Pipeline, sink func(*classify.Result), o liveOptions, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	workers := max(o.workers, 1)
	var ignoreOutgoing bool
	if o.ignoreOutgoing != nil {
		ignoreOutgoing = *o.ignoreOutgoing
	} else if isLo, err := live.IsLoopback(o.iface); err == nil && isLo {
		ignoreOutgoing = true
		fmt.Fprintf(stderr, "live %s: loopback interface: ignoring outgoing copies (each packet once; --ignore-outgoing=false to see both)\n", o.iface)
	}
	lcfg := live.Config{Interface: o.iface, Workers: workers, Promiscuous: o.promisc, IgnoreOutgoing: ignoreOutgoing}
	lc, err := live.Open(lcfg)
	if err != nil {
		return fmt.Errorf("classify: live capture on %s: %w", o.iface, err)
	}
	defer lc.Close()
	popts := p.Options()
	if o.bound != nil {
		fmt.Fprintf(stderr, "live %s: %v\n", o.iface, *o.bound)
		if popts.MaxFlows > o.bound.MaxFlows {
			fmt.Fprintf(stderr, "live %s: warning: --max-flows %d overrides the %d flows per table the memory bound allows: memory may exceed it\n", o.iface, popts.MaxFlows, o.bound.MaxFlows)
		}
	}
	fmt.Fprintf(stderr, "live %s: memory bounds: flow tables %d × %d flows (the least recently seen flow is evicted and reported beyond), classifier queue %d flows (flows shed and reported beyond), capture rings %d × %d MiB; no other per-flow state\n",
		o.iface, workers, popts.MaxFlows, popts.QueueLen, workers, liveRingMiB(lcfg))
	var workerNs func() time.Duration
	if o.workerCPU != nil {
		workerNs = func() time.Duration { return time.Duration(o.workerCPU.Load()) }
	} else {
		workerNs = func() time.Duration { return 0 }
	}
	procStart, wallStart := processCPU(), time.Now()
	ingests := make([]*classify.Ingest, workers)
	for i := range ingests {
		ingests[i] = p.NewIngest(fmt.Sprintf("%s#%d", o.iface, i), sink)
	}
	done, clockExited := make(chan struct{}), make(chan struct{})
	var clockCPU atomic.Int64 // CPU time of the clock goroutine's thread
	go func() {
		defer close(clockExited)
		// Pinned so that its thread's CPU clock measures the flow-table
		// expiry (timeouts, and the results of the flows they end) and
		// the statistics.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		clockStart, clockErr := live.ThreadCPUTime()
		clockNow := func() time.Duration {
			if t, err := live.ThreadCPUTime(); err == nil && clockErr == nil {
				clockCPU.Store(int64(t - clockStart))
			}
			return time.Duration(clockCPU.Load())
		}
		defer clockNow()
		clock := time.NewTicker(time.Second)
		defer clock.Stop()
		var statsC <-chan time.Time
		if o.statsEvery > 0 {
			t := time.NewTicker(o.statsEvery)
			defer t.Stop()
			statsC = t.C
		}
		last, lastT := p.Stats(), time.Now()
		lastCap, lastExp, lastWork, lastProc := time.Duration(0), clockNow(), workerNs(), processCPU()
		_, _, _, latMark := p.LatencySince(0)
		for {
			select {
			case <-done:
				return
			case now := <-clock.C:
				for _, in := range ingests {
					in.Expire(now.UnixNano())
				}
			case now := <-statsC:
				st := p.Stats()
				ks, _ := lc.Stats()
				capCPU, _ := lc.CPUTime()
				exp, work, proc := clockNow(), workerNs(), processCPU()
				var ip50, ip99 time.Duration
				var in int
				ip50, ip99, in, latMark = p.LatencySince(latMark)
				dt := now.Sub(lastT).Seconds()
				pct := func(d time.Duration) float64 { return 100 * d.Seconds() / dt }
				fmt.Fprintf(stderr, "live %s: %d pkts (%.0f pkt/s, %.2f Mb/s), %d flows (%d live, %.0f/s), kernel drops %d, shed %d, queue %d/%d, classified %d, latency p50 %v p99 %v, cpu capture %.0f%% expiry %.0f%% classifier %.0f%% other %.0f%%, interval: shed %d, classified %d, latency p50 %v p99 %v\n",
					o.iface, st.Packets, float64(st.Packets-last.Packets)/dt, float64(st.Bytes-last.Bytes)*8/1e6/dt,
					st.Flows, st.LiveFlows, float64(st.Flows-last.Flows)/dt, ks.Drops, st.Shed, st.QueueLen, st.QueueCap,
					st.Classified, st.LatencyP50.Round(time.Microsecond), st.LatencyP99.Round(time.Microsecond),
					pct(capCPU-lastCap), pct(exp-lastExp), pct(work-lastWork), pct(max(0, (proc-lastProc)-(capCPU-lastCap)-(exp-lastExp)-(work-lastWork))),
					st.Shed-last.Shed, in, ip50.Round(time.Microsecond), ip99.Round(time.Microsecond))
				last, lastT = st, now
				lastCap, lastExp, lastWork, lastProc = capCPU, exp, work, proc
			}
		}
	}()
	err = lc.Run(ctx, func(w int) live.Handler {
		in := ingests[w]
		return func(data []byte, tsNs int64, _ int) { in.Packet(capture.LinkEthernet, data, tsNs) }
	})
	close(done)
	<-clockExited
	// Flows flushed at shutdown wait for a classifier instead of being
	// shed, for at most the drain timeout; after it they are shed.
	drainStart := time.Now()
	if o.drainTimeout > 0 {
		p.Drain(o.drainTimeout)
	} else {
		p.SetBlocking(true)
	}
	open := 0
	for _, in := range ingests {
		open += in.Len()
	}
	if open > 0 {
		if o.drainTimeout > 0 {
			fmt.Fprintf(stderr, "live %s: shutting down: classifying the %d flows still open for at most %v, the rest are reported shed\n", o.iface, open, o.drainTimeout)
		} else {
			fmt.Fprintf(stderr, "live %s: shutting down: classifying the %d flows still open\n", o.iface, open)
		}
	}
	for _, in := range ingests {
		in.Close()
	}
	// (Close waits until each of its flows' final result is emitted.)
	if st := p.Stats(); open > 0 {
		fmt.Fprintf(stderr, "live %s: shutdown took %.1f s, %d flows shed at shutdown\n", o.iface, time.Since(drainStart).Seconds(), st.ShedAtShutdown)
	}
	if ks, kerr := lc.Stats(); kerr == nil {
		fmt.Fprintf(stderr, "live %s: kernel: %d packets, %d drops, %d ring freezes\n", o.iface, ks.Packets, ks.Drops, ks.FreezeQueue)
	}
	if capCPU, cerr := lc.CPUTime(); cerr == nil {
		wall := time.Since(wallStart).Seconds()
		exp, work, proc := time.Duration(clockCPU.Load()), workerNs(), processCPU()-procStart
		pct := func(d time.Duration) float64 { return 100 * d.Seconds() / wall }
		other := max(0, proc-capCPU-exp-work)
		fmt.Fprintf(stderr, "live %s: cpu over %.1f s: capture %.2f s (%.0f%% of a core), expiry %.2f s (%.0f%%), classifier %.2f s (%.0f%%), other %.2f s (%.0f%%), process %.2f s\n",
			o.iface, wall, capCPU.Seconds(), pct(capCPU), exp.Seconds(), pct(exp), work.Seconds(), pct(work), other.Seconds(), pct(other), proc.Seconds())
	}
	if err != nil {
		return fmt.Errorf("classify: live capture on %s: %w", o.iface, err)
	}
	return nil
}
