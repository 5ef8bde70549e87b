package model

import (
	"fmt"

	"github.com/netmamba/netmamba/checkpoint"
)

// LoadFuse3 reads a fuse3 Mamba model (classifier or pre-training) from a
// .safetensors or PyTorch .pth file. The architecture comes from the
// file's netmamba.config metadata when present, else it is inferred from
// the tensor names and shapes (checkpoint.InferConfig); signed sizes are
// selected by netmamba.repr.size_mode "signed" or by the shape of
// size_decoder_pred. It also returns the file's metadata.
func LoadFuse3(path string) (*Fuse3, map[string]string, error) {
	f, err := checkpoint.Load(path)
	if err != nil {
		return nil, nil, err
	}
	meta, err := checkpoint.ParseMeta(f.Metadata)
	if err != nil {
		return nil, nil, fmt.Errorf("model: %s: metadata: %w", path, err)
	}
	cfg := meta.Config
	if cfg == nil {
		c, err := checkpoint.InferConfig(f.Tensors)
		if err != nil {
			return nil, nil, fmt.Errorf("model: %s: no netmamba.config metadata and %w", path, err)
		}
		cfg = &c
	}
	if cfg.Arch != ArchFuse3 {
		return nil, nil, fmt.Errorf("model: %s: architecture %q is not %q", path, cfg.Arch, ArchFuse3)
	}
	m, err := Fuse3FromTensors(*cfg, f.Tensors)
	if err != nil {
		return nil, nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if meta.Repr.SizeMode == "signed" {
		m.Opt.SignedSizes = true
		if m.Cfg.Task == "pretrain" && len(m.P.SizePredB) != m.Opt.SizeVocab() {
			return nil, nil, fmt.Errorf("model: %s: signed sizes but size_decoder_pred has %d outputs, want %d", path, len(m.P.SizePredB), m.Opt.SizeVocab())
		}
	}
	return m, f.Metadata, nil
}
