package train

import (
	"math/rand/v2"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/nettrans"
)

// benchFlows is the official fine-tuning batch.
const benchFlows = 64

// reportFlows reports flows/s (wall) and CPU ms/flow (getrusage) for
// b.N steps of benchFlows flows since cpu0.
func reportFlows(b *testing.B, cpu0 float64) {
	flows := float64(benchFlows * b.N)
	b.ReportMetric(flows/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric((nettransCPUTime().Seconds()-cpu0)*1e3/flows, "cpu-ms/flow")
}

// benchNetTransClassifier times the training step the fine-tune loop
// runs: ForwardTrain, label-smoothed CE, Backward (official widths,
// dropout 0.1, GOMAXPROCS workers).
func benchNetTransClassifier(b *testing.B, a string) {
	d := synthData(benchFlows, 7, 1)
	net, _, err := NewClassifier(arch.Config{Arch: a, NumClasses: 7}, 1, benchFlows, 0, 0.1)
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int, benchFlows)
	for i := range idx {
		idx[i] = i
	}
	logits, dl := make([]float32, benchFlows*7), make([]float32, benchFlows*7)
	crit := &CrossEntropyLoss{Smoothing: 0.1}
	rng := rand.New(rand.NewPCG(1, 2))
	cpu0 := nettransCPUTime().Seconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := net.ForwardTrain(d, idx, logits, rng); err != nil {
			b.Fatal(err)
		}
		if _, err := crit.Loss(logits, d.Labels, benchFlows, 7, dl); err != nil {
			b.Fatal(err)
		}
		if err := net.Backward(dl); err != nil {
			b.Fatal(err)
		}
	}
	reportFlows(b, cpu0)
}

func BenchmarkNetTransTrainStepBytes(b *testing.B) { benchNetTransClassifier(b, nettrans.ArchBytes) }
func BenchmarkNetTransTrainStepFuse3(b *testing.B) { benchNetTransClassifier(b, nettrans.ArchFuse3) }

// benchNetTransPretrain times one pre-training step (Loss + Backward) of
// the official model (mask 0.9, decoder 128×2).
func benchNetTransPretrain(b *testing.B, a string) {
	d := synthData(benchFlows, 7, 1)
	p, _, err := NewPretrainer(arch.Config{Arch: a}, 1, benchFlows, 0, 0.1)
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int, benchFlows)
	for i := range idx {
		idx[i] = i
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cpu0 := nettransCPUTime().Seconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Loss(d, idx, rng); err != nil {
			b.Fatal(err)
		}
		if err := p.Backward(); err != nil {
			b.Fatal(err)
		}
	}
	reportFlows(b, cpu0)
}

func BenchmarkNetTransPretrainStepBytes(b *testing.B) { benchNetTransPretrain(b, nettrans.ArchBytes) }
func BenchmarkNetTransPretrainStepFuse3(b *testing.B) { benchNetTransPretrain(b, nettrans.ArchFuse3) }
