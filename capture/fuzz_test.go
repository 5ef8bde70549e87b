package capture

import (
	"io"
	"testing"
)

// drain reads r to the end; it must never panic, and errors must be *Error.
func drain(t *testing.T, r *Reader) {
	var p Packet
	for range 1 << 16 {
		err := r.Next(&p)
		if err == io.EOF {
			return
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v (%T) is not a *capture.Error", err, err)
			}
			return
		}
		if len(p.Data) > MaxRecordBytes {
			t.Fatalf("packet of %d bytes", len(p.Data))
		}
	}
}

func fuzzBoth(t *testing.T, data []byte) {
	if r, err := NewBytesReader(data, "fuzz"); err == nil {
		drain(t, r)
	}
	if r, err := NewReader(&oneByteReader{data}, "fuzz"); err == nil {
		drain(t, r)
	}
}

// oneByteReader returns small reads to exercise the streaming refill path.
type oneByteReader struct{ b []byte }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7)], o.b)
	o.b = o.b[n:]
	return n, nil
}

// FuzzPcapReader: seeds are pcap files written by PcapWriter in all four
// magic/byte-order variants, plus truncations.
func FuzzPcapReader(f *testing.F) {
	for _, o := range []PcapWriterOptions{
		{LinkType: LinkEthernet}, {LinkType: LinkRaw, Nanoseconds: true},
		{LinkType: LinkLinuxSLL, BigEndian: true}, {LinkType: LinkNull, BigEndian: true, Nanoseconds: true},
	} {
		d := writePcap(f, o, samplePackets())
		f.Add(d)
		f.Add(d[:len(d)/2])
		f.Add(d[:30])
	}
	f.Fuzz(fuzzBoth)
}

// FuzzPcapNGReader: seeds are pcapng files written by PcapNGWriter (three
// interfaces, both byte orders), plus truncations.
func FuzzPcapNGReader(f *testing.F) {
	for _, be := range []bool{false, true} {
		d := writeNG(f, be, samplePackets())
		f.Add(d)
		f.Add(d[:len(d)/2])
		f.Add(d[:100])
	}
	f.Fuzz(fuzzBoth)
}
