package checkpoint

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// HalfToFloat32 converts an IEEE 754 binary16 value to float32 (exact).
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: value = mant · 2^-24.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// Float32ToHalf converts a float32 to IEEE 754 binary16, rounding to
// nearest even; values beyond the half range become ±Inf, NaN stays NaN.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13) // quiet NaN, payload kept when possible
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): shift the full significand.
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, up to Inf: correct
	}
	return sign | uint16(half)
}

// BFloat16ToFloat32 converts a bfloat16 value to float32 (exact).
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBFloat16 converts a float32 to bfloat16, rounding to nearest
// even; NaN stays NaN.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// littleEndianHost reports whether the machine stores integers
// little-endian, so that file bytes can be reinterpreted in place.
func littleEndianHost() bool {
	var x uint16 = 1
	return *(*byte)(unsafe.Pointer(&x)) == 1 && binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}

// aliasF32 reinterprets little-endian float32 bytes in place (no copy), or
// returns nil when the host or the alignment does not allow it.
func aliasF32(b []byte) []float32 {
	if len(b) < 4 || !littleEndianHost() || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// aliasI64 reinterprets little-endian int64 bytes in place (no copy), or
// returns nil when the host or the alignment does not allow it.
func aliasI64(b []byte) []int64 {
	if len(b) < 8 || !littleEndianHost() || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		return nil
	}
	return unsafe.Slice((*int64)(unsafe.Pointer(&b[0])), len(b)/8)
}

// rawBytes views a tensor's data as its little-endian bytes without
// copying, or returns nil when the host is big-endian or the tensor empty.
func rawBytes(t *Tensor) []byte {
	if !littleEndianHost() {
		return nil
	}
	switch {
	case t.DType == "F32" && len(t.F32) > 0:
		return unsafe.Slice((*byte)(unsafe.Pointer(&t.F32[0])), 4*len(t.F32))
	case t.DType == "I64" && len(t.I64) > 0:
		return unsafe.Slice((*byte)(unsafe.Pointer(&t.I64[0])), 8*len(t.I64))
	case t.DType == "U8":
		return t.U8
	}
	return nil
}
