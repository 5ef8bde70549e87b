package capture

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/gopacket/pcapgo"
)

func traceBytes(b *testing.B) []byte {
	data, err := os.ReadFile(filepath.Join(sharedDir(b), "data", "ndpi-trace.pcapng"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func cpuNow() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkRead: this package's zero-copy reader over ndpi-trace.pcapng in memory.
func BenchmarkRead(b *testing.B) {
	data := traceBytes(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	cpu0 := cpuNow()
	for b.Loop() {
		r, err := NewBytesReader(data, "trace")
		if err != nil {
			b.Fatal(err)
		}
		var p Packet
		for r.Next(&p) == nil {
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(n)/(cpuNow()-cpu0), "packets/cpu-s")
}

// BenchmarkReadPcapgo: gopacket's pcapgo.NgReader (ZeroCopyReadPacketData)
// over the same bytes, for comparison.
func BenchmarkReadPcapgo(b *testing.B) {
	data := traceBytes(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	cpu0 := cpuNow()
	for b.Loop() {
		r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, _, err := r.ZeroCopyReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(n)/(cpuNow()-cpu0), "packets/cpu-s")
}
