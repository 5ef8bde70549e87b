package serve

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/extract"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/samplegen"
	"github.com/netmamba/netmamba/train"
)

var testClasses = []string{"web", "mail", "chat"}

// newTestPipeline builds a pipeline on a RANDOMLY INITIALISED tiny model
// (a fixture, not a trained model).
func newTestPipeline(t *testing.T, tweak ...func(*classify.Options)) *classify.Pipeline {
	t.Helper()
	m, err := model.NewRandom(arch.Config{EmbedDim: 8, Depth: 1, NumClasses: len(testClasses)}, 9)
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
	l, err := train.LoadClassifier(path, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	o := classify.Options{Classes: l.Meta.Classes, Bidirectional: true, Block: true}
	for _, f := range tweak {
		f(&o)
	}
	p, err := classify.New([]train.Classifier{l.Net}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// sampleCapture is the generated sample traffic and its flows (keys as
// "src:sport-dst:dport/proto") per the offline extractor.
func sampleCapture(t *testing.T) ([]byte, map[string]bool) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := samplegen.Generate(&buf, samplegen.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sample.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	if _, err := extract.Files([]string{path}, extract.Options{Bidirectional: true}, func(_ string, f *extract.Flow) error {
		r := classify.Result{Key: f.Key}
		var m map[string]any
		json.Unmarshal(r.AppendJSON(nil), &m)
		want[flowName(m)] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), want
}

func flowName(m map[string]any) string {
	return fmt.Sprintf("%v:%v-%v:%v/%v", m["src_ip"], m["src_port"], m["dst_ip"], m["dst_port"], m["protocol"])
}

func do(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestAPI(t *testing.T) {
	p := newTestPipeline(t)
	capBytes, want := sampleCapture(t)
	srv := New(p, nil, Config{Token: "s3cret", MaxUpload: int64(len(capBytes)) + 10})
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	if code, _ := do(t, "POST", ts.URL+"/api/classify", "", capBytes); code != http.StatusUnauthorized {
		t.Fatalf("no token: status %d", code)
	}
	if code, _ := do(t, "POST", ts.URL+"/api/classify", "wrong", capBytes); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: status %d", code)
	}
	if code, _ := do(t, "GET", ts.URL+"/healthz", "", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	big := append(append([]byte(nil), capBytes...), make([]byte, 100)...)
	if code, _ := do(t, "POST", ts.URL+"/api/classify", "s3cret", big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized upload: status %d", code)
	}
	if code, _ := do(t, "POST", ts.URL+"/api/classify", "s3cret", []byte("not a capture")); code != http.StatusBadRequest {
		t.Fatalf("garbage upload: status %d", code)
	}

	// gzip body
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(capBytes)
	zw.Close()
	code, body := do(t, "POST", ts.URL+"/api/classify?name=sample", "s3cret", gz.Bytes())
	if code != 200 {
		t.Fatalf("classify: %d %s", code, body)
	}
	var flows []map[string]any
	if err := json.Unmarshal(body, &flows); err != nil {
		t.Fatal(err)
	}
	if len(flows) != len(want) {
		t.Fatalf("%d flows returned, the extractor finds %d", len(flows), len(want))
	}
	labels := map[string]int{}
	for _, f := range flows {
		if !want[flowName(f)] {
			t.Fatalf("unexpected flow %s", flowName(f))
		}
		labels[f["label"].(string)]++
		if f["source"] != "sample" {
			t.Fatalf("source %v", f["source"])
		}
	}

	// recent flows, filtered
	for label, n := range labels {
		code, body = do(t, "GET", ts.URL+"/api/flows?limit=100000&label="+label, "s3cret", nil)
		var got []map[string]any
		if err := json.Unmarshal(body, &got); code != 200 || err != nil || len(got) != n {
			t.Fatalf("flows?label=%s: %d, %v, %d results, want %d", label, code, err, len(got), n)
		}
	}
	src := flows[0]["src_ip"].(string)
	nSrc := 0
	for _, f := range flows {
		if f["src_ip"] == src {
			nSrc++
		}
	}
	code, body = do(t, "GET", ts.URL+"/api/flows?limit=100000&src_ip="+src, "s3cret", nil)
	var got []map[string]any
	if json.Unmarshal(body, &got); len(got) != nSrc {
		t.Fatalf("flows?src_ip=%s: %d results, want %d", src, len(got), nSrc)
	}
	code, body = do(t, "GET", ts.URL+"/api/flows?limit=2", "s3cret", nil)
	if json.Unmarshal(body, &got); len(got) != 2 {
		t.Fatalf("limit=2: %d results", len(got))
	}

	// metrics
	code, body = do(t, "GET", ts.URL+"/metrics", "s3cret", nil)
	text := string(body)
	wantLine := fmt.Sprintf(`netmamba_flows_classified_total{pipeline="upload"} %d`, len(want))
	if code != 200 || !strings.Contains(text, wantLine) {
		t.Fatalf("metrics lack %q:\n%s", wantLine, text)
	}
	for label, n := range labels {
		if l := fmt.Sprintf(`netmamba_flows_by_label_total{label=%q} %d`, label, n); !strings.Contains(text, l) {
			t.Fatalf("metrics lack %q", l)
		}
	}
}

func TestCheckBind(t *testing.T) {
	for _, c := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true}, {"localhost:0", "", true}, {"[::1]:80", "", true},
		{"0.0.0.0:8080", "", false}, {":8080", "", false}, {"10.1.2.3:80", "", false},
		{"0.0.0.0:8080", "t", true}, {"nonsense", "", false},
	} {
		if err := CheckBind(c.addr, c.token); (err == nil) != c.ok {
			t.Errorf("CheckBind(%q, %q) = %v", c.addr, c.token, err)
		}
	}
}

// freePort returns a free localhost TCP port.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRedisSink starts Debian's redis-server (installed by .ci/run), sends
// an upload's results to it and reads them back.
func TestRedisSink(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not installed (apt-get install -y redis-server): %v", err)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx := context.Background()
	var rs *RedisSink
	for i := 0; ; i++ {
		if rs, err = NewRedisSink(ctx, addr); err == nil {
			break
		}
		if i == 50 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p := newTestPipeline(t)
	capBytes, want := sampleCapture(t)
	srv := New(p, nil, Config{})
	defer srv.Close()
	srv.AddSink(rs.Add)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	code, body := do(t, "POST", ts.URL+"/api/classify", "", capBytes)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var flows []map[string]any
	json.Unmarshal(body, &flows)
	rs.Close() // drains the queue
	if w, d, f := rs.Counts(); w != uint64(len(want)) || d != 0 || f != 0 {
		t.Fatalf("redis: %d written, %d dropped, %d failed; want %d", w, d, f, len(want))
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	n, err := c.XLen(ctx, "netmamba:flows").Result()
	if err != nil || n != int64(len(want)) {
		t.Fatalf("XLEN = %d, %v; want %d", n, err, len(want))
	}
	entries, err := c.XRange(ctx, "netmamba:flows", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		var m map[string]any
		if err := json.Unmarshal([]byte(e.Values["json"].(string)), &m); err != nil {
			t.Fatal(err)
		}
		if !want[flowName(m)] || m["label"] != e.Values["label"] {
			t.Fatalf("entry %d: %v", i, e.Values)
		}
	}
	f := flows[0]
	h, err := c.HGetAll(ctx, "netmamba:flow:"+flowName(f)).Result()
	if err != nil || h["label"] != f["label"] || h["packets"] != fmt.Sprint(f["bidirectional_packets"]) {
		t.Fatalf("HGETALL %s = %v, %v; want label %v packets %v", flowName(f), h, err, f["label"], f["bidirectional_packets"])
	}
	if ttl, _ := c.TTL(ctx, "netmamba:flow:"+flowName(f)).Result(); ttl <= 0 {
		t.Fatalf("flow hash has no expiry: %v", ttl)
	}
}

// TestDashboardChromium loads the dashboard in headless Chromium (installed
// by .ci/run), checks that the rendered DOM lists the uploaded flows and
// saves a screenshot.
func TestDashboardChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatal("chromium not installed (apt-get install -y chromium)")
	}
	p := newTestPipeline(t)
	capBytes, _ := sampleCapture(t)
	srv := New(p, nil, Config{SeriesEvery: 100 * time.Millisecond})
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	code, body := do(t, "POST", ts.URL+"/api/classify", "", capBytes)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var flows []map[string]any
	json.Unmarshal(body, &flows)
	time.Sleep(300 * time.Millisecond) // a few time-series points

	dir := t.TempDir()
	args := func(extra ...string) []string {
		return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--virtual-time-budget=5000"}, extra...)
	}
	run := func(a []string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, a...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", a, err)
		}
		return out
	}
	dom := string(run(args("--dump-dom", ts.URL+"/")))
	if !strings.Contains(dom, `data-loaded="1"`) {
		t.Fatalf("dashboard did not load its data:\n%.2000s", dom)
	}
	rows := strings.Count(dom, "<tr>") - 1 // minus the header row
	if rows != min(50, len(flows)) {
		t.Fatalf("dashboard shows %d flow rows, want %d", rows, min(50, len(flows)))
	}
	last := flows[len(flows)-1] // newest result first in the table
	if !strings.Contains(dom, fmt.Sprintf("%v:%v", last["src_ip"], last["src_port"])) {
		t.Fatalf("dashboard lacks the newest flow %v", flowName(last))
	}
	shot := filepath.Join(dir, "dashboard.png")
	run(args("--window-size=1200,900", "--screenshot="+shot, ts.URL+"/"))
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %v (%d bytes)", shot, err, len(png))
	}
	if keep := os.Getenv("NETMAMBA_KEEP_SCREENSHOT"); keep != "" {
		os.WriteFile(keep, png, 0o644)
	}
	t.Logf("dashboard: %d rows; screenshot %s (%d bytes)", rows, shot, len(png))
}

// udpFlowsCapture is a raw-IP pcap of n UDP flows of 6 packets each, one
// after the other.
func udpFlowsCapture(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := capture.NewPcapWriter(&buf, capture.PcapWriterOptions{LinkType: capture.LinkRaw})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for k := range 6 {
			pkt := make([]byte, 28+32)
			pkt[0], pkt[8], pkt[9] = 0x45, 64, 17
			binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
			copy(pkt[12:], []byte{10, 0, byte(i >> 8), byte(i)})
			copy(pkt[16:], []byte{10, 1, 0, 1})
			binary.BigEndian.PutUint16(pkt[20:], uint16(20000+i))
			binary.BigEndian.PutUint16(pkt[22:], 5000)
			binary.BigEndian.PutUint16(pkt[24:], uint16(len(pkt)-20))
			if err := w.WritePacket(int64(i)*120e9+int64(k)*1e6, pkt, len(pkt)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf.Bytes()
}

// StopUploads cuts an upload in flight short: the client gets 503, every
// flow read before is still reported (none lost), later uploads get 503,
// and the upload pipeline can then be closed (before, a handler still
// feeding it after the HTTP server's grace period raced with Close).
func TestStopUploadsDuringUpload(t *testing.T) {
	// Early results come from the classifier while the capture is read; a
	// short queue makes the reader wait for the classifier the sink holds.
	p := newTestPipeline(t, func(o *classify.Options) { o.EmitEarly, o.QueueLen = true, 2 })
	const flows = 1000
	body := udpFlowsCapture(t, flows)
	srv := New(p, nil, Config{MaxUpload: int64(len(body))})
	defer srv.Close()
	reached := make(chan struct{})
	var held atomic.Bool
	var finals atomic.Uint64
	srv.AddSink(func(r *classify.Result) {
		if r.Final {
			finals.Add(1)
		}
		if held.CompareAndSwap(false, true) { // hold the first result until StopUploads is under way
			close(reached)
			<-srv.upAbort
		}
	})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	type reply struct {
		code int
		body string
		err  error
	}
	got := make(chan reply, 1)
	go func() {
		resp, err := http.Post(ts.URL+"/api/classify", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			got <- reply{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- reply{code: resp.StatusCode, body: string(b)}
	}()
	<-reached
	srv.StopUploads(0) // returns once the handler has; 0: classify every flow read
	var r reply
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no reply 30 s after StopUploads returned")
	}
	if r.err != nil || r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "shutting down") {
		t.Fatalf("upload cut short: status %d, body %.200q, error %v; want 503 shutting down", r.code, r.body, r.err)
	}
	st := p.Stats()
	if st.Flows == 0 || st.Flows >= flows {
		t.Fatalf("%d flows started, want some but not all %d (the read was not cut short)", st.Flows, flows)
	}
	if finals.Load() != st.Flows || st.LiveFlows != 0 {
		t.Fatalf("%d flows started, %d final results, %d still live: flows lost", st.Flows, finals.Load(), st.LiveFlows)
	}
	if st.Shed != 0 || st.Classified != st.Flows {
		t.Fatalf("drain 0 (wait for every flow): %d of %d flows classified, %d shed", st.Classified, st.Flows, st.Shed)
	}
	if code, _ := do(t, "POST", ts.URL+"/api/classify", "", body); code != http.StatusServiceUnavailable {
		t.Fatalf("upload after StopUploads: status %d, want 503", code)
	}
	t.Logf("cut short after %d of %d flows; %d final results (%d classified, %d shed)", st.Flows, flows, finals.Load(), st.Classified, st.Shed)
}

// With one upload slot, a second upload waits UploadWait for it and then
// gets 503 with Retry-After; once the first is done, uploads go through
// again. HeldBytes counts each slot's body and gzip expansion.
func TestUploadSlots(t *testing.T) {
	p := newTestPipeline(t, func(o *classify.Options) { o.EmitEarly, o.QueueLen = true, 2 })
	body := udpFlowsCapture(t, 50)
	srv := New(p, nil, Config{MaxUpload: int64(len(body)), UploadSlots: 1, UploadWait: 200 * time.Millisecond})
	defer srv.Close()
	reached, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	srv.AddSink(func(*classify.Result) {
		if held.CompareAndSwap(false, true) { // hold the first upload in its slot
			close(reached)
			<-release
		}
	})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(ts.URL+"/api/classify", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			first <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-reached
	resp, err := http.Post(ts.URL+"/api/classify", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(msg), "busy") {
		t.Fatalf("second upload while the only slot is taken: status %d, Retry-After %q, body %.200q; want 503 busy with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), msg)
	}
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first upload: status %d", code)
	}
	if code, out := do(t, "POST", ts.URL+"/api/classify", "", body); code != http.StatusOK || !strings.HasPrefix(string(out), "[{") {
		t.Fatalf("upload after the slot was freed: status %d, body %.200q", code, out)
	}
	one, two := HeldBytes(Config{MaxUpload: 1 << 20}, 3), HeldBytes(Config{MaxUpload: 1 << 20, UploadSlots: 2}, 3)
	if two-one != (1+GzipExpansion)<<20 {
		t.Fatalf("HeldBytes: a second slot adds %d bytes, want %d", two-one, (1+GzipExpansion)<<20)
	}
}

// A client still sending its body does not hold StopUploads: the read is
// cut and the handler returns.
func TestStopUploadsSlowBody(t *testing.T) {
	p := newTestPipeline(t)
	srv := New(p, nil, Config{MaxUpload: 1 << 20})
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		req, _ := http.NewRequest("POST", ts.URL+"/api/classify", pr)
		req.ContentLength = 1 << 19 // promises more than it sends
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write(make([]byte, 1000)); err != nil { // the handler is reading the body now
		t.Fatal(err)
	}
	for len(srv.upSlots) == 0 {
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { srv.StopUploads(0); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("StopUploads still waiting for a client that stopped sending its body after 20 s")
	}
}
