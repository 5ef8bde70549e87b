package train

import (
	"fmt"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
)

// Loaded is a classifier read from a checkpoint, with its metadata.
type Loaded struct {
	Net    Classifier
	Config arch.Config
	Meta   *checkpoint.Meta // netmamba metadata (empty for official checkpoints)
	// ConfigInferred is true when the architecture came from tensor shapes
	// (no netmamba.config metadata, e.g. an official .pth).
	ConfigInferred bool
}

// LoadClassifier reads a classifier checkpoint (.safetensors or .pth).
func LoadClassifier(path string, batch, threads int) (*Loaded, error) {
	f, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	return ClassifierFromFile(path, f, batch, threads)
}

// ClassifierFromFile builds a classifier from checkpoint content (name is
// used in errors).
func ClassifierFromFile(name string, f *checkpoint.File, batch, threads int) (*Loaded, error) {
	meta, err := checkpoint.ParseMeta(f.Metadata)
	if err != nil {
		return nil, fmt.Errorf("train: %s: metadata: %w", name, err)
	}
	l := &Loaded{Meta: meta}
	if meta.Config != nil {
		l.Config = *meta.Config
	} else {
		if l.Config, err = checkpoint.InferConfig(f.Tensors); err != nil {
			return nil, fmt.Errorf("train: %s: no netmamba.config metadata and %w", name, err)
		}
		l.ConfigInferred = true
	}
	if l.Config.Task == "pretrain" {
		return nil, fmt.Errorf("train: %s is a pre-training checkpoint, not a classifier (fine-tune it with finetune --init)", name)
	}
	switch l.Config.Arch {
	case "", "netmamba":
		m, err := model.FromTensors(l.Config, f.Tensors)
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", name, err)
		}
		l.Config = m.Cfg
		l.Net = NewNetMambaClassifier(m, batch, threads, 0)
	case "fuse3":
		m, err := model.Fuse3FromTensors(l.Config, f.Tensors)
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", name, err)
		}
		l.Config = m.Cfg
		l.Net = NewFuse3Classifier(m, batch, threads, 0)
	case "nettrans", "fuse3_nettrans":
		if l.Net, l.Config, err = netTransFromTensors(l.Config, f.Tensors, batch, threads); err != nil {
			return nil, fmt.Errorf("train: %s: %w", name, err)
		}
	default:
		return nil, fmt.Errorf("train: %s: architecture %q is not supported by this build", name, l.Config.Arch)
	}
	if len(meta.Classes) > 0 && len(meta.Classes) != l.Net.NumClasses() {
		return nil, fmt.Errorf("train: %s: %d class names for a %d-class head", name, len(meta.Classes), l.Net.NumClasses())
	}
	return l, nil
}
