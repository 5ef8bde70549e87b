package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/arch"
)

// newCheckpointCmd groups checkpoint conversion and inspection.
func newCheckpointCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "checkpoint",
		Short: "Convert and inspect model checkpoints (safetensors, PyTorch .pth)",
	}
	c.AddCommand(newCheckpointConvertCmd(), newCheckpointInspectCmd())
	return c
}

func newCheckpointConvertCmd() *cobra.Command {
	var metas []string
	var fp16, bf16 bool
	c := &cobra.Command{
		Use:   "convert IN OUT",
		Short: "Convert a checkpoint (safetensors or .pth in) to OUT's format (.safetensors or .pth)",
		Long: `Convert reads IN (safetensors or a torch.save .pth; detected from the content) and
writes OUT in the format its extension names (.safetensors, or .pth/.pt for torch.load).
Existing metadata is kept; netmamba.format_version and netmamba.config (inferred from the
tensor shapes when absent) are added. --meta key=value sets a field: full keys
(netmamba.calib.temperature) or short ones (temperature, classes=a,b,c), see
docs/checkpoint-format.md.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := checkpoint.WriteOptions{}
			switch {
			case fp16 && bf16:
				return fmt.Errorf("checkpoint convert: --fp16 and --bf16 exclude each other")
			case fp16:
				opt.Float = "F16"
			case bf16:
				opt.Float = "BF16"
			}
			if _, err := checkpoint.FormatForPath(args[1]); err != nil {
				return err
			}
			f, format, err := checkpoint.LoadFormat(args[0])
			if err != nil {
				return err
			}
			if f.Metadata == nil {
				f.Metadata = map[string]string{}
			}
			md := f.Metadata
			if _, ok := md[checkpoint.KeyFormatVersion]; !ok {
				md[checkpoint.KeyFormatVersion] = checkpoint.FormatVersion
			}
			if _, ok := md[checkpoint.KeyConfig]; !ok {
				inf, err := checkpoint.Infer(f.Tensors)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: no %s written: %v\n", args[0], checkpoint.KeyConfig, err)
				} else {
					b, _ := json.Marshal(inf.Config)
					md[checkpoint.KeyConfig] = string(b)
					for _, n := range inf.Notes {
						fmt.Fprintf(cmd.ErrOrStderr(), "note: inferred config: %s\n", n)
					}
				}
			}
			for _, kv := range metas {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("checkpoint convert: --meta %q: want key=value", kv)
				}
				if err := checkpoint.SetMetaValue(md, k, v); err != nil {
					return err
				}
			}
			if _, err := checkpoint.ParseMeta(md); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err := checkpoint.Save(args[1], f, opt); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) -> %s: %d tensors, %d parameters\n", args[0], format, args[1], len(f.Tensors), f.NumParams())
			return nil
		},
	}
	c.Flags().StringArrayVar(&metas, "meta", nil, "set a metadata field, key=value (repeatable)")
	c.Flags().BoolVar(&fp16, "fp16", false, "store float tensors in half precision (IEEE binary16)")
	c.Flags().BoolVar(&bf16, "bf16", false, "store float tensors in bfloat16")
	return c
}

// checkpointReport is what `checkpoint inspect --json` prints.
type checkpointReport struct {
	File         string             `json:"file"`
	Format       string             `json:"format"`
	Config       *arch.Config       `json:"config,omitempty"`
	ConfigSource string             `json:"config_source"` // "metadata", "inferred" or "none"
	ConfigError  string             `json:"config_error,omitempty"`
	Notes        []string           `json:"notes,omitempty"`
	Classes      []string           `json:"classes,omitempty"`
	Parameters   int64              `json:"parameters"`
	Tensors      []checkpointTensor `json:"tensors"`
	Metadata     map[string]string  `json:"metadata"`
}

type checkpointTensor struct {
	Name   string `json:"name"`
	DType  string `json:"dtype"`
	Stored string `json:"stored,omitempty"`
	Shape  []int  `json:"shape"`
	Numel  int    `json:"numel"`
}

func inspectCheckpoint(path string) (*checkpointReport, error) {
	f, format, err := checkpoint.LoadFormat(path)
	if err != nil {
		return nil, err
	}
	r := &checkpointReport{File: path, Format: format, Parameters: f.NumParams(), Metadata: f.Metadata, Tensors: []checkpointTensor{}}
	if r.Metadata == nil {
		r.Metadata = map[string]string{}
	}
	for _, n := range f.Names() {
		t := f.Tensors[n]
		r.Tensors = append(r.Tensors, checkpointTensor{Name: n, DType: t.DType, Stored: t.Stored, Shape: t.Shape, Numel: t.Numel()})
	}
	meta, err := checkpoint.ParseMeta(r.Metadata)
	if err != nil {
		r.Notes = append(r.Notes, err.Error())
		meta = &checkpoint.Meta{}
	}
	r.Classes = meta.Classes
	switch inf, ierr := checkpoint.Infer(f.Tensors); {
	case meta.Config != nil:
		r.Config, r.ConfigSource = meta.Config, "metadata"
		if ierr == nil && !sameArch(*meta.Config, inf.Config) {
			r.Notes = append(r.Notes, fmt.Sprintf("the tensor shapes suggest a different config: %+v", inf.Config))
		}
	case ierr == nil:
		r.Config, r.ConfigSource, r.Notes = &inf.Config, "inferred", append(r.Notes, inf.Notes...)
	default:
		r.ConfigSource, r.ConfigError = "none", ierr.Error()
	}
	return r, nil
}

// sameArch compares the fields that shapes determine.
func sameArch(a, b arch.Config) bool {
	return a.Arch == b.Arch && a.EmbedDim == b.EmbedDim && a.Depth == b.Depth && a.Stride == b.Stride &&
		a.NumClasses == b.NumClasses && a.DState == b.DState && a.DtRank == b.DtRank
}

func newCheckpointInspectCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a checkpoint's format, config, tensors, parameter count and metadata",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := inspectCheckpoint(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			printCheckpointReport(out, r)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON report")
	return c
}

func printCheckpointReport(w io.Writer, r *checkpointReport) {
	fmt.Fprintf(w, "file:        %s\n", r.File)
	fmt.Fprintf(w, "format:      %s\n", r.Format)
	fmt.Fprintf(w, "tensors:     %d\n", len(r.Tensors))
	fmt.Fprintf(w, "parameters:  %d\n", r.Parameters)
	if r.Config != nil {
		b, _ := json.Marshal(r.Config)
		fmt.Fprintf(w, "config (%s): %s\n", r.ConfigSource, b)
	} else {
		fmt.Fprintf(w, "config:      none (%s)\n", r.ConfigError)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note:        %s\n", n)
	}
	if len(r.Classes) > 0 {
		fmt.Fprintf(w, "classes:     %d: %s\n", len(r.Classes), strings.Join(r.Classes, ", "))
	}
	if len(r.Metadata) > 0 {
		fmt.Fprintln(w, "metadata:")
		keys := make([]string, 0, len(r.Metadata))
		for k := range r.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s = %s\n", k, r.Metadata[k])
		}
	}
	fmt.Fprintln(w, "tensors:")
	width := 0
	for _, t := range r.Tensors {
		width = max(width, len(t.Name))
	}
	for _, t := range r.Tensors {
		dt := t.DType
		if t.Stored != "" {
			dt = t.Stored + "->" + t.DType
		}
		fmt.Fprintf(w, "  %-*s  %-8s %v\n", width, t.Name, dt, t.Shape)
	}
}
