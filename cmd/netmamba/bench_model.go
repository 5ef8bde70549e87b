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

	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/train"
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
		archs     []string
		batches   []int
		threads   []int
		asJSON    bool
		minTime   time.Duration
	)
	c := &cobra.Command{
		Use:   "model",
		Short: "Classifier inference throughput (flows/s) by batch size and threads, peak memory, parameter count",
		Long: `bench model runs a classifier forward on random flows (byte views, sizes, IATs) and
reports flows/s for each batch size and thread count (default: batch 1, 16, 64, 256 on
1 and 2 threads), CPU ms per flow (process CPU time, so figures stay meaningful on a
busy machine: threads × 1000 / cpu_ms_per_flow is what idle cores would reach), the
peak resident memory and the parameter count. Without --model it uses randomly
initialised official-size models of the --arch list: netmamba (NetMamba, bytes),
fuse3 (NetMamba+: bytes, sizes, IATs), nettrans (NetTrans, bytes), fuse3_nettrans
(NetTrans with all three modalities) — side by side. With --json and a single
--batch/--threads pair and one model it prints one JSON object with flows_per_s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			type subject struct {
				label string
				net   func(batch, threads int) (train.Classifier, error)
			}
			var subjects []subject
			if modelPath != "" {
				subjects = append(subjects, subject{modelPath, func(b, t int) (train.Classifier, error) {
					l, err := train.LoadClassifier(modelPath, b, t)
					if err != nil {
						return nil, err
					}
					return l.Net, nil
				}})
			} else {
				for _, a := range archs {
					cfg := arch.Config{Arch: a, NumClasses: 7}
					if a == "fuse3" || a == "fuse3_nettrans" {
						cfg.Modalities = []string{"bytes", "sizes", "iats"}
					}
					subjects = append(subjects, subject{"random-init " + a + " (official size, 7 classes)", func(b, t int) (train.Classifier, error) {
						n, _, err := train.NewClassifier(cfg, 1, b, t, 0)
						return n, err
					}})
				}
			}
			out := cmd.OutOrStdout()
			var all []map[string]any
			for _, sub := range subjects {
				var results []benchModelResult
				var params int
				if !asJSON {
					fmt.Fprintf(out, "model: %s\n", sub.label)
					fmt.Fprintf(out, "%8s %8s %12s %14s %16s %8s\n", "batch", "threads", "flows/s", "ms/batch", "CPU ms/flow", "iters")
				}
				for _, t := range threads {
					for _, b := range batches {
						net, err := sub.net(b, t)
						if err != nil {
							return err
						}
						params = 0
						for _, p := range net.Params() {
							params += len(p.Data)
						}
						r, err := benchModelOne(net, b, t, minTime)
						if err != nil {
							return err
						}
						results = append(results, r)
						if !asJSON {
							fmt.Fprintf(out, "%8d %8d %12.1f %14.2f %16.2f %8d\n", r.Batch, r.Threads, r.FlowsPerS, r.MsPerBatch, r.CPUPerFlow, r.Iterations)
						}
					}
				}
				obj := map[string]any{"model": sub.label, "params": params, "gomaxprocs": runtime.GOMAXPROCS(0)}
				if len(results) == 1 {
					r := results[0]
					obj["flows_per_s"], obj["batch"], obj["threads"], obj["ms_per_batch"], obj["iterations"] = r.FlowsPerS, r.Batch, r.Threads, r.MsPerBatch, r.Iterations
					obj["cpu_ms_per_flow"] = r.CPUPerFlow
				} else {
					obj["results"] = results
				}
				all = append(all, obj)
				if !asJSON {
					fmt.Fprintf(out, "parameters: %d\n\n", params)
				}
			}
			peak := peakRSS()
			if asJSON {
				enc := json.NewEncoder(out)
				if len(all) == 1 {
					all[0]["peak_rss_bytes"] = peak
					return enc.Encode(all[0])
				}
				return enc.Encode(map[string]any{"models": all, "peak_rss_bytes": peak})
			}
			fmt.Fprintf(out, "peak RSS: %.1f MB (GOMAXPROCS %d)\n", float64(peak)/1e6, runtime.GOMAXPROCS(0))
			return nil
		},
	}
	c.Flags().StringVar(&modelPath, "model", "", "model file (.safetensors or .pth); default: random-init official-size models of --arch")
	c.Flags().StringSliceVar(&archs, "arch", []string{"netmamba"}, "architectures to compare without --model: netmamba, fuse3, nettrans, fuse3_nettrans")
	c.Flags().IntSliceVar(&batches, "batch", []int{1, 16, 64, 256}, "batch sizes")
	c.Flags().IntSliceVar(&threads, "threads", []int{1, 2}, "thread counts")
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	c.Flags().DurationVar(&minTime, "min-time", 2*time.Second, "minimum measuring time per (batch, threads) pair")
	return c
}

// benchModelOne times Forward at one batch size and thread count on random
// flows: one warm-up batch, then whole batches until minTime has passed.
func benchModelOne(net train.Classifier, batch, threads int, minTime time.Duration) (benchModelResult, error) {
	d := randomFlows(batch, 1)
	idx := make([]int, batch)
	for i := range idx {
		idx[i] = i
	}
	logits := make([]float32, batch*net.NumClasses())
	if err := net.Forward(d, idx, logits); err != nil { // warm-up
		return benchModelResult{}, err
	}
	iters := 0
	cpu0 := processCPU()
	start := time.Now()
	for iters == 0 || time.Since(start) < minTime {
		if err := net.Forward(d, idx, logits); err != nil {
			return benchModelResult{}, err
		}
		iters++
	}
	el := time.Since(start).Seconds()
	cpu := (processCPU() - cpu0).Seconds()
	return benchModelResult{Batch: batch, Threads: threads, FlowsPerS: float64(iters*batch) / el,
		MsPerBatch: el * 1000 / float64(iters), Iterations: iters, CPUPerFlow: cpu * 1000 / float64(iters*batch)}, nil
}

// randomFlows makes n flows with random byte views, frame sizes and IATs.
func randomFlows(n int, seed uint64) *train.Data {
	rng := rand.New(rand.NewPCG(seed, 2))
	d := &train.Data{N: n, Bytes: make([]byte, n*repr.ViewBytes), Labels: make([]int, n), Sources: make([]string, n), Views: make([]repr.View, n)}
	for i := range d.Bytes {
		d.Bytes[i] = byte(rng.IntN(256))
	}
	for i := range d.Views {
		v := &d.Views[i]
		copy(v.Bytes[:], d.Bytes[i*repr.ViewBytes:])
		v.NPackets = repr.SeqLen
		for j := 0; j < repr.SeqLen; j++ {
			v.Sizes[j] = uint32(60 + rng.IntN(1400))
			v.Dirs[j] = int8(1 - 2*rng.IntN(2))
			if j > 0 {
				v.IATs[j] = rng.Float64() * 0.1
			}
		}
	}
	return d
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
