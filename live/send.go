package live

import (
	"fmt"
	"time"
)

// SendConfig configures Send.
type SendConfig struct {
	// Interface is the name of the interface to transmit on.
	Interface string
	// BitsPerSecond is the target rate counted on the frame bytes (link
	// header included, no preamble, FCS or inter-frame gap: the bytes a
	// capture on the other end reports). 0 sends as fast as possible.
	BitsPerSecond float64
	// Loops is the number of passes over the frames (0: one pass, or
	// unlimited when Duration is set).
	Loops int
	// Duration stops sending after this long (0: no limit).
	Duration time.Duration
	// Batch is the largest number of frames handed to the kernel in one
	// system call (0: 256).
	Batch int
	// BeforeLoop, if set, is called before each pass (0, 1, …) while no
	// frame of the previous pass is still being sent, so it may rewrite
	// the frames in place (e.g. to make each pass's flows unique).
	BeforeLoop func(pass int)
}

// SendStats are the counters of a Send.
type SendStats struct {
	Packets uint64 // frames the kernel accepted
	Bytes   uint64 // bytes of those frames
	// Errors counts frames the kernel refused (not sent, e.g. longer than
	// the MTU); LastError is the last such error.
	Errors    uint64
	LastError error
	// Retries counts transient "queue full" answers (ENOBUFS, EAGAIN)
	// after which the same frames were offered again.
	Retries     uint64
	Passes      int           // passes started
	Elapsed     time.Duration // from the first frame to the last flush
	QdiscBypass bool          // PACKET_QDISC_BYPASS was accepted
}

// Mbps is the achieved rate in Mb/s of frame bytes.
func (s SendStats) Mbps() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Bytes) * 8 / 1e6 / s.Elapsed.Seconds()
}

// PacketsPerSec is the achieved frame rate.
func (s SendStats) PacketsPerSec() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Packets) / s.Elapsed.Seconds()
}

// String is a one-line summary.
func (s SendStats) String() string {
	str := fmt.Sprintf("%d packets, %d bytes in %.3f s: %.1f Mb/s, %.0f packets/s; %d passes, %d errors, %d retries",
		s.Packets, s.Bytes, s.Elapsed.Seconds(), s.Mbps(), s.PacketsPerSec(), s.Passes, s.Errors, s.Retries)
	if s.LastError != nil {
		str += fmt.Sprintf(" (last error: %v)", s.LastError)
	}
	return str
}

func (c SendConfig) withDefaults() SendConfig {
	if c.Batch <= 0 {
		c.Batch = 256
	}
	return c
}

// pacer is a token bucket on frame bytes: tokens accrue at rate bytes/s up
// to burst; a frame may go when the bucket holds its length.
type pacer struct {
	rate, burst, tokens float64 // bytes/s, bytes, bytes
	last                time.Time
}

// newPacer returns a pacer for bitsPerSecond (nil: unlimited). The burst
// is 5 ms of traffic (at least one frame of maxFrame bytes): pacing is
// done a batch at a time, and a late timer wake-up is made up within it.
func newPacer(bitsPerSecond float64, maxFrame int, now time.Time) *pacer {
	if bitsPerSecond <= 0 {
		return nil
	}
	rate := bitsPerSecond / 8
	burst := max(rate*0.005, float64(maxFrame))
	return &pacer{rate: rate, burst: burst, last: now}
}

// refill adds the tokens accrued up to now.
func (p *pacer) refill(now time.Time) {
	p.tokens = min(p.burst, p.tokens+p.rate*now.Sub(p.last).Seconds())
	p.last = now
}

// wait is how long until the bucket holds n bytes.
func (p *pacer) wait(n int) time.Duration {
	if need := float64(n) - p.tokens; need > 0 {
		return time.Duration(need / p.rate * 1e9)
	}
	return 0
}
