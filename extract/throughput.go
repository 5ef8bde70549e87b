package extract

import (
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/netmamba/netmamba/capture"
)

// Throughput is the result of MeasureThroughput.
type Throughput struct {
	Threads       int     `json:"threads"`
	Loops         int     `json:"loops"` // passes over the capture per thread
	Packets       uint64  `json:"packets"`
	Flows         uint64  `json:"flows"`
	Bytes         uint64  `json:"bytes"` // captured bytes
	Seconds       float64 `json:"seconds"`
	CPUSeconds    float64 `json:"cpu_seconds"` // process user+system time during the run
	PacketsPerSec float64 `json:"packets_per_s"`
	FlowsPerSec   float64 `json:"flows_per_s"`
	MbitPerSec    float64 `json:"mbit_per_s"`
	// PacketsPerCPUSec is packets per CPU-second: the per-core rate,
	// insensitive to other processes sharing the cores.
	PacketsPerCPUSec float64 `json:"packets_per_cpu_s"`
}

// MeasureThroughput runs the whole pipeline (read + decode + flow table +
// byte view, flows discarded) over a capture held in memory, loops times
// per thread, after one untimed warm-up pass per thread. Parallelism is by independent inputs: each of the threads
// goroutines has its own Extractor and reads its own pass over data, as if
// each processed a different file — the way prep parallelises over files.
func MeasureThroughput(data []byte, name string, opts Options, threads, loops int) (Throughput, error) {
	threads, loops = max(threads, 1), max(loops, 1)
	exs := make([]*Extractor, threads)
	for i := range exs {
		ex, err := New(opts)
		if err != nil {
			return Throughput{}, err
		}
		exs[i] = ex
	}
	// One untimed warm-up pass per pipeline (grows its flow table once).
	for _, ex := range exs {
		r, err := capture.NewBytesReader(data, name)
		if err != nil {
			return Throughput{}, err
		}
		var warm Report
		if err := ex.Capture(r, &warm, func(*Flow) error { return nil }); err != nil {
			return Throughput{}, err
		}
	}
	reps := make([]Report, threads)
	errs := make([]error, threads)
	cpu0 := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range threads {
		wg.Go(func() {
			for range loops {
				r, err := capture.NewBytesReader(data, name)
				if err != nil {
					errs[i] = err
					return
				}
				if err := exs[i].Capture(r, &reps[i], func(*Flow) error { return nil }); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	t := Throughput{Threads: threads, Loops: loops, Seconds: time.Since(start).Seconds(), CPUSeconds: processCPU() - cpu0}
	for i := range reps {
		if errs[i] != nil {
			return t, fmt.Errorf("thread %d: %w", i, errs[i])
		}
		t.Packets += reps[i].Packets
		t.Flows += reps[i].Flows
		t.Bytes += reps[i].Bytes
	}
	if t.Seconds > 0 {
		t.PacketsPerSec = float64(t.Packets) / t.Seconds
		t.FlowsPerSec = float64(t.Flows) / t.Seconds
		t.MbitPerSec = float64(t.Bytes) * 8 / 1e6 / t.Seconds
	}
	if t.CPUSeconds > 0 {
		t.PacketsPerCPUSec = float64(t.Packets) / t.CPUSeconds
	}
	return t, nil
}

// processCPU is the process's user+system CPU time in seconds (0 if unknown).
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
