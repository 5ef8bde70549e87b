package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/live"
)

// replayMACs are the fixed Ethernet addresses of replayed frames (locally
// administered; the same as bench classify --write-ethernet writes).
var replayMACs = [12]byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01}

// appendIPFrame appends an Ethernet frame carrying the IP packet l3
// (IPv4 or IPv6 by version) to dst, behind the fixed replay addresses.
func appendIPFrame(dst, l3 []byte, ipVersion uint8) []byte {
	dst = append(dst, replayMACs[:]...)
	et := uint16(0x0800)
	if ipVersion == 6 {
		et = 0x86DD
	}
	dst = binary.BigEndian.AppendUint16(dst, et)
	return append(dst, l3...)
}

// replayFrames are the frames of the replayed captures, in one arena.
type replayFrames struct {
	frames [][]byte
	meta   []frameMeta // for --unique-ip
	bytes  uint64
	// skipped frames by reason
	notIP, tooLong uint64
}

// frameMeta locates what --unique-ip rewrites in a frame: the low 16 bits
// of both IP addresses (their original values) and the checksums
// covering them (offsets in the frame, -1 when absent).
type frameMeta struct {
	srcOff, dstOff   int32
	srcOrig, dstOrig uint16
	ipCsum, l4Csum   int32
	udp              bool // a zero L4 checksum means "none" and stays zero
}

// loadReplayFrames reads every packet of files (any link type the project
// reads) and keeps the IP ones as Ethernet frames of at most mtu bytes of
// IP; the others are counted.
func loadReplayFrames(files []string, mtu int) (*replayFrames, error) {
	rf := &replayFrames{}
	var arena []byte
	type span struct{ off, n int }
	var spans []span
	var cp capture.Packet
	var p flow.Packet
	for _, file := range files {
		r, err := capture.Open(file)
		if err != nil {
			if _, ok := errors.AsType[*capture.Error](err); ok {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for {
			err := r.Next(&cp)
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if flow.Decode(cp.LinkType, cp.Data, &p) != flow.OK {
				rf.notIP++
				continue
			}
			l3 := p.L3()
			if len(l3) > mtu {
				rf.tooLong++
				continue
			}
			off := len(arena)
			arena = appendIPFrame(arena, l3, p.IPVersion)
			spans = append(spans, span{off, len(arena) - off})
		}
		r.Close()
	}
	rf.frames = make([][]byte, len(spans))
	rf.meta = make([]frameMeta, len(spans))
	for i, s := range spans {
		f := arena[s.off : s.off+s.n : s.off+s.n]
		rf.frames[i] = f
		rf.bytes += uint64(len(f))
		rf.meta[i] = uniqueIPMeta(f)
	}
	return rf, nil
}

// uniqueIPMeta finds the fields --unique-ip rewrites in an Ethernet frame
// built by appendIPFrame.
func uniqueIPMeta(f []byte) frameMeta {
	m := frameMeta{srcOff: -1, dstOff: -1, ipCsum: -1, l4Csum: -1}
	const ip = 14
	var l4, proto int
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		if len(f) < ip+20 {
			return m
		}
		ihl := int(f[ip]&0x0f) * 4
		m.srcOff, m.dstOff, m.ipCsum = ip+14, ip+18, ip+10
		if binary.BigEndian.Uint16(f[ip+6:])&0x1fff != 0 {
			break // a later fragment: no L4 header
		}
		l4, proto = ip+ihl, int(f[ip+9])
	case 0x86DD:
		if len(f) < ip+40 {
			return m
		}
		m.srcOff, m.dstOff = ip+22, ip+38
		l4, proto = ip+40, int(f[ip+6]) // L4 directly after the header only
	default:
		return m
	}
	m.srcOrig = binary.BigEndian.Uint16(f[m.srcOff:])
	m.dstOrig = binary.BigEndian.Uint16(f[m.dstOff:])
	switch proto {
	case 6: // TCP
		m.l4Csum = int32(l4 + 16)
	case 17: // UDP
		m.l4Csum, m.udp = int32(l4+6), true
	case 58: // ICMPv6 (its checksum covers the pseudo-header)
		m.l4Csum = int32(l4 + 2)
	}
	if m.l4Csum >= 0 && int(m.l4Csum)+2 > len(f) {
		m.l4Csum = -1 // cut by the snap length
	}
	return m
}

// csumReplace updates a ones'-complement checksum for a 16-bit word
// changing from old to new (RFC 1624, eqn. 3).
func csumReplace(cs, old, new uint16) uint16 {
	sum := uint32(^cs) + uint32(^old) + uint32(new)
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	return ^uint16(sum)
}

// setUniqueIP makes pass p's flows distinct from every other pass's:
// the low 16 bits of both IP addresses of every frame become their
// original value + p (so a flow's two directions stay one flow), with the
// IPv4 header and TCP/UDP/ICMPv6 checksums updated to match.
func (rf *replayFrames) setUniqueIP(pass int) {
	for i, f := range rf.frames {
		m := &rf.meta[i]
		if m.srcOff < 0 {
			continue
		}
		for _, a := range [2]struct {
			off  int32
			orig uint16
		}{{m.srcOff, m.srcOrig}, {m.dstOff, m.dstOrig}} {
			old := binary.BigEndian.Uint16(f[a.off:])
			nv := a.orig + uint16(pass)
			if old == nv {
				continue
			}
			binary.BigEndian.PutUint16(f[a.off:], nv)
			if m.ipCsum >= 0 {
				binary.BigEndian.PutUint16(f[m.ipCsum:], csumReplace(binary.BigEndian.Uint16(f[m.ipCsum:]), old, nv))
			}
			if m.l4Csum >= 0 {
				cs := binary.BigEndian.Uint16(f[m.l4Csum:])
				if m.udp && cs == 0 {
					continue // no UDP checksum
				}
				cs = csumReplace(cs, old, nv)
				if m.udp && cs == 0 {
					cs = 0xffff // a computed zero is sent as all ones
				}
				binary.BigEndian.PutUint16(f[m.l4Csum:], cs)
			}
		}
	}
}

func newReplayCmd() *cobra.Command {
	var (
		iface              string
		mbps               float64
		topspeed, uniqueIP bool
		loops, batch       int
		duration           time.Duration
	)
	c := &cobra.Command{
		Use:   "replay -i IFACE [--mbps R | --topspeed] [--loop N] [--duration D] [--unique-ip] FILE…",
		Short: "Send the IP packets of captures on an interface at a given rate (a fast tcpreplay for benchmarks)",
		Long: `replay reads pcap/pcapng(.gz) files of any link type netmamba reads, turns each IP
packet into an Ethernet frame (its bytes from the IP header on behind fixed locally
administered MACs 02:00:00:00:00:01 -> 02:00:00:00:00:02, as bench classify
--write-ethernet does; VLAN tags dropped), loads them all in memory once, then sends
them on IFACE through an AF_PACKET socket (Linux; root or CAP_NET_RAW), a batch of
--batch frames per system call. Frames that are not IP (or malformed) and IP packets
longer than IFACE's MTU are counted and skipped.

--mbps R paces the frame bytes (link header included) at R Mb/s with a token bucket
(a batch per wake-up, at most 5 ms of burst); --topspeed sends as fast as the kernel
takes them. Packet timestamps are ignored. --loop N passes over the frames (0: until
--duration or Ctrl-C); --duration D stops after D. --unique-ip adds the pass number to
the low 16 bits of every IP address (both directions alike, checksums updated), so
each pass's flows are new flows to a flow table, like tcpreplay --unique-ip.

A one-line summary goes to stderr: packets, bytes, seconds, Mb/s, packets/s, passes,
errors (frames the kernel refused, never silently lost) and retries (queue full,
offered again), as in this run of scripts/bench-live.sh:
  replay nmb028290: 11581074 packets, 3297041418 bytes in 30.000 s: 879.2 Mb/s, 386033 packets/s; 123 passes, 0 errors, 0 retries`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if iface == "" {
				return fmt.Errorf("replay: -i IFACE is required")
			}
			if topspeed == (cmd.Flags().Changed("mbps")) {
				return fmt.Errorf("replay: give exactly one of --mbps R or --topspeed")
			}
			if !topspeed && !(mbps > 0 && !math.IsInf(mbps, 1)) {
				return fmt.Errorf("replay: --mbps %v: must be a finite number > 0", mbps)
			}
			if loops < 0 || duration < 0 || batch < 1 {
				return fmt.Errorf("replay: --loop %d, --duration %v, --batch %d: want loop >= 0, duration >= 0, batch >= 1", loops, duration, batch)
			}
			ifi, err := net.InterfaceByName(iface)
			if err != nil {
				return fmt.Errorf("replay: interface %q: %w", iface, err)
			}
			stderr := cmd.ErrOrStderr()
			rf, err := loadReplayFrames(args, ifi.MTU)
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			fmt.Fprintf(stderr, "replay: loaded %d frames (%d bytes) from %d file(s); skipped %d not IP or malformed, %d longer than the MTU of %s (%d)\n",
				len(rf.frames), rf.bytes, len(args), rf.notIP, rf.tooLong, iface, ifi.MTU)
			if len(rf.frames) == 0 {
				return fmt.Errorf("replay: no IP packet to send in %v", args)
			}
			cfg := live.SendConfig{Interface: iface, Loops: loops, Duration: duration, Batch: batch}
			if !topspeed {
				cfg.BitsPerSecond = mbps * 1e6
			}
			if loops == 0 && duration == 0 {
				cfg.Duration = math.MaxInt64 // until interrupted
			}
			if uniqueIP {
				cfg.BeforeLoop = rf.setUniqueIP
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := live.Send(ctx, cfg, rf.frames)
			fmt.Fprintf(stderr, "replay %s: %v\n", iface, st)
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&iface, "interface", "i", "", "send on this interface (Linux AF_PACKET; needs CAP_NET_RAW)")
	f.Float64Var(&mbps, "mbps", 0, "rate in Mb/s of frame bytes")
	f.BoolVar(&topspeed, "topspeed", false, "send as fast as possible")
	f.IntVar(&loops, "loop", 1, "passes over the frames (0: until --duration or interrupted)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: no limit)")
	f.BoolVar(&uniqueIP, "unique-ip", false, "make each pass's flows new (pass number added to the low 16 bits of the IP addresses)")
	f.IntVar(&batch, "batch", 256, "frames per system call")
	return c
}
