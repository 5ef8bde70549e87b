package multimodal

import "github.com/netmamba/netmamba/repr"

// FillInput writes one flow's model inputs from its view, using the repr
// transforms: bytes (repr.ViewBytes) normalised to [−1, 1], sizes
// (repr.SeqLen) as size ids — unsigned, or signed for the bidirectional
// option — and iats (repr.SeqLen) transformed to (1+t)/(2+t), padding 1.
// Any destination may be nil to skip it.
func FillInput(v *repr.View, signed bool, bytes, sizes, iats []float32) {
	if bytes != nil {
		repr.ByteInputs(v, bytes[:repr.ViewBytes])
	}
	if sizes != nil {
		var ids [repr.SeqLen]int32
		if signed {
			repr.SignedSizeIDs(v, ids[:])
		} else {
			repr.SizeIDs(v, ids[:])
		}
		for i, id := range ids {
			sizes[i] = float32(id)
		}
	}
	if iats != nil {
		repr.IATInputs(v, iats[:repr.SeqLen])
	}
}

// Size vocabulary of NetMamba+ (SPEC §2; the same values as repr's):
// ids 0..MTU, PadID (written for missing packets, clamped to MTU by the
// official code), MaskID.
const (
	MTU            = repr.MTU
	PadID          = repr.SizePad
	MaskID         = repr.SizeMask
	NumSizeIDs     = repr.SizeVocab   // 1503
	SignedMaskID   = repr.SignedMask  // 3002
	NumSignedSizes = repr.SignedVocab // 3003
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

// SizeIDs writes the size-token values of a flow into dst (repr.SeqLen)
// as floats: repr.SizeIDs (unsigned) or repr.SignedSizeIDs.
func SizeIDs(dst []float32, v *repr.View, signed bool) {
	FillInput(v, signed, nil, dst, nil)
}

// IATTransform maps an inter-arrival time t ≥ 0 (seconds) to the model
// value 1/(1 + 1/(1+t)) = (1+t)/(2+t) ∈ [0.5, 1); +Inf (padding) → 1.
func IATTransform(t float64) float32 {
	return float32(1 / (1 + 1/(1+t)))
}

// IATValues writes the transformed IATs of a flow into dst (repr.SeqLen);
// missing packets are padding (1.0). Same as repr.IATInputs.
func IATValues(dst []float32, v *repr.View) {
	repr.IATInputs(v, dst[:repr.SeqLen])
}
