package samplegen

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Sides of a simulated connection.
const (
	sideClient = 0
	sideServer = 1
)

// Link parameters of the simulated path (ns).
const (
	segGapNs = 12_000 // spacing of back-to-back segments of one write (~1 Gb/s burst + host)
	mssV4    = 1448   // MSS minus the 12-byte timestamp option, IPv4
	mssV6    = 1428   // same for IPv6
)

// message is one Write on one side of a simulated connection.
type message struct {
	side int
	t    int64 // send time of its first segment, ns (virtual clock)
	data []byte
}

// chunk is unread data in a side's receive queue.
type chunk struct {
	data    []byte
	arrival int64 // virtual arrival time of its last byte
}

// pipe is an in-memory TCP connection between a client and a server that
// runs on a virtual clock. Each side has its own clock: a Read advances it
// to the arrival time of the data it returns, a Write is stamped after it.
// Timestamps therefore follow causality, not goroutine scheduling, and the
// log of writes is the same on every run. The log is turned into TCP
// segments afterwards (see buildTCP).
type pipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	owd    int64 // one-way delay client<->server, ns
	mss    int
	rng    [2]*detRand
	clock  [2]int64
	sent   [2]int64 // end of the last burst sent by a side
	fresh  [2]bool  // side has read new data since its last write
	inbox  [2][]chunk
	closed [2]bool
	finT   [2]int64 // send time of each side's FIN
	expire [2]bool  // a read deadline in the past is set
	log    []message
}

// newPipe returns a pipe whose handshake completes with the client's clock
// at clientT and the server's at serverT.
func newPipe(owd int64, mss int, clientT, serverT int64, crng, srng *detRand) *pipe {
	p := &pipe{owd: owd, mss: mss}
	p.cond = sync.NewCond(&p.mu)
	p.clock = [2]int64{clientT, serverT}
	p.sent = p.clock
	p.rng = [2]*detRand{crng, srng}
	return p
}

// burstNs is the time from the first to the last segment of an n-byte write.
func (p *pipe) burstNs(n int) int64 {
	segs := (n + p.mss - 1) / p.mss
	if segs < 1 {
		segs = 1
	}
	return int64(segs-1) * segGapNs
}

// conn returns the net.Conn of one side.
func (p *pipe) conn(side int) *simConn { return &simConn{p: p, side: side} }

// now returns a side's virtual clock.
func (p *pipe) now(side int) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clock[side]
}

// waitClosed blocks until side has closed its end.
func (p *pipe) waitClosed(side int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed[side] {
		p.cond.Wait()
	}
}

// stamp returns the send time of a side's next write and advances its clock.
// Answering fresh input costs application think time; follow-up writes go
// out right after the previous burst.
func (p *pipe) stamp(side int, n int) int64 {
	think := p.rng[side].between(8_000, 30_000)
	if p.fresh[side] {
		if side == sideServer {
			think = p.rng[side].between(150_000, 2_500_000)
		} else {
			think = p.rng[side].between(60_000, 400_000)
		}
		p.fresh[side] = false
	}
	t := max(p.clock[side]+think, p.sent[side]+segGapNs)
	p.clock[side] = t
	p.sent[side] = t + p.burstNs(n)
	return t
}

// simConn is one side of a pipe; it implements net.Conn.
type simConn struct {
	p    *pipe
	side int
}

// Read returns data written by the peer, advancing this side's clock to its
// arrival, or io.EOF once the peer has closed and everything was read.
func (c *simConn) Read(b []byte) (int, error) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.closed[c.side] {
			return 0, net.ErrClosed
		}
		if p.expire[c.side] {
			return 0, os.ErrDeadlineExceeded
		}
		if q := p.inbox[c.side]; len(q) > 0 {
			n := copy(b, q[0].data)
			p.clock[c.side] = max(p.clock[c.side], q[0].arrival)
			p.fresh[c.side] = true
			if n == len(q[0].data) {
				p.inbox[c.side] = q[1:]
			} else {
				q[0].data = q[0].data[n:]
			}
			return n, nil
		}
		if peer := 1 - c.side; p.closed[peer] {
			p.clock[c.side] = max(p.clock[c.side], p.finT[peer]+p.owd)
			p.fresh[c.side] = true
			return 0, io.EOF
		}
		p.cond.Wait()
	}
}

// Write queues b for the peer and logs it as one message.
func (c *simConn) Write(b []byte) (int, error) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed[c.side] {
		return 0, net.ErrClosed
	}
	if len(b) == 0 {
		return 0, nil
	}
	t := p.stamp(c.side, len(b))
	data := append([]byte(nil), b...)
	p.log = append(p.log, message{side: c.side, t: t, data: data})
	p.inbox[1-c.side] = append(p.inbox[1-c.side], chunk{data: data, arrival: t + p.burstNs(len(b)) + p.owd})
	p.cond.Broadcast()
	return len(b), nil
}

// Close sends this side's FIN. The peer may still write (its data is
// received and acknowledged, as after shutdown(SHUT_WR)).
func (c *simConn) Close() error {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed[c.side] {
		return nil
	}
	p.closed[c.side] = true
	p.finT[c.side] = p.stamp(c.side, 0)
	p.cond.Broadcast()
	return nil
}

// simAddr is the net.Addr of a simulated endpoint.
type simAddr string

// Network returns "tcp".
func (a simAddr) Network() string { return "tcp" }

// String returns the endpoint's role.
func (a simAddr) String() string { return string(a) }

// LocalAddr returns a placeholder address.
func (c *simConn) LocalAddr() net.Addr { return simAddr([]string{"client", "server"}[c.side]) }

// RemoteAddr returns a placeholder address.
func (c *simConn) RemoteAddr() net.Addr { return simAddr([]string{"server", "client"}[c.side]) }

// SetDeadline sets the read deadline (write deadlines never expire).
func (c *simConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline honours only deadlines already in the past (real time),
// which net/http uses to abort a pending background read; future deadlines
// are ignored because the simulation has no real-time waits.
func (c *simConn) SetReadDeadline(t time.Time) error {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire[c.side] = !t.IsZero() && !t.After(time.Now())
	p.cond.Broadcast()
	return nil
}

// SetWriteDeadline is a no-op: writes never block.
func (c *simConn) SetWriteDeadline(time.Time) error { return nil }

// oneConnListener hands out one connection, then blocks until closed.
type oneConnListener struct {
	mu     sync.Mutex
	cond   *sync.Cond
	conn   net.Conn
	closed bool
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{conn: c}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// Accept returns the connection once, then waits for Close.
func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.closed {
			return nil, net.ErrClosed
		}
		if c := l.conn; c != nil {
			l.conn = nil
			return c, nil
		}
		l.cond.Wait()
	}
}

// Close unblocks Accept.
func (l *oneConnListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.cond.Broadcast()
	return nil
}

// Addr returns a placeholder address.
func (l *oneConnListener) Addr() net.Addr { return simAddr("server") }
