package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/repr"
	"github.com/netmamba/netmamba/train"
)

// newPredictCmd runs a byte classifier on raw byte views.
func newPredictCmd() *cobra.Command {
	var (
		modelPath, bytesPath, logitsPath string
		batch, threads                   int
		rawRows                          bool
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
packet sizes and timing (fuse3) need flows, not byte views: use eval or classify.

When the model was trained on offset-correct views with zero_* debias strategies beyond
NetMamba's zero_ip (its metadata says which), those rewrites are applied to every input row
first (repr.Redebias: zeroing is idempotent, so rows already built that way are unchanged and
rows from a plain prep become exactly what the model was trained on); --raw feeds the rows as
given.`,
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
			if !rawRows {
				if err := applyModelDebias(cmd.ErrOrStderr(), modelPath, bytesPath, l.Meta, raw); err != nil {
					return err
				}
			}
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
	c.Flags().BoolVar(&rawRows, "raw", false, "feed the rows as given (no debias rewrite from the model's metadata)")
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

// applyModelDebias rewrites every 1600-byte row of raw in place with the
// zero_* debias strategies the model was trained with, when it was trained
// on offset-correct views with more than NetMamba's zero_ip. Zeroing is
// idempotent: rows built with those strategies are unchanged.
func applyModelDebias(w io.Writer, model, rowsPath string, meta *checkpoint.Meta, raw []byte) error {
	if meta == nil || meta.Repr.Compat != "" || len(meta.Repr.Debias) == 0 {
		return nil
	}
	d, err := repr.ParseDebias(meta.Repr.Debias)
	if err != nil {
		return fmt.Errorf("predict: %s: %w", model, err)
	}
	if err := repr.CheckZeroOnly(d); err != nil {
		fmt.Fprintf(w, "predict: warning: %s was trained with debias %s, which cannot be applied to byte views after the fact: rows are used as given\n",
			model, strings.Join(d.Names(), ","))
		return nil
	}
	beyondIP := d
	beyondIP.IP = repr.IPZero
	if beyondIP == (repr.Debias{}) {
		return nil // nothing beyond the addresses, which prep zeroes by default
	}
	if err := redebiasRows(w, "predict", rowsPath, raw, d); err != nil {
		return err
	}
	fmt.Fprintf(w, "predict: applying the model's debias %s to every row (--raw: as given)\n", strings.Join(d.Names(), ","))
	return nil
}
