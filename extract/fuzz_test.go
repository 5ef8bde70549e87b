package extract

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/repr"
)

// FuzzPipeline runs arbitrary pcap bytes through the whole pipeline in
// both compat modes with every debias option: it must never panic. Seeds
// are raw-IP pcaps written by capture.PcapWriter.
func FuzzPipeline(f *testing.F) {
	ip := func(proto byte, frag uint16, l4 []byte) []byte {
		b := make([]byte, 20+len(l4))
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		binary.BigEndian.PutUint16(b[6:], frag)
		b[9] = proto
		b[12], b[16] = 10, 10
		copy(b[20:], l4)
		return b
	}
	tcp := make([]byte, 40)
	tcp[12] = 5 << 4
	tcp[21] = 0x16
	udp := []byte{0x00, 0x89, 0x00, 0x89, 0, 20, 0, 0, 1, 2, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1}
	var buf bytes.Buffer
	w, err := capture.NewPcapWriter(&buf, capture.PcapWriterOptions{LinkType: capture.LinkRaw})
	if err != nil {
		f.Fatal(err)
	}
	for i, fr := range [][]byte{ip(6, 0, tcp), ip(17, 0x2000, udp), ip(17, 3, []byte("frag")), ip(1, 0, []byte{3, 0, 0, 0, 0, 0, 0, 0, 0x45})} {
		w.WritePacket(int64(i)*1e6, fr, len(fr))
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []Options{
			{Bidirectional: true},
			{Compat: CompatOfficial},
			{Bidirectional: true, Clean: true, MaxFlows: 2, IdleTimeout: 1, Windows: 3, Debias: repr.Debias{
				IP: repr.IPRandom, Port: repr.PortRandom, TCPSeq: repr.SeqRelative, TCPOptions: true,
				Window: true, Checksums: true, TTL: true, SNI: true}},
		} {
			ex, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			r, err := capture.NewBytesReader(data, "fuzz")
			if err != nil {
				return
			}
			var rep Report
			_ = ex.Capture(r, &rep, func(*Flow) error { return nil })
		}
	})
}
