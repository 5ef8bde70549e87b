//go:build linux

package live

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is one worker's AF_PACKET socket and its TPACKET_V3 ring.
type ring struct {
	fd        int
	mem       []byte // mmap'ed ring: NumBlocks blocks of BlockSize bytes
	blockSize int
	numBlocks int
	next      int // next block to read

	// CPU accounting of the worker goroutine, locked to its OS thread
	// while it runs (guarded by Capture.cpuMu).
	tid      int           // thread of the running worker, 0 when none
	runStart time.Duration // the thread's CPU time when the worker started
	cpuDone  time.Duration // CPU time of finished Runs
}

// Capture is an open live capture: one socket and ring per worker, joined
// in one fanout group. Open it, Run it, Close it.
type Capture struct {
	cfg     Config
	ifindex int
	rings   []*ring
	wake    int // eventfd that interrupts the workers' poll

	cpuMu    sync.Mutex // guards the rings' tid and cpuDone
	mu       sync.Mutex // guards stats, closing, the descriptors and closeErr
	closing  bool
	running  sync.WaitGroup // Run calls in progress
	stats    Stats
	once     sync.Once
	closeErr error
}

// htons converts a protocol number to network byte order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Open creates the worker sockets, rings and fanout group on cfg.Interface.
// Frames start queueing in the rings as soon as Open returns.
func Open(cfg Config) (*Capture, error) {
	cfg = cfg.withDefaults()
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("live: interface %q: %w", cfg.Interface, err)
	}
	page := os.Getpagesize()
	if cfg.BlockSize%page != 0 {
		return nil, fmt.Errorf("live: block size %d is not a multiple of the page size %d", cfg.BlockSize, page)
	}
	c := &Capture{cfg: cfg, ifindex: ifi.Index, wake: -1}
	if c.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("live: eventfd: %w", err)
	}
	fanoutID := -1
	for w := 0; w < cfg.Workers; w++ {
		r, err := c.openRing(w, &fanoutID)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.rings = append(c.rings, r)
	}
	return c, nil
}

// openRing sets up worker w's socket: filter, TPACKET_V3 ring, bind,
// fanout (creating the group on the first socket) and promiscuous mode.
func (c *Capture) openRing(w int, fanoutID *int) (*ring, error) {
	cfg := c.cfg
	fail := func(what string, err error) (*ring, error) {
		return nil, fmt.Errorf("live: %s: worker %d: %s: %w", cfg.Interface, w, what, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return fail("AF_PACKET socket (needs CAP_NET_RAW)", err)
	}
	r := &ring{fd: fd, blockSize: cfg.BlockSize, numBlocks: cfg.NumBlocks}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	if cfg.Filter != nil {
		if len(cfg.Filter) == 0 || len(cfg.Filter) > 4096 {
			return fail("BPF filter", fmt.Errorf("%d instructions", len(cfg.Filter)))
		}
		prog := make([]unix.SockFilter, len(cfg.Filter))
		for i, ins := range cfg.Filter {
			prog[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
		}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
			return fail("SO_ATTACH_FILTER", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("PACKET_VERSION TPACKET_V3", err)
	}
	if cfg.IgnoreOutgoing {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return fail("PACKET_IGNORE_OUTGOING", err)
		}
	}
	const frameSize = 2048 // only used by the kernel to check the geometry
	req := unix.TpacketReq3{
		Block_size:     uint32(cfg.BlockSize),
		Block_nr:       uint32(cfg.NumBlocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(cfg.BlockSize / frameSize * cfg.NumBlocks),
		Retire_blk_tov: uint32(max(1, cfg.RetireTimeout.Milliseconds())),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail(fmt.Sprintf("PACKET_RX_RING %d x %d B", cfg.NumBlocks, cfg.BlockSize), err)
	}
	r.mem, err = unix.Mmap(fd, 0, cfg.BlockSize*cfg.NumBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap ring", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: c.ifindex}); err != nil {
		return fail("bind", err)
	}
	if cfg.Workers > 1 {
		mode := unix.PACKET_FANOUT_HASH
		if *fanoutID < 0 {
			// Let the kernel pick an unused group id, then read it back.
			if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, (mode|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16); err != nil {
				return fail("PACKET_FANOUT create", err)
			}
			v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
			if err != nil {
				return fail("PACKET_FANOUT id", err)
			}
			*fanoutID = v & 0xffff
		} else if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, *fanoutID|mode<<16); err != nil {
			return fail("PACKET_FANOUT join", err)
		}
	}
	if cfg.Promiscuous && w == 0 {
		mreq := unix.PacketMreq{Ifindex: int32(c.ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("PACKET_MR_PROMISC", err)
		}
	}
	ok = true
	return r, nil
}

// close unmaps the ring and closes the socket.
func (r *ring) close() error {
	var errs []error
	if r.mem != nil {
		errs = append(errs, unix.Munmap(r.mem))
		r.mem = nil
	}
	if r.fd >= 0 {
		errs = append(errs, unix.Close(r.fd))
		r.fd = -1
	}
	return errors.Join(errs...)
}

// Run reads the rings, one goroutine per worker, calling the worker's
// Handler (made by newHandler(worker)) for each frame, until ctx is done.
// It returns nil after a cancellation, or the first ring error.
func (c *Capture) Run(ctx context.Context, newHandler func(worker int) Handler) error {
	c.mu.Lock()
	wake := c.wake
	if c.closing || wake < 0 {
		c.mu.Unlock()
		return fmt.Errorf("live: %s: Run after Close", c.cfg.Interface)
	}
	c.running.Add(1)
	defer c.running.Done()
	var buf [8]byte
	_, _ = unix.Read(wake, buf[:]) // clear a wake-up left by an earlier Run
	c.mu.Unlock()
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
			wakeAll(wake)
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-watched // no write to the eventfd after Run returns
	}()
	errc := make(chan error, len(c.rings))
	var wg sync.WaitGroup
	for w, r := range c.rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Pinned so that the thread's CPU clock measures this worker
			// (capture, and whatever the Handler does) and nothing else.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c.cpuMu.Lock()
			if t, err := ThreadCPUTime(); err == nil {
				r.tid, r.runStart = unix.Gettid(), t
			}
			c.cpuMu.Unlock()
			defer func() {
				c.cpuMu.Lock()
				if end, err := ThreadCPUTime(); err == nil && r.tid != 0 {
					r.cpuDone += end - r.runStart
				}
				r.tid = 0
				c.cpuMu.Unlock()
			}()
			err := r.loop(ctx, wake, newHandler(w))
			if err != nil {
				wakeAll(wake) // stop the other workers too
			}
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return fmt.Errorf("live: %s: %w", c.cfg.Interface, err)
		}
	}
	return nil
}

// tpacket3HdrLen is TPACKET3_HDRLEN: the aligned tpacket3_hdr followed by
// a sockaddr_ll (20 bytes); the frame starts after it.
const tpacket3HdrLen = (int(unsafe.Sizeof(unix.Tpacket3Hdr{}))+unix.TPACKET_ALIGNMENT-1)&^(unix.TPACKET_ALIGNMENT-1) + 20

// wakeAll makes the eventfd readable, which ends every worker's loop.
func wakeAll(fd int) {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1) // eventfd counter += 1
	_, _ = unix.Write(fd, one[:])
}

// blockHeader returns the TPACKET_V3 header of block i.
func (r *ring) blockHeader(i int) *unix.TpacketHdrV1 {
	// struct tpacket_block_desc { u32 version; u32 offset_to_priv; union { tpacket_hdr_v1 } }
	return (*unix.TpacketHdrV1)(unsafe.Pointer(&r.mem[i*r.blockSize+8]))
}

// loop delivers blocks as the kernel retires them, then returns them.
func (r *ring) loop(ctx context.Context, wake int, h Handler) error {
	pfd := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN | unix.POLLERR}, {Fd: int32(wake), Events: unix.POLLIN}}
	for {
		bh := r.blockHeader(r.next)
		if atomic.LoadUint32(&bh.Block_status)&unix.TP_STATUS_USER == 0 {
			if ctx.Err() != nil {
				return nil
			}
			pfd[0].Revents, pfd[1].Revents = 0, 0
			if _, err := unix.Poll(pfd, -1); err != nil && err != unix.EINTR {
				return fmt.Errorf("poll: %w", err)
			}
			if pfd[1].Revents != 0 {
				return nil
			}
			if pfd[0].Revents&unix.POLLNVAL != 0 {
				return errors.New("poll: socket closed")
			}
			if pfd[0].Revents&unix.POLLERR != 0 {
				// Pending socket errors (e.g. the interface went down).
				if serr, _ := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR); serr != 0 {
					return fmt.Errorf("socket error: %w", unix.Errno(serr))
				}
			}
			continue
		}
		base := r.next * r.blockSize
		off := base + int(bh.Offset_to_first_pkt)
		for n := bh.Num_pkts; n > 0; n-- {
			if off+int(unsafe.Sizeof(unix.Tpacket3Hdr{})) > base+r.blockSize {
				return fmt.Errorf("corrupt ring block %d: packet header at offset %d", r.next, off-base)
			}
			ph := (*unix.Tpacket3Hdr)(unsafe.Pointer(&r.mem[off]))
			start, end := off+int(ph.Mac), off+int(ph.Mac)+int(ph.Snaplen)
			if end > base+r.blockSize {
				return fmt.Errorf("corrupt ring block %d: frame at offset %d overruns the block", r.next, start-base)
			}
			origLen := int(ph.Len)
			if ph.Status&unix.TP_STATUS_VLAN_VALID != 0 && start-4 >= off+tpacket3HdrLen && end-start >= 12 {
				// The kernel strips the outer 802.1Q/802.1ad tag into the
				// header; put it back in front of the EtherType (the gap
				// between sockaddr_ll and the frame has room), as libpcap does.
				tpid := uint16(0x8100)
				if ph.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && ph.Hv1.Vlan_tpid != 0 {
					tpid = ph.Hv1.Vlan_tpid
				}
				copy(r.mem[start-4:start+8], r.mem[start:start+12])
				start -= 4
				binary.BigEndian.PutUint16(r.mem[start+12:], tpid)
				binary.BigEndian.PutUint16(r.mem[start+14:], uint16(ph.Hv1.Vlan_tci))
				origLen += 4
			}
			h(r.mem[start:end:end], int64(ph.Sec)*1_000_000_000+int64(ph.Nsec), origLen)
			if ph.Next_offset == 0 {
				break
			}
			off += int(ph.Next_offset)
		}
		atomic.StoreUint32(&bh.Block_status, unix.TP_STATUS_KERNEL)
		r.next = (r.next + 1) % r.numBlocks
	}
}

// Stats returns the kernel counters summed over workers since Open. The
// kernel resets its counters on each read; Capture accumulates them.
func (c *Capture) Stats() (Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for w, r := range c.rings {
		if r.fd < 0 {
			continue
		}
		s, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return c.stats, fmt.Errorf("live: %s: worker %d: PACKET_STATISTICS: %w", c.cfg.Interface, w, err)
		}
		c.stats.Packets += uint64(s.Packets)
		c.stats.Drops += uint64(s.Drops)
		c.stats.FreezeQueue += uint64(s.Freeze_q_cnt)
	}
	return c.stats, nil
}

// CPUTime is the CPU time (user + system) the capture workers' threads
// have used in Run so far, summed over workers: reading the rings and
// running the Handlers (for classify: decoding, the flow table and the
// representation). Each worker goroutine is locked to its OS thread while
// it runs, and its thread's CPU clock is read here.
func (c *Capture) CPUTime() (time.Duration, error) {
	c.cpuMu.Lock()
	defer c.cpuMu.Unlock()
	var total time.Duration
	var errs []error
	for _, r := range c.rings {
		total += r.cpuDone
		if r.tid != 0 {
			t, err := threadCPUTime(r.tid)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			total += t - r.runStart
		}
	}
	return total, errors.Join(errs...)
}

// Close stops a Run in progress (waiting for it to return), then releases
// the sockets and rings, leaving promiscuous mode.
func (c *Capture) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closing = true
		wake := c.wake
		c.mu.Unlock()
		if wake >= 0 {
			wakeAll(wake)
		}
		c.running.Wait()
		c.mu.Lock()
		defer c.mu.Unlock()
		var errs []error
		for _, r := range c.rings {
			errs = append(errs, r.close())
		}
		if c.wake >= 0 {
			errs = append(errs, unix.Close(c.wake))
			c.wake = -1
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
