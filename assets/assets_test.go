package assets

import (
	"testing"

	"github.com/netmamba/netmamba/checkpoint"
)

// The embedded model carries what classify needs: config, class names,
// representation settings and calibration.
func TestDefaultModelMetadata(t *testing.T) {
	f, err := DefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.ParseMeta(f.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config == nil || m.Config.Arch != "netmamba" || m.Config.NumClasses != 17 {
		t.Fatalf("config %+v", m.Config)
	}
	if len(m.Classes) != 17 || m.Classes[0] != "BitTorrent" || m.Classes[16] != "Zoom" {
		t.Fatalf("classes %v", m.Classes)
	}
	// the debias list is what eval/predict use to bring plain prep output to
	// the model's representation: it must be recorded
	if m.Repr.Direction != "bi" || len(m.Repr.Debias) == 0 || !(m.Calib.Temperature > 0) || !m.Calib.HasThreshold {
		t.Fatalf("repr %+v calib %+v", m.Repr, m.Calib)
	}
	if w := f.Tensors["head.weight"]; w == nil || w.Shape[0] != 17 || w.Shape[1] != 256 {
		t.Fatalf("head.weight %+v", w)
	}
}
