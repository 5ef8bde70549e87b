package classify

import (
	"os"
	"testing"

	"github.com/netmamba/netmamba/capture"
)

// BenchmarkIngestNoModel measures capture parsing + flow table +
// representation over ndpi-trace.pcapng (no classifier): b.N passes.
func BenchmarkIngestNoModel(b *testing.B) {
	raw, err := os.ReadFile(tracePath(b))
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(nil, Options{Bidirectional: true})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for range b.N {
		r, err := capture.NewBytesReader(raw, "trace")
		if err != nil {
			b.Fatal(err)
		}
		in := p.NewIngest("trace", nil)
		if err := in.ReadCapture(r); err != nil {
			b.Fatal(err)
		}
		in.Close()
	}
	st := p.Stats()
	b.ReportMetric(float64(st.Flows)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(st.Packets)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkPipelineTinyModel is the whole pipeline with a tiny random
// classifier (2 workers) over the whole trace: flows classified per second.
func BenchmarkPipelineTinyModel(b *testing.B) {
	raw, err := os.ReadFile(tracePath(b))
	if err != nil {
		b.Fatal(err)
	}
	mpath := writeTinyModel(b, 8, 1)
	l, nets := loadNets(b, mpath, 2)
	p, err := New(nets, Options{Classes: l.Meta.Classes, Bidirectional: true, Block: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		r, err := capture.NewBytesReader(raw, "trace")
		if err != nil {
			b.Fatal(err)
		}
		in := p.NewIngest("trace", nil)
		if err := in.ReadCapture(r); err != nil {
			b.Fatal(err)
		}
		in.Close()
	}
	p.Close()
	st := p.Stats()
	b.ReportMetric(float64(st.Classified)/b.Elapsed().Seconds(), "flows/s")
}
