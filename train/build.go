package train

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/model"
	"github.com/netmamba/netmamba/model/arch"
)

// NewClassifier builds a randomly initialised (seeded, official init)
// classifier for cfg, for batches of up to batch flows on threads workers.
func NewClassifier(cfg arch.Config, seed uint64, batch, threads int, dropPath float64) (Classifier, arch.Config, error) {
	switch cfg.Arch {
	case "", "netmamba":
		m, err := model.NewRandom(cfg, seed)
		if err != nil {
			return nil, cfg, err
		}
		return NewNetMambaClassifier(m, batch, threads, dropPath), m.Cfg, nil
	case "fuse3":
		m, err := model.NewFuse3Random(cfg, model.Fuse3Options{}, seed)
		if err != nil {
			return nil, cfg, err
		}
		return NewFuse3Classifier(m, batch, threads, dropPath), m.Cfg, nil
	case "nettrans", "fuse3_nettrans":
		return newNetTransClassifier(cfg, seed, batch, threads, dropPath)
	}
	return nil, cfg, fmt.Errorf("train: architecture %q cannot be trained by this build", cfg.Arch)
}

// NewPretrainer builds a randomly initialised pre-training model for cfg.
func NewPretrainer(cfg arch.Config, seed uint64, batch, threads int, dropPath float64) (Pretrainer, arch.Config, error) {
	cfg.Task = "pretrain"
	switch cfg.Arch {
	case "", "netmamba":
		m, err := model.NewRandom(cfg, seed)
		if err != nil {
			return nil, cfg, err
		}
		return NewNetMambaMAE(m, batch, threads, dropPath), m.Cfg, nil
	case "fuse3":
		m, err := model.NewFuse3Random(cfg, model.Fuse3Options{}, seed)
		if err != nil {
			return nil, cfg, err
		}
		return NewFuse3Pretrain(m, batch, threads, dropPath), m.Cfg, nil
	case "nettrans", "fuse3_nettrans":
		return newNetTransPretrain(cfg, seed, batch, threads, dropPath)
	}
	return nil, cfg, fmt.Errorf("train: architecture %q cannot be pre-trained by this build", cfg.Arch)
}

// ParamTensors returns copies of params as checkpoint tensors under their names.
func ParamTensors(params []*Param) map[string]*checkpoint.Tensor {
	ts := make(map[string]*checkpoint.Tensor, len(params))
	for _, p := range params {
		ts[p.Name] = &checkpoint.Tensor{DType: "F32", Shape: append([]int(nil), p.Shape...), F32: append([]float32(nil), p.Data...)}
	}
	return ts
}

// InitReport says what InitFrom loaded.
type InitReport struct {
	Loaded  []string // parameters copied from the checkpoint
	Skipped []string // checkpoint tensors not used (decoder, pre-training heads, mismatched shapes)
	Kept    []string // parameters left at their initialisation (the head)
}

// InitFrom copies the encoder weights of a pre-trained checkpoint into the
// classifier's parameters by official name (as the official fine-tune
// loads a pre-training checkpoint), then re-initialises the head weight
// with trunc_normal(std 2e-5) and its bias with 0 (SPEC §4).
func InitFrom(params []*Param, ts map[string]*checkpoint.Tensor, seed uint64) (*InitReport, error) {
	rep := &InitReport{}
	used := map[string]bool{}
	for _, p := range params {
		if strings.HasPrefix(p.Name, "head.") {
			rep.Kept = append(rep.Kept, p.Name)
			continue
		}
		t := ts[p.Name]
		if t == nil {
			return nil, fmt.Errorf("train: --init checkpoint has no tensor %s (is it a pre-training checkpoint of the same architecture?)", p.Name)
		}
		if t.DType != "F32" || len(t.F32) != len(p.Data) {
			return nil, fmt.Errorf("train: --init tensor %s is %s%v, the model wants F32%v", p.Name, t.DType, t.Shape, p.Shape)
		}
		copy(p.Data, t.F32)
		used[p.Name] = true
		rep.Loaded = append(rep.Loaded, p.Name)
	}
	for name := range ts {
		if !used[name] {
			rep.Skipped = append(rep.Skipped, name)
		}
	}
	r := rand.New(rand.NewPCG(seed, 0x68656164))
	for _, p := range params {
		switch {
		case p.Name == "head.weight":
			for i := range p.Data {
				p.Data[i] = float32(truncNormal(r, 2e-5))
			}
		case p.Name == "head.bias":
			clear(p.Data)
		}
	}
	return rep, nil
}

// ContinueFrom copies every tensor of ts into the parameter of the same
// official name and shape (pretrain --init: a new MAE schedule starting
// from earlier weights, e.g. more epochs on the same corpus, or adaptation
// of an encoder to one's own traffic). Parameters the checkpoint lacks are
// left at their initialisation and reported in Kept; that is an error
// unless allowMissing (a classifier checkpoint has no decoder). A tensor of
// the right name but another shape or dtype is always an error, and so is a
// checkpoint that supplies no parameter at all.
func ContinueFrom(params []*Param, ts map[string]*checkpoint.Tensor, allowMissing bool) (*InitReport, error) {
	rep := &InitReport{}
	used := map[string]bool{}
	for _, p := range params {
		t := ts[p.Name]
		if t == nil {
			rep.Kept = append(rep.Kept, p.Name)
			continue
		}
		if t.DType != "F32" || len(t.F32) != len(p.Data) {
			return nil, fmt.Errorf("train: --init tensor %s is %s%v, the model wants F32%v", p.Name, t.DType, t.Shape, p.Shape)
		}
		copy(p.Data, t.F32)
		used[p.Name] = true
		rep.Loaded = append(rep.Loaded, p.Name)
	}
	if len(rep.Loaded) == 0 {
		return nil, fmt.Errorf("train: --init checkpoint has none of the model's %d parameters (another architecture?)", len(params))
	}
	if len(rep.Kept) > 0 && !allowMissing {
		return nil, fmt.Errorf("train: --init checkpoint lacks %d of the model's parameters (first: %s)", len(rep.Kept), rep.Kept[0])
	}
	for name := range ts {
		if !used[name] {
			rep.Skipped = append(rep.Skipped, name)
		}
	}
	sort.Strings(rep.Skipped)
	return rep, nil
}

// truncNormal draws N(0, std²) truncated to ±2 (absolute), as timm's
// trunc_normal_ with its default bounds.
func truncNormal(r *rand.Rand, std float64) float64 {
	for {
		v := r.NormFloat64() * std
		if v >= -2 && v <= 2 {
			return v
		}
	}
}
