package train

import (
	"fmt"
	"math/rand/v2"
	"slices"
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

// InitReport says what InitFrom or ContinueFrom loaded.
type InitReport struct {
	Loaded  []string // parameters copied from the checkpoint
	Skipped []string // checkpoint tensors not used (decoder, pre-training heads, a classifier's head)
	Kept    []string // parameters left at their initialisation (the head; a decoder)
}

// PretrainOnly returns the names of the parameters that a pre-training
// model of cfg has and a classifier of cfg lacks: the decoder, the mask
// token and the pre-training prediction layers. A pre-training checkpoint
// brings them beyond the encoder; a classifier checkpoint cannot supply
// them. cfg.Task and cfg.NumClasses are ignored.
func PretrainOnly(cfg arch.Config) (map[string]bool, error) {
	cfg.NumClasses = max(cfg.NumClasses, 2)
	p, _, err := NewPretrainer(cfg, 0, 1, 1, 0)
	if err != nil {
		return nil, err
	}
	cfg.Task = ""
	c, _, err := NewClassifier(cfg, 0, 1, 1, 0)
	if err != nil {
		return nil, err
	}
	inClassifier := map[string]bool{}
	for _, q := range c.Params() {
		inClassifier[q.Name] = true
	}
	only := map[string]bool{}
	for _, q := range p.Params() {
		if !inClassifier[q.Name] {
			only[q.Name] = true
		}
	}
	return only, nil
}

// isHead reports whether name is a classifier head tensor.
func isHead(name string) bool { return strings.HasPrefix(name, "head.") }

// loadTensor copies the checkpoint tensor t into p, or says why not. The
// shapes must agree up to size-1 dimensions (a cls_token of [1 1 D] or [D]).
func loadTensor(p *Param, t *checkpoint.Tensor) error {
	if t.DType != "F32" || len(t.F32) != len(p.Data) || !slices.Equal(squeeze(t.Shape), squeeze(p.Shape)) {
		return fmt.Errorf("train: --init tensor %s is %s%v, the model wants F32%v", p.Name, t.DType, t.Shape, p.Shape)
	}
	copy(p.Data, t.F32)
	return nil
}

// squeeze drops the size-1 dimensions of shape.
func squeeze(shape []int) []int {
	out := make([]int, 0, len(shape))
	for _, d := range shape {
		if d != 1 {
			out = append(out, d)
		}
	}
	return out
}

// loadParams copies the checkpoint tensors ts into params by name, the
// loop InitFrom and ContinueFrom share. leave(name, present) says whether a
// parameter stays at its initialisation (reported in Kept); a parameter
// neither left nor in ts is an error, and so is a checkpoint tensor left
// unused unless unusedOK(name).
func loadParams(params []*Param, ts map[string]*checkpoint.Tensor, leave func(name string, present bool) bool, unusedOK func(name string) bool) (*InitReport, error) {
	rep := &InitReport{}
	used := map[string]bool{}
	for _, p := range params {
		t := ts[p.Name]
		if leave(p.Name, t != nil) {
			rep.Kept = append(rep.Kept, p.Name)
			continue
		}
		if t == nil {
			return nil, fmt.Errorf("train: --init checkpoint has no tensor %s (another architecture, depth or modalities?)", p.Name)
		}
		if err := loadTensor(p, t); err != nil {
			return nil, err
		}
		used[p.Name] = true
		rep.Loaded = append(rep.Loaded, p.Name)
	}
	for name := range ts {
		if !used[name] {
			rep.Skipped = append(rep.Skipped, name)
		}
	}
	sort.Strings(rep.Skipped)
	for _, name := range rep.Skipped {
		if !unusedOK(name) {
			return nil, fmt.Errorf("train: --init tensor %s is not part of this model (another depth or modalities than the checkpoint's?)", name)
		}
	}
	return rep, nil
}

// InitFrom copies the encoder weights of a pre-trained checkpoint into the
// classifier's parameters by official name (as the official fine-tune
// loads a pre-training checkpoint), then re-initialises the head weight
// with trunc_normal(std 2e-5) and its bias with 0 (SPEC §4).
// pretrainOnly (PretrainOnly of the classifier's config) names the
// checkpoint tensors that may go unused besides a head; any other unused
// tensor (a deeper encoder, another modality) is an error, as is a missing
// or misshapen encoder tensor.
func InitFrom(params []*Param, ts map[string]*checkpoint.Tensor, seed uint64, pretrainOnly map[string]bool) (*InitReport, error) {
	rep, err := loadParams(params, ts,
		func(name string, _ bool) bool { return isHead(name) },
		func(name string) bool { return isHead(name) || pretrainOnly[name] })
	if err != nil {
		return nil, err
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

// ContinueFrom copies the checkpoint tensors ts into the pre-training
// model's parameters of the same official name (pretrain --init: a new MAE
// schedule starting from earlier weights, e.g. more epochs on the same
// corpus, or adaptation of an encoder to one's own traffic).
// With fromClassifier nil, ts is a pre-training checkpoint: every
// parameter must be in it and every tensor used. Otherwise ts is a
// classifier checkpoint and fromClassifier is PretrainOnly of the model's
// config: exactly those parameters may be missing (left at their
// initialisation and reported in Kept), and only the head goes unused.
// A tensor of another shape is always an error.
func ContinueFrom(params []*Param, ts map[string]*checkpoint.Tensor, fromClassifier map[string]bool) (*InitReport, error) {
	return loadParams(params, ts,
		func(name string, present bool) bool { return !present && fromClassifier[name] },
		func(name string) bool { return fromClassifier != nil && isHead(name) })
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
