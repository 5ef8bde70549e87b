package model

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model/arch"
)

// Load reads a NetMamba model from a .safetensors or PyTorch .pth file.
// The architecture comes from the file's netmamba metadata
// (netmamba.config) when present, else it is inferred from the tensor
// names and shapes (checkpoint.InferConfig). It also returns the file's
// metadata (possibly empty).
func Load(path string) (*Model, map[string]string, error) {
	var (
		f   *checkpoint.File
		err error
	)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		f, err = checkpoint.ReadSafetensors(path)
	case ".pth", ".pt":
		f, err = checkpoint.ReadPth(path)
	default:
		return nil, nil, fmt.Errorf("model: %s: unknown checkpoint extension (want .safetensors or .pth)", path)
	}
	if err != nil {
		return nil, nil, err
	}
	var cfg arch.Config
	meta, err := checkpoint.ParseMeta(f.Metadata)
	if err != nil {
		return nil, nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if meta.Config != nil {
		cfg = *meta.Config
	} else if cfg, err = checkpoint.InferConfig(f.Tensors); err != nil {
		return nil, nil, fmt.Errorf("model: %s: no netmamba.config metadata and %w", path, err)
	}
	m, err := FromTensors(cfg, f.Tensors)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, f.Metadata, nil
}
