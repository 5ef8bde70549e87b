//go:build linux

package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// captureFrames opens a capture on rxIf (test frames only) and collects
// copies of what arrives until want frames came or 10 s passed.
func captureFrames(t *testing.T, rxIf string, want int) (wait func() ([][]byte, Stats)) {
	t.Helper()
	c, err := Open(Config{Interface: rxIf, BlockSize: 1 << 16, NumBlocks: 64, RetireTimeout: 5 * time.Millisecond, Filter: udpFilter(t)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got [][]byte
	full := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(ctx, func(int) Handler {
			return func(data []byte, _ int64, _ int) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, bytes.Clone(data))
				if len(got) == want {
					close(full)
				}
			}
		})
	}()
	return func() ([][]byte, Stats) {
		select {
		case <-full:
		case <-time.After(10 * time.Second): // hang guard
		}
		time.Sleep(50 * time.Millisecond) // a surplus frame would arrive within a ring retire
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		mu.Lock()
		defer mu.Unlock()
		return got, st
	}
}

// TestSendVeth sends frames of many sizes (some VLAN-tagged, one too long
// for the MTU) over a veth pair, two passes,
// and checks on the other end that every frame arrived once per pass,
// byte-identical, in order, and that the counters agree.
func TestSendVeth(t *testing.T) {
	requireRaw(t)
	txIf, rxIf := vethPair(t)
	srcMAC, dstMAC := mac(t, txIf), mac(t, rxIf)
	const n = 300
	var frames [][]byte
	var wantBytes uint64
	for i := range n {
		f := testFrame(i, 60+(i*53)%1455, srcMAC, dstMAC)
		if i%9 == 4 {
			f = withVLAN(f, 0x8100, uint16(10+i%20))
		}
		frames = append(frames, f)
		wantBytes += uint64(len(f))
	}
	tooLong := testFrame(n, 1515, srcMAC, dstMAC) // 1501 bytes of IP: over the veth's 1500 MTU
	frames = append(frames[:n/2], append([][]byte{tooLong}, frames[n/2:]...)...)
	wait := captureFrames(t, rxIf, 2*n)
	var passes []int
	st, err := Send(context.Background(), SendConfig{Interface: txIf, Loops: 2, Batch: 64,
		BeforeLoop: func(p int) { passes = append(passes, p) }}, frames)
	if err != nil {
		t.Fatal(err)
	}
	got, kst := wait()
	if st.Packets != 2*n || st.Bytes != 2*wantBytes || st.Errors != 2 || st.Passes != 2 {
		t.Errorf("send stats %v: want %d packets, %d bytes, 2 errors, 2 passes", st, 2*n, 2*wantBytes)
	}
	if !errors.Is(st.LastError, unix.EMSGSIZE) {
		t.Errorf("last error %v, want EMSGSIZE", st.LastError)
	}
	if fmt.Sprint(passes) != "[0 1]" {
		t.Errorf("BeforeLoop called for passes %v, want [0 1]", passes)
	}
	if len(got) != 2*n || kst.Packets != 2*n || kst.Drops != 0 {
		t.Fatalf("captured %d frames, kernel %+v; want %d and no drop", len(got), kst, 2*n)
	}
	k := 0
	for pass := range 2 {
		for j, f := range frames {
			if j == n/2 { // tooLong
				continue
			}
			if !bytes.Equal(got[k], f) {
				t.Fatalf("pass %d, captured frame %d (%d bytes) differs from the frame sent (%d bytes)", pass, k, len(got[k]), len(f))
			}
			k++
		}
	}
	t.Logf("%v; qdisc bypass %v", st, st.QdiscBypass)
}

// TestSendRate checks the pacing: at R bit/s, B bytes cannot go out in
// less than (B - burst)·8/R seconds (a lower bound: a busy machine only
// makes it slower), and the duration limit stops an unlimited loop.
func TestSendRate(t *testing.T) {
	requireRaw(t)
	txIf, rxIf := vethPair(t)
	frame := testFrame(1, 1000, mac(t, txIf), mac(t, rxIf))
	frames := [][]byte{frame, frame, frame, frame}
	const rate = 8e6 // 1 MB/s
	st, err := Send(context.Background(), SendConfig{Interface: txIf, BitsPerSecond: rate, Loops: 100}, frames)
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != 400 || st.Errors != 0 {
		t.Fatalf("%v: want 400 packets, no error", st)
	}
	burst := max(rate/8*0.005, 1000.0)
	minTime := time.Duration((float64(st.Bytes) - burst) / (rate / 8) * 1e9)
	if st.Elapsed < minTime {
		t.Errorf("%d bytes at %g bit/s took %v: faster than the token bucket allows (%v)", st.Bytes, rate, st.Elapsed, minTime)
	}
	t.Logf("paced: %v (lower bound %v)", st, minTime)

	st, err = Send(context.Background(), SendConfig{Interface: txIf, BitsPerSecond: rate, Duration: 100 * time.Millisecond}, frames)
	if err != nil {
		t.Fatal(err)
	}
	if st.Passes < 2 || st.Elapsed < 100*time.Millisecond {
		t.Errorf("duration-limited send: %v; want several passes and at least 100 ms", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st, err := Send(ctx, SendConfig{Interface: txIf, Duration: time.Hour}, frames); err != nil || st.Packets != 0 {
		t.Errorf("cancelled send: %v, %v; want nothing sent, no error", st, err)
	}
	// At 1 bit/s the first frame waits 8000 s for its tokens: a
	// cancellation must end that wait.
	ctx, cancel = context.WithCancel(context.Background())
	res := make(chan SendStats, 1)
	go func() {
		st, _ := Send(ctx, SendConfig{Interface: txIf, BitsPerSecond: 1}, frames)
		res <- st
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case st := <-res:
		if st.Packets != 0 {
			t.Errorf("1 bit/s send cancelled: %v, want nothing sent", st)
		}
	case <-time.After(10 * time.Second): // hang guard, far below the 8000 s wait
		t.Fatal("a cancelled Send kept waiting for its tokens")
	}
}

func TestSendErrors(t *testing.T) {
	if _, err := Send(context.Background(), SendConfig{Interface: "nm-no-such-if0"}, [][]byte{make([]byte, 60)}); err == nil {
		t.Error("missing interface: no error")
	}
	if _, err := Send(context.Background(), SendConfig{Interface: "lo"}, nil); err == nil {
		t.Error("no frames: no error")
	}
	if _, err := Send(context.Background(), SendConfig{Interface: "lo", BitsPerSecond: -1}, [][]byte{make([]byte, 60)}); err == nil {
		t.Error("negative rate: no error")
	}
	if err := frameFits(make([]byte, 10), 1500); err == nil {
		t.Error("10-byte frame fits")
	}
	tagged := make([]byte, 1518)
	binary.BigEndian.PutUint16(tagged[12:], 0x8100)
	if err := frameFits(tagged, 1500); err != nil {
		t.Errorf("1518-byte VLAN frame at MTU 1500: %v", err)
	}
	if err := frameFits(make([]byte, 1515), 1500); err == nil {
		t.Error("1515-byte untagged frame fits MTU 1500")
	}
}

// TestPacer checks the token bucket by hand: tokens accrue at the rate,
// stop at the burst, and wait() is the time to the missing bytes.
func TestPacer(t *testing.T) {
	t0 := time.Unix(0, 0)
	if newPacer(0, 1500, t0) != nil {
		t.Fatal("rate 0 should be unlimited (nil pacer)")
	}
	p := newPacer(8e6, 1500, t0) // 1e6 bytes/s, burst max(5000, 1500)
	if p.burst != 5000 {
		t.Fatalf("burst %v, want 5000", p.burst)
	}
	p.refill(t0.Add(time.Millisecond))
	if p.tokens != 1000 {
		t.Fatalf("tokens after 1 ms %v, want 1000", p.tokens)
	}
	if w := p.wait(1500); w != 500*time.Microsecond {
		t.Fatalf("wait for 1500 bytes %v, want 500µs", w)
	}
	p.refill(t0.Add(time.Second))
	if p.tokens != 5000 {
		t.Fatalf("tokens after 1 s %v, want the 5000 burst", p.tokens)
	}
	if w := p.wait(1500); w != 0 {
		t.Fatalf("wait %v with a full bucket", w)
	}
}

// BenchmarkSend sends frames of 64..1514 bytes (790 on average) as fast
// as possible into a veth pair, 10 passes over 4096 frames per op, and
// reports frames/s and Mb/s of sending time (socket setup excluded).
func BenchmarkSend(b *testing.B) {
	requireRaw(b)
	txIf, rxIf := vethPair(b)
	frames := make([][]byte, 4096)
	for i := range frames {
		frames[i] = testFrame(i, 64+(i*331)%1451, mac(b, txIf), mac(b, rxIf))
	}
	b.ResetTimer()
	var total SendStats
	for b.Loop() {
		st, err := Send(context.Background(), SendConfig{Interface: txIf, Loops: 10}, frames)
		if err != nil {
			b.Fatal(err)
		}
		total.Packets += st.Packets
		total.Bytes += st.Bytes
		total.Elapsed += st.Elapsed
		total.Errors += st.Errors
	}
	if total.Errors != 0 {
		b.Fatalf("%d errors", total.Errors)
	}
	b.ReportMetric(total.PacketsPerSec(), "frames/s")
	b.ReportMetric(total.Mbps(), "Mb/s")
}
