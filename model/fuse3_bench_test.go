package model

import (
	"math/rand/v2"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/model/multimodal"
)

// benchFuse3Batch fills a batch of n flows with random bytes, sizes and
// IATs (half the flows padded after 10 packets).
func benchFuse3Batch(m *Fuse3, n int) *Fuse3Batch {
	return benchInputs(m.Cfg.ByteLength, m.Cfg.SeqLen, n)
}

func benchInputs(nb, sl, n int) *Fuse3Batch {
	rng := rand.New(rand.NewPCG(1, 1))
	b := &Fuse3Batch{N: n, Bytes: make([]float32, n*nb), Sizes: make([]float32, n*sl), IATs: make([]float32, n*sl)}
	for i := range b.Bytes {
		b.Bytes[i] = float32(rng.IntN(256))/127.5 - 1
	}
	for i := 0; i < n; i++ {
		for j := 0; j < sl; j++ {
			if i%2 == 1 && j >= 10 {
				b.Sizes[i*sl+j], b.IATs[i*sl+j] = multimodal.MTU, 1
				continue
			}
			b.Sizes[i*sl+j] = float32(60 + rng.IntN(1441))
			b.IATs[i*sl+j] = multimodal.IATTransform(rng.ExpFloat64() * 0.01)
		}
	}
	return b
}

func benchFuse3Forward(b *testing.B, batch, threads int, mods []string) {
	m, err := NewFuse3Random(arch.Config{Arch: ArchFuse3, NumClasses: 7, Modalities: mods}, Fuse3Options{}, 1)
	if err != nil {
		b.Fatal(err)
	}
	in := benchFuse3Batch(m, batch)
	ws := m.NewWorkspace(batch, threads, false)
	logits := make([]float32, batch*7)
	b.ResetTimer()
	cpu0 := f3CPUTime()
	for i := 0; i < b.N; i++ {
		if err := m.Forward(in, logits, ws); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(b.N*batch)/(f3CPUTime()-cpu0).Seconds(), "flows/cpu-s")
}

// BenchmarkFuse3ForwardBatch64 is the fuse3 classifier's eval forward
// (443 tokens) at batch 64 on 2 workers.
func BenchmarkFuse3ForwardBatch64(b *testing.B) { benchFuse3Forward(b, 64, 2, nil) }

// BenchmarkFuse3ForwardBatch64Threads1 is the same on one worker.
func BenchmarkFuse3ForwardBatch64Threads1(b *testing.B) { benchFuse3Forward(b, 64, 1, nil) }

// BenchmarkFuse3ForwardBatch64Bytes is the byte-only ablation (401 tokens).
func BenchmarkFuse3ForwardBatch64Bytes(b *testing.B) {
	benchFuse3Forward(b, 64, 2, []string{multimodal.ModBytes})
}

// BenchmarkFuse3TrainStepBatch16 is a classifier training step (forward
// with drop-path 0.1 + backward) at batch 16.
func BenchmarkFuse3TrainStepBatch16(b *testing.B) {
	m, err := NewFuse3Random(arch.Config{Arch: ArchFuse3, NumClasses: 7}, Fuse3Options{}, 1)
	if err != nil {
		b.Fatal(err)
	}
	B := 16
	in := benchFuse3Batch(m, B)
	ws := m.NewWorkspace(B, 2, true)
	logits := make([]float32, B*7)
	dl := make([]float32, B*7)
	for i := range dl {
		dl[i] = 0.01
	}
	g := m.NewGrads()
	opt := TrainOptions{DropPath: 0.1, Rand: rand.New(rand.NewPCG(2, 2))}
	b.ResetTimer()
	cpu0 := f3CPUTime()
	for i := 0; i < b.N; i++ {
		if err := m.ForwardTrain(in, logits, ws, opt); err != nil {
			b.Fatal(err)
		}
		if err := m.Backward(dl, ws, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*B)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(b.N*B)/(f3CPUTime()-cpu0).Seconds(), "flows/cpu-s")
}

// BenchmarkFuse3PretrainStepBatch16 is a multimodal pre-training step
// (82-token encoder, 401-token decoder, forward + backward) at batch 16.
func BenchmarkFuse3PretrainStepBatch16(b *testing.B) {
	m, err := NewFuse3Random(arch.Config{Arch: ArchFuse3, Task: "pretrain"}, Fuse3Options{}, 1)
	if err != nil {
		b.Fatal(err)
	}
	B := 16
	in := benchFuse3Batch(m, B)
	ws := m.NewWorkspace(B, 2, true)
	g := m.NewGrads()
	opt := TrainOptions{DropPath: 0.1, Rand: rand.New(rand.NewPCG(2, 2))}
	b.ResetTimer()
	cpu0 := f3CPUTime()
	for i := 0; i < b.N; i++ {
		if _, err := m.ForwardPretrain(in, nil, ws, opt); err != nil {
			b.Fatal(err)
		}
		if err := m.BackwardPretrain(ws, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*B)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(b.N*B)/(f3CPUTime()-cpu0).Seconds(), "flows/cpu-s")
}

// BenchmarkFuse3RefNetMambaForwardBatch64 is the NetMamba byte classifier
// (401 tokens) with the same metrics, for the fuse3/NetMamba cost ratio
// (expected ≈ 443/401 tokens).
func BenchmarkFuse3RefNetMambaForwardBatch64(b *testing.B) {
	m, err := NewRandom(arch.Config{NumClasses: 7}, 1)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 64
	in := benchInputs(1600, 20, batch)
	ws := m.NewWorkspace(batch, 2, false)
	logits := make([]float32, batch*7)
	b.ResetTimer()
	cpu0 := f3CPUTime()
	for i := 0; i < b.N; i++ {
		if err := m.Forward(in.Bytes, batch, logits, ws); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(b.N*batch)/(f3CPUTime()-cpu0).Seconds(), "flows/cpu-s")
}
