package classify

import (
	"testing"
	"time"
)

// TestLatencySince checks interval percentiles by hand: only the latencies
// recorded after the mark count, at most the ring's 4096.
func TestLatencySince(t *testing.T) {
	var l latencyRing
	if p50, p99, n, next := l.since(0); n != 0 || p50 != 0 || p99 != 0 || next != 0 {
		t.Fatalf("empty: %v %v %d %d", p50, p99, n, next)
	}
	for i := 1; i <= 10; i++ {
		l.add(int64(i) * int64(time.Millisecond))
	}
	// sorted 1..10 ms: index (10-1)*50/100 = 4 → 5 ms, (10-1)*99/100 = 8 → 9 ms
	p50, p99, n, mark := l.since(0)
	if p50 != 5*time.Millisecond || p99 != 9*time.Millisecond || n != 10 || mark != 10 {
		t.Fatalf("first 10: p50 %v p99 %v n %d mark %d", p50, p99, n, mark)
	}
	for range 3 {
		l.add(int64(time.Second))
	}
	if p50, p99, n, mark = l.since(mark); p50 != time.Second || p99 != time.Second || n != 3 || mark != 13 {
		t.Fatalf("since 10: p50 %v p99 %v n %d mark %d", p50, p99, n, mark)
	}
	if _, _, n, _ := l.since(mark); n != 0 {
		t.Fatalf("nothing new, n = %d", n)
	}
	for i := range 5000 {
		l.add(int64(i))
	}
	if _, _, n, mark = l.since(mark); n != 4096 || mark != 5013 {
		t.Fatalf("5000 new: n %d (want the ring's 4096), mark %d", n, mark)
	}
	if _, _, n, _ := l.since(mark + 5); n != 0 {
		t.Fatalf("mark ahead: n = %d", n)
	}
}
