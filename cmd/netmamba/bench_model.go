package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/spf13/cobra"
)

// benchModelResult is one (batch, threads) measurement.
type benchModelResult struct {
	Batch      int     `json:"batch"`
	Threads    int     `json:"threads"`
	FlowsPerS  float64 `json:"flows_per_s"`
	MsPerBatch float64 `json:"ms_per_batch"`
	Iterations int     `json:"iterations"`
	CPUPerFlow float64 `json:"cpu_ms_per_flow"` // process CPU time per flow (all threads)
}

// newBenchModelCmd measures classifier inference throughput.
func newBenchModelCmd() *cobra.Command {
	var (
		modelPath string
		batches   []int
		threads   []int
		asJSON    bool
		minTime   time.Duration
	)
	c := &cobra.Command{
		Use:   "model",
		Short: "Classifier inference throughput (flows/s) by batch size and threads, peak memory, parameter count",
		Long: `bench model runs the NetMamba classifier forward on random byte views and reports
flows/s for each batch size and thread count (default: batch 1, 16, 64, 256 on
1 and 2 threads), the peak resident memory and the parameter count. Without
--model it uses a randomly initialised default NetMamba (1600 bytes, width 256,
depth 4, 7 classes). With --json and a single --batch/--threads pair it prints
one JSON object with flows_per_s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				m     *model.Model
				label string
				err   error
			)
			if modelPath != "" {
				if m, _, err = model.Load(modelPath); err != nil {
					return err
				}
				label = modelPath
			} else {
				if m, err = model.NewRandom(arch.Config{NumClasses: 7}, 1); err != nil {
					return err
				}
				label = "random-init default NetMamba (1600 B, width 256, depth 4, 7 classes)"
			}
			if m.Cfg.Task != "classify" {
				return fmt.Errorf("bench model: %s is a %q model, not a classifier", label, m.Cfg.Task)
			}
			for _, b := range batches {
				if b < 1 {
					return fmt.Errorf("bench model: batch %d must be >= 1", b)
				}
			}
			for _, t := range threads {
				if t < 1 {
					return fmt.Errorf("bench model: threads %d must be >= 1", t)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			var results []benchModelResult
			out := cmd.OutOrStdout()
			if !asJSON {
				fmt.Fprintf(out, "model: %s\nparameters: %d\nGOMAXPROCS: %d\n", label, m.P.Count(), runtime.GOMAXPROCS(0))
				fmt.Fprintf(out, "%8s %8s %12s %14s %16s %8s\n", "batch", "threads", "flows/s", "ms/batch", "CPU ms/flow", "iters")
			}
			for _, t := range threads {
				for _, b := range batches {
					r := benchModelOne(m, rng, b, t, minTime)
					results = append(results, r)
					if !asJSON {
						fmt.Fprintf(out, "%8d %8d %12.1f %14.2f %16.2f %8d\n", r.Batch, r.Threads, r.FlowsPerS, r.MsPerBatch, r.CPUPerFlow, r.Iterations)
					}
				}
			}
			peak := peakRSS()
			if asJSON {
				obj := map[string]any{"model": label, "params": m.P.Count(), "peak_rss_bytes": peak, "gomaxprocs": runtime.GOMAXPROCS(0)}
				if len(results) == 1 {
					r := results[0]
					obj["flows_per_s"], obj["batch"], obj["threads"], obj["ms_per_batch"], obj["iterations"] = r.FlowsPerS, r.Batch, r.Threads, r.MsPerBatch, r.Iterations
					obj["cpu_ms_per_flow"] = r.CPUPerFlow
				} else {
					obj["results"] = results
				}
				enc := json.NewEncoder(out)
				return enc.Encode(obj)
			}
			fmt.Fprintf(out, "peak RSS: %.1f MB\n", float64(peak)/1e6)
			return nil
		},
	}
	c.Flags().StringVar(&modelPath, "model", "", "model file (.safetensors or .pth); default: random-init default NetMamba")
	c.Flags().IntSliceVar(&batches, "batch", []int{1, 16, 64, 256}, "batch sizes")
	c.Flags().IntSliceVar(&threads, "threads", []int{1, 2}, "thread counts")
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	c.Flags().DurationVar(&minTime, "min-time", 2*time.Second, "minimum measuring time per (batch, threads) pair")
	return c
}

// benchModelOne times Forward at one batch size and thread count: one
// warm-up batch, then whole batches until minTime has passed.
func benchModelOne(m *model.Model, rng *rand.Rand, batch, threads int, minTime time.Duration) benchModelResult {
	nb, C := m.Cfg.ByteLength, m.Cfg.NumClasses
	raw := make([]byte, batch*nb)
	for i := range raw {
		raw[i] = byte(rng.IntN(256))
	}
	x := make([]float32, batch*nb)
	model.NormalizeBytes(raw, x)
	logits := make([]float32, batch*C)
	ws := m.NewWorkspace(batch, threads, false)
	_ = m.Forward(x, batch, logits, ws) // warm-up
	iters := 0
	cpu0 := processCPU()
	start := time.Now()
	for iters == 0 || time.Since(start) < minTime {
		_ = m.Forward(x, batch, logits, ws)
		iters++
	}
	el := time.Since(start).Seconds()
	cpu := (processCPU() - cpu0).Seconds()
	return benchModelResult{Batch: batch, Threads: threads, FlowsPerS: float64(iters*batch) / el,
		MsPerBatch: el * 1000 / float64(iters), Iterations: iters, CPUPerFlow: cpu * 1000 / float64(iters*batch)}
}

// processCPU returns the user+system CPU time of the process so far (all
// threads), so throughput can be judged on a shared machine: threads ×
// 1000 / cpu_ms_per_flow is the flows/s the same threads would reach on
// otherwise idle cores.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes,
// or 0 when /proc is unavailable.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmHWM:") {
			fields := strings.Fields(line)
			if len(fields) >= 2 {
				kb, err := strconv.ParseInt(fields[1], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
