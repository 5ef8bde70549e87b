// Package repr turns a flow's first packets into the NetMamba byte view and
// the NetMamba+ packet-size and inter-arrival-time sequences.
package repr

// Shape of the NetMamba byte view (SPEC §2).
const (
	ViewPackets  = 5                          // packets in the byte view
	HeaderBytes  = 80                         // IP+L4 header bytes per packet slot
	PayloadBytes = 240                        // L4 payload bytes per packet slot
	SlotBytes    = HeaderBytes + PayloadBytes // 320 bytes per packet
	ViewBytes    = ViewPackets * SlotBytes    // 1600 bytes per flow
	SeqLen       = 20                         // packets in the NetMamba+ sequences
)

// View is everything the models read from one flow.
type View struct {
	Bytes [ViewBytes]byte // byte view, zero padded
	// Sizes are the captured frame lengths (link header included, as scapy's
	// len(packet)) of packets 0..SeqLen-1; 0 for missing packets. Model input
	// ids (clamping, padding, signing) are derived from these.
	Sizes [SeqLen]uint32
	// Dirs is +1 for packets sent by the flow's initiator, -1 for replies, 0 for missing.
	Dirs [SeqLen]int8
	// IATs are inter-arrival times in seconds rounded to 1e-6 (first = 0).
	IATs [SeqLen]float64
	// NPackets is the number of packets recorded in Sizes/IATs (≤ SeqLen).
	NPackets int
}
