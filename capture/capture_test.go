package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/internal/sharedtest"
)

// sharedDir is ../shared beside the repository (see internal/sharedtest).
func sharedDir(t testing.TB) string { return sharedtest.Dir(t) }

type testPkt struct {
	ts    int64
	data  []byte
	orig  int
	iface int
}

func samplePackets() []testPkt {
	var out []testPkt
	for i := range 7 {
		d := make([]byte, 20+i*13)
		for j := range d {
			d[j] = byte(i*31 + j)
		}
		out = append(out, testPkt{ts: 1_700_000_000_123_456_789 + int64(i)*1_000_001, data: d, orig: len(d) + i%2*100, iface: i % 3})
	}
	return out
}

// writePcap writes pkts as classic pcap.
func writePcap(t testing.TB, o PcapWriterOptions, pkts []testPkt) []byte {
	var buf bytes.Buffer
	w, err := NewPcapWriter(&buf, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.ts, p.data, p.orig); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// writeNG writes pkts as pcapng with three interfaces of different link
// types and resolutions.
func writeNG(t testing.TB, bigEndian bool, pkts []testPkt) []byte {
	var buf bytes.Buffer
	w, err := NewPcapNGWriter(&buf, bigEndian)
	if err != nil {
		t.Fatal(err)
	}
	for i, lt := range []LinkType{LinkEthernet, LinkLinuxSLL, LinkRaw} {
		if _, err := w.AddInterface(lt, 65535, i != 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.iface, p.ts, p.data, p.orig); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func readAll(t testing.TB, r *Reader) ([]Packet, error) {
	var out []Packet
	for {
		var p Packet
		err := r.Next(&p)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		p.Data = append([]byte(nil), p.Data...)
		out = append(out, p)
	}
}

func TestPcapRoundTrip(t *testing.T) {
	pkts := samplePackets()
	for _, o := range []PcapWriterOptions{
		{LinkType: LinkEthernet},
		{LinkType: LinkEthernet, Nanoseconds: true},
		{LinkType: LinkLinuxSLL, BigEndian: true},
		{LinkType: LinkRaw, BigEndian: true, Nanoseconds: true},
	} {
		data := writePcap(t, o, pkts)
		for _, streamed := range []bool{false, true} {
			var r *Reader
			var err error
			if streamed {
				r, err = NewReader(bytes.NewReader(data), "x.pcap")
			} else {
				r, err = NewBytesReader(data, "x.pcap")
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(pkts) {
				t.Fatalf("%+v: %d packets, want %d", o, len(got), len(pkts))
			}
			for i, p := range got {
				wantTs := pkts[i].ts
				if !o.Nanoseconds {
					wantTs = wantTs / 1000 * 1000
				}
				if p.TimestampNs != wantTs || !bytes.Equal(p.Data, pkts[i].data) || p.OrigLen != pkts[i].orig || p.LinkType != o.LinkType {
					t.Errorf("%+v packet %d: got ts %d len %d orig %d link %v", o, i, p.TimestampNs, len(p.Data), p.OrigLen, p.LinkType)
				}
			}
		}
	}
}

func TestPcapNGRoundTripAndGzip(t *testing.T) {
	pkts := samplePackets()
	links := []LinkType{LinkEthernet, LinkLinuxSLL, LinkRaw}
	for _, be := range []bool{false, true} {
		data := writeNG(t, be, pkts)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(data)
		zw.Close()
		for _, in := range [][]byte{data, gz.Bytes()} {
			for _, streamed := range []bool{false, true} {
				var r *Reader
				var err error
				if streamed {
					r, err = NewReader(bytes.NewReader(in), "x.pcapng")
				} else {
					r, err = NewBytesReader(in, "x.pcapng")
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAll(t, r)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(pkts) || r.Format() != FormatPcapNG {
					t.Fatalf("%d packets, format %v", len(got), r.Format())
				}
				for i, p := range got {
					want := pkts[i]
					wantTs := want.ts
					if want.iface == 1 { // microsecond interface
						wantTs = wantTs / 1000 * 1000
					}
					if p.TimestampNs != wantTs || !bytes.Equal(p.Data, want.data) || p.Interface != want.iface || p.LinkType != links[want.iface] {
						t.Errorf("be=%v packet %d: ts %d (want %d) iface %d link %v", be, i, p.TimestampNs, wantTs, p.Interface, p.LinkType)
					}
				}
			}
		}
	}
}

// TestBadCaptures expects clear, located errors for empty, foreign,
// truncated and corrupt input.
func TestBadCaptures(t *testing.T) {
	good := writePcap(t, PcapWriterOptions{LinkType: LinkEthernet}, samplePackets())
	ng := writeNG(t, false, samplePackets())
	corruptLen := append([]byte(nil), good...)
	corruptLen[24+8] = 0xff // first record captured length -> huge
	corruptLen[24+9] = 0xff
	corruptLen[24+10] = 0xff
	corruptLen[24+11] = 0x7f
	ngBadTail := append([]byte(nil), ng...)
	ngBadTail[len(ngBadTail)-1] ^= 0x40
	cases := []struct {
		name       string
		data       []byte
		wantOpen   error
		wantRead   error
		wantOffset int64
	}{
		{"empty", nil, ErrFormat, nil, 0},
		{"text", []byte("hello, this is not a capture"), ErrFormat, nil, 0},
		{"short header", good[:10], ErrTruncated, nil, 0},
		{"truncated record", good[:len(good)-5], nil, ErrTruncated, int64(len(good) - (16 + 20 + 6*13))},
		{"truncated record header", good[:24+16+20+7], nil, ErrTruncated, 24 + 16 + 20},
		{"corrupt length", corruptLen, nil, ErrCorrupt, 24},
		{"pcapng truncated", ng[:len(ng)-3], nil, ErrTruncated, -1},
		{"pcapng bad trailer", ngBadTail, nil, ErrCorrupt, -1},
		{"pcapng without SHB", ng[28:], ErrFormat, nil, 0},
	}
	for _, c := range cases {
		r, err := NewBytesReader(c.data, c.name+".pcap")
		if c.wantOpen != nil {
			if !errors.Is(err, c.wantOpen) {
				// pcapng without SHB is only detected on the first block
				if err == nil {
					_, err = readAll(t, r)
				}
				if !errors.Is(err, c.wantOpen) {
					t.Errorf("%s: open error %v, want %v", c.name, err, c.wantOpen)
				}
			}
			checkErr(t, c.name, err, c.wantOffset)
			continue
		}
		if err != nil {
			t.Errorf("%s: open: %v", c.name, err)
			continue
		}
		pk, err := readAll(t, r)
		if !errors.Is(err, c.wantRead) {
			t.Errorf("%s: read error %v, want %v (after %d packets)", c.name, err, c.wantRead, len(pk))
			continue
		}
		checkErr(t, c.name, err, c.wantOffset)
	}
}

func checkErr(t *testing.T, name string, err error, off int64) {
	var ce *Error
	if !errors.As(err, &ce) {
		t.Errorf("%s: %v is not a *capture.Error", name, err)
		return
	}
	if ce.File != name+".pcap" {
		t.Errorf("%s: error names file %q", name, ce.File)
	}
	if off >= 0 && ce.Offset != off {
		t.Errorf("%s: error at offset %d, want %d (%v)", name, ce.Offset, off, err)
	}
	t.Logf("%s: %v", name, err)
}

// TestTracePerLinkType reads ndpi-trace.pcapng through and compares packet
// counts per link type with ../shared/data/README.md.
func TestTracePerLinkType(t *testing.T) {
	path := filepath.Join(sharedDir(t), "data", "ndpi-trace.pcapng")
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	counts := map[LinkType]int{}
	var p Packet
	total := 0
	for {
		err := r.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		counts[p.LinkType]++
		total++
	}
	want := map[LinkType]int{
		LinkEthernet: 88658, LinkLinuxSLL: 5492, LinkRaw: 1192, LinkNull: 523,
		LinkIPv4: 25, LinkPPP: 15, LinkPPI: 6, LinkCiscoHDLC: 2,
	}
	if total != 95913 {
		t.Errorf("%d packets, want 95913", total)
	}
	for lt, n := range want {
		if counts[lt] != n {
			t.Errorf("%v: %d packets, want %d", lt, counts[lt], n)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("link types %v, want %v", counts, want)
	}
	t.Logf("ndpi-trace.pcapng: %d packets, per link type %v", total, counts)
}

// An *fs.PathError about the capture itself is not named twice, and stays
// reachable with errors.Is / errors.As.
func TestErrorNamesFileOnce(t *testing.T) {
	_, err := os.Open("/nonexistent/x.pcap")
	e := &Error{File: "/nonexistent/x.pcap", Msg: "open", Err: err}
	if got, want := e.Error(), "/nonexistent/x.pcap: offset 0: open: no such file or directory"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var pe *fs.PathError
	if !errors.Is(e, fs.ErrNotExist) || !errors.As(e, &pe) {
		t.Errorf("%v lost its cause", e)
	}
	e = &Error{File: "/nonexistent/x.pcap", Offset: 24, Msg: "record", Err: err}
	if got, want := e.Error(), "/nonexistent/x.pcap: offset 24: record: open: no such file or directory"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &Error{File: "other.pcap", Msg: "open", Err: err} // a different file stays named
	if !strings.Contains(e.Error(), "open /nonexistent/x.pcap: no such file") {
		t.Errorf("Error() = %q", e.Error())
	}
}
