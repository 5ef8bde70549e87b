package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/live"
	"github.com/netmamba/netmamba/serve"
	"github.com/netmamba/netmamba/train"
)

// syncBuffer is a bytes.Buffer safe for one writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runServeUntil runs `netmamba serve args…` until its stderr contains
// ready, then stops it (as an interrupt would) and returns its stderr.
func runServeUntil(t *testing.T, ready string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	var out bytes.Buffer
	var errb syncBuffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"serve"}, args...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(errb.String(), ready) {
		select {
		case err := <-done:
			t.Fatalf("serve %v ended before %q: %v\n%s", args, ready, err, errb.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("serve %v: no %q within 60 s:\n%s", args, ready, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve %v: %v\n%s", args, err, errb.String())
	}
	return errb.String()
}

// canCaptureLo reports whether live capture on lo is possible here
// (root or CAP_NET_RAW, Linux).
func canCaptureLo(t *testing.T) bool {
	t.Helper()
	probe, err := live.Open(live.Config{Interface: "lo", BlockSize: 1 << 16, NumBlocks: 2})
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, live.ErrUnsupported) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	return true
}

var (
	boundTablesRE = regexp.MustCompile(`memory bound ([0-9.]+ [MG]iB) .*, flow tables (\d+) × (\d+) flows`)
	uploadCapRE   = regexp.MustCompile(`, (\d+) flows per upload table`)
	liveCapRE     = regexp.MustCompile(`memory bounds: flow tables (\d+) × (\d+) flows`)
)

// atoiMatch is the integer in submatch i of re on s (the test fails if
// there is none).
func atoiMatch(t *testing.T, re *regexp.Regexp, s string, i int) int {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %v in:\n%s", re, s)
	}
	n, err := strconv.Atoi(m[i])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestServeMaxMemoryFlag: serve's --max-memory and --drain-timeout are
// validated like classify's; a bound must hold one upload (--max-upload,
// 9× with gzip) — the default 64 MiB upload does not fit in 256 MiB — and
// the cap it derives is the one the upload table (and, live, the capture
// tables) use. Growing --max-upload by 3 MiB takes 27 MiB (9 × 3) from
// the flow tables: half of it is flow budget, so the cap drops by about
// 27 MiB / 2 / FlowBytes.
func TestServeMaxMemoryFlag(t *testing.T) {
	mpath := writeTinyRandomModel(t, []string{"a", "b"})
	if err := runCLIFail(t, "serve", "--model", mpath, "--max-memory", "lots"); !strings.Contains(err.Error(), "--max-memory") {
		t.Fatalf("--max-memory lots: %v", err)
	}
	if err := runCLIFail(t, "serve", "--model", mpath, "--drain-timeout", "-1s"); !strings.Contains(err.Error(), "--drain-timeout") {
		t.Fatalf("--drain-timeout -1s: %v", err)
	}
	err := runCLIFail(t, "serve", "--model", mpath, "--max-memory", "256MiB", "--addr", "127.0.0.1:0")
	if !strings.Contains(err.Error(), "too small") || !strings.Contains(err.Error(), "upload") {
		t.Fatalf("--max-memory 256MiB with 64 MiB uploads: %v", err)
	}

	caps := map[string]int{}
	for _, upload := range []string{"1048576", "4194304"} { // 1 and 4 MiB
		stderr := runServeUntil(t, "listening on", "--model", mpath, "--addr", "127.0.0.1:0", "--max-memory", "128MiB",
			"--max-upload", upload, "--recent", "100")
		m := boundTablesRE.FindStringSubmatch(stderr)
		if m == nil || m[1] != "128.0 MiB" || m[2] != "1" {
			t.Fatalf("--max-upload %s: no 128 MiB bound with one flow table on stderr:\n%s", upload, stderr)
		}
		derived := atoiMatch(t, boundTablesRE, stderr, 3)
		if used := atoiMatch(t, uploadCapRE, stderr, 1); used != derived {
			t.Fatalf("--max-upload %s: upload table cap %d, the bound derived %d:\n%s", upload, used, derived, stderr)
		}
		if 2*int64(derived)*classify.FlowBytes > 128<<20 {
			t.Fatalf("--max-upload %s: %d flows × %d B (and as much GC headroom) exceed 128 MiB", upload, derived, classify.FlowBytes)
		}
		caps[upload] = derived
		t.Logf("--max-memory 128MiB --max-upload %s: %d flows per table", upload, derived)
	}
	held := func(up int64) int64 { return serve.HeldBytes(serve.Config{MaxUpload: up, RecentFlows: 100}, 3) }
	want := float64(held(4<<20)-held(1<<20)) / 2 / classify.FlowBytes
	if got := float64(caps["1048576"] - caps["4194304"]); got < 0.8*want || got > 1.2*want {
		t.Fatalf("3 MiB more upload cut the cap by %.0f flows, want about %.0f", got, want)
	}
	if got := runCLIFail(t, "serve", "--model", mpath, "--max-memory", "128MiB", "--max-upload", "16777216", "--addr", "127.0.0.1:0"); !strings.Contains(got.Error(), "too small") {
		t.Fatalf("16 MiB uploads (144 MiB held) in 128 MiB: %v", got)
	}
	// Two upload slots: two tables and twice the upload bytes in the same bound.
	stderr := runServeUntil(t, "listening on", "--model", mpath, "--addr", "127.0.0.1:0", "--max-memory", "128MiB",
		"--max-upload", "1048576", "--recent", "100", "--upload-slots", "2")
	if m := boundTablesRE.FindStringSubmatch(stderr); m == nil || m[2] != "2" {
		t.Fatalf("--upload-slots 2: no bound with two flow tables on stderr:\n%s", stderr)
	}
	two := atoiMatch(t, boundTablesRE, stderr, 3)
	if want := float64(caps["1048576"]) / 2; float64(two) > want || float64(two) < 0.8*want {
		t.Fatalf("--upload-slots 2: %d flows per table, want a bit under half of one slot's %d (also 9 MiB more held)", two, caps["1048576"])
	}
	if err := runCLIFail(t, "serve", "--model", mpath, "--upload-slots", "0"); !strings.Contains(err.Error(), "--upload-slots") {
		t.Fatalf("--upload-slots 0: %v", err)
	}

	if !canCaptureLo(t) {
		t.Log("live part not run: capture on lo needs root or CAP_NET_RAW")
		return
	}
	stderr = runServeUntil(t, "memory bounds:", "--model", mpath, "--addr", "127.0.0.1:0", "-i", "lo", "--stats-interval", "0",
		"--max-memory", "256MiB", "--max-upload", "1048576", "--filter", "udp port 9")
	m := boundTablesRE.FindStringSubmatch(stderr)
	if m == nil || m[1] != "256.0 MiB" || m[2] != "2" || !strings.Contains(stderr, "live lo: memory bound") {
		t.Fatalf("live: no 256 MiB bound with two flow tables (capture + upload):\n%s", stderr)
	}
	derived := atoiMatch(t, boundTablesRE, stderr, 3)
	if tables, used := atoiMatch(t, liveCapRE, stderr, 1), atoiMatch(t, liveCapRE, stderr, 2); tables != 1 || used != derived {
		t.Fatalf("live: capture uses %d × %d flows, the bound derived %d:\n%s", tables, used, derived, stderr)
	}
	if up := atoiMatch(t, uploadCapRE, stderr, 1); up < derived {
		t.Fatalf("live: upload table cap %d below the live cap %d (it is derived first, without the live model)", up, derived)
	}
	t.Logf("live, --max-memory 256MiB: %d flows per table", derived)
}

// slowNet is a classifier whose Forward takes delay per batch; it counts
// the flows it classified.
type slowNet struct {
	train.Classifier
	delay time.Duration
	flows atomic.Int64
}

func (s *slowNet) NumClasses() int { return 2 }

func (s *slowNet) Forward(_ *train.Data, idx []int, logits []float32) error {
	time.Sleep(s.delay)
	s.flows.Add(int64(len(idx)))
	clear(logits)
	return nil
}

// TestServeDrainReportsEveryFlow runs serve's loop with live capture on lo
// and a classifier that needs 50 ms per batch of 4: 80 one-packet UDP
// flows are open (not yet at --early) when it is stopped, so classifying
// them all would take 1 s, five times the 200 ms drain timeout. Shutdown
// must therefore end by shedding, with every flow reported exactly once
// to the server's sinks: the model's flows classified, the rest shed and
// counted as shed at shutdown.
func TestServeDrainReportsEveryFlow(t *testing.T) {
	if !canCaptureLo(t) {
		t.Skip("live capture on lo needs root or CAP_NET_RAW")
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	port := rx.LocalAddr().(*net.UDPAddr).Port
	const flows, drain = 80, 200 * time.Millisecond
	net1 := &slowNet{delay: 50 * time.Millisecond}
	livePipe, err := classify.New([]train.Classifier{net1}, classify.Options{Classes: []string{"a", "b"}, Bidirectional: true,
		MaxBatch: 4, QueueLen: 8, Early: 5, EmitEarly: true, Filter: fmt.Sprintf("udp port %d", port)})
	if err != nil {
		t.Fatal(err)
	}
	defer livePipe.Close()
	upload, err := classify.New([]train.Classifier{&slowNet{}}, classify.Options{Classes: []string{"a", "b"}, Block: true})
	if err != nil {
		t.Fatal(err)
	}
	defer upload.Close()
	srv := serve.New(upload, livePipe, serve.Config{})
	defer srv.Close()
	var mu sync.Mutex
	seen := map[int]int{} // source port -> final results
	var shed, classified int
	srv.AddSink(func(r *classify.Result) {
		if !r.Final {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seen[int(r.Key.SrcPort)]++
		switch {
		case r.Shed && r.Label == classify.LabelUnclassified:
			shed++
		case !r.Shed && r.Label != classify.LabelUnclassified:
			classified++
		default:
			t.Errorf("result neither shed nor classified: %+v", r)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- serveLoop(ctx, ln, srv, livePipe, liveOptions{iface: "lo", workers: 1, drainTimeout: drain}, &stderr)
	}()
	for !strings.Contains(stderr.String(), "memory bounds:") { // the capture is open
		select {
		case err := <-done:
			t.Fatalf("serve loop ended early: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	ports := map[int]bool{}
	for range flows {
		tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Write([]byte("netmamba drain test")); err != nil {
			t.Fatal(err)
		}
		ports[tx.LocalAddr().(*net.UDPAddr).Port] = true
		defer tx.Close() // open to the end: no source port is reused
	}
	for deadline := time.Now().Add(20 * time.Second); livePipe.Stats().LiveFlows < flows; {
		if time.Now().After(deadline) {
			t.Fatalf("capture holds %d flows of the %d sent:\n%s", livePipe.Stats().LiveFlows, flows, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve loop: %v\n%s", err, stderr.String())
	}
	took := time.Since(stopped)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != flows {
		t.Fatalf("%d distinct flows reported, want %d:\n%s", len(seen), flows, stderr.String())
	}
	for p, n := range seen {
		if !ports[p] || n != 1 {
			t.Fatalf("flow from port %d reported %d times (sent: %v)", p, n, ports[p])
		}
	}
	st := livePipe.Stats()
	if got := int(net1.flows.Load()); classified != got || shed != flows-got || shed == 0 {
		t.Fatalf("%d classified, %d shed, the model saw %d: want the model's flows classified and the rest (> 0) shed", classified, shed, got)
	}
	if st.ShedAtShutdown != uint64(shed) {
		t.Fatalf("stats %v: want %d shed at shutdown", st, shed)
	}
	want := fmt.Sprintf("classifying the %d flows still open for at most %v", flows, drain)
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, stderr.String())
	}
	t.Logf("shutdown with %d open flows, drain timeout %v: %v, %d classified, %d shed", flows, drain, took.Round(time.Millisecond), classified, shed)
}
