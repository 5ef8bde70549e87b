package checkpoint

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netmamba/netmamba/model/arch"
)

func TestMetaRoundTrip(t *testing.T) {
	seed := int64(0)
	m := &Meta{
		Config:  &arch.Config{Arch: "netmamba", Task: "classify", ByteLength: 1600, Stride: 4, EmbedDim: 32, Depth: 2, NumClasses: 3, Modalities: []string{"bytes"}},
		Classes: []string{"dns", "http", "tls, \"quoted\""},
		Repr:    ReprMeta{Direction: "uni", Compat: "official", Debias: []string{"zero_ip", "zero_port"}, SizeMode: "unsigned"},
		Calib:   CalibMeta{Temperature: 1.37, UnknownThreshold: 0, HasThreshold: true},
		Prov: ProvMeta{Data: "ustc-tfc2016", Seed: &seed, Commit: "abc123", Command: "netmamba train x",
			Created: time.Date(2026, 11, 27, 12, 0, 0, 5, time.UTC), Version: "0.1.0"},
		Extra: map[string]string{"epoch": "3", "netmamba.future_key": "x"},
	}
	md := m.Map()
	// Hand-written expectations for a few encodings.
	for k, v := range map[string]string{
		KeyFormatVersion: "1", KeyClasses: `["dns","http","tls, \"quoted\""]`, KeyTemperature: "1.37",
		KeyUnknownThreshold: "0", KeySeed: "0", KeyCreated: "2026-11-27T12:00:00.000000005Z", KeyDebias: `["zero_ip","zero_port"]`,
		"epoch": "3", "netmamba.future_key": "x",
	} {
		if md[k] != v {
			t.Errorf("Map()[%s] = %q, want %q", k, md[k], v)
		}
	}
	back, err := ParseMeta(md)
	if err != nil {
		t.Fatal(err)
	}
	m.FormatVersion = FormatVersion
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, m)
	}
	// Through a safetensors file: metadata bytes survive.
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, &File{Tensors: map[string]*Tensor{}, Metadata: md}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := ParseSafetensors(buf.Bytes())
	if err != nil || !reflect.DeepEqual(f.Metadata, md) {
		t.Fatalf("through safetensors: %v %v", err, f.Metadata)
	}
	// Unset fields are not written.
	if got := (&Meta{}).Map(); !reflect.DeepEqual(got, map[string]string{KeyFormatVersion: "1"}) {
		t.Errorf("empty Meta: %v", got)
	}
}

func TestParseMetaErrors(t *testing.T) {
	for k, v := range map[string]string{
		KeyConfig: "{", KeyClasses: "dns", KeyDirection: "both", KeyCompat: "v2", KeySizeMode: "abs",
		KeyTemperature: "-1", KeyUnknownThreshold: "x", KeySeed: "1.5", KeyCreated: "yesterday", KeyDebias: "zero_ip",
	} {
		if _, err := ParseMeta(map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: error %v", k, v, err)
		}
	}
}

func TestSetMetaValue(t *testing.T) {
	md := map[string]string{}
	for _, kv := range [][2]string{
		{"classes", "a, b ,c"}, {"temperature", "2"}, {"calib.unknown_threshold", "0.5"},
		{"netmamba.repr.direction", "bi"}, {"debias", `["zero_ip"]`}, {"seed", "7"}, {"custom.key", "v"},
	} {
		if err := SetMetaValue(md, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		KeyClasses: `["a","b","c"]`, KeyTemperature: "2", KeyUnknownThreshold: "0.5", KeyDirection: "bi",
		KeyDebias: `["zero_ip"]`, KeySeed: "7", "custom.key": "v",
	}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("got %v\nwant %v", md, want)
	}
	if err := SetMetaValue(md, "temperature", "hot"); err == nil || md[KeyTemperature] != "2" {
		t.Errorf("bad value: %v, kept %q", err, md[KeyTemperature])
	}
	if err := SetMetaValue(md, "size_mode", "weird"); err == nil || md[KeySizeMode] != "" {
		t.Errorf("bad new value: %v, left %q", err, md[KeySizeMode])
	}
}
