package extract

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/netmamba/netmamba/capture"
)

// BenchmarkTrace measures read + decode + flow table + byte view on
// ndpi-trace.pcapng held in memory (bidirectional, default mode), one core.
func BenchmarkTrace(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(sharedDir(b), "data", "ndpi-trace.pcapng"))
	if err != nil {
		b.Fatal(err)
	}
	benchCapture(b, data, Options{Bidirectional: true})
}

// BenchmarkTraceOfficial is the same in compat "official" mode (allocating
// hex emulation of scapy, for comparison).
func BenchmarkTraceOfficial(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(sharedDir(b), "data", "ndpi-trace.pcapng"))
	if err != nil {
		b.Fatal(err)
	}
	benchCapture(b, data, Options{Bidirectional: true, Compat: CompatOfficial})
}

func benchCapture(b *testing.B, data []byte, opts Options) {
	ex, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	var rep Report
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		r, err := capture.NewBytesReader(data, "ndpi-trace.pcapng")
		if err != nil {
			b.Fatal(err)
		}
		if err := ex.Capture(r, &rep, func(*Flow) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	cpu := processCPU() - cpu0
	if cpu > 0 {
		// Per CPU-second of this process: the per-core rate, robust to
		// other processes competing for the cores.
		b.ReportMetric(float64(rep.Packets)/cpu, "packets/cpu-s")
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(rep.Packets)/sec, "packets/s")
	b.ReportMetric(float64(rep.Flows)/sec, "flows/s")
	b.ReportMetric(float64(rep.Bytes)*8/1e6/sec, "Mb/s")
}
