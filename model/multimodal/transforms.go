package multimodal

import "github.com/netmamba/netmamba/repr"

// Size vocabulary of NetMamba+ (SPEC §2): ids 0..MTU, PadID (written for
// missing packets, clamped to MTU by the official code), MaskID.
const (
	MTU            = 1500
	PadID          = MTU + 1
	MaskID         = MTU + 2
	NumSizeIDs     = MTU + 3          // 1503
	SignedMaskID   = MaskID + MTU     // 3002
	NumSignedSizes = NumSizeIDs + MTU // 3003
)

// NormalizeBytes maps raw bytes to the model input exactly as torchvision
// ToTensor + Normalize(0.5, 0.5) do in float32: (b/255 − 0.5)/0.5.
func NormalizeBytes(dst []float32, src []byte) {
	dst = dst[:len(src)]
	for i, b := range src {
		v := float32(b) / 255
		dst[i] = (v - 0.5) / 0.5
	}
}

// SizeIDs writes the size-token values of a flow into dst (repr.SeqLen):
// unsigned, the frame length clamped to [0, MTU]; missing packets read
// MTU (the official pad id 1501 goes through the same clamp). Signed
// (bidirectional option): dir·size + MTU clamped to [0, 2·MTU], missing
// packets 2·MTU.
func SizeIDs(dst []float32, v *repr.View, signed bool) {
	dst = dst[:repr.SeqLen]
	for i := range dst {
		if i >= v.NPackets {
			if signed {
				dst[i] = 2 * MTU
			} else {
				dst[i] = MTU // min(PadID, MTU)
			}
			continue
		}
		s := int64(v.Sizes[i])
		if signed {
			x := s
			if v.Dirs[i] < 0 {
				x = -s
			}
			dst[i] = float32(min(max(x+MTU, 0), 2*MTU))
		} else {
			dst[i] = float32(min(max(s, 0), MTU))
		}
	}
}

// IATTransform maps an inter-arrival time t ≥ 0 (seconds) to the model
// value 1/(1 + 1/(1+t)) = (1+t)/(2+t) ∈ [0.5, 1); +Inf (padding) → 1.
func IATTransform(t float64) float32 {
	return float32(1 / (1 + 1/(1+t)))
}

// IATValues writes the transformed IATs of a flow into dst (repr.SeqLen);
// missing packets are padding (1.0).
func IATValues(dst []float32, v *repr.View) {
	dst = dst[:repr.SeqLen]
	for i := range dst {
		if i >= v.NPackets {
			dst[i] = 1
			continue
		}
		dst[i] = IATTransform(v.IATs[i])
	}
}
