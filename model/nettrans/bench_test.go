package nettrans

import (
	"math/rand/v2"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
)

// benchModel runs batches of 64 flows through an officially initialised
// model (random inputs: the cost does not depend on the values).
func benchModel(b *testing.B, cfg arch.Config, train bool) {
	benchModelMode(b, cfg, train, false, DefaultStashBytes)
}

// benchModelMode: split selects ForwardTrain + CE + Backward (the train
// loop's path) instead of the fused ForwardBackward; stash is the
// workspace's StashBytes (0: Backward recomputes every flow's forward).
func benchModelMode(b *testing.B, cfg arch.Config, train, split bool, stash int64) {
	m, err := New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 64
	r := rand.New(rand.NewPCG(1, 2))
	in, labels := tinyBatch(m, batch, r)
	ws := m.NewWorkspace(0, train)
	ws.StashBytes = stash
	logits := make([]float32, batch*cfg.NumClasses)
	dl := make([]float32, batch*cfg.NumClasses)
	var g *Params
	if train {
		g = m.NewGrads()
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if split {
			if err := m.ForwardTrain(in, logits, TrainOptions{Dropout: 0.1, Seed: uint64(i)}, ws); err != nil {
				b.Fatal(err)
			}
			C := cfg.NumClasses
			for j := 0; j < batch; j++ {
				crossEntropy(logits[j*C:(j+1)*C], labels[j], 0.1, dl[j*C:(j+1)*C])
			}
			for j := range dl {
				dl[j] /= batch
			}
			g.Zero()
			if err := m.Backward(dl, g, ws); err != nil {
				b.Fatal(err)
			}
		} else if train {
			if _, err := m.ForwardBackward(in, labels, TrainOptions{LabelSmoothing: 0.1, Dropout: 0.1, Seed: uint64(i)}, logits, g, ws); err != nil {
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

func BenchmarkTrainStepBytes(b *testing.B) {
	benchModel(b, arch.Config{Arch: ArchBytes, NumClasses: 7}, true)
}

func BenchmarkSplitTrainStepBytes(b *testing.B) {
	benchModelMode(b, arch.Config{Arch: ArchBytes, NumClasses: 7}, true, true, DefaultStashBytes)
}

// BenchmarkSplitTrainStepBytesRecompute: the split step without the
// activation stash (every flow's forward recomputed in Backward).
func BenchmarkSplitTrainStepBytesRecompute(b *testing.B) {
	benchModelMode(b, arch.Config{Arch: ArchBytes, NumClasses: 7}, true, true, 0)
}

func BenchmarkSplitTrainStepFuse3(b *testing.B) {
	benchModelMode(b, arch.Config{Arch: ArchFuse3, NumClasses: 7}, true, true, DefaultStashBytes)
}
