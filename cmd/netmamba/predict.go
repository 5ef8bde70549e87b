package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/netmamba/netmamba/model"
	"github.com/spf13/cobra"
)

// newPredictCmd runs a NetMamba classifier on raw byte views.
func newPredictCmd() *cobra.Command {
	var (
		modelPath, bytesPath, logitsPath string
		batch, threads                   int
	)
	c := &cobra.Command{
		Use:   "predict --model FILE --bytes IN.u8 --logits OUT.f32",
		Short: "Run a NetMamba classifier on byte views (N × byte_length uint8) and write N × C float32 logits",
		Long: `predict reads N flows' byte views (N × byte_length uint8, 1600 for the default
model, as produced by the extractor) and writes N × num_classes little-endian
float32 logits, in input order. The model is a .safetensors (or .pth) file;
its architecture comes from the netmamba metadata or is inferred from the
tensor shapes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" || bytesPath == "" || logitsPath == "" {
				return fmt.Errorf("predict: --model, --bytes and --logits are required")
			}
			if batch < 1 {
				return fmt.Errorf("predict: --batch %d must be >= 1", batch)
			}
			m, _, err := model.Load(modelPath)
			if err != nil {
				return err
			}
			if m.Cfg.Task != "classify" {
				return fmt.Errorf("predict: %s is a %q model, not a classifier", modelPath, m.Cfg.Task)
			}
			raw, err := os.ReadFile(bytesPath)
			if err != nil {
				return fmt.Errorf("predict: %w", err)
			}
			nb, C := m.Cfg.ByteLength, m.Cfg.NumClasses
			if len(raw)%nb != 0 {
				return fmt.Errorf("predict: %s: %d bytes is not a multiple of the model's byte_length %d", bytesPath, len(raw), nb)
			}
			n := len(raw) / nb
			out, err := os.Create(logitsPath)
			if err != nil {
				return fmt.Errorf("predict: %w", err)
			}
			w := bufio.NewWriter(out)
			if err := predict(m, raw, n, batch, threads, w); err != nil {
				out.Close()
				return err
			}
			if err := w.Flush(); err != nil {
				out.Close()
				return fmt.Errorf("predict: %s: %w", logitsPath, err)
			}
			if err := out.Close(); err != nil {
				return fmt.Errorf("predict: %s: %w", logitsPath, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "predict: %d flows, %d classes -> %s\n", n, C, logitsPath)
			return nil
		},
	}
	c.Flags().StringVar(&modelPath, "model", "", "model file (.safetensors or .pth)")
	c.Flags().StringVar(&bytesPath, "bytes", "", "input: N × byte_length uint8 byte views")
	c.Flags().StringVar(&logitsPath, "logits", "", "output: N × num_classes float32 little-endian logits")
	c.Flags().IntVar(&batch, "batch", 64, "flows per forward batch")
	c.Flags().IntVar(&threads, "threads", 0, "worker threads (0 = all CPUs)")
	return c
}

// predict classifies n flows of raw byte views in batches and writes the
// logits to w.
func predict(m *model.Model, raw []byte, n, batch, threads int, w io.Writer) error {
	nb, C := m.Cfg.ByteLength, m.Cfg.NumClasses
	batch = min(batch, max(n, 1))
	ws := m.NewWorkspace(batch, threads, false)
	x := make([]float32, batch*nb)
	logits := make([]float32, batch*C)
	buf := make([]byte, 4*batch*C)
	for lo := 0; lo < n; lo += batch {
		b := min(batch, n-lo)
		model.NormalizeBytes(raw[lo*nb:(lo+b)*nb], x)
		if err := m.Forward(x, b, logits, ws); err != nil {
			return fmt.Errorf("predict: flows %d..%d: %w", lo, lo+b-1, err)
		}
		for i, v := range logits[:b*C] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*b*C]); err != nil {
			return fmt.Errorf("predict: writing logits: %w", err)
		}
	}
	return nil
}
