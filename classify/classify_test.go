package classify

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netmamba/netmamba/internal/sharedtest"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/dataset"
	"github.com/netmamba/netmamba/extract"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/train"
)

// tracePath locates ../shared/data/ndpi-trace.pcapng beside the module root.
func tracePath(t testing.TB) string { return sharedtest.Path(t, "data", "ndpi-trace.pcapng") }

var testClasses = []string{"web", "mail", "chat", "video", "dns"}

// writeTinyModel saves a RANDOMLY INITIALISED tiny NetMamba classifier (a
// test fixture, not a trained model) and returns its path.
func writeTinyModel(t testing.TB, embed, depth int) string {
	t.Helper()
	m, err := model.NewRandom(arch.Config{EmbedDim: embed, Depth: depth, NumClasses: len(testClasses)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.P.HeadW {
		m.P.HeadW[i] *= 200 // spread the logits so that labels differ between flows
	}
	cfg := m.Cfg
	meta := checkpoint.Meta{Config: &cfg, Classes: testClasses}
	path := filepath.Join(t.TempDir(), "random-tiny.safetensors")
	if err := checkpoint.WriteSafetensors(path, &checkpoint.File{Tensors: m.Tensors(), Metadata: meta.Map()}, checkpoint.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadNets(t testing.TB, path string, n int) (*train.Loaded, []train.Classifier) {
	t.Helper()
	var first *train.Loaded
	var nets []train.Classifier
	for range n {
		l, err := train.LoadClassifier(path, 64, 1)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = l
		}
		nets = append(nets, l.Net)
	}
	return first, nets
}

type flowID struct {
	k     flow.Key
	first int64
}

// collector gathers final results.
type collector struct {
	mu    sync.Mutex
	final map[flowID]Result
	dup   int
	early int
}

func (c *collector) sink(r *Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.Final {
		c.early++
		return
	}
	id := flowID{r.Key, r.Stats.FirstSeenNs}
	if _, ok := c.final[id]; ok {
		c.dup++
	}
	rr := *r
	c.final[id] = rr
}

func classifyFile(t testing.TB, path string, nets []train.Classifier, opts Options) (*collector, Stats) {
	t.Helper()
	p, err := New(nets, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{final: map[flowID]Result{}}
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := p.NewIngest(path, c.sink)
	if err := in.ReadCapture(r); err != nil && !errors.Is(err, capture.ErrTruncated) {
		t.Fatal(err)
	}
	in.Close()
	p.Close()
	return c, p.Stats()
}

// TestTraceMatchesOfflinePredict classifies ndpi-trace.pcapng with the
// pipeline and checks one final result per flow with the label that the
// offline path (extract -> byte view -> model.Forward, what `netmamba prep`
// + `dataset export --format u8` + `netmamba predict` do) gives.
func TestTraceMatchesOfflinePredict(t *testing.T) {
	trace := tracePath(t)
	mpath := writeTinyModel(t, 8, 1)
	l, nets := loadNets(t, mpath, 2)
	c, st := classifyFile(t, trace, nets, Options{Classes: l.Meta.Classes, Bidirectional: true, Block: true, MaxBatch: 32})

	// Independent path: the offline extractor and the model's own Forward.
	m, _, err := model.Load(mpath)
	if err != nil {
		t.Fatal(err)
	}
	type ref struct {
		stats flow.Stats
		label string
	}
	want := map[flowID]ref{}
	var views []byte
	var ids []flowID
	var statsList []flow.Stats
	if _, err := extract.Files([]string{trace}, extract.Options{Bidirectional: true}, func(_ string, f *extract.Flow) error {
		ids = append(ids, flowID{f.Key, f.Stats.FirstSeenNs})
		statsList = append(statsList, f.Stats)
		views = append(views, f.View.Bytes[:]...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n := len(ids)
	const B = 64
	ws := m.NewWorkspace(B, 0, false)
	x := make([]float32, B*repr.ViewBytes)
	C := len(testClasses)
	logits := make([]float32, B*C)
	for lo := 0; lo < n; lo += B {
		b := min(B, n-lo)
		model.NormalizeBytes(views[lo*repr.ViewBytes:(lo+b)*repr.ViewBytes], x)
		if err := m.Forward(x, b, logits, ws); err != nil {
			t.Fatal(err)
		}
		for i := range b {
			best := 0
			for k := range C {
				if logits[i*C+k] > logits[i*C+best] {
					best = k
				}
			}
			want[ids[lo+i]] = ref{statsList[lo+i], testClasses[best]}
		}
	}
	if len(want) != n {
		t.Fatalf("offline path: %d flows but %d distinct (key, first seen)", n, len(want))
	}
	if c.dup != 0 {
		t.Errorf("%d flows reported twice", c.dup)
	}
	if len(c.final) != n || st.Flows != uint64(n) || st.Classified != uint64(n) {
		t.Fatalf("pipeline: %d results, %d flows, %d classified; offline: %d flows", len(c.final), st.Flows, st.Classified, n)
	}
	mismatch := 0
	for id, w := range want {
		r, ok := c.final[id]
		if !ok {
			t.Fatalf("flow %v missing from pipeline results", id)
		}
		if r.Label != w.label {
			mismatch++
			if mismatch < 5 {
				t.Errorf("flow %v: pipeline %q, offline predict %q", id, r.Label, w.label)
			}
		}
		if r.Stats != w.stats {
			t.Fatalf("flow %v: stats %+v, offline %+v", id, r.Stats, w.stats)
		}
		if want := min(int(w.stats.Packets), repr.ViewPackets); r.ClassifiedAtPackets != want {
			t.Fatalf("flow %v: classified at %d packets, want %d", id, r.ClassifiedAtPackets, want)
		}
		if r.Confidence <= 0 || r.Confidence > 1 || len(r.TopK) != 3 || r.TopK[0].Label != r.Label {
			t.Fatalf("flow %v: bad verdict %+v", id, r)
		}
	}
	if mismatch != 0 {
		t.Fatalf("%d of %d labels differ from the offline path", mismatch, n)
	}
	distinct := map[string]int{}
	for _, w := range want {
		distinct[w.label]++
	}
	if len(distinct) < 3 {
		t.Fatalf("the fixture model gives too few distinct labels for a meaningful check: %v", distinct)
	}
	if st.NotAssigned == 0 {
		t.Errorf("trace has non-IP frames but none were counted: %v", st)
	}
	t.Logf("%d flows, all labels equal (label counts %v); %v", n, distinct, st)
}

// TestStreamEqualsBatch checks that the recurrent per-packet path gives the
// batch path's probabilities.
func TestStreamEqualsBatch(t *testing.T) {
	trace := tracePath(t)
	mpath := writeTinyModel(t, 8, 1)
	l, nets := loadNets(t, mpath, 1)
	opts := Options{Classes: l.Meta.Classes, Bidirectional: true, Block: true, Filter: "tcp port 443"}
	batch, _ := classifyFile(t, trace, nets, opts)
	opts.Stream = true
	opts.MaxStreams = 1 << 20
	stream, st := classifyFile(t, trace, nets, opts)
	if st.Streamed == 0 || st.Streamed != st.Flows || len(stream.final) != len(batch.final) {
		t.Fatalf("streamed %d of %d flows; %d vs %d results", st.Streamed, st.Flows, len(stream.final), len(batch.final))
	}
	for id, b := range batch.final {
		s := stream.final[id]
		if s.Label != b.Label || math.Abs(s.Confidence-b.Confidence) > 1e-4 {
			t.Fatalf("flow %v: stream %s %.6f, batch %s %.6f", id, s.Label, s.Confidence, b.Label, b.Confidence)
		}
	}
	t.Logf("%d flows streamed, equal to batch", len(batch.final))
}

// TestUnknownThreshold: with a threshold above every confidence all flows
// are unknown; with temperature the confidences flatten toward 1/C.
func TestUnknownThresholdAndTemperature(t *testing.T) {
	p, err := New(nil, Options{Classes: []string{"a", "b"}, UnknownThreshold: 0.9, Temperature: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var r Result
	probs := make([]float64, 2)
	p.verdict([]float32{2, 0}, probs, &r)
	// softmax([1, 0]) = e/(e+1)
	want := math.E / (math.E + 1)
	if math.Abs(r.Confidence-want) > 1e-12 || r.Label != LabelUnknown || r.Class != 0 || r.TopK[0].Label != "a" {
		t.Fatalf("got %+v, want confidence %v and unknown", r, want)
	}
	p.verdict([]float32{0, 10}, probs, &r)
	if r.Label != "b" {
		t.Fatalf("got %+v, want b", r)
	}
}

// slowNet is a classifier that takes a fixed time per batch (overload test).
type slowNet struct {
	train.Classifier
	delay time.Duration
}

func (s slowNet) Forward(d *train.Data, idx []int, logits []float32) error {
	time.Sleep(s.delay)
	return s.Classifier.Forward(d, idx, logits)
}

// TestOverloadSheds feeds the trace looped at full speed (the capped table
// has evicted a loop's flows before the next, so they start anew) into a
// pipeline whose classifier is
// deliberately slow: flows are shed and reported, memory stays bounded,
// and once the load stops the pipeline classifies again.
func TestOverloadSheds(t *testing.T) {
	trace := tracePath(t)
	mpath := writeTinyModel(t, 8, 1)
	l, nets := loadNets(t, mpath, 1)
	raw, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	net := slowNet{nets[0], 20 * time.Millisecond}
	const maxFlows = 2000
	p, err := New([]train.Classifier{net}, Options{Classes: l.Meta.Classes, Bidirectional: true, MaxFlows: maxFlows, MaxBatch: 8, QueueLen: 64})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var results, shedResults, unclassifiedNotShed uint64
	sink := func(r *Result) {
		mu.Lock()
		results++
		if r.Shed {
			shedResults++
			if r.Label != LabelUnclassified {
				t.Errorf("shed flow labelled %q", r.Label)
			}
		} else if r.Label == LabelUnclassified {
			unclassifiedNotShed++
		}
		mu.Unlock()
	}
	in := p.NewIngest("overload", sink)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	var cp capture.Packet
	buf := make([]byte, 0, 65536)
	deadline := time.Now().Add(3 * time.Second)
	loops, fedPackets := 0, 0
	for loop := 0; time.Now().Before(deadline) && loop < 20; loop++ {
		r, err := capture.NewBytesReader(raw, trace)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next(&cp) == nil {
			buf = append(buf[:0], cp.Data...)
			in.Packet(cp.LinkType, buf, cp.TimestampNs+int64(loop)<<40)
			fedPackets++
			if fedPackets%20000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		loops++
	}
	st := p.Stats()
	if st.Shed == 0 {
		t.Fatalf("no flow shed under overload: %v", st)
	}
	if st.LiveFlows > maxFlows {
		t.Fatalf("%d live flows above the cap %d", st.LiveFlows, maxFlows)
	}
	if st.QueueHigh > st.QueueCap {
		t.Fatalf("queue high-water %d above its bound %d", st.QueueHigh, st.QueueCap)
	}
	// Bound: the table (2000 flows of ~2.3 KB) and queue are small; allow
	// 64 MB of heap growth over the 34 MB trace held in memory.
	if grow := int64(peak) - int64(base); grow > 64<<20 {
		t.Fatalf("heap grew by %d MB under overload", grow>>20)
	}
	// Recovery: after the overload, a trickle of new flows is classified.
	before := p.Stats()
	in.Flush()
	time.Sleep(200 * time.Millisecond) // let the queue drain (64 flows / 8 per 20 ms batch)
	drained := p.Stats()
	r, _ := capture.NewBytesReader(raw, trace)
	fed := 0
	for r.Next(&cp) == nil && fed < 2000 {
		in.Packet(cp.LinkType, cp.Data, cp.TimestampNs+int64(99)<<40)
		fed++
		if fed%20 == 0 {
			time.Sleep(5 * time.Millisecond) // a trickle, below the classifier's 400 flows/s
		}
	}
	time.Sleep(100 * time.Millisecond)
	trickled := p.Stats()
	newClassified := trickled.Classified - drained.Classified
	newShed := trickled.Shed - drained.Shed
	if newClassified == 0 || newShed != 0 {
		t.Fatalf("no recovery: %d flows classified, %d shed during the trickle (after overload: %v)", newClassified, newShed, before)
	}
	in.Close()
	p.Close()
	after := p.Stats()
	mu.Lock()
	defer mu.Unlock()
	if results != after.Flows {
		t.Fatalf("%d results for %d flows: some flows were not reported", results, after.Flows)
	}
	if shedResults != after.Shed || unclassifiedNotShed != 0 {
		t.Fatalf("%d shed results, %d shed counted, %d unclassified not shed", shedResults, after.Shed, unclassifiedNotShed)
	}
	t.Logf("%d loops: %d flows, %d classified, %d shed, %d evicted; heap peak +%d MB; recovery: %d classified, %d shed",
		loops, after.Flows, after.Classified, after.Shed, after.Evicted, (int64(peak)-int64(base))>>20, newClassified, newShed)
}

// recordNet is a classifier that records when each batch arrives and its
// size (batcher test); its logits are zero.
type recordNet struct {
	train.Classifier
	mu      sync.Mutex
	at      []time.Time
	sizes   []int
	classes int
}

func (r *recordNet) NumClasses() int { return r.classes }

func (r *recordNet) Forward(d *train.Data, idx []int, logits []float32) error {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	r.sizes = append(r.sizes, len(idx))
	r.mu.Unlock()
	clear(logits)
	return nil
}

// TestMaxWaitIsADeadline trickles flows into a large batch more often than
// MaxWait: the first batch must leave MaxWait after its first flow, before
// the trickle ends, not MaxWait after the last flow received (a timer reset
// on every arrival would hold it until the trickle stops).
func TestMaxWaitIsADeadline(t *testing.T) {
	const (
		maxWait = 300 * time.Millisecond
		gap     = 50 * time.Millisecond
		flows   = 20 // 1 s of trickle, well under MaxBatch
	)
	net := &recordNet{classes: 2}
	p, err := New([]train.Classifier{net}, Options{Classes: []string{"a", "b"}, MaxBatch: 64, MaxWait: maxWait, Block: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range flows {
		if i > 0 {
			time.Sleep(gap)
		}
		p.enqueue(&job{})
	}
	lastSent := time.Now()
	p.Close()
	net.mu.Lock()
	defer net.mu.Unlock()
	if len(net.at) == 0 {
		t.Fatal("no batch classified")
	}
	first := net.at[0].Sub(start)
	total := 0
	for _, n := range net.sizes {
		total += n
	}
	t.Logf("first batch of %d flows after %v (MaxWait %v); %d batches %v; trickle lasted %v",
		net.sizes[0], first, maxWait, len(net.sizes), net.sizes, lastSent.Sub(start))
	if total != flows {
		t.Fatalf("%d flows classified, want %d", total, flows)
	}
	if first < maxWait {
		t.Fatalf("first batch left after %v, before MaxWait %v with room in the batch", first, maxWait)
	}
	if !net.at[0].Before(lastSent) || net.sizes[0] >= flows {
		t.Fatalf("first batch (%d flows) left after %v, not before the trickle ended at %v: MaxWait restarts on every flow",
			net.sizes[0], first, lastSent.Sub(start))
	}
}

// TestDurationAgreesWithExport: a flow from 1.999999 ms to 3.000001 ms
// lasts 3 − 1 = 2 ms in both the classify JSON and the dataset CSV (the
// truncated difference of nanoseconds would give 1 ms), hand-computed.
func TestDurationAgreesWithExport(t *testing.T) {
	r := Result{Label: "a", Final: true}
	r.Key.IPVersion = 4
	r.Stats.FirstSeenNs, r.Stats.LastSeenNs = 1_999_999, 3_000_001
	var m map[string]any
	if err := json.Unmarshal(r.AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	if m["bidirectional_first_seen_ms"] != 1.0 || m["bidirectional_last_seen_ms"] != 3.0 || m["bidirectional_duration_ms"] != 2.0 {
		t.Fatalf("classify JSON: %v", m)
	}
	var buf bytes.Buffer
	w, err := dataset.NewFlowWriter(&buf, "csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&r.Key, &r.Stats); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(rows) != 2 || !strings.Contains(rows[1], ",1,3,2,") {
		t.Fatalf("export CSV: %q", rows)
	}
	// Before 1970 the milliseconds are floored too: −0.5 ms is −1 ms.
	r.Stats.FirstSeenNs, r.Stats.LastSeenNs = -500_000, 500_000
	if first, last, dur := dataset.FlowMillis(&r.Stats); first != -1 || last != 0 || dur != 1 {
		t.Fatalf("FlowMillis(-0.5 ms, 0.5 ms) = %d, %d, %d; want -1, 0, 1", first, last, dur)
	}
}

// TestTemperatureValidation: 0 means the default 1; negative, NaN and
// infinite temperatures are rejected.
func TestTemperatureValidation(t *testing.T) {
	p, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Options().Temperature; got != 1 {
		t.Fatalf("temperature 0 became %v, want 1", got)
	}
	p.Close()
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		if p, err := New(nil, Options{Temperature: bad}); err == nil || !strings.Contains(err.Error(), "temperature") {
			if p != nil {
				p.Close()
			}
			t.Fatalf("temperature %v: err %v, want an error", bad, err)
		}
	}
}
