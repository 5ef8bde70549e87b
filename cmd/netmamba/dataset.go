package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/dataset"
)

// newDatasetCmd groups dataset exports and imports.
func newDatasetCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "dataset",
		Short: "Export datasets to other trainers' formats, import them, or pseudo-label them with a model",
	}
	c.AddCommand(newDatasetExportCmd(), newDatasetImportCmd(), newDatasetPseudoLabelCmd())
	return c
}

// expandDatasetSplits returns path if it exists, else its -train/-valid/-test files.
func expandDatasetSplits(path string) ([]string, error) {
	if _, err := os.Stat(path); err == nil {
		return []string{path}, nil
	}
	var out []string
	for _, s := range dataset.SplitNames() {
		p := dataset.SplitPath(path, s)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dataset %s: no such file (nor %s)", path, dataset.SplitPath(path, "train"))
	}
	return out, nil
}

func createExportOut(path string) (io.WriteCloser, error) {
	if path == "-" {
		return exportNopCloser{os.Stdout}, nil
	}
	return os.Create(path)
}

type exportNopCloser struct{ io.Writer }

// Close does nothing: the writer (stdout) is not ours to close.
func (exportNopCloser) Close() error { return nil }

func newDatasetExportCmd() *cobra.Command {
	var format, out, index string
	c := &cobra.Command{
		Use:   "export --format u8|png|mmjson|csv|jsonl -o OUT [--index OUT.csv] DATASET...",
		Short: "Export a dataset (u8 rows, ImageFolder PNGs, NetMamba+ JSON, flow tables)",
		Long: `Formats (docs/dataset-format.md):
  u8      OUT = raw byte views, N x 1600 uint8, row-major, dataset order; the index
          CSV (--index, default OUT.csv) has the header row,file,label
  png     OUT = directory: the official NetMamba trainer's ImageFolder layout,
          OUT/[split/]class/NNNNNNNN.png (40x40 grayscale)
  mmjson  OUT = directory: the NetMamba+ trainer's data-{train,valid,test}.json
          (data.json for an unsplit dataset) and metadata.json (name_to_idx)
  csv     OUT = file ("-" = stdout): one row per flow, nfstream-style fields + label, source_file
  jsonl   the same as JSON Lines
A DATASET written with --split may be named by its base: X stands for X-train, X-valid, X-test.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("export: -o OUT is required")
			}
			var paths []string
			for _, a := range args {
				ps, err := expandDatasetSplits(a)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				paths = append(paths, ps...)
			}
			if len(paths) > 1 && (format == "u8" || format == "csv" || format == "jsonl") {
				return fmt.Errorf("export: format %s takes one dataset, got %d (%v)", format, len(paths), paths)
			}
			var sets []*dataset.Dataset
			for _, p := range paths {
				d, err := dataset.Open(p)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer d.Close()
				sets = append(sets, d)
			}
			w := cmd.OutOrStdout()
			switch format {
			case "u8":
				if index == "" {
					index = out + ".csv"
				}
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				ix, err := os.Create(index)
				if err != nil {
					f.Close()
					return fmt.Errorf("export: %w", err)
				}
				err = dataset.ExportU8(sets[0], f, ix)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if cerr := ix.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("export %s: %w", out, err)
				}
				fmt.Fprintf(w, "wrote %s (%d x 1600 uint8) and %s\n", out, sets[0].Len(), index)
			case "png":
				for _, d := range sets {
					n, err := dataset.ExportPNG(d, out)
					if err != nil {
						return fmt.Errorf("export %s: %w", d.Path(), err)
					}
					fmt.Fprintf(w, "wrote %d images from %s under %s\n", n, d.Path(), out)
					if cl := d.Classes(); !slices.IsSorted(cl) {
						fmt.Fprintln(cmd.ErrOrStderr(), "warning: the class list is not sorted; ImageFolder numbers classes in sorted folder order")
					}
				}
			case "mmjson":
				if err := exportMMJSONDir(sets, out, w); err != nil {
					return err
				}
			case "csv", "jsonl":
				f, err := createExportOut(out)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				err = dataset.ExportFlows(sets[0], f, format)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("export %s: %w", out, err)
				}
			default:
				return fmt.Errorf("export: unknown --format %q (want u8, png, mmjson, csv or jsonl)", format)
			}
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "", "u8, png, mmjson, csv or jsonl")
	c.Flags().StringVarP(&out, "output", "o", "", "output file or directory")
	c.Flags().StringVar(&index, "index", "", "u8 index CSV (default OUT.csv)")
	return c
}

func exportMMJSONDir(sets []*dataset.Dataset, dir string, w io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	classes := sets[0].Classes()
	names := map[string]string{}
	for _, d := range sets {
		if !slices.Equal(d.Classes(), classes) {
			return fmt.Errorf("export mmjson: %s and %s have different class maps", sets[0].Path(), d.Path())
		}
		name := dataset.MMJSONName(d.Meta().Split)
		if prev, ok := names[name]; ok {
			return fmt.Errorf("export mmjson: %s and %s would both be written to %s", prev, d.Path(), name)
		}
		names[name] = d.Path()
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		err = dataset.ExportMMJSON(d, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		fmt.Fprintf(w, "wrote %s (%d flows)\n", p, d.Len())
	}
	b, err := json.MarshalIndent(dataset.NewMMJSONMetadata(classes), "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "metadata.json")
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(w, "wrote %s (%d classes)\n", p, len(classes))
	return nil
}

func newDatasetImportCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "import -o DATASET TREE",
		Short: "Read an ImageFolder tree of 40x40 PNGs (TREE/class/*.png) into a dataset (bytes only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("import: -o DATASET is required")
			}
			n, err := dataset.ImportPNG(args[0], out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d flows)\n", out, n)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "dataset file to write")
	return c
}
