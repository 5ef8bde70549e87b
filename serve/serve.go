// Package serve runs the classify pipeline as a long-running HTTP service:
//
//	POST /api/classify  body: a pcap/pcapng capture, optionally gzip-compressed
//	                    → JSON array of its flows' results (classify.Result fields)
//	GET  /api/flows     ?label=&src_ip=&limit= recent final results, newest first (bounded ring)
//	GET  /api/stats     pipeline counters and the time series the dashboard draws
//	GET  /metrics       Prometheus text format
//	GET  /healthz       "ok"
//	GET  /              the dashboard (embedded HTML/JS, no external assets)
//
// With a token every endpoint but /healthz and the dashboard page needs
// "Authorization: Bearer TOKEN" (the dashboard reads the token from its URL
// fragment, #token=...). Results can also be written to Redis (RedisSink).
package serve

import (
	"bytes"
	"compress/gzip"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/dataset"
)

//go:embed dashboard.html
var dashboardHTML []byte

// Config configures a Server.
type Config struct {
	// Token, when set, is required as "Authorization: Bearer TOKEN".
	Token string
	// MaxUpload bounds a POST /api/classify body in bytes (0: 64 MiB); a
	// gzip body may decompress to at most 8 × MaxUpload.
	MaxUpload int64
	// RecentFlows is the size of the ring of recent results (0: 10000).
	RecentFlows int
	// UploadSlots is how many uploads are read and classified at once
	// (0: 1); each holds up to (1 + GzipExpansion) × MaxUpload bytes and a
	// flow table. Further uploads wait up to UploadWait (0: 30 s) for a
	// slot, then get 503 with Retry-After, so memory stays bounded.
	UploadSlots int
	UploadWait  time.Duration
	// SeriesEvery is the dashboard time-series step (0: 1 s); SeriesLen
	// the number of steps kept (0: 300).
	SeriesEvery time.Duration
	SeriesLen   int
}

// CheckBind refuses a non-loopback listen address without a token.
func CheckBind(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("serve: listen address %q: %w", addr, err)
	}
	if token != "" {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("serve: binding to %q (not loopback) needs --token", addr)
	}
	return nil
}

// Server is the HTTP front end of one or two pipelines: uploads (which
// should block rather than shed) and an optional live capture.
type Server struct {
	cfg    Config
	upload *classify.Pipeline
	live   *classify.Pipeline
	reg    *prometheus.Registry
	labels *prometheus.CounterVec
	mux    *http.ServeMux
	extra  []func(*classify.Result)

	mu     sync.Mutex // guards ring, series, tick counts
	ring   []classify.Result
	next   int
	filled bool
	series []point
	tick   map[string]uint64
	last   classify.Stats
	lastT  time.Time
	stop   chan struct{}
	done   chan struct{}

	// In-flight uploads, for StopUploads.
	upMu      sync.Mutex
	upIdle    *sync.Cond // signalled when upRunning drops to 0
	upRunning int
	upAbort   chan struct{} // closed by StopUploads: stop reading captures
	upSlots   chan struct{} // one token per upload being read (UploadSlots)
}

// point is one step of the dashboard's time series.
type point struct {
	T       int64             `json:"t"` // unix ms
	Labels  map[string]uint64 `json:"labels"`
	Mbps    float64           `json:"mbps"`
	Pps     float64           `json:"pps"`
	FlowsPS float64           `json:"flows_per_s"`
}

// GzipExpansion is how many times MaxUpload a gzip upload may decompress to.
const GzipExpansion = 8

// WithDefaults returns c with its zero fields set to their defaults (what
// New uses).
func (c Config) WithDefaults() Config {
	if c.MaxUpload <= 0 {
		c.MaxUpload = 64 << 20
	}
	if c.RecentFlows <= 0 {
		c.RecentFlows = 10000
	}
	if c.UploadSlots <= 0 {
		c.UploadSlots = 1
	}
	if c.UploadWait <= 0 {
		c.UploadWait = 30 * time.Second
	}
	if c.SeriesEvery <= 0 {
		c.SeriesEvery = time.Second
	}
	if c.SeriesLen <= 0 {
		c.SeriesLen = 300
	}
	return c
}

// HeldBytes is the most heap a server with cfg holds outside its
// pipelines, for results with topK predictions each: the ring of recent
// results and the UploadSlots uploads in progress — each its body and,
// gzip-compressed, the capture it decompresses to: (1 + 8) × MaxUpload.
// The uploads' flows (one flow table each, bounded by the upload
// pipeline's MaxFlows) and their JSON responses (about 1 KB per flow)
// come in addition.
func HeldBytes(cfg Config, topK int) int64 {
	cfg = cfg.WithDefaults()
	result := int64(unsafe.Sizeof(classify.Result{})) + int64(max(topK, 0))*int64(unsafe.Sizeof(classify.Prediction{}))
	return int64(cfg.UploadSlots)*(1+GzipExpansion)*cfg.MaxUpload + int64(cfg.RecentFlows)*result
}

// New builds a server over the upload pipeline and the optional live one.
func New(upload, live *classify.Pipeline, cfg Config) *Server {
	cfg = cfg.WithDefaults()
	s := &Server{cfg: cfg, upload: upload, live: live, reg: prometheus.NewRegistry(),
		ring: make([]classify.Result, cfg.RecentFlows), tick: map[string]uint64{},
		stop: make(chan struct{}), done: make(chan struct{}), lastT: time.Now(), upAbort: make(chan struct{}),
		upSlots: make(chan struct{}, cfg.UploadSlots)}
	s.upIdle = sync.NewCond(&s.upMu)
	s.labels = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netmamba_flows_by_label_total",
		Help: "Final flow results by label."}, []string{"label"})
	s.reg.MustRegister(s.labels, &collector{s: s})
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /api/classify", s.auth(s.handleClassify))
	s.mux.HandleFunc("GET /api/flows", s.auth(s.handleFlows))
	s.mux.HandleFunc("GET /api/stats", s.auth(s.handleStats))
	s.mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}).ServeHTTP))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(dashboardHTML)
	})
	go s.sampler()
	return s
}

// AddSink registers another consumer of every result (e.g. RedisSink.Add).
// Call it before results flow.
func (s *Server) AddSink(f func(*classify.Result)) { s.extra = append(s.extra, f) }

// Handler is the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// StopUploads ends the uploads: new ones are refused (503), those in
// flight stop reading their body or capture (a reply still being written
// gets 1 s), their upload pipeline drains — flows read so far are
// classified for at most drain (<= 0: all of them), then reported shed, so
// every one still reaches the sinks — and StopUploads returns once every
// upload handler has returned; the upload pipeline may then be closed.
// Call it after http.Server.Shutdown has given uploads their grace period.
// Later calls only wait.
func (s *Server) StopUploads(drain time.Duration) {
	s.upMu.Lock()
	if !s.stopping() {
		close(s.upAbort)
		if s.upRunning > 0 && drain > 0 {
			s.upload.Drain(drain)
		}
	}
	for s.upRunning > 0 {
		s.upIdle.Wait()
	}
	s.upMu.Unlock()
}

// stopping reports whether StopUploads has been called.
func (s *Server) stopping() bool {
	select {
	case <-s.upAbort:
		return true
	default:
		return false
	}
}

// beginUpload registers an upload in flight; false when StopUploads has
// been called.
func (s *Server) beginUpload() bool {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	if s.stopping() { // upAbort is closed under upMu
		return false
	}
	s.upRunning++
	return true
}

func (s *Server) endUpload() {
	s.upMu.Lock()
	if s.upRunning--; s.upRunning == 0 {
		s.upIdle.Broadcast()
	}
	s.upMu.Unlock()
}

// errShuttingDown ends an upload cut short by StopUploads.
var errShuttingDown = errors.New("server shutting down: the upload was cut short (the flows read before are in /api/flows and the other sinks); retry")

// Close stops the time-series sampler.
func (s *Server) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		<-s.done
	}
}

// Sink records one result (use it as the Ingest sink of live capture).
func (s *Server) Sink(r *classify.Result) {
	for _, f := range s.extra {
		f(r)
	}
	if !r.Final {
		return
	}
	s.labels.WithLabelValues(r.Label).Inc()
	s.mu.Lock()
	s.ring[s.next] = *r
	s.ring[s.next].TopK = append([]classify.Prediction(nil), r.TopK...)
	s.next++
	if s.next == len(s.ring) {
		s.next, s.filled = 0, true
	}
	s.tick[r.Label]++
	s.mu.Unlock()
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="netmamba"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (s *Server) handleClassify(w http.ResponseWriter, r *http.Request) {
	if !s.beginUpload() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.endUpload()
	// Wait for an upload slot before reading the body: the slots bound
	// what uploads hold (HeldBytes).
	wait := time.NewTimer(s.cfg.UploadWait)
	select {
	case s.upSlots <- struct{}{}:
		wait.Stop()
		defer func() { <-s.upSlots }()
	case <-wait.C:
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("busy: %d upload(s) in progress (--upload-slots); retry later", s.cfg.UploadSlots), http.StatusServiceUnavailable)
		return
	case <-s.upAbort:
		wait.Stop()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		wait.Stop()
		return
	}
	// StopUploads must not wait on a client: when it is called, a body
	// still arriving stops being read and the reply gets 1 s to be sent.
	handled := make(chan struct{})
	defer close(handled)
	go func() {
		select {
		case <-s.upAbort:
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Now()) // errors: the connection cannot time out; nothing better to do
			_ = rc.SetWriteDeadline(time.Now().Add(time.Second))
		case <-handled:
		}
	}()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload))
	if err != nil {
		if s.stopping() {
			http.Error(w, errShuttingDown.Error(), http.StatusServiceUnavailable)
			return
		}
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			http.Error(w, fmt.Sprintf("capture larger than --max-upload %d bytes", s.cfg.MaxUpload), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			http.Error(w, "gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		limit := GzipExpansion * s.cfg.MaxUpload
		plain, err := io.ReadAll(io.LimitReader(zr, limit+1))
		if err != nil {
			http.Error(w, "gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		if int64(len(plain)) > limit {
			http.Error(w, fmt.Sprintf("capture decompresses to more than %d bytes", limit), http.StatusRequestEntityTooLarge)
			return
		}
		body = plain
	}
	name := "upload"
	if q := r.URL.Query().Get("name"); q != "" {
		name = q
	}
	cr, err := capture.NewBytesReader(body, name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var mu sync.Mutex
	var out []json.RawMessage
	in := s.upload.NewIngest(name, func(res *classify.Result) {
		s.Sink(res)
		if !res.Final {
			return
		}
		mu.Lock()
		out = append(out, res.AppendJSON(nil))
		mu.Unlock()
	})
	rerr := in.ReadCaptureUntil(cr, s.upAbort)
	in.Close()
	if errors.Is(rerr, classify.ErrReadStopped) {
		http.Error(w, errShuttingDown.Error(), http.StatusServiceUnavailable)
		return
	}
	if rerr != nil && !capture.IsTruncated(rerr) && len(out) == 0 {
		http.Error(w, rerr.Error(), http.StatusBadRequest)
		return
	}
	if rerr != nil {
		w.Header().Set("X-Netmamba-Warning", strings.ReplaceAll(rerr.Error(), "\n", " "))
	}
	if out == nil {
		out = []json.RawMessage{}
	}
	writeJSON(w, out)
}

func (s *Server) handleFlows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	label, srcIP := q.Get("label"), q.Get("src_ip")
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "limit: want a non-negative integer", http.StatusBadRequest)
			return
		}
		limit = n
	}
	out := []json.RawMessage{}
	s.mu.Lock()
	n := s.next
	if s.filled {
		n = len(s.ring)
	}
	for i := 0; i < n && len(out) < limit; i++ {
		res := &s.ring[(s.next-1-i+len(s.ring))%len(s.ring)]
		if label != "" && res.Label != label {
			continue
		}
		if srcIP != "" {
			src, _ := dataset.KeyAddrs(&res.Key)
			if src.String() != srcIP {
				continue
			}
		}
		out = append(out, res.AppendJSON(nil))
	}
	s.mu.Unlock()
	writeJSON(w, out)
}

// statsJSON is the /api/stats body.
type statsJSON struct {
	Upload classify.Stats  `json:"upload"`
	Live   *classify.Stats `json:"live,omitempty"`
	Series []point         `json:"series"`
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	st := statsJSON{Upload: s.upload.Stats()}
	if s.live != nil {
		ls := s.live.Stats()
		st.Live = &ls
	}
	s.mu.Lock()
	st.Series = append([]point(nil), s.series...)
	s.mu.Unlock()
	writeJSON(w, st)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// total sums the two pipelines' stats.
func (s *Server) total() classify.Stats {
	t := s.upload.Stats()
	if s.live != nil {
		l := s.live.Stats()
		t.Packets += l.Packets
		t.Bytes += l.Bytes
		t.Flows += l.Flows
	}
	return t
}

// sampler appends a time-series point every SeriesEvery.
func (s *Server) sampler() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.SeriesEvery)
	defer t.Stop()
	s.last = s.total()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			cur := s.total()
			s.mu.Lock()
			dt := now.Sub(s.lastT).Seconds()
			p := point{T: now.UnixMilli(), Labels: s.tick,
				Mbps:    float64(cur.Bytes-s.last.Bytes) * 8 / 1e6 / dt,
				Pps:     float64(cur.Packets-s.last.Packets) / dt,
				FlowsPS: float64(cur.Flows-s.last.Flows) / dt}
			s.tick = map[string]uint64{}
			s.series = append(s.series, p)
			if len(s.series) > s.cfg.SeriesLen {
				s.series = s.series[len(s.series)-s.cfg.SeriesLen:]
			}
			s.last, s.lastT = cur, now
			s.mu.Unlock()
		}
	}
}

// collector exports the pipelines' counters to Prometheus.
type collector struct{ s *Server }

var (
	descPackets    = prometheus.NewDesc("netmamba_packets_total", "Frames read.", []string{"pipeline"}, nil)
	descBytes      = prometheus.NewDesc("netmamba_bytes_total", "Captured bytes read.", []string{"pipeline"}, nil)
	descFlows      = prometheus.NewDesc("netmamba_flows_total", "Flows started.", []string{"pipeline"}, nil)
	descClassified = prometheus.NewDesc("netmamba_flows_classified_total", "Flows classified by the model.", []string{"pipeline"}, nil)
	descShed       = prometheus.NewDesc("netmamba_flows_shed_total", "Flows not classified because the classifier queue was full.", []string{"pipeline"}, nil)
	descUnknown    = prometheus.NewDesc("netmamba_flows_unknown_total", "Flows below the unknown threshold.", []string{"pipeline"}, nil)
	descNotIP      = prometheus.NewDesc("netmamba_packets_not_assigned_total", "Frames that joined no flow (non-IP, malformed).", []string{"pipeline"}, nil)
	descEvicted    = prometheus.NewDesc("netmamba_flows_evicted_total", "Flows ended by the flow-table cap.", []string{"pipeline"}, nil)
	descLive       = prometheus.NewDesc("netmamba_live_flows", "Flows in the flow tables.", []string{"pipeline"}, nil)
	descQueue      = prometheus.NewDesc("netmamba_classifier_queue_flows", "Flows waiting for a classifier.", []string{"pipeline"}, nil)
	descLatency    = prometheus.NewDesc("netmamba_classification_latency_seconds", "Queue-to-verdict latency over the last 4096 flows.", []string{"pipeline", "quantile"}, nil)
)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descBytes, descFlows, descClassified, descShed, descUnknown, descNotIP, descEvicted, descLive, descQueue, descLatency} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(name string, st classify.Stats) {
		cnt := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
		cnt(descPackets, st.Packets)
		cnt(descBytes, st.Bytes)
		cnt(descFlows, st.Flows)
		cnt(descClassified, st.Classified)
		cnt(descShed, st.Shed)
		cnt(descUnknown, st.Unknown)
		cnt(descNotIP, st.NotAssigned)
		cnt(descEvicted, st.Evicted)
		ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(st.LiveFlows), name)
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(st.QueueLen), name)
		ch <- prometheus.MustNewConstMetric(descLatency, prometheus.GaugeValue, st.LatencyP50.Seconds(), name, "0.5")
		ch <- prometheus.MustNewConstMetric(descLatency, prometheus.GaugeValue, st.LatencyP99.Seconds(), name, "0.99")
	}
	emit("upload", c.s.upload.Stats())
	if c.s.live != nil {
		emit("live", c.s.live.Stats())
	}
}
