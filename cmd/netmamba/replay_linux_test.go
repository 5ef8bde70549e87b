//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/live"
	"github.com/netmamba/netmamba/samplegen"
)

// netnsVeth makes a fresh network namespace and a veth pair with one end
// (returned first) in the test's namespace and the other inside the new
// one; it skips the test without root or namespace support.
func netnsVeth(t *testing.T) (txIf, rxIf, ns string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("replay test needs root (network namespace, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("replay test needs iproute2's ip: ", err)
	}
	id := fmt.Sprintf("%d%02d", os.Getpid()%100000, time.Now().Nanosecond()%100)
	ns, txIf, rxIf = "nmrp"+id, "nmr"+id+"a", "nmr"+id+"b"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("no network namespace support: ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("link", "add", txIf, "type", "veth", "peer", "name", rxIf, "netns", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", txIf).Run() })
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+txIf+"/disable_ipv6", []byte("1"), 0o644)
	run("link", "set", txIf, "up")
	// no IPv6 chatter (router solicitations, MLD) from either end
	run("netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/"+rxIf+"/disable_ipv6")
	run("netns", "exec", ns, "ip", "link", "set", rxIf, "up")
	return txIf, rxIf, ns
}

// inNetns runs fn on an OS thread switched into network namespace ns (a
// socket keeps the namespace it was created in).
func inNetns(ns string, fn func()) error {
	done := make(chan struct{})
	var failure string
	go func() {
		defer close(done)
		runtime.LockOSThread() // not unlocked if the switch back fails: the thread then dies with the goroutine
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			failure = err.Error()
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			failure = err.Error()
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			failure = "setns: " + err.Error()
			return
		}
		fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			failure = "setns back: " + err.Error()
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
	if failure != "" {
		return fmt.Errorf("network namespace %s: %s", ns, failure)
	}
	return nil
}

// ipv4UDP is a hand-made IPv4/UDP datagram (checksums not checked by anyone here).
func ipv4UDP(src, dst byte, sport, dport uint16, payload string) []byte {
	p := make([]byte, 28+len(payload))
	p[0], p[8], p[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:], []byte{192, 0, 2, src})
	copy(p[16:], []byte{192, 0, 2, dst})
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}

// ipv6TCP is a hand-made IPv6/TCP segment.
func ipv6TCP(payload string) []byte {
	p := make([]byte, 60+len(payload))
	p[0], p[6], p[7] = 0x60, 6, 64
	binary.BigEndian.PutUint16(p[4:], uint16(20+len(payload)))
	p[8], p[9], p[23] = 0x20, 0x01, 1
	p[24], p[25], p[39] = 0x20, 0x01, 2
	binary.BigEndian.PutUint16(p[40:], 40000)
	binary.BigEndian.PutUint16(p[42:], 443)
	p[52] = 5 << 4
	copy(p[60:], payload)
	return p
}

// writePcap writes packets with one link type.
func writePcap(t *testing.T, path string, link capture.LinkType, pkts ...[]byte) {
	t.Helper()
	var b bytes.Buffer
	w, err := capture.NewPcapWriter(&b, capture.PcapWriterOptions{LinkType: link})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		if err := w.WritePacket(int64(i)*1000, p, len(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// eth wraps a payload in an Ethernet header with the given EtherType.
func eth(et uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f, []byte{0xaa, 1, 2, 3, 4, 5, 0xbb, 1, 2, 3, 4, 5})
	binary.BigEndian.PutUint16(f[12:], et)
	return append(f, payload...)
}

// TestReplayNetns replays generated captures of three link types (raw IP,
// Ethernet with a non-IP frame and an over-MTU packet, and the built-in
// sample traffic) twice over a veth pair into a fresh network namespace
// and checks with a live capture there that every IP packet arrives,
// in order, byte-identical to its expected Ethernet frame, and that the
// command's counts match.
func TestReplayNetns(t *testing.T) {
	txIf, rxIf, ns := netnsVeth(t)
	dir := t.TempDir()
	macs := []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01}
	frame := func(et uint16, ip []byte) []byte {
		return append(binary.BigEndian.AppendUint16(bytes.Clone(macs), et), ip...)
	}
	var want [][]byte

	// raw IP (link type 101): IPv4 and IPv6
	u4, t6 := ipv4UDP(1, 2, 5353, 53, "hello, replay"), ipv6TCP("over IPv6")
	writePcap(t, filepath.Join(dir, "raw.pcap"), capture.LinkRaw, u4, t6)
	want = append(want, frame(0x0800, u4), frame(0x86DD, t6))

	// Ethernet: an ARP frame (not IP, skipped), an IPv4 packet, one of
	// 1501 bytes of IP (over the veth's 1500 MTU, skipped)
	arp := eth(0x0806, make([]byte, 28))
	u4b := ipv4UDP(3, 4, 1000, 2000, strings.Repeat("x", 300))
	big := ipv4UDP(5, 6, 1, 2, strings.Repeat("y", 1501-28))
	writePcap(t, filepath.Join(dir, "eth.pcap"), capture.LinkEthernet, arp, eth(0x0800, u4b), eth(0x0800, big))
	want = append(want, frame(0x0800, u4b))

	// the sample traffic (Ethernet pcapng): each frame with the replay MACs
	var sample bytes.Buffer
	if _, err := samplegen.Generate(&sample, samplegen.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sample.pcapng"), sample.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := capture.NewBytesReader(sample.Bytes(), "sample")
	if err != nil {
		t.Fatal(err)
	}
	sampleSkipped := 0
	for {
		var cp capture.Packet
		if err := r.Next(&cp); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		et := binary.BigEndian.Uint16(cp.Data[12:])
		if (et != 0x0800 && et != 0x86DD) || len(cp.Data)-14 > 1500 {
			sampleSkipped++
			continue
		}
		want = append(want, frame(et, cp.Data[14:]))
	}
	if sampleSkipped != 0 {
		t.Logf("sample: %d frames not IP or over the MTU", sampleSkipped)
	}
	const passes = 2
	nwant := passes * len(want)

	var c *live.Capture
	if nerr := inNetns(ns, func() {
		c, err = live.Open(live.Config{Interface: rxIf, BlockSize: 1 << 20, NumBlocks: 16, RetireTimeout: 5 * time.Millisecond, IgnoreOutgoing: true})
	}); nerr != nil {
		t.Fatal(nerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var got [][]byte
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- c.Run(ctx, func(int) live.Handler {
			return func(data []byte, _ int64, _ int) {
				if len(data) >= 12 && bytes.Equal(data[6:12], macs[6:12]) { // only replayed frames
					mu.Lock()
					got = append(got, bytes.Clone(data))
					mu.Unlock()
				}
			}
		})
	}()

	cmd := newRootCmd()
	var stderr bytes.Buffer
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"replay", "-i", txIf, "--mbps", "200", "--loop", fmt.Sprint(passes),
		filepath.Join(dir, "raw.pcap"), filepath.Join(dir, "eth.pcap"), filepath.Join(dir, "sample.pcapng")})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= nwant {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // a surplus frame would arrive within a ring retire
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	ks, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	out := stderr.String()
	t.Log(strings.TrimSpace(out))
	var wantBytes int
	for _, f := range want {
		wantBytes += len(f)
	}
	for _, s := range []string{
		fmt.Sprintf("loaded %d frames (%d bytes) from 3 file(s); skipped %d not IP or malformed, %d longer than the MTU", len(want), wantBytes, 1+sampleSkipped, 1),
		fmt.Sprintf("replay %s: %d packets, %d bytes in ", txIf, nwant, passes*wantBytes),
		fmt.Sprintf("%d passes, 0 errors", passes),
	} {
		if !strings.Contains(out, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != nwant || ks.Drops != 0 {
		t.Fatalf("captured %d replayed frames (kernel %+v), want %d", len(got), ks, nwant)
	}
	for i, g := range got {
		if w := want[i%len(want)]; !bytes.Equal(g, w) {
			t.Fatalf("frame %d (pass %d): captured %d bytes %x…, want %d bytes %x…", i, i/len(want), len(g), g[:min(40, len(g))], len(w), w[:min(40, len(w))])
		}
	}
}

// onesSum is the ones'-complement sum of b as 16-bit big-endian words.
func onesSum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// l4Valid verifies a TCP/UDP checksum over the IPv4 or IPv6 pseudo-header
// from scratch.
func l4Valid(f []byte) bool {
	ip := f[14:]
	var sum uint32
	var l4 []byte
	var proto byte
	if ip[0]>>4 == 4 {
		ihl := int(ip[0]&0xf) * 4
		l4, proto = ip[ihl:binary.BigEndian.Uint16(ip[2:])], ip[9]
		sum = onesSum(0, ip[12:20])
	} else {
		l4, proto = ip[40:40+binary.BigEndian.Uint16(ip[4:])], ip[6]
		sum = onesSum(0, ip[8:40])
	}
	sum += uint32(proto) + uint32(len(l4))
	return onesSum(sum, l4) == 0xffff
}

// withChecksums fills in correct IPv4 header and TCP/UDP checksums of an
// Ethernet frame (computed from scratch).
func withChecksums(f []byte) []byte {
	ip := f[14:]
	var l4 []byte
	var proto byte
	var sum uint32
	if ip[0]>>4 == 4 {
		binary.BigEndian.PutUint16(ip[10:], 0)
		binary.BigEndian.PutUint16(ip[10:], ^uint16(onesSum(0, ip[:20])))
		l4, proto = ip[20:binary.BigEndian.Uint16(ip[2:])], ip[9]
		sum = onesSum(0, ip[12:20])
	} else {
		l4, proto = ip[40:40+binary.BigEndian.Uint16(ip[4:])], ip[6]
		sum = onesSum(0, ip[8:40])
	}
	csOff := 16 // TCP
	if proto == 17 {
		csOff = 6
	}
	binary.BigEndian.PutUint16(l4[csOff:], 0)
	cs := ^uint16(onesSum(sum+uint32(proto)+uint32(len(l4)), l4))
	if cs == 0 && proto == 17 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(l4[csOff:], cs)
	return f
}

// TestUniqueIP checks --unique-ip's rewrite: pass p adds p to the low 16
// bits of both addresses, and the checksums, recomputed from scratch,
// stay valid; pass 0 restores the original bytes.
func TestUniqueIP(t *testing.T) {
	mk := func(ip []byte) []byte {
		return withChecksums(appendIPFrame(nil, ip, ip[0]>>4))
	}
	orig := [][]byte{mk(ipv4UDP(1, 2, 10, 20, "abc")), mk(ipv6TCP("defg")), mk(ipv4UDP(0xff, 0xfe, 1, 2, "wrap"))}
	rf := &replayFrames{}
	for _, f := range orig {
		rf.frames = append(rf.frames, bytes.Clone(f))
		rf.meta = append(rf.meta, uniqueIPMeta(f))
	}
	for _, pass := range []int{1, 2, 300, 65535, 0} {
		rf.setUniqueIP(pass)
		for i, f := range rf.frames {
			m := rf.meta[i]
			if got, want := binary.BigEndian.Uint16(f[m.srcOff:]), binary.BigEndian.Uint16(orig[i][m.srcOff:])+uint16(pass); got != want {
				t.Fatalf("pass %d frame %d: src low word %#x, want %#x", pass, i, got, want)
			}
			if got, want := binary.BigEndian.Uint16(f[m.dstOff:]), binary.BigEndian.Uint16(orig[i][m.dstOff:])+uint16(pass); got != want {
				t.Fatalf("pass %d frame %d: dst low word %#x, want %#x", pass, i, got, want)
			}
			if f[14]>>4 == 4 && onesSum(0, f[14:34]) != 0xffff {
				t.Fatalf("pass %d frame %d: bad IPv4 header checksum", pass, i)
			}
			if !l4Valid(f) {
				t.Fatalf("pass %d frame %d: bad L4 checksum", pass, i)
			}
		}
	}
	for i := range orig {
		if !bytes.Equal(rf.frames[i], orig[i]) {
			t.Fatalf("frame %d not restored by pass 0", i)
		}
	}
}

func TestReplayErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--topspeed", "x.pcap"}, "-i IFACE"},
		{[]string{"replay", "-i", "lo", "x.pcap"}, "exactly one of"},
		{[]string{"replay", "-i", "lo", "--topspeed", "--mbps", "5", "x.pcap"}, "exactly one of"},
		{[]string{"replay", "-i", "lo", "--mbps", "-5", "x.pcap"}, "must be a finite number > 0"},
		{[]string{"replay", "-i", "nm-no-such-if0", "--topspeed", "x.pcap"}, "nm-no-such-if0"},
		{[]string{"replay", "-i", "lo", "--topspeed", filepath.Join(t.TempDir(), "missing.pcap")}, "missing.pcap"},
	} {
		cmd := newRootCmd()
		cmd.SetErr(io.Discard)
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestClassifyLiveReplay runs live classify --no-model inside a network
// namespace while replay sends the sample traffic three times with
// --unique-ip: every replayed packet reaches the flow tables, there are
// three times the flows classify finds in the file, one result per flow,
// and the memory bounds and per-stage CPU are printed.
func TestClassifyLiveReplay(t *testing.T) {
	txIf, rxIf, ns := netnsVeth(t)
	dir := t.TempDir()
	sample := filepath.Join(dir, "sample.pcapng")
	runCLI(t, "sample", "-o", sample, "--seed", "2")
	_, offline := runCLIErr(t, "classify", "--no-model", sample)
	m := regexp.MustCompile(`, (\d+) flows: `).FindStringSubmatch(offline)
	if m == nil {
		t.Fatalf("offline summary has no flow count:\n%s", offline)
	}
	fileFlows, _ := strconv.Atoi(m[1])

	var out bytes.Buffer
	errb := &readyWriter{marker: "memory bounds:", ready: make(chan struct{})}
	var cerr error
	started := make(chan struct{})
	finished := make(chan error, 1)
	go func() {
		finished <- inNetns(ns, func() {
			root := newRootCmd()
			root.SetOut(&out)
			root.SetErr(errb)
			root.SetArgs([]string{"classify", "--no-model", "-i", rxIf, "--duration", "3s", "--stats-interval", "500ms", "--idle-timeout", "1s"})
			close(started)
			cerr = root.Execute()
		})
	}()
	<-started
	select { // classify prints its memory bounds once the capture socket is open
	case <-errb.ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("classify never opened the capture:\n%s", errb.String())
	}
	_, rerr := runCLIErr(t, "replay", "-i", txIf, "--mbps", "20", "--loop", "3", "--unique-ip", sample)
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
	if cerr != nil {
		t.Fatalf("classify: %v\n%s", cerr, errb.String())
	}
	stderr := errb.String()
	t.Log(rerr + stderr)
	var sent int
	if _, err := fmt.Sscanf(rerr[strings.Index(rerr, "replay "+txIf+": "):], "replay "+txIf+": %d packets", &sent); err != nil {
		t.Fatalf("replay summary: %v\n%s", err, rerr)
	}
	var kpkts, kdrops int
	if i := strings.Index(stderr, "kernel: "); i < 0 {
		t.Fatalf("no kernel counters:\n%s", stderr)
	} else if _, err := fmt.Sscanf(stderr[i:], "kernel: %d packets, %d drops", &kpkts, &kdrops); err != nil {
		t.Fatal(err)
	}
	if kpkts != sent || kdrops != 0 {
		t.Errorf("replay sent %d packets; capture kernel counted %d, %d drops", sent, kpkts, kdrops)
	}
	results := strings.Count(out.String(), "\n")
	if results != 3*fileFlows {
		t.Errorf("%d results, want 3 × %d flows (each pass new flows)", results, fileFlows)
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d flows: 0 classified", 3*fileFlows)) {
		t.Errorf("final summary does not count %d flows", 3*fileFlows)
	}
	// the default --max-memory 1GiB derives the flow-table cap printed on both start-up lines
	bm := regexp.MustCompile(`memory bound 1 GiB \(1073741824 bytes.* flow tables 1 × (\d+) flows`).FindStringSubmatch(stderr)
	if bm == nil {
		t.Fatalf("no memory bound line:\n%s", stderr)
	}
	for _, s := range []string{"memory bounds: flow tables 1 × " + bm[1] + " flows", "classifier queue 512 flows", ", cpu capture ", "cpu over "} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
}
