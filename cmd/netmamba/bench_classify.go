package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
	"github.com/netmamba/netmamba/train"
)

// benchClassifyResult is the --json output of bench classify.
type benchClassifyResult struct {
	File             string  `json:"file"`
	Model            string  `json:"model"`
	Loops            int     `json:"loops"`
	Threads          int     `json:"threads"`
	Classifiers      int     `json:"classifiers"`
	Batch            int     `json:"batch"`
	Packets          uint64  `json:"packets"`
	Bytes            uint64  `json:"bytes"`
	Flows            uint64  `json:"flows"`
	Classified       uint64  `json:"classified"`
	Seconds          float64 `json:"seconds"`
	Mbps             float64 `json:"mbps"`
	PacketsPerSec    float64 `json:"packets_per_s"`
	FlowsPerSec      float64 `json:"flows_per_s"`
	ModelSeconds     float64 `json:"model_seconds"`        // summed over classifier workers
	ModelFlowsPerSec float64 `json:"model_flows_per_s"`    // classified / model seconds, per worker
	LatencyP50Ms     float64 `json:"latency_p50_ms"`       // queue to verdict
	LatencyP99Ms     float64 `json:"latency_p99_ms"`       // queue to verdict
	PeakHeapMB       float64 `json:"peak_heap_mb"`         // sampled
	NotAssigned      uint64  `json:"packets_not_assigned"` // non-IP / malformed
}

// timedNet measures the time spent in Forward.
type timedNet struct {
	train.Classifier
	mu   *sync.Mutex
	busy *time.Duration
}

// Forward runs the wrapped classifier and adds its wall time to busy.
func (t timedNet) Forward(d *train.Data, idx []int, logits []float32) error {
	s := time.Now()
	err := t.Classifier.Forward(d, idx, logits)
	el := time.Since(s)
	t.mu.Lock()
	*t.busy += el
	t.mu.Unlock()
	return err
}

func newBenchClassifyCmd() *cobra.Command {
	var (
		pf                         pipelineFlags
		loops                      int
		asJSON, noModel, randModel bool
		saveRandom, writeEther     string
	)
	c := &cobra.Command{
		Use:   "classify [FILE] [--loops N] [--threads T] [--json] [--no-model]",
		Short: "End-to-end classification throughput over a capture (default ../shared/data/ndpi-trace.pcapng), looped",
		Long: `bench classify reads FILE into memory and runs the whole classify pipeline over it
--loops times (capture parsing, flow table, representation, batcher, classifier workers;
each loop is a fresh flow table, so every loop classifies every flow). It reports
end-to-end Mb/s (captured bytes), packets/s and flows/s, and the model part separately
(flows classified per second of classifier time). --no-model measures capture + flow
table + representation only. --random-model uses a randomly initialised default-size
NetMamba (same cost as a trained one) instead of --model.

--write-ethernet OUT.pcap converts FILE to an Ethernet-only pcap of its IP packets (for
tcpreplay, which cannot take pcapng with several link types): each IP packet's bytes
from the IP header on, behind a fixed Ethernet header; VLAN tags are dropped and packets
longer than 1500 bytes of IP (TSO/GRO captures) are skipped and counted.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := filepath.Join("..", "shared", "data", "ndpi-trace.pcapng")
			if len(args) == 1 {
				file = args[0]
			}
			stderr := cmd.ErrOrStderr()
			if writeEther != "" {
				n, skipped, err := writeEthernetPcap(file, writeEther)
				if err != nil {
					return err
				}
				fmt.Fprintf(stderr, "bench classify: wrote %d IP packets to %s (%d skipped: not IP or longer than 1500 bytes)\n", n, writeEther, skipped)
				return nil
			}
			if randModel || saveRandom != "" {
				path := saveRandom
				if path == "" {
					dir, err := os.MkdirTemp("", "netmamba-bench")
					if err != nil {
						return err
					}
					defer os.RemoveAll(dir)
					path = filepath.Join(dir, "random-default.safetensors")
				}
				if err := writeRandomModel(path, 10, 1); err != nil {
					return fmt.Errorf("bench classify: %w", err)
				}
				if saveRandom != "" && !randModel {
					fmt.Fprintf(stderr, "bench classify: wrote a RANDOMLY INITIALISED default-size NetMamba (10 classes) to %s\n", path)
					return nil
				}
				pf.modelPath = path
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("bench classify: %w", err)
			}
			p, name, err := pf.build(cmd.Flags(), false, true, noModel)
			if err != nil {
				return fmt.Errorf("bench classify: %w", err)
			}
			p.Close() // only to read the effective options; rebuilt with timed nets below
			opts := p.Options()
			var mu sync.Mutex
			var busy time.Duration
			var nets []train.Classifier
			if !noModel {
				for range pf.classifiers {
					l, _, err := loadClassifier(pf.modelPath, pf.batch, pf.threads)
					if err != nil {
						return err
					}
					nets = append(nets, timedNet{l.Net, &mu, &busy})
				}
				if randModel {
					name = "random-default (untrained)"
				}
			}
			p, err = classify.New(nets, opts)
			if err != nil {
				return fmt.Errorf("bench classify: %w", err)
			}
			var peak uint64
			var ms runtime.MemStats
			start := time.Now()
			for i := range loops {
				r, err := capture.NewBytesReader(raw, file)
				if err != nil {
					return fmt.Errorf("bench classify: %w", err)
				}
				in := p.NewIngest(fmt.Sprintf("%s#%d", file, i), nil)
				rerr := in.ReadCapture(r)
				in.Close()
				if rerr != nil && !capture.IsTruncated(rerr) {
					return fmt.Errorf("bench classify: %w", rerr)
				}
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			p.Close()
			el := time.Since(start).Seconds()
			st := p.Stats()
			res := benchClassifyResult{File: file, Model: name, Loops: loops, Threads: pf.threads, Classifiers: len(nets),
				Batch: opts.MaxBatch, Packets: st.Packets, Bytes: st.Bytes, Flows: st.Flows, Classified: st.Classified,
				Seconds: el, Mbps: float64(st.Bytes) * 8 / 1e6 / el, PacketsPerSec: float64(st.Packets) / el,
				FlowsPerSec: float64(st.Flows) / el, ModelSeconds: busy.Seconds(),
				LatencyP50Ms: float64(st.LatencyP50) / 1e6, LatencyP99Ms: float64(st.LatencyP99) / 1e6,
				PeakHeapMB: float64(peak) / (1 << 20), NotAssigned: st.NotAssigned}
			if busy > 0 {
				res.ModelFlowsPerSec = float64(st.Classified) / busy.Seconds() * float64(len(nets))
			}
			if noModel {
				res.Model = "none (--no-model)"
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(w, "bench classify: %s ×%d, model %s (threads %d, %d classifier(s), batch %d)\n", file, loops, res.Model, pf.threads, len(nets), opts.MaxBatch)
			fmt.Fprintf(w, "  end to end: %.2f Mb/s, %.0f packets/s, %.0f flows/s (%d packets, %d flows, %.2f s)\n",
				res.Mbps, res.PacketsPerSec, res.FlowsPerSec, st.Packets, st.Flows, el)
			if !noModel {
				fmt.Fprintf(w, "  model: %d flows classified in %.2f s of classifier time: %.0f flows/s; latency p50 %.1f ms, p99 %.1f ms\n",
					st.Classified, res.ModelSeconds, res.ModelFlowsPerSec, res.LatencyP50Ms, res.LatencyP99Ms)
			}
			fmt.Fprintf(w, "  peak heap %.0f MB; %d packets not assigned to a flow (non-IP/malformed)\n", res.PeakHeapMB, st.NotAssigned)
			return nil
		},
	}
	f := c.Flags()
	pf.register(f)
	f.IntVar(&loops, "loops", 3, "passes over the file")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.BoolVar(&noModel, "no-model", false, "capture + flow table + representation only")
	f.BoolVar(&randModel, "random-model", false, "use a randomly initialised default-size NetMamba (untrained; same cost)")
	f.StringVar(&saveRandom, "save-random-model", "", "write the random default-size model to this file (and exit unless --random-model)")
	f.StringVar(&writeEther, "write-ethernet", "", "write FILE's IP packets as an Ethernet-only pcap here and exit (for tcpreplay)")
	return c
}

// writeRandomModel saves a RANDOMLY INITIALISED default-size NetMamba
// classifier (for benchmarks and end-to-end checks only).
func writeRandomModel(path string, classes int, seed uint64) error {
	m, err := model.NewRandom(arch.Config{NumClasses: classes}, seed)
	if err != nil {
		return err
	}
	cfg := m.Cfg
	meta := checkpoint.Meta{Config: &cfg}
	for i := range classes {
		meta.Classes = append(meta.Classes, fmt.Sprintf("random_%d", i))
	}
	return checkpoint.WriteSafetensors(path, &checkpoint.File{Tensors: m.Tensors(), Metadata: meta.Map()}, checkpoint.WriteOptions{})
}

// writeEthernetPcap writes in's IP packets (≤ 1500 bytes of IP) to out as
// an Ethernet pcap (µs timestamps). It returns the packets written and skipped.
func writeEthernetPcap(in, out string) (written, skipped int, err error) {
	r, err := capture.Open(in)
	if err != nil {
		return 0, 0, fmt.Errorf("bench classify: %w", err)
	}
	defer r.Close()
	f, err := os.Create(out)
	if err != nil {
		return 0, 0, fmt.Errorf("bench classify: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	pw, err := capture.NewPcapWriter(bw, capture.PcapWriterOptions{LinkType: capture.LinkEthernet, Snaplen: 65535})
	if err != nil {
		f.Close()
		return 0, 0, fmt.Errorf("bench classify: %s: %w", out, err)
	}
	var cp capture.Packet
	var p flow.Packet
	frame := make([]byte, 0, 65536)
	for {
		if err := r.Next(&cp); err != nil {
			if err != io.EOF && !capture.IsTruncated(err) {
				f.Close()
				return written, skipped, fmt.Errorf("bench classify: %s: %w", in, err)
			}
			break
		}
		if flow.Decode(cp.LinkType, cp.Data, &p) != flow.OK || len(p.L3()) > 1500 {
			skipped++
			continue
		}
		frame = appendIPFrame(frame[:0], p.L3(), p.IPVersion)
		if err := pw.WritePacket(cp.TimestampNs, frame, len(frame)); err != nil {
			f.Close()
			return written, skipped, fmt.Errorf("bench classify: %s: %w", out, err)
		}
		written++
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return written, skipped, fmt.Errorf("bench classify: %s: %w", out, err)
	}
	return written, skipped, f.Close()
}
