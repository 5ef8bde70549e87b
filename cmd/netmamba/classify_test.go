package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/live"
)

const classifyTrace = "../../../shared/data/ndpi-trace.pcapng"

// writeTinyRandomModel saves a RANDOMLY INITIALISED tiny NetMamba
// classifier (a test fixture, not a trained model).
func writeTinyRandomModel(t *testing.T, classes []string) string {
	t.Helper()
	return writeTinyReprModel(t, classes, checkpoint.ReprMeta{}, "random-tiny")
}

func runCLIErr(t *testing.T, args ...string) (string, string) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("netmamba %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// flowKeyOf is the identity of a flow in the nfstream-style output.
func flowKeyOf(m map[string]any) string {
	return fmt.Sprint(m["src_ip"], m["src_port"], m["dst_ip"], m["dst_port"], m["protocol"], m["vlan_id"], m["bidirectional_first_seen_ms"])
}

// TestClassifyMatchesPrepExportPredict is the acceptance check through the
// CLI: `classify --format jsonl` on ndpi-trace.pcapng (restricted by a
// filter to keep the test short) gives one result per flow, with the
// label that `prep` + `dataset export --format u8` + `predict` give on the
// same flows.
func TestClassifyMatchesPrepExportPredict(t *testing.T) {
	if _, err := os.Stat(classifyTrace); err != nil {
		t.Fatalf("test data missing: %v", err)
	}
	classes := []string{"a", "b", "c", "d"}
	mpath := writeTinyRandomModel(t, classes)
	const filter = "tcp port 443 or udp"
	dir := t.TempDir()
	ds := filepath.Join(dir, "x.nmds")
	runCLI(t, "prep", "-q", "--filter", filter, "-o", ds, classifyTrace)
	runCLI(t, "dataset", "export", "--format", "u8", "-o", filepath.Join(dir, "x.u8"), ds)
	runCLI(t, "dataset", "export", "--format", "jsonl", "-o", filepath.Join(dir, "x.jsonl"), ds)
	runCLI(t, "predict", "--model", mpath, "--bytes", filepath.Join(dir, "x.u8"), "--logits", filepath.Join(dir, "x.f32"))

	// Offline labels, keyed by flow identity.
	raw, err := os.ReadFile(filepath.Join(dir, "x.f32"))
	if err != nil {
		t.Fatal(err)
	}
	jf, err := os.Open(filepath.Join(dir, "x.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer jf.Close()
	want := map[string]string{}
	C := len(classes)
	sc := bufio.NewScanner(jf)
	sc.Buffer(nil, 1<<20)
	row := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("export jsonl row %d: %v", row, err)
		}
		best := 0
		for k := range C {
			v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(row*C+k):]))
			if v > math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(row*C+best):])) {
				best = k
			}
		}
		want[flowKeyOf(m)] = classes[best]
		row++
	}
	if row*C*4 != len(raw) || row < 100 {
		t.Fatalf("%d exported flows, %d logits bytes", row, len(raw))
	}

	out, stderr := runCLIErr(t, "classify", "--model", mpath, "--format", "jsonl", "--filter", filter, classifyTrace)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != row {
		t.Fatalf("classify wrote %d results, prep exported %d flows", len(lines), row)
	}
	seen := map[string]bool{}
	for i, ln := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("result %d: %v: %s", i, err, ln)
		}
		for _, f := range []string{"src_ip", "src_port", "dst_ip", "dst_port", "protocol", "bidirectional_packets", "label", "confidence", "classified_at_packets"} {
			if _, ok := m[f]; !ok {
				t.Fatalf("result %d lacks %q: %s", i, f, ln)
			}
		}
		if _, ok := m["confidence"].(float64); !ok {
			t.Fatalf("confidence is not a number: %s", ln)
		}
		k := flowKeyOf(m)
		if seen[k] {
			t.Fatalf("flow reported twice: %s", ln)
		}
		seen[k] = true
		w, ok := want[k]
		if !ok {
			t.Fatalf("flow not in prep's dataset: %s", ln)
		}
		if m["label"] != w {
			t.Fatalf("flow %s: classify %v, predict %s", k, m["label"], w)
		}
	}
	distinct := map[string]bool{}
	for _, l := range want {
		distinct[l] = true
	}
	if len(distinct) < 2 {
		t.Fatalf("the fixture model gives one label only: the check would be trivial")
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d flows: %d classified", row, row)) {
		t.Fatalf("summary: %s", stderr)
	}
	t.Logf("%d flows, labels equal to prep+export+predict; summary:\n%s", row, stderr)
}

// TestClassifyCSVAndThreshold checks the CSV header (nfstream names) and
// that --unknown-threshold 1 makes every flow unknown.
func TestClassifyCSVAndThreshold(t *testing.T) {
	mpath := writeTinyRandomModel(t, []string{"a", "b", "c"})
	out, _ := runCLIErr(t, "classify", "--model", mpath, "--format", "csv", "--filter", "udp port 53", "--unknown-threshold", "1", classifyTrace)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 10 {
		t.Fatalf("only %d CSV lines", len(lines))
	}
	if !strings.HasPrefix(lines[0], "src_ip,src_port,dst_ip,dst_port,protocol,ip_version,vlan_id,bidirectional_first_seen_ms,") ||
		!strings.Contains(lines[0], ",label,confidence,top_k,classified_at_packets,shed,") {
		t.Fatalf("header: %s", lines[0])
	}
	for _, ln := range lines[1:] {
		if !strings.Contains(ln, ",unknown,") || !strings.Contains(ln, ",53,17,") && !strings.Contains(ln, ",17,") {
			t.Fatalf("row: %s", ln)
		}
	}
}

// classifyHTTPDir is a directory of real single-flow captures.
const classifyHTTPDir = "../../../shared/data/ndpi-app/test/HTTP"

// TestClassifyDirAgreesWithExport classifies a directory (walked in sorted
// order, as prep walks it) and checks that every flow's nfstream fields,
// bidirectional_duration_ms included, equal what `prep` + `dataset export`
// write for the same flow.
func TestClassifyDirAgreesWithExport(t *testing.T) {
	entries, err := os.ReadDir(classifyHTTPDir)
	if err != nil {
		t.Fatalf("test data missing: %v", err)
	}
	mpath := writeTinyRandomModel(t, []string{"a", "b"})
	dir := t.TempDir()
	ds := filepath.Join(dir, "http.nmds")
	runCLI(t, "prep", "-q", "-o", ds, classifyHTTPDir)
	runCLI(t, "dataset", "export", "--format", "jsonl", "-o", filepath.Join(dir, "x.jsonl"), ds)
	raw, err := os.ReadFile(filepath.Join(dir, "x.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	fields := []string{"bidirectional_first_seen_ms", "bidirectional_last_seen_ms", "bidirectional_duration_ms",
		"bidirectional_packets", "bidirectional_bytes", "src2dst_packets", "dst2src_packets"}
	exported := map[string]map[string]any{}
	for i, ln := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("export row %d: %v", i, err)
		}
		exported[flowKeyOf(m)] = m
	}
	out, _ := runCLIErr(t, "classify", "--model", mpath, classifyHTTPDir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < len(entries) || len(exported) == 0 {
		t.Fatalf("classify wrote %d results for %d files, export %d flows", len(lines), len(entries), len(exported))
	}
	matched, lastSource, sources := 0, "", 0
	for i, ln := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("result %d: %v: %s", i, err, ln)
		}
		src, _ := m["source"].(string)
		if src < lastSource {
			t.Fatalf("result %d from %s after %s: files not in sorted order", i, src, lastSource)
		}
		if src != lastSource {
			sources++
		}
		lastSource = src
		e, ok := exported[flowKeyOf(m)]
		if !ok {
			continue // prep keeps flows by its own rules; compare the common ones
		}
		matched++
		for _, f := range fields {
			if m[f] != e[f] {
				t.Fatalf("flow %s: %s classify %v, export %v", flowKeyOf(m), f, m[f], e[f])
			}
		}
		first, last, dur := m[fields[0]].(float64), m[fields[1]].(float64), m[fields[2]].(float64)
		if dur != last-first {
			t.Fatalf("flow %s: duration %v != last %v - first %v", flowKeyOf(m), dur, last, first)
		}
	}
	if sources != len(entries) || matched != len(exported) {
		t.Fatalf("%d sources for %d files; %d of %d exported flows matched", sources, len(entries), matched, len(exported))
	}
	t.Logf("%d files, %d results, %d flows equal to the export", len(entries), len(lines), matched)
}

// runCLIFail runs netmamba expecting an error and returns it.
func runCLIFail(t *testing.T, args ...string) error {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		t.Fatalf("netmamba %s: no error", strings.Join(args, " "))
	}
	return err
}

// TestClassifyFlagValidation: --temperature ≤ 0 or NaN is an error (unset
// keeps the checkpoint's default), negative timeouts are errors, and the
// help shows no negative default for the timeouts.
func TestClassifyFlagValidation(t *testing.T) {
	mpath := writeTinyRandomModel(t, []string{"a", "b"})
	for _, v := range []string{"0", "-1", "NaN"} {
		err := runCLIFail(t, "classify", "--model", mpath, "--temperature", v, classifyHTTPDir)
		if !strings.Contains(err.Error(), "--temperature") {
			t.Fatalf("--temperature %s: %v", v, err)
		}
	}
	if err := runCLIFail(t, "classify", "--model", mpath, "--idle-timeout", "-1s", classifyHTTPDir); !strings.Contains(err.Error(), "--idle-timeout") {
		t.Fatalf("--idle-timeout -1s: %v", err)
	}
	for _, cmd := range [][]string{{"classify"}, {"serve"}, {"bench", "classify"}} {
		help, _ := runCLIErr(t, append(cmd, "--help")...)
		found := 0
		for _, ln := range strings.Split(help, "\n") {
			if strings.Contains(ln, "--idle-timeout") || strings.Contains(ln, "--active-timeout") {
				found++
				if strings.Contains(ln, "-1ns") || !strings.Contains(ln, "0 = off") {
					t.Fatalf("%v --help: %s", cmd, ln)
				}
			}
		}
		if found != 2 {
			t.Fatalf("%v --help lists %d timeout flags, want 2:\n%s", cmd, found, help)
		}
	}
}

// TestClassifyTruncatedNamesFileOnce cuts a real capture mid-record: the
// packets before the cut are classified and the warning names the file
// once.
func TestClassifyTruncatedNamesFileOnce(t *testing.T) {
	src := filepath.Join(classifyHTTPDir, "starcraft_battle__f1.pcap")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("test data missing: %v", err)
	}
	trunc := filepath.Join(t.TempDir(), "trunc.pcap")
	if err := os.WriteFile(trunc, raw[:len(raw)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	mpath := writeTinyRandomModel(t, []string{"a", "b"})
	out, stderr := runCLIErr(t, "classify", "--model", mpath, trunc)
	if strings.TrimSpace(out) == "" {
		t.Fatalf("no result before the truncation; stderr:\n%s", stderr)
	}
	var warning string
	for _, ln := range strings.Split(stderr, "\n") {
		if strings.Contains(ln, "warning") {
			warning = ln
		}
	}
	if warning == "" || strings.Count(warning, "trunc.pcap") != 1 || strings.Count(warning, "classify:") != 1 || !strings.Contains(warning, "offset") {
		t.Fatalf("warning %q: want one file name, one prefix and the offset; stderr:\n%s", warning, stderr)
	}
	t.Log(warning)
}

// TestClassifyLiveLoopbackCountsOnce classifies live on lo while one UDP
// flow of known size runs to 127.0.0.1: by default (loopback: outgoing
// copies ignored) the flow has exactly the datagrams sent; with
// --ignore-outgoing=false every packet is seen twice.
func TestClassifyLiveLoopbackCountsOnce(t *testing.T) {
	probe, err := live.Open(live.Config{Interface: "lo", BlockSize: 1 << 16, NumBlocks: 2})
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, live.ErrUnsupported) {
		t.Skipf("live capture needs root or CAP_NET_RAW: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	mpath := writeTinyRandomModel(t, []string{"a", "b"})
	const datagrams = 12
	for _, tc := range []struct {
		flags []string
		want  float64
	}{{nil, datagrams}, {[]string{"--ignore-outgoing=false"}, 2 * datagrams}} {
		rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := rx.LocalAddr().(*net.UDPAddr).Port
		tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		// Send once the capture socket is open (classify prints its memory
		// bounds right after opening it), not after a guessed delay: model
		// loading and the memory measurement take longer on a loaded machine.
		stderrW := &readyWriter{marker: "memory bounds:", ready: make(chan struct{})}
		go func() {
			select {
			case <-stderrW.ready:
			case <-time.After(20 * time.Second):
				done <- errors.New("classify never opened the capture")
				return
			}
			for range datagrams {
				if _, err := tx.Write([]byte("netmamba loopback test")); err != nil {
					done <- err
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			done <- nil
		}()
		args := append([]string{"classify", "--model", mpath, "-i", "lo", "--duration", "2s", "--stats-interval", "0",
			"--filter", fmt.Sprintf("udp port %d", port)}, tc.flags...)
		root := newRootCmd()
		var outb bytes.Buffer
		root.SetOut(&outb)
		root.SetErr(stderrW)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("netmamba %s: %v\n%s", strings.Join(args, " "), err, stderrW.String())
		}
		out, stderr := outb.String(), stderrW.String()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		tx.Close()
		rx.Close()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 {
			t.Fatalf("%v: %d results, want the one flow:\n%s\n%s", tc.flags, len(lines), out, stderr)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
			t.Fatal(err)
		}
		if m["bidirectional_packets"] != tc.want || m["dst_port"] != float64(port) {
			t.Fatalf("%v: flow %v, want %v packets to port %d", tc.flags, lines[0], tc.want, port)
		}
		t.Logf("%v: %v packets for %d datagrams", tc.flags, m["bidirectional_packets"], datagrams)
	}
}

// readyWriter collects a command's stderr and closes ready when marker has
// been written.
type readyWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	ready  chan struct{}
	seen   bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if !w.seen && strings.Contains(w.buf.String(), w.marker) {
		w.seen = true
		close(w.ready)
	}
	return n, err
}

// String is everything written so far.
func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
