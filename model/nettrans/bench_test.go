package nettrans

import (
	"math/rand/v2"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
)

// benchModel runs batches of 64 flows through an officially initialised
// model (random inputs: the cost does not depend on the values).
func benchModel(b *testing.B, cfg arch.Config, train bool) {
	m, err := New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 64
	r := rand.New(rand.NewPCG(1, 2))
	in, labels := tinyBatch(m, batch, r)
	ws := m.NewWorkspace(0, train)
	logits := make([]float32, batch*cfg.NumClasses)
	var g *Params
	if train {
		g = m.NewGrads()
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if train {
			if _, err := m.ForwardBackward(in, labels, TrainOptions{LabelSmoothing: 0.1}, logits, g, ws); err != nil {
				b.Fatal(err)
			}
		} else if err := m.Forward(in, logits, ws); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "flows/s")
	// On a shared machine wall time says little; CPU time per flow does.
	b.ReportMetric(float64(batch*b.N)/(cpuTime()-cpu0).Seconds(), "flows/cpu-s")
}

func BenchmarkForwardBytes(b *testing.B) {
	benchModel(b, arch.Config{Arch: ArchBytes, NumClasses: 7}, false)
}

func BenchmarkForwardFuse3(b *testing.B) {
	benchModel(b, arch.Config{Arch: ArchFuse3, NumClasses: 7}, false)
}

func BenchmarkTrainStepFuse3(b *testing.B) {
	benchModel(b, arch.Config{Arch: ArchFuse3, NumClasses: 7}, true)
}
