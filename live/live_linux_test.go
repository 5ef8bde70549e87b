//go:build linux

package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// testPort is the UDP destination port of the test frames.
const testPort = 47999

// requireRaw skips the test when the process may not open AF_PACKET sockets.
func requireRaw(t testing.TB) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		t.Skipf("live capture test needs root or CAP_NET_RAW (AF_PACKET socket: %v)", err)
	}
	if err != nil {
		t.Fatalf("AF_PACKET socket: %v", err)
	}
	unix.Close(fd)
}

// vethPair creates a veth pair with unique names, brings both ends up and
// deletes it when the test ends. It returns the two interface names.
func vethPair(t testing.TB) (string, string) {
	t.Helper()
	base := fmt.Sprintf("nmt%d%02d", os.Getpid()%100000, rand.IntN(100))
	a, b := base+"a", base+"b"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	for _, n := range []string{a, b} {
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+n+"/disable_ipv6", []byte("1"), 0o644)
		run("link", "set", n, "up")
	}
	return a, b
}

// udpFilter accepts IPv4 UDP frames to testPort (IHL 5) and nothing else.
func udpFilter(t testing.TB) []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800, SkipTrue: 5},
		bpf.LoadAbsolute{Off: 23, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 17, SkipTrue: 3},
		bpf.LoadAbsolute{Off: 36, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: testPort, SkipTrue: 1},
		bpf.RetConstant{Val: 262144},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// testFrame is frame i: Ethernet + IPv4 + UDP to testPort from a port that
// varies with i (so fanout hashing spreads frames), payload carrying i and
// filler up to size bytes in total.
func testFrame(i, size int, srcMAC, dstMAC net.HardwareAddr) []byte {
	f := make([]byte, size)
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	ip[8], ip[9] = 64, 17
	copy(ip[12:], []byte{10, 211, 0, 1})
	copy(ip[16:], []byte{10, 211, 0, 2})
	var sum uint32
	for k := 0; k < 20; k += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[k:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:]
	binary.BigEndian.PutUint16(udp[0:], uint16(20000+i%4000))
	binary.BigEndian.PutUint16(udp[2:], testPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(size-34))
	binary.BigEndian.PutUint32(udp[8:], uint32(i))
	for k := 12; k < len(udp); k++ {
		udp[k] = byte(i*7 + k)
	}
	return f
}

// withVLAN returns f with a VLAN tag (tpid, tci) inserted after the MACs.
func withVLAN(f []byte, tpid, tci uint16) []byte {
	out := append([]byte(nil), f[:12]...)
	out = binary.BigEndian.AppendUint16(out, tpid)
	out = binary.BigEndian.AppendUint16(out, tci)
	return append(out, f[12:]...)
}

// sender is an AF_PACKET socket that transmits raw frames on one interface.
type sender struct{ fd int }

func newSender(t testing.TB, ifname string) *sender {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &sender{fd: fd}
}

func (s *sender) send(f []byte) error {
	for {
		_, err := unix.Write(s.fd, f)
		if err == unix.ENOBUFS || err == unix.EAGAIN {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		return err
	}
}

// sendBatch transmits frames with sendmmsg(2), retrying on ENOBUFS, and
// returns how many went out.
func (s *sender) sendBatch(frames [][]byte, iov []unix.Iovec, msgs []mmsghdr) (int, error) {
	for i, f := range frames {
		iov[i].Base = &f[0]
		iov[i].SetLen(len(f))
		msgs[i] = mmsghdr{}
		msgs[i].hdr.Iov = &iov[i]
		msgs[i].hdr.SetIovlen(1)
	}
	done := 0
	for done < len(frames) {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msgs[done])), uintptr(len(frames)-done), 0, 0, 0)
		switch {
		case errno == unix.ENOBUFS || errno == unix.EAGAIN || errno == unix.EINTR:
			time.Sleep(20 * time.Microsecond)
		case errno != 0:
			return done, errno
		default:
			done += int(n)
		}
	}
	return done, nil
}

// mac returns an interface's hardware address.
func mac(t testing.TB, ifname string) net.HardwareAddr {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return ifi.HardwareAddr
}

// promiscuous reads IFF_PROMISC from sysfs.
func promiscuous(t testing.TB, ifname string) bool {
	b, err := os.ReadFile("/sys/class/net/" + ifname + "/flags")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
	if err != nil {
		t.Fatal(err)
	}
	return v&unix.IFF_PROMISC != 0
}

// TestCaptureVeth sends frames into one end of a veth pair and captures
// them on the other with two fanout workers, a BPF filter and promiscuous
// mode: every frame must arrive once, byte-identical (VLAN tags, which the
// kernel strips into the ring header, restored), and the kernel
// counters must agree.
func TestCaptureVeth(t *testing.T) {
	requireRaw(t)
	txIf, rxIf := vethPair(t)
	c, err := Open(Config{Interface: rxIf, Workers: 2, BlockSize: 1 << 16, NumBlocks: 32,
		RetireTimeout: 5 * time.Millisecond, Promiscuous: true, Filter: udpFilter(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !promiscuous(t, rxIf) {
		t.Error("interface not promiscuous while the capture is open")
	}

	const n = 600
	srcMAC, dstMAC := mac(t, txIf), mac(t, rxIf)
	sent := make([][]byte, n)
	for i := range sent {
		sent[i] = testFrame(i, 60+(i*37)%1400, srcMAC, dstMAC)
		switch i % 10 { // some frames carry an 802.1Q or 802.1ad tag
		case 3:
			sent[i] = withVLAN(sent[i], 0x8100, uint16(i%8)<<13|uint16(100+i%50))
		case 7:
			sent[i] = withVLAN(sent[i], 0x88a8, uint16(200+i%50))
		}
	}

	var mu sync.Mutex
	got := make([][]byte, n)
	perWorker := make([]int, 2)
	total, bad := 0, []string{}
	done := make(chan struct{})
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- c.Run(ctx, func(w int) Handler {
			return func(data []byte, tsNs int64, origLen int) {
				mu.Lock()
				defer mu.Unlock()
				perWorker[w]++
				if len(data) < 46 || origLen != len(data) {
					bad = append(bad, fmt.Sprintf("frame of %d/%d bytes", len(data), origLen))
					return
				}
				if ts := time.Unix(0, tsNs); ts.Before(start.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
					bad = append(bad, fmt.Sprintf("timestamp %v outside the test", ts))
				}
				idx := 42
				if et := binary.BigEndian.Uint16(data[12:]); et == 0x8100 || et == 0x88a8 {
					idx += 4
				}
				i := int(binary.BigEndian.Uint32(data[idx:]))
				if i >= n || got[i] != nil {
					bad = append(bad, fmt.Sprintf("unexpected or duplicate frame %d", i))
					return
				}
				got[i] = append([]byte(nil), data...)
				total++
				if total == n {
					close(done)
				}
			}
		})
	}()

	s := newSender(t, txIf)
	for _, f := range sent {
		if err := s.send(f); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d bad deliveries, first: %s", len(bad), bad[0])
	}
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("frame %d: captured %d bytes, not identical to the %d sent (total captured %d of %d)", i, len(got[i]), len(sent[i]), total, n)
		}
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != n || st.Drops != 0 {
		t.Errorf("kernel stats %+v, want %d packets and no drops", st, n)
	}
	if perWorker[0] == 0 || perWorker[1] == 0 {
		t.Errorf("fanout did not spread the flows: per worker %v", perWorker)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if promiscuous(t, rxIf) {
		t.Error("interface still promiscuous after Close")
	}
	t.Logf("%d frames captured byte-identical; per worker %v; kernel %+v", n, perWorker, st)
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Config{Interface: "nm-no-such-if0"}); err == nil || !strings.Contains(err.Error(), "nm-no-such-if0") {
		t.Errorf("missing interface: err = %v", err)
	}
	if _, err := Open(Config{Interface: "lo", BlockSize: 1000}); err == nil || !strings.Contains(err.Error(), "page size") {
		t.Errorf("bad block size: err = %v", err)
	}
}

// TestCloseDuringRun checks that Close stops a running capture cleanly.
func TestCloseDuringRun(t *testing.T) {
	requireRaw(t)
	_, rxIf := vethPair(t)
	c, err := Open(Config{Interface: rxIf, Workers: 2, BlockSize: 1 << 16, NumBlocks: 4})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background(), func(int) Handler { return func([]byte, int64, int) {} }) }()
	time.Sleep(20 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil && !strings.Contains(err.Error(), "after Close") {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("Run did not return after Close")
	}
	if err := c.Run(context.Background(), nil); err == nil {
		t.Error("Run after Close succeeded")
	}
}

// TestCancelIdle checks that Run returns nil promptly after cancellation
// while no frame arrives (the eventfd wakes the blocked poll).
func TestCancelIdle(t *testing.T) {
	requireRaw(t)
	_, rxIf := vethPair(t)
	c, err := Open(Config{Interface: rxIf, Workers: 3, BlockSize: 1 << 16, NumBlocks: 4, RetireTimeout: time.Hour, Filter: udpFilter(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, func(int) Handler { return func([]byte, int64, int) {} }) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second): // hang guard, not a timing assertion
		t.Fatal("Run did not return after cancellation")
	}
}

// BenchmarkCaptureVeth sends b.N 64-byte (or 1514-byte) frames into a veth
// pair as fast as one raw socket can (sendmmsg, 256 frames a call) and reports what the capture side
// received: captured frames/s over the send+drain time and the kernel's
// drop counter.
func BenchmarkCaptureVeth(b *testing.B) {
	requireRaw(b)
	for _, bc := range []struct {
		name            string
		workers, blocks int
		size            int
	}{
		{"64B/1worker/64x1MiB", 1, 64, 64},
		{"64B/2workers/64x1MiB", 2, 64, 64},
		{"64B/1worker/2x64KiB", 1, 2, 64},
		{"1514B/2workers/64x1MiB", 2, 64, 1514},
	} {
		b.Run(bc.name, func(b *testing.B) {
			txIf, rxIf := vethPair(b)
			bs := 1 << 20
			if bc.blocks == 2 {
				bs = 1 << 16
			}
			c, err := Open(Config{Interface: rxIf, Workers: bc.workers, BlockSize: bs, NumBlocks: bc.blocks, RetireTimeout: 2 * time.Millisecond, Filter: udpFilter(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			var mu sync.Mutex
			captured := 0
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				errc <- c.Run(ctx, func(int) Handler {
					return func([]byte, int64, int) { mu.Lock(); captured++; mu.Unlock() }
				})
			}()
			s := newSender(b, txIf)
			frames := make([][]byte, 256)
			for i := range frames {
				frames[i] = testFrame(i, bc.size, mac(b, txIf), mac(b, rxIf))
			}
			b.SetBytes(int64(bc.size))
			b.ResetTimer()
			start := time.Now()
			iov, msgs := make([]unix.Iovec, len(frames)), make([]mmsghdr, len(frames))
			for sent := 0; sent < b.N; {
				k := min(len(frames), b.N-sent)
				n, err := s.sendBatch(frames[:k], iov, msgs)
				if err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			var st Stats
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, err = c.Stats()
				if err != nil {
					b.Fatal(err)
				}
				mu.Lock()
				n := captured
				mu.Unlock()
				if uint64(n)+st.Drops >= uint64(b.N) || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			b.ReportMetric(float64(captured)/elapsed.Seconds(), "captured/s")
			b.ReportMetric(float64(st.Drops)/float64(b.N)*100, "drop%")
			b.ReportMetric(float64(st.FreezeQueue), "freezes")
		})
	}
}

// TestLoopbackIgnoreOutgoing sends UDP datagrams to 127.0.0.1 and counts
// them on lo: each is seen twice (sent and received) without
// IgnoreOutgoing, once with it.
func TestLoopbackIgnoreOutgoing(t *testing.T) {
	requireRaw(t)
	isLo, err := IsLoopback("lo")
	if err != nil || !isLo {
		t.Fatalf("IsLoopback(lo) = %v, %v", isLo, err)
	}
	if _, err := IsLoopback("nm-no-such-if0"); err == nil || !strings.Contains(err.Error(), "nm-no-such-if0") {
		t.Fatalf("IsLoopback(missing) err = %v", err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		if got, err := IsLoopback(ifi.Name); err != nil || got != (ifi.Flags&net.FlagLoopback != 0) {
			t.Fatalf("IsLoopback(%s) = %v, %v; flags %v", ifi.Name, got, err, ifi.Flags)
		}
	}
	const datagrams = 20
	for _, ignore := range []bool{false, true} {
		rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := rx.LocalAddr().(*net.UDPAddr).Port
		magic := []byte(fmt.Sprintf("netmamba-lo-test-%d-%d-%v", os.Getpid(), port, ignore))
		c, err := Open(Config{Interface: "lo", BlockSize: 1 << 16, NumBlocks: 8, RetireTimeout: 5 * time.Millisecond, IgnoreOutgoing: ignore})
		if err != nil {
			rx.Close()
			t.Fatal(err)
		}
		var seen atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			errc <- c.Run(ctx, func(int) Handler {
				return func(data []byte, _ int64, _ int) {
					// Ethernet (zero MACs on lo), IPv4, UDP to port, payload magic.
					if len(data) < 14+20+8 || data[12] != 0x08 || data[13] != 0x00 || data[14+9] != 17 {
						return
					}
					udp := data[14+int(data[14]&0x0f)*4:]
					if len(udp) >= 8 && int(udp[2])<<8|int(udp[3]) == port && bytes.Equal(udp[8:], magic) {
						seen.Add(1)
					}
				}
			})
		}()
		tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the ring is bound since Open; this only lets Run start
		for range datagrams {
			if _, err := tx.Write(magic); err != nil {
				t.Fatal(err)
			}
		}
		want := int64(datagrams)
		if !ignore {
			want *= 2
		}
		for end := time.Now().Add(5 * time.Second); seen.Load() < want && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // a duplicate would arrive within a ring retire
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		c.Close()
		tx.Close()
		rx.Close()
		if got := seen.Load(); got != want {
			t.Fatalf("IgnoreOutgoing %v: %d frames for %d datagrams, want %d", ignore, got, datagrams, want)
		}
		t.Logf("IgnoreOutgoing %v: %d frames for %d datagrams", ignore, seen.Load(), datagrams)
	}
}
