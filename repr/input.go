package repr

// Size-sequence vocabularies (SPEC §2).
const (
	MTU         = 1500
	SizePad     = 1501 // written for missing packets, then clamped to MTU (the official quirk)
	SizeMask    = 1502
	SizeVocab   = 1503
	SignedPad   = 3000
	SignedMask  = 3002
	SignedVocab = 3003
)

// SizeIDs writes the unsigned size ids of v (frame length clamped to
// [0, 1500]; padded slots are 1501 clamped, i.e. 1500) into dst[:SeqLen].
func SizeIDs(v *View, dst []int32) {
	for i := range SeqLen {
		x := int32(SizePad)
		if i < v.NPackets {
			x = int32(v.Sizes[i])
		}
		dst[i] = min(max(x, 0), MTU)
	}
}

// SignedSizeIDs writes signed size ids (positive in the first packet's
// direction): size·dir + 1500 clamped to [0, 3000], padding 3000.
func SignedSizeIDs(v *View, dst []int32) {
	for i := range SeqLen {
		if i >= v.NPackets {
			dst[i] = SignedPad
			continue
		}
		x := int32(v.Sizes[i])
		if v.Dirs[i] < 0 {
			x = -x
		}
		dst[i] = min(max(x+MTU, 0), 2*MTU)
	}
}

// IATInputs writes the transformed inter-arrival times (1+t)/(2+t), i.e.
// 1/(1+1/(1+t)) as the official code computes it, with padding (+∞) as 1.0.
func IATInputs(v *View, dst []float32) {
	for i := range SeqLen {
		if i >= v.NPackets {
			dst[i] = 1
			continue
		}
		t := v.IATs[i]
		dst[i] = float32(1 / (1 + 1/(1+t)))
	}
}

// ByteInputs converts the byte view to model input: v = float32(b)/255
// (correctly rounded), then (v−0.5)/0.5, in [−1, 1], as the official loaders.
func ByteInputs(v *View, dst []float32) {
	for i, b := range v.Bytes {
		x := float32(b) / 255
		dst[i] = (x - 0.5) / 0.5
	}
}
