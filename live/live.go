// Package live captures packets from a network interface in real time.
//
// On Linux it uses AF_PACKET sockets with a TPACKET_V3 memory-mapped receive
// ring per worker, spread with PACKET_FANOUT (hash mode: both directions of
// a flow reach the same worker), an optional classic BPF filter attached in
// the kernel, optional promiscuous mode and the kernel's PACKET_STATISTICS
// counters. It needs no cgo and works in the static pure-Go build. Frames
// are delivered without copying: the slice passed to a Handler points into
// the ring and is valid only until the Handler returns.
//
// Other systems build a stub whose Open returns ErrUnsupported.
package live

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/bpf"
)

// ErrUnsupported is returned by Open on systems without AF_PACKET.
var ErrUnsupported = errors.New("live capture needs Linux AF_PACKET")

// Config configures a live capture.
type Config struct {
	// Interface is the name of the interface to capture on (e.g. "eth0").
	Interface string
	// Workers is the number of sockets in the fanout group, each with its
	// own ring and goroutine (0 means 1).
	Workers int
	// BlockSize is the size of one ring block in bytes, a multiple of the
	// page size (0 means 1 MiB). A frame larger than a block is truncated.
	BlockSize int
	// NumBlocks is the number of blocks per worker ring (0 means 64).
	NumBlocks int
	// RetireTimeout hands a partly filled block to the reader after this
	// long (0 means 50 ms); it bounds delivery latency at low rates.
	RetireTimeout time.Duration
	// Promiscuous puts the interface in promiscuous mode while the capture
	// is open (PACKET_MR_PROMISC).
	Promiscuous bool
	// IgnoreOutgoing drops frames the host sends (PACKET_IGNORE_OUTGOING).
	// Set it on a loopback interface (IsLoopback), where every packet is
	// otherwise seen twice: once sent, once received.
	IgnoreOutgoing bool
	// Filter is a classic BPF program run by the kernel on each frame
	// (from the link header on); nil captures everything. Build it with
	// golang.org/x/net/bpf (bpf.Assemble) or from tcpdump -dd output.
	Filter []bpf.RawInstruction
}

// Handler receives one frame: data is the captured bytes (link header
// included, valid only during the call), tsNs the kernel timestamp in ns
// since the Unix epoch, origLen the frame's length on the wire.
type Handler func(data []byte, tsNs int64, origLen int)

// Stats are the kernel's counters summed over the workers since Open.
type Stats struct {
	Packets uint64 // frames that passed the filter (including dropped ones)
	Drops   uint64 // frames dropped because a ring was full
	// FreezeQueue counts times a ring was frozen because it was full
	// (tp_freeze_q_cnt).
	FreezeQueue uint64
}

// defaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 1 << 20
	}
	if c.NumBlocks <= 0 {
		c.NumBlocks = 64
	}
	if c.RetireTimeout <= 0 {
		c.RetireTimeout = 50 * time.Millisecond
	}
	return c
}

// IsLoopback reports whether the named interface is a loopback interface
// (net.FlagLoopback), on which AF_PACKET sees each packet twice unless
// Config.IgnoreOutgoing is set.
func IsLoopback(name string) (bool, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return false, fmt.Errorf("live: interface %q: %w", name, err)
	}
	return ifi.Flags&net.FlagLoopback != 0, nil
}
