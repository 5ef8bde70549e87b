package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
)

const ckptGolden = "../../../shared/golden/"

// runCheckpointCLI runs the root command in-process with args.
func runCheckpointCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestCheckpointConvertPthToSafetensorsAndBack(t *testing.T) {
	dir := t.TempDir()
	st := filepath.Join(dir, "tiny.safetensors")
	out, _, err := runCheckpointCLI(t, "checkpoint", "convert", ckptGolden+"netmamba_tiny.pth", st,
		"--meta", "classes=a,b,c,d,e,f,g", "--meta", "temperature=1.5", "--meta", "custom=kept")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "27 tensors") {
		t.Errorf("output %q", out)
	}
	want, err := checkpoint.ReadSafetensors(ckptGolden + "netmamba_tiny.weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	got, err := checkpoint.ReadSafetensors(st)
	if err != nil {
		t.Fatal(err)
	}
	for n, w := range want.Tensors {
		g := got.Tensors[n]
		if g == nil || !reflect.DeepEqual(g.Shape, w.Shape) || len(g.F32) != len(w.F32) {
			t.Fatalf("%s: %+v", n, g)
		}
		for i := range w.F32 {
			if math.Float32bits(g.F32[i]) != math.Float32bits(w.F32[i]) {
				t.Fatalf("%s[%d] differs", n, i)
			}
		}
	}
	meta, err := checkpoint.ParseMeta(got.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	// Config inferred from the shapes = the golden generator's arguments.
	c := meta.Config
	if c == nil || c.Arch != "netmamba" || c.EmbedDim != 32 || c.Depth != 2 || c.NumClasses != 7 || c.DtRank != 2 || c.ByteLength != 1600 {
		t.Errorf("config %+v", c)
	}
	if len(meta.Classes) != 7 || meta.Classes[6] != "g" || meta.Calib.Temperature != 1.5 ||
		meta.Extra["custom"] != "kept" || meta.Extra["pth.epoch"] != "0" || meta.FormatVersion != "1" {
		t.Errorf("meta %+v", meta)
	}

	// Back to .pth in half precision; metadata travels inside the pickle.
	pth := filepath.Join(dir, "tiny16.pth")
	if _, _, err := runCheckpointCLI(t, "checkpoint", "convert", st, pth, "--fp16"); err != nil {
		t.Fatal(err)
	}
	half, err := checkpoint.Load(pth)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(half.Metadata, got.Metadata) {
		t.Errorf("metadata through .pth: %v", half.Metadata)
	}
	w := want.Tensors["head.weight"]
	h := half.Tensors["head.weight"]
	if h.Stored != "F16" {
		t.Errorf("stored %q", h.Stored)
	}
	for i, v := range w.F32 {
		if h.F32[i] != checkpoint.HalfToFloat32(checkpoint.Float32ToHalf(v)) {
			t.Fatalf("head.weight[%d]", i)
		}
	}
}

func TestCheckpointInspect(t *testing.T) {
	// Official default classifier: 1,856,512 + 257·C parameters (SPEC §3), C = 7.
	out, _, err := runCheckpointCLI(t, "checkpoint", "inspect", "--json", ckptGolden+"netmamba_cls.pth")
	if err != nil {
		t.Fatal(err)
	}
	var r checkpointReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Format != "pth" || r.Parameters != 1856512+257*7 || r.ConfigSource != "inferred" || r.Config == nil ||
		r.Config.EmbedDim != 256 || r.Config.Depth != 4 || len(r.Tensors) != 4+4*10+3 {
		t.Errorf("report %+v", r)
	}
	for _, tt := range r.Tensors {
		if tt.Name == "blocks.3.mixer.in_proj.weight" && (!reflect.DeepEqual(tt.Shape, []int{1024, 256}) || tt.DType != "F32" || tt.Numel != 1024*256) {
			t.Errorf("in_proj: %+v", tt)
		}
	}

	// Text form, on a converted file whose config comes from metadata.
	dir := t.TempDir()
	st := filepath.Join(dir, "f3.safetensors")
	if _, _, err := runCheckpointCLI(t, "checkpoint", "convert", ckptGolden+"fuse3_cls.weights.safetensors", st, "--meta", "classes=x,y"); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCheckpointCLI(t, "checkpoint", "inspect", st)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"format:      safetensors", "config (metadata):", `"arch":"fuse3"`, `"seq_len":20`,
		"classes:     2: x, y", "encoder_blocks.3.mixer.A_log", "[512 16]", "token_order = "} {
		if !strings.Contains(out, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, out)
		}
	}
	// A file whose shapes are not a whole model: config "none", with the reason.
	out, _, err = runCheckpointCLI(t, "checkpoint", "inspect", "--json", ckptGolden+"netmamba_mae.weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	r = checkpointReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.ConfigSource != "none" || !strings.Contains(r.ConfigError, "encoder") {
		t.Errorf("mae report: %v %+v", err, r)
	}
}

func TestCheckpointCLIErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pth")
	if err := os.WriteFile(junk, []byte("not a checkpoint at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"checkpoint", "inspect", junk}, "unknown format"},
		{[]string{"checkpoint", "convert", junk, filepath.Join(dir, "o.safetensors")}, "unknown format"},
		{[]string{"checkpoint", "convert", ckptGolden + "netmamba_tiny.pth", filepath.Join(dir, "o.onnx")}, "extension"},
		{[]string{"checkpoint", "convert", ckptGolden + "netmamba_tiny.pth", filepath.Join(dir, "o.pth"), "--meta", "novalue"}, "key=value"},
		{[]string{"checkpoint", "convert", ckptGolden + "netmamba_tiny.pth", filepath.Join(dir, "o.pth"), "--meta", "direction=sideways"}, "direction"},
		{[]string{"checkpoint", "convert", ckptGolden + "netmamba_tiny.pth", filepath.Join(dir, "o.pth"), "--fp16", "--bf16"}, "exclude"},
	} {
		_, _, err := runCheckpointCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o.pth")); !os.IsNotExist(err) {
		t.Errorf("a failed convert left an output file: %v", err)
	}
}
