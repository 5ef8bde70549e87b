package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/train"
)

// newPredictCmd runs a byte classifier on raw byte views.
func newPredictCmd() *cobra.Command {
	var (
		modelPath, bytesPath, logitsPath string
		batch, threads                   int
	)
	c := &cobra.Command{
		Use:   "predict --model FILE --bytes IN.u8 --logits OUT.f32",
		Short: "Run a byte classifier on byte views (N × 1600 uint8) and write N × C float32 logits",
		Long: `predict reads N flows' byte views (N × 1600 uint8, row-major, as written by
netmamba dataset export --format u8 or the official extractor) and writes N × num_classes
little-endian float32 logits, in input order. A model that reads fewer bytes (the 400- and
800-byte variants) uses the first byte_length bytes of each row. The model is a .safetensors
or PyTorch .pth file; its architecture comes from the netmamba metadata or is inferred from
the tensor shapes. Byte-only models (NetMamba, NetTrans) are accepted; models that also read
packet sizes and timing (fuse3) need flows, not byte views: use eval or classify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" || bytesPath == "" || logitsPath == "" {
				return fmt.Errorf("predict: --model, --bytes and --logits are required")
			}
			if batch < 1 {
				return fmt.Errorf("predict: --batch %d must be >= 1", batch)
			}
			l, err := train.LoadClassifier(modelPath, batch, threads)
			if err != nil {
				return err
			}
			if a := l.Config.Arch; a != "netmamba" && a != "nettrans" {
				return fmt.Errorf("predict: %s is a %q model, which also reads packet sizes and timing; predict takes byte views only (use eval or classify)", modelPath, a)
			}
			raw, err := os.ReadFile(bytesPath)
			if err != nil {
				return fmt.Errorf("predict: %w", err)
			}
			if len(raw)%repr.ViewBytes != 0 {
				return fmt.Errorf("predict: %s: %d bytes is not a multiple of the %d-byte view", bytesPath, len(raw), repr.ViewBytes)
			}
			n := len(raw) / repr.ViewBytes
			out, err := os.Create(logitsPath)
			if err != nil {
				return fmt.Errorf("predict: %w", err)
			}
			w := bufio.NewWriter(out)
			if err := predict(l.Net, raw, n, batch, w); err != nil {
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
			fmt.Fprintf(cmd.ErrOrStderr(), "predict: %d flows, %d classes -> %s\n", n, l.Net.NumClasses(), logitsPath)
			return nil
		},
	}
	c.Flags().StringVar(&modelPath, "model", "", "model file (.safetensors or .pth)")
	c.Flags().StringVar(&bytesPath, "bytes", "", "input: N × 1600 uint8 byte views")
	c.Flags().StringVar(&logitsPath, "logits", "", "output: N × num_classes float32 little-endian logits")
	c.Flags().IntVar(&batch, "batch", 64, "flows per forward batch")
	c.Flags().IntVar(&threads, "threads", 0, "worker threads (0 = all CPUs)")
	return c
}

// predict classifies n flows of raw 1600-byte views in batches and writes
// the logits to w.
func predict(net train.Classifier, raw []byte, n, batch int, w io.Writer) error {
	C := net.NumClasses()
	batch = min(batch, max(n, 1))
	logits := make([]float32, batch*C)
	buf := make([]byte, 4*batch*C)
	idx := make([]int, batch)
	for i := range idx {
		idx[i] = i
	}
	for lo := 0; lo < n; lo += batch {
		b := min(batch, n-lo)
		d := &train.Data{N: b, Bytes: raw[lo*repr.ViewBytes : (lo+b)*repr.ViewBytes], Labels: make([]int, b)}
		if err := net.Forward(d, idx[:b], logits[:b*C]); err != nil {
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
