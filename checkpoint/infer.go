package checkpoint

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/netmamba/netmamba/model/arch"
)

// Inference is an architecture inferred from tensor names and shapes, with
// notes on the hyper-parameters that shapes cannot tell (defaults used).
type Inference struct {
	Config arch.Config
	Notes  []string
}

// InferConfig infers the architecture from tensor names and shapes (for
// checkpoints without netmamba metadata): NetMamba classifier or MAE
// pre-training model, NetMamba+ fuse3 (Mamba or NetTrans encoder), NetTrans
// byte classifier. It fails when the tensors do not describe a whole model.
func InferConfig(tensors map[string]*Tensor) (arch.Config, error) {
	inf, err := Infer(tensors)
	if err != nil {
		return arch.Config{}, err
	}
	return inf.Config, nil
}

// Infer is InferConfig with notes on the assumptions made.
func Infer(tensors map[string]*Tensor) (*Inference, error) {
	s := shapes(tensors)
	inf := &Inference{}
	var err error
	switch {
	case s.has("byte_embed.proj.weight") || s.has("size_cls_token") || s.hasPrefix("encoder_blocks."):
		err = inferFuse3(s, inf)
	case s.has("patch_embed.proj.weight") || s.hasPrefix("blocks."):
		err = inferByteModel(s, inf)
	case s.hasPrefix("decoder_blocks."):
		err = fmt.Errorf("only NetMamba MAE decoder tensors (decoder_*): the encoder (patch_embed, pos_embed, blocks.N) is missing")
	default:
		err = fmt.Errorf("no known model layout: neither patch_embed.proj.weight / blocks.N (NetMamba, NetTrans) nor byte_embed.proj.weight / encoder_blocks.N (NetMamba+)")
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: infer config: %w", err)
	}
	return inf, nil
}

type shapeSet map[string][]int

func shapes(tensors map[string]*Tensor) shapeSet {
	s := make(shapeSet, len(tensors))
	for n, t := range tensors {
		s[n] = t.Shape
	}
	return s
}

func (s shapeSet) has(name string) bool { _, ok := s[name]; return ok }

func (s shapeSet) hasPrefix(p string) bool {
	for n := range s {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// shape returns the shape of name, checking its rank.
func (s shapeSet) shape(name string, rank int) ([]int, error) {
	sh, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("tensor %s missing", name)
	}
	if len(sh) != rank {
		return nil, fmt.Errorf("tensor %s has shape %v, want rank %d", name, sh, rank)
	}
	return sh, nil
}

// blockCount counts prefix+"N." blocks and checks they are numbered 0..N-1.
func (s shapeSet) blockCount(prefix string) (int, error) {
	seen := map[int]bool{}
	for n := range s {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 || i > 1<<16 {
			return 0, fmt.Errorf("tensor %s: block index %q is not a number", n, num)
		}
		seen[i] = true
	}
	for i := range len(seen) {
		if !seen[i] {
			idx := make([]int, 0, len(seen))
			for k := range seen {
				idx = append(idx, k)
			}
			sort.Ints(idx)
			return 0, fmt.Errorf("%sN blocks are not numbered 0..%d: found %v", prefix, len(seen)-1, idx)
		}
	}
	return len(seen), nil
}

// mambaDims reads a Mamba mixer's sizes under prefix (e.g. "blocks.0.").
type mambaDims struct{ dModel, dInner, dState, dConv, dtRank int }

func inferMamba(s shapeSet, prefix string) (mambaDims, error) {
	var d mambaDims
	in, err := s.shape(prefix+"mixer.in_proj.weight", 2)
	if err != nil {
		return d, err
	}
	d.dModel, d.dInner = in[1], in[0]/2
	if in[0]%2 != 0 {
		return d, fmt.Errorf("%smixer.in_proj.weight %v: first dimension must be 2·d_inner", prefix, in)
	}
	a, err := s.shape(prefix+"mixer.A_log", 2)
	if err != nil {
		return d, err
	}
	d.dState = a[1]
	c, err := s.shape(prefix+"mixer.conv1d.weight", 3)
	if err != nil {
		return d, err
	}
	d.dConv = c[2]
	dt, err := s.shape(prefix+"mixer.dt_proj.weight", 2)
	if err != nil {
		return d, err
	}
	d.dtRank = dt[1]
	x, err := s.shape(prefix+"mixer.x_proj.weight", 2)
	if err != nil {
		return d, err
	}
	if a[0] != d.dInner || c[0] != d.dInner || c[1] != 1 || dt[0] != d.dInner || x[1] != d.dInner || x[0] != d.dtRank+2*d.dState {
		return d, fmt.Errorf("%smixer: inconsistent shapes in_proj %v, A_log %v, conv1d %v, dt_proj %v, x_proj %v", prefix, in, a, c, dt, x)
	}
	if out, err := s.shape(prefix+"mixer.out_proj.weight", 2); err != nil {
		return d, err
	} else if out[0] != d.dModel || out[1] != d.dInner {
		return d, fmt.Errorf("%smixer.out_proj.weight %v, want [%d %d]", prefix, out, d.dModel, d.dInner)
	}
	return d, nil
}

// inferMambaStack checks every block of a Mamba stack and returns its dims.
func inferMambaStack(s shapeSet, prefix string, depth, dModel int) (mambaDims, error) {
	var first mambaDims
	for i := range depth {
		p := prefix + strconv.Itoa(i) + "."
		d, err := inferMamba(s, p)
		if err != nil {
			return d, err
		}
		if i == 0 {
			first = d
		} else if d != first {
			return d, fmt.Errorf("%smixer sizes %+v differ from block 0's %+v", p, d, first)
		}
	}
	if first.dModel != dModel {
		return first, fmt.Errorf("%s0.mixer.in_proj.weight reads d_model %d, the embedding gives %d", prefix, first.dModel, dModel)
	}
	if first.dInner%first.dModel != 0 {
		return first, fmt.Errorf("%s0: d_inner %d is not a multiple of d_model %d", prefix, first.dInner, first.dModel)
	}
	return first, nil
}

func setMamba(c *arch.Config, d mambaDims) {
	c.DState, c.DConv, c.Expand, c.DtRank = d.dState, d.dConv, d.dInner/d.dModel, d.dtRank
}

// isAttention tells whether blocks under prefix are NetTrans blocks.
func (s shapeSet) isAttention(prefix string) bool {
	return s.has(prefix + "0.attn.to_q.weight")
}

func inferAttention(s shapeSet, prefix string, depth, dModel int, inf *Inference) error {
	for i := range depth {
		p := prefix + strconv.Itoa(i) + "."
		for _, n := range []string{"attn.to_q.weight", "attn.to_k.weight", "attn.to_v.weight", "attn.to_out.0.weight"} {
			sh, err := s.shape(p+n, 2)
			if err != nil {
				return err
			}
			if sh[0] != dModel || sh[1] != dModel {
				return fmt.Errorf("%s%s has shape %v, want [%d %d]", p, n, sh, dModel, dModel)
			}
		}
	}
	inf.Config.NumHeads = 8
	inf.Notes = append(inf.Notes, "num_heads cannot be inferred from shapes: official default 8 assumed")
	return nil
}

// inferByteModel handles NetMamba (classifier, MAE) and NetTrans byte models.
func inferByteModel(s shapeSet, inf *Inference) error {
	c := &inf.Config
	c.Modalities = []string{"bytes"}
	pe, err := s.shape("patch_embed.proj.weight", 3)
	if err != nil {
		return err
	}
	c.EmbedDim, c.Stride = pe[0], pe[2]
	if pe[1] != 1 || c.Stride < 1 {
		return fmt.Errorf("patch_embed.proj.weight %v, want [embed, 1, stride]", pe)
	}
	pos, err := s.shape("pos_embed", 3)
	if err != nil {
		return err
	}
	if pos[0] != 1 || pos[2] != c.EmbedDim || pos[1] < 2 {
		return fmt.Errorf("pos_embed %v, want [1, L+1, %d]", pos, c.EmbedDim)
	}
	c.ByteLength = (pos[1] - 1) * c.Stride
	if err := inferEncoder(s, "blocks.", "nettrans", "netmamba", c, inf); err != nil {
		return err
	}
	if s.hasPrefix("decoder_") {
		c.Task = "pretrain"
		de, err := s.shape("decoder_embed.weight", 2)
		if err != nil {
			return err
		}
		c.DecoderEmbedDim = de[0]
		if c.DecoderDepth, err = s.blockCount("decoder_blocks."); err != nil {
			return err
		}
		if _, err := inferMambaStack(s, "decoder_blocks.", c.DecoderDepth, c.DecoderEmbedDim); err != nil {
			return err
		}
		inf.Notes = append(inf.Notes, "mask_ratio is not stored in the weights: official default 0.9 applies")
		return nil
	}
	c.Task = "classify"
	head, err := s.shape("head.weight", 2)
	if err != nil {
		return err
	}
	if head[1] != c.EmbedDim {
		return fmt.Errorf("head.weight %v, want [classes, %d]", head, c.EmbedDim)
	}
	c.NumClasses = head[0]
	return nil
}

// inferFuse3 handles NetMamba+ fuse3 models (Mamba or NetTrans encoder).
func inferFuse3(s shapeSet, inf *Inference) error {
	c := &inf.Config
	c.Modalities = []string{"bytes", "sizes", "iats"}
	be, err := s.shape("byte_embed.proj.weight", 3)
	if err != nil {
		return err
	}
	c.EmbedDim, c.Stride = be[0], be[2]
	if be[1] != 1 || c.Stride < 1 {
		return fmt.Errorf("byte_embed.proj.weight %v, want [embed, 1, stride]", be)
	}
	pos, err := s.shape("pos_embed", 3)
	if err != nil {
		return err
	}
	if pos[0] != 1 || pos[2] != c.EmbedDim {
		return fmt.Errorf("pos_embed %v, want [1, T, %d]", pos, c.EmbedDim)
	}
	if err := inferEncoder(s, "encoder_blocks.", "fuse3_nettrans", "fuse3", c, inf); err != nil {
		return err
	}
	// T = 2·(seq_len + 1) + byte_tokens + 1. The byte token count is known
	// from the pre-training decoder; otherwise the official 1600 bytes.
	byteTokens := 0
	if dp, err := s.shape("byte_decoder_pos_embed", 3); err == nil {
		byteTokens = dp[1] - 1
	} else {
		byteTokens = 1600 / c.Stride
		inf.Notes = append(inf.Notes, fmt.Sprintf("byte_length cannot be told apart from seq_len in pos_embed %v: official 1600 bytes assumed", pos))
	}
	c.ByteLength = byteTokens * c.Stride
	rest := pos[1] - byteTokens - 1
	if rest < 2 || rest%2 != 0 {
		return fmt.Errorf("pos_embed %v does not fit 2·(seq_len+1) + %d byte tokens + 1", pos, byteTokens)
	}
	c.SeqLen = rest/2 - 1
	if s.hasPrefix("byte_decoder_") || s.has("size_decoder_pred.weight") {
		c.Task = "pretrain"
		de, err := s.shape("byte_decoder_embed.weight", 2)
		if err != nil {
			return err
		}
		c.DecoderEmbedDim = de[0]
		if c.DecoderDepth, err = s.blockCount("byte_decoder_blocks."); err != nil {
			return err
		}
		inf.Notes = append(inf.Notes, "mask_ratio is not stored in the weights: official default 0.9 applies")
		return nil
	}
	c.Task = "classify"
	head, err := s.shape("head.weight", 2)
	if err != nil {
		return err
	}
	if head[1] != c.EmbedDim {
		return fmt.Errorf("head.weight %v, want [classes, %d]", head, c.EmbedDim)
	}
	c.NumClasses = head[0]
	return nil
}

// inferEncoder sets c's Depth from the prefix+"N." block tensors and, by
// the blocks' kind, its Arch (attnArch for attention blocks, mambaArch for
// Mamba ones) and the block sizes.
func inferEncoder(s shapeSet, prefix, attnArch, mambaArch string, c *arch.Config, inf *Inference) error {
	var err error
	if c.Depth, err = s.blockCount(prefix); err != nil {
		return err
	}
	if c.Depth == 0 {
		return fmt.Errorf("no %sN tensors: the encoder blocks are missing (architecture and depth unknown)", prefix)
	}
	if s.isAttention(prefix) {
		c.Arch = attnArch
		return inferAttention(s, prefix, c.Depth, c.EmbedDim, inf)
	}
	c.Arch = mambaArch
	d, err := inferMambaStack(s, prefix, c.Depth, c.EmbedDim)
	if err != nil {
		return err
	}
	setMamba(c, d)
	return nil
}
