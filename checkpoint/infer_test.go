package checkpoint

import (
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/model/arch"
)

func readGolden(t *testing.T, name string) *File {
	t.Helper()
	f, err := ReadSafetensors(golden + name + ".weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// atoi reads an integer hyper-parameter from the golden metadata (written
// by the generator from the official constructors' arguments).
func atoi(t *testing.T, md map[string]string, key string) int {
	t.Helper()
	v, err := strconv.Atoi(md[key])
	if err != nil {
		t.Fatalf("metadata %s=%q: %v", key, md[key], err)
	}
	return v
}

// InferConfig on every golden weights file, checked against the
// hyper-parameters recorded in the file's own metadata.
func TestInferConfigGolden(t *testing.T) {
	for _, name := range []string{"netmamba_tiny", "netmamba_cls"} {
		f := readGolden(t, name)
		md := f.Metadata
		got, err := InferConfig(f.Tensors)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := arch.Config{
			Arch: "netmamba", Task: "classify", ByteLength: atoi(t, md, "byte_length"), Stride: atoi(t, md, "stride_size"),
			EmbedDim: atoi(t, md, "embed_dim"), Depth: atoi(t, md, "depth"), DState: atoi(t, md, "d_state"),
			DConv: atoi(t, md, "d_conv"), Expand: atoi(t, md, "expand"), DtRank: atoi(t, md, "dt_rank"),
			NumClasses: atoi(t, md, "num_classes"), Modalities: []string{"bytes"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}

	// netmamba_mae holds only the decoder: not a whole model...
	mae := readGolden(t, "netmamba_mae")
	if _, err := InferConfig(mae.Tensors); err == nil || !strings.Contains(err.Error(), "encoder") {
		t.Errorf("decoder-only MAE weights: error %v", err)
	}
	// ...its encoder is netmamba_cls minus head.* (golden README).
	cls := readGolden(t, "netmamba_cls")
	full := maps.Clone(mae.Tensors)
	for n, v := range cls.Tensors {
		if !strings.HasPrefix(n, "head.") {
			full[n] = v
		}
	}
	inf, err := Infer(full)
	if err != nil {
		t.Fatal(err)
	}
	md := mae.Metadata
	want := arch.Config{
		Arch: "netmamba", Task: "pretrain", ByteLength: atoi(t, md, "byte_length"), Stride: atoi(t, md, "stride_size"),
		EmbedDim: atoi(t, md, "embed_dim"), Depth: atoi(t, md, "depth"), DState: 16, DConv: 4, Expand: 2, DtRank: 16,
		Modalities: []string{"bytes"}, DecoderEmbedDim: atoi(t, md, "decoder_embed_dim"), DecoderDepth: atoi(t, md, "decoder_depth"),
	}
	if !reflect.DeepEqual(inf.Config, want) || len(inf.Notes) != 1 {
		t.Errorf("netmamba_mae:\n got %+v %v\nwant %+v", inf.Config, inf.Notes, want)
	}

	f3 := readGolden(t, "fuse3_cls")
	md = f3.Metadata
	inf, err = Infer(f3.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	want = arch.Config{
		Arch: "fuse3", Task: "classify", ByteLength: atoi(t, md, "arr_length"), Stride: atoi(t, md, "stride_size"),
		EmbedDim: atoi(t, md, "embed_dim"), Depth: atoi(t, md, "encoder_depth"), DState: 16, DConv: 4, Expand: 2, DtRank: 16,
		NumClasses: atoi(t, md, "num_classes"), SeqLen: atoi(t, md, "seq_len"), Modalities: []string{"bytes", "sizes", "iats"},
	}
	if !reflect.DeepEqual(inf.Config, want) {
		t.Errorf("fuse3_cls:\n got %+v\nwant %+v", inf.Config, want)
	}
	if len(inf.Notes) != 1 || !strings.Contains(inf.Notes[0], "1600") {
		t.Errorf("fuse3_cls notes %v", inf.Notes)
	}

	ft := readGolden(t, "fuse3_nettrans")
	md = ft.Metadata
	inf, err = Infer(ft.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	want = arch.Config{
		Arch: "fuse3_nettrans", Task: "classify", ByteLength: atoi(t, md, "arr_length"), Stride: atoi(t, md, "stride_size"),
		EmbedDim: atoi(t, md, "embed_dim"), Depth: atoi(t, md, "encoder_depth"), NumHeads: atoi(t, md, "n_heads"),
		NumClasses: atoi(t, md, "num_classes"), SeqLen: atoi(t, md, "seq_len"), Modalities: []string{"bytes", "sizes", "iats"},
	}
	if !reflect.DeepEqual(inf.Config, want) || len(inf.Notes) != 2 || !strings.Contains(inf.Notes[0], "num_heads") {
		t.Errorf("fuse3_nettrans:\n got %+v %v\nwant %+v", inf.Config, inf.Notes, want)
	}

	// nettrans_bytes stores no blocks (they are fuse3_nettrans's)...
	nb := readGolden(t, "nettrans_bytes")
	if _, err := InferConfig(nb.Tensors); err == nil || !strings.Contains(err.Error(), "blocks") {
		t.Errorf("nettrans_bytes without blocks: error %v", err)
	}
	// ...with them it is a whole NetTrans byte classifier.
	full = maps.Clone(nb.Tensors)
	for n, v := range ft.Tensors {
		if rest, ok := strings.CutPrefix(n, "encoder_blocks."); ok {
			full["blocks."+rest] = v
		} else if strings.HasPrefix(n, "norm.") {
			full[n] = v
		}
	}
	md = nb.Metadata
	got, err := InferConfig(full)
	if err != nil {
		t.Fatal(err)
	}
	want = arch.Config{
		Arch: "nettrans", Task: "classify", ByteLength: atoi(t, md, "arr_length"), Stride: atoi(t, md, "stride_size"),
		EmbedDim: atoi(t, md, "embed_dim"), Depth: atoi(t, md, "depth"), NumHeads: atoi(t, md, "n_heads"),
		NumClasses: atoi(t, md, "num_classes"), Modalities: []string{"bytes"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("nettrans_bytes + blocks:\n got %+v\nwant %+v", got, want)
	}
}

func shapeOnly(shape ...int) *Tensor { return &Tensor{DType: "F32", Shape: shape} }

// A fuse3 pre-training layout (SPEC §3 names) with the code default
// seq_len 50 and 800-byte inputs: the decoder's position table tells the
// byte token count, so both are inferred.
func TestInferFuse3Pretrain(t *testing.T) {
	f3 := readGolden(t, "fuse3_cls")
	ts := maps.Clone(f3.Tensors)
	delete(ts, "head.weight")
	ts["pos_embed"] = shapeOnly(1, 2*51+200+1, 256)
	ts["byte_decoder_embed.weight"] = shapeOnly(128, 256)
	ts["byte_decoder_pos_embed"] = shapeOnly(1, 201, 128)
	ts["byte_decoder_blocks.0.norm.weight"] = shapeOnly(128)
	ts["byte_decoder_blocks.1.norm.weight"] = shapeOnly(128)
	ts["size_decoder_pred.weight"] = shapeOnly(1503, 256)
	inf, err := Infer(ts)
	if err != nil {
		t.Fatal(err)
	}
	c := inf.Config
	if c.Arch != "fuse3" || c.Task != "pretrain" || c.SeqLen != 50 || c.ByteLength != 800 || c.DecoderEmbedDim != 128 || c.DecoderDepth != 2 || c.NumClasses != 0 {
		t.Errorf("got %+v", c)
	}
}

func TestInferConfigErrors(t *testing.T) {
	tiny := readGolden(t, "netmamba_tiny").Tensors
	mutate := func(f func(m map[string]*Tensor)) map[string]*Tensor {
		m := maps.Clone(tiny)
		f(m)
		return m
	}
	cases := map[string]struct {
		ts   map[string]*Tensor
		want string
	}{
		"unknown":      {map[string]*Tensor{"fc.weight": shapeOnly(2, 2)}, "no known model layout"},
		"x_proj":       {mutate(func(m map[string]*Tensor) { m["blocks.1.mixer.x_proj.weight"] = shapeOnly(35, 64) }), "inconsistent"},
		"gap":          {mutate(func(m map[string]*Tensor) { m["blocks.3.norm.weight"] = shapeOnly(32) }), "not numbered"},
		"no head":      {mutate(func(m map[string]*Tensor) { delete(m, "head.weight") }), "head.weight missing"},
		"head width":   {mutate(func(m map[string]*Tensor) { m["head.weight"] = shapeOnly(7, 31) }), "head.weight"},
		"pos rank":     {mutate(func(m map[string]*Tensor) { m["pos_embed"] = shapeOnly(401, 32) }), "rank 3"},
		"bad index":    {mutate(func(m map[string]*Tensor) { m["blocks.x.norm.weight"] = shapeOnly(32) }), "not a number"},
		"odd in_proj":  {mutate(func(m map[string]*Tensor) { m["blocks.0.mixer.in_proj.weight"] = shapeOnly(127, 32) }), "2·d_inner"},
		"other blocks": {mutate(func(m map[string]*Tensor) { m["blocks.1.mixer.A_log"] = shapeOnly(64, 8) }), "blocks.1."},
	}
	for name, c := range cases {
		_, err := InferConfig(c.ts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
}
