//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA versions of the attention exp row and the GeGLU rows, for CPUs
// without AVX-512: 8 lanes, constants as 32-byte vectors (memory operands),
// 2^n built in the exponent field. Same formulas as the AVX-512 kernels.

DATA attn8_log2e<>+0(SB)/4, $0x3fb8aa3b
DATA attn8_log2e<>+4(SB)/4, $0x3fb8aa3b
DATA attn8_log2e<>+8(SB)/4, $0x3fb8aa3b
DATA attn8_log2e<>+12(SB)/4, $0x3fb8aa3b
DATA attn8_log2e<>+16(SB)/4, $0x3fb8aa3b
DATA attn8_log2e<>+20(SB)/4, $0x3fb8aa3b
DATA attn8_log2e<>+24(SB)/4, $0x3fb8aa3b
DATA attn8_log2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL attn8_log2e<>(SB), RODATA|NOPTR, $32
DATA attn8_ln2hi<>+0(SB)/4, $0x3f318000
DATA attn8_ln2hi<>+4(SB)/4, $0x3f318000
DATA attn8_ln2hi<>+8(SB)/4, $0x3f318000
DATA attn8_ln2hi<>+12(SB)/4, $0x3f318000
DATA attn8_ln2hi<>+16(SB)/4, $0x3f318000
DATA attn8_ln2hi<>+20(SB)/4, $0x3f318000
DATA attn8_ln2hi<>+24(SB)/4, $0x3f318000
DATA attn8_ln2hi<>+28(SB)/4, $0x3f318000
GLOBL attn8_ln2hi<>(SB), RODATA|NOPTR, $32
DATA attn8_ln2lo<>+0(SB)/4, $0xb95e8083
DATA attn8_ln2lo<>+4(SB)/4, $0xb95e8083
DATA attn8_ln2lo<>+8(SB)/4, $0xb95e8083
DATA attn8_ln2lo<>+12(SB)/4, $0xb95e8083
DATA attn8_ln2lo<>+16(SB)/4, $0xb95e8083
DATA attn8_ln2lo<>+20(SB)/4, $0xb95e8083
DATA attn8_ln2lo<>+24(SB)/4, $0xb95e8083
DATA attn8_ln2lo<>+28(SB)/4, $0xb95e8083
GLOBL attn8_ln2lo<>(SB), RODATA|NOPTR, $32
DATA attn8_c7<>+0(SB)/4, $0x39500d01
DATA attn8_c7<>+4(SB)/4, $0x39500d01
DATA attn8_c7<>+8(SB)/4, $0x39500d01
DATA attn8_c7<>+12(SB)/4, $0x39500d01
DATA attn8_c7<>+16(SB)/4, $0x39500d01
DATA attn8_c7<>+20(SB)/4, $0x39500d01
DATA attn8_c7<>+24(SB)/4, $0x39500d01
DATA attn8_c7<>+28(SB)/4, $0x39500d01
GLOBL attn8_c7<>(SB), RODATA|NOPTR, $32
DATA attn8_c6<>+0(SB)/4, $0x3ab60b61
DATA attn8_c6<>+4(SB)/4, $0x3ab60b61
DATA attn8_c6<>+8(SB)/4, $0x3ab60b61
DATA attn8_c6<>+12(SB)/4, $0x3ab60b61
DATA attn8_c6<>+16(SB)/4, $0x3ab60b61
DATA attn8_c6<>+20(SB)/4, $0x3ab60b61
DATA attn8_c6<>+24(SB)/4, $0x3ab60b61
DATA attn8_c6<>+28(SB)/4, $0x3ab60b61
GLOBL attn8_c6<>(SB), RODATA|NOPTR, $32
DATA attn8_c5<>+0(SB)/4, $0x3c088889
DATA attn8_c5<>+4(SB)/4, $0x3c088889
DATA attn8_c5<>+8(SB)/4, $0x3c088889
DATA attn8_c5<>+12(SB)/4, $0x3c088889
DATA attn8_c5<>+16(SB)/4, $0x3c088889
DATA attn8_c5<>+20(SB)/4, $0x3c088889
DATA attn8_c5<>+24(SB)/4, $0x3c088889
DATA attn8_c5<>+28(SB)/4, $0x3c088889
GLOBL attn8_c5<>(SB), RODATA|NOPTR, $32
DATA attn8_c4<>+0(SB)/4, $0x3d2aaaab
DATA attn8_c4<>+4(SB)/4, $0x3d2aaaab
DATA attn8_c4<>+8(SB)/4, $0x3d2aaaab
DATA attn8_c4<>+12(SB)/4, $0x3d2aaaab
DATA attn8_c4<>+16(SB)/4, $0x3d2aaaab
DATA attn8_c4<>+20(SB)/4, $0x3d2aaaab
DATA attn8_c4<>+24(SB)/4, $0x3d2aaaab
DATA attn8_c4<>+28(SB)/4, $0x3d2aaaab
GLOBL attn8_c4<>(SB), RODATA|NOPTR, $32
DATA attn8_c3<>+0(SB)/4, $0x3e2aaaab
DATA attn8_c3<>+4(SB)/4, $0x3e2aaaab
DATA attn8_c3<>+8(SB)/4, $0x3e2aaaab
DATA attn8_c3<>+12(SB)/4, $0x3e2aaaab
DATA attn8_c3<>+16(SB)/4, $0x3e2aaaab
DATA attn8_c3<>+20(SB)/4, $0x3e2aaaab
DATA attn8_c3<>+24(SB)/4, $0x3e2aaaab
DATA attn8_c3<>+28(SB)/4, $0x3e2aaaab
GLOBL attn8_c3<>(SB), RODATA|NOPTR, $32
DATA attn8_c2<>+0(SB)/4, $0x3f000000
DATA attn8_c2<>+4(SB)/4, $0x3f000000
DATA attn8_c2<>+8(SB)/4, $0x3f000000
DATA attn8_c2<>+12(SB)/4, $0x3f000000
DATA attn8_c2<>+16(SB)/4, $0x3f000000
DATA attn8_c2<>+20(SB)/4, $0x3f000000
DATA attn8_c2<>+24(SB)/4, $0x3f000000
DATA attn8_c2<>+28(SB)/4, $0x3f000000
GLOBL attn8_c2<>(SB), RODATA|NOPTR, $32
DATA attn8_one<>+0(SB)/4, $0x3f800000
DATA attn8_one<>+4(SB)/4, $0x3f800000
DATA attn8_one<>+8(SB)/4, $0x3f800000
DATA attn8_one<>+12(SB)/4, $0x3f800000
DATA attn8_one<>+16(SB)/4, $0x3f800000
DATA attn8_one<>+20(SB)/4, $0x3f800000
DATA attn8_one<>+24(SB)/4, $0x3f800000
DATA attn8_one<>+28(SB)/4, $0x3f800000
GLOBL attn8_one<>(SB), RODATA|NOPTR, $32
DATA attn8_lo<>+0(SB)/4, $0xc2ae999a
DATA attn8_lo<>+4(SB)/4, $0xc2ae999a
DATA attn8_lo<>+8(SB)/4, $0xc2ae999a
DATA attn8_lo<>+12(SB)/4, $0xc2ae999a
DATA attn8_lo<>+16(SB)/4, $0xc2ae999a
DATA attn8_lo<>+20(SB)/4, $0xc2ae999a
DATA attn8_lo<>+24(SB)/4, $0xc2ae999a
DATA attn8_lo<>+28(SB)/4, $0xc2ae999a
GLOBL attn8_lo<>(SB), RODATA|NOPTR, $32
DATA attn8_hi<>+0(SB)/4, $0x42b00000
DATA attn8_hi<>+4(SB)/4, $0x42b00000
DATA attn8_hi<>+8(SB)/4, $0x42b00000
DATA attn8_hi<>+12(SB)/4, $0x42b00000
DATA attn8_hi<>+16(SB)/4, $0x42b00000
DATA attn8_hi<>+20(SB)/4, $0x42b00000
DATA attn8_hi<>+24(SB)/4, $0x42b00000
DATA attn8_hi<>+28(SB)/4, $0x42b00000
GLOBL attn8_hi<>(SB), RODATA|NOPTR, $32
DATA attn8_bias<>+0(SB)/4, $0x0000007f
DATA attn8_bias<>+4(SB)/4, $0x0000007f
DATA attn8_bias<>+8(SB)/4, $0x0000007f
DATA attn8_bias<>+12(SB)/4, $0x0000007f
DATA attn8_bias<>+16(SB)/4, $0x0000007f
DATA attn8_bias<>+20(SB)/4, $0x0000007f
DATA attn8_bias<>+24(SB)/4, $0x0000007f
DATA attn8_bias<>+28(SB)/4, $0x0000007f
GLOBL attn8_bias<>(SB), RODATA|NOPTR, $32
DATA attn8_invsqrt2<>+0(SB)/4, $0x3f3504f3
DATA attn8_invsqrt2<>+4(SB)/4, $0x3f3504f3
DATA attn8_invsqrt2<>+8(SB)/4, $0x3f3504f3
DATA attn8_invsqrt2<>+12(SB)/4, $0x3f3504f3
DATA attn8_invsqrt2<>+16(SB)/4, $0x3f3504f3
DATA attn8_invsqrt2<>+20(SB)/4, $0x3f3504f3
DATA attn8_invsqrt2<>+24(SB)/4, $0x3f3504f3
DATA attn8_invsqrt2<>+28(SB)/4, $0x3f3504f3
GLOBL attn8_invsqrt2<>(SB), RODATA|NOPTR, $32
DATA attn8_p<>+0(SB)/4, $0x3ea7ba05
DATA attn8_p<>+4(SB)/4, $0x3ea7ba05
DATA attn8_p<>+8(SB)/4, $0x3ea7ba05
DATA attn8_p<>+12(SB)/4, $0x3ea7ba05
DATA attn8_p<>+16(SB)/4, $0x3ea7ba05
DATA attn8_p<>+20(SB)/4, $0x3ea7ba05
DATA attn8_p<>+24(SB)/4, $0x3ea7ba05
DATA attn8_p<>+28(SB)/4, $0x3ea7ba05
GLOBL attn8_p<>(SB), RODATA|NOPTR, $32
DATA attn8_a5<>+0(SB)/4, $0x3f87dc22
DATA attn8_a5<>+4(SB)/4, $0x3f87dc22
DATA attn8_a5<>+8(SB)/4, $0x3f87dc22
DATA attn8_a5<>+12(SB)/4, $0x3f87dc22
DATA attn8_a5<>+16(SB)/4, $0x3f87dc22
DATA attn8_a5<>+20(SB)/4, $0x3f87dc22
DATA attn8_a5<>+24(SB)/4, $0x3f87dc22
DATA attn8_a5<>+28(SB)/4, $0x3f87dc22
GLOBL attn8_a5<>(SB), RODATA|NOPTR, $32
DATA attn8_a4<>+0(SB)/4, $0xbfba00e3
DATA attn8_a4<>+4(SB)/4, $0xbfba00e3
DATA attn8_a4<>+8(SB)/4, $0xbfba00e3
DATA attn8_a4<>+12(SB)/4, $0xbfba00e3
DATA attn8_a4<>+16(SB)/4, $0xbfba00e3
DATA attn8_a4<>+20(SB)/4, $0xbfba00e3
DATA attn8_a4<>+24(SB)/4, $0xbfba00e3
DATA attn8_a4<>+28(SB)/4, $0xbfba00e3
GLOBL attn8_a4<>(SB), RODATA|NOPTR, $32
DATA attn8_a3<>+0(SB)/4, $0x3fb5f0e3
DATA attn8_a3<>+4(SB)/4, $0x3fb5f0e3
DATA attn8_a3<>+8(SB)/4, $0x3fb5f0e3
DATA attn8_a3<>+12(SB)/4, $0x3fb5f0e3
DATA attn8_a3<>+16(SB)/4, $0x3fb5f0e3
DATA attn8_a3<>+20(SB)/4, $0x3fb5f0e3
DATA attn8_a3<>+24(SB)/4, $0x3fb5f0e3
DATA attn8_a3<>+28(SB)/4, $0x3fb5f0e3
GLOBL attn8_a3<>(SB), RODATA|NOPTR, $32
DATA attn8_a2<>+0(SB)/4, $0xbe91a98e
DATA attn8_a2<>+4(SB)/4, $0xbe91a98e
DATA attn8_a2<>+8(SB)/4, $0xbe91a98e
DATA attn8_a2<>+12(SB)/4, $0xbe91a98e
DATA attn8_a2<>+16(SB)/4, $0xbe91a98e
DATA attn8_a2<>+20(SB)/4, $0xbe91a98e
DATA attn8_a2<>+24(SB)/4, $0xbe91a98e
DATA attn8_a2<>+28(SB)/4, $0xbe91a98e
GLOBL attn8_a2<>(SB), RODATA|NOPTR, $32
DATA attn8_a1<>+0(SB)/4, $0x3e827906
DATA attn8_a1<>+4(SB)/4, $0x3e827906
DATA attn8_a1<>+8(SB)/4, $0x3e827906
DATA attn8_a1<>+12(SB)/4, $0x3e827906
DATA attn8_a1<>+16(SB)/4, $0x3e827906
DATA attn8_a1<>+20(SB)/4, $0x3e827906
DATA attn8_a1<>+24(SB)/4, $0x3e827906
DATA attn8_a1<>+28(SB)/4, $0x3e827906
GLOBL attn8_a1<>(SB), RODATA|NOPTR, $32
DATA attn8_half<>+0(SB)/4, $0x3f000000
DATA attn8_half<>+4(SB)/4, $0x3f000000
DATA attn8_half<>+8(SB)/4, $0x3f000000
DATA attn8_half<>+12(SB)/4, $0x3f000000
DATA attn8_half<>+16(SB)/4, $0x3f000000
DATA attn8_half<>+20(SB)/4, $0x3f000000
DATA attn8_half<>+24(SB)/4, $0x3f000000
DATA attn8_half<>+28(SB)/4, $0x3f000000
GLOBL attn8_half<>(SB), RODATA|NOPTR, $32
DATA attn8_abs<>+0(SB)/4, $0x7fffffff
DATA attn8_abs<>+4(SB)/4, $0x7fffffff
DATA attn8_abs<>+8(SB)/4, $0x7fffffff
DATA attn8_abs<>+12(SB)/4, $0x7fffffff
DATA attn8_abs<>+16(SB)/4, $0x7fffffff
DATA attn8_abs<>+20(SB)/4, $0x7fffffff
DATA attn8_abs<>+24(SB)/4, $0x7fffffff
DATA attn8_abs<>+28(SB)/4, $0x7fffffff
GLOBL attn8_abs<>(SB), RODATA|NOPTR, $32
DATA attn8_sign<>+0(SB)/4, $0x80000000
DATA attn8_sign<>+4(SB)/4, $0x80000000
DATA attn8_sign<>+8(SB)/4, $0x80000000
DATA attn8_sign<>+12(SB)/4, $0x80000000
DATA attn8_sign<>+16(SB)/4, $0x80000000
DATA attn8_sign<>+20(SB)/4, $0x80000000
DATA attn8_sign<>+24(SB)/4, $0x80000000
DATA attn8_sign<>+28(SB)/4, $0x80000000
GLOBL attn8_sign<>(SB), RODATA|NOPTR, $32
DATA attn8_invsqrt2pi<>+0(SB)/4, $0x3ecc422a
DATA attn8_invsqrt2pi<>+4(SB)/4, $0x3ecc422a
DATA attn8_invsqrt2pi<>+8(SB)/4, $0x3ecc422a
DATA attn8_invsqrt2pi<>+12(SB)/4, $0x3ecc422a
DATA attn8_invsqrt2pi<>+16(SB)/4, $0x3ecc422a
DATA attn8_invsqrt2pi<>+20(SB)/4, $0x3ecc422a
DATA attn8_invsqrt2pi<>+24(SB)/4, $0x3ecc422a
DATA attn8_invsqrt2pi<>+28(SB)/4, $0x3ecc422a
GLOBL attn8_invsqrt2pi<>(SB), RODATA|NOPTR, $32

// EXP8: Y3 = exp(Y0); clobbers Y0, Y2, Y4.
#define EXP8 \
	VMAXPS attn8_lo<>(SB), Y0, Y0 \
	VMINPS attn8_hi<>(SB), Y0, Y0 \
	VMULPS attn8_log2e<>(SB), Y0, Y2 \
	VROUNDPS $0, Y2, Y2 \
	VFNMADD231PS attn8_ln2hi<>(SB), Y2, Y0 \
	VFNMADD231PS attn8_ln2lo<>(SB), Y2, Y0 \
	VMOVUPS attn8_c7<>(SB), Y3 \
	VFMADD213PS attn8_c6<>(SB), Y0, Y3 \
	VFMADD213PS attn8_c5<>(SB), Y0, Y3 \
	VFMADD213PS attn8_c4<>(SB), Y0, Y3 \
	VFMADD213PS attn8_c3<>(SB), Y0, Y3 \
	VFMADD213PS attn8_c2<>(SB), Y0, Y3 \
	VFMADD213PS attn8_one<>(SB), Y0, Y3 \
	VFMADD213PS attn8_one<>(SB), Y0, Y3 \
	VCVTPS2DQ Y2, Y4 \
	VPADDD attn8_bias<>(SB), Y4, Y4 \
	VPSLLD $23, Y4, Y4 \
	VMULPS Y4, Y3, Y3

// func attnExpRowAVX2(n8 int, row *float32, scale, shift float32, acc *[8]float32)
TEXT ·attnExpRowAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS scale+16(FP), Y14
	VBROADCASTSS shift+20(FP), Y15
	VXORPS Y13, Y13, Y13
	MOVQ n8+0(FP), CX
	MOVQ row+8(FP), SI
	TESTQ CX, CX
	JZ exp8_done
exp8_loop:
	VMOVUPS (SI), Y0
	VFMSUB213PS Y15, Y14, Y0
	EXP8
	VMOVUPS Y3, (SI)
	VADDPS Y3, Y13, Y13
	ADDQ $32, SI
	DECQ CX
	JNZ exp8_loop
exp8_done:
	MOVQ acc+24(FP), DI
	VMOVUPS Y13, (DI)
	VZEROUPPER
	RET

// GELU8: from the gate Y8: Y5 = erf(Y8/√2), Y3 = exp(−Y8²/2).
// Clobbers Y0–Y7.
#define GELU8 \
	VMULPS attn8_invsqrt2<>(SB), Y8, Y1 \
	VANDPS attn8_abs<>(SB), Y1, Y6 \
	VMOVUPS attn8_p<>(SB), Y7 \
	VFMADD213PS attn8_one<>(SB), Y6, Y7 \
	VMOVUPS attn8_one<>(SB), Y4 \
	VDIVPS Y7, Y4, Y7 \
	VMOVUPS attn8_a5<>(SB), Y5 \
	VFMADD213PS attn8_a4<>(SB), Y7, Y5 \
	VFMADD213PS attn8_a3<>(SB), Y7, Y5 \
	VFMADD213PS attn8_a2<>(SB), Y7, Y5 \
	VFMADD213PS attn8_a1<>(SB), Y7, Y5 \
	VMULPS Y7, Y5, Y5 \
	VMULPS Y6, Y6, Y0 \
	VXORPS attn8_sign<>(SB), Y0, Y0 \
	EXP8 \
	VFNMADD213PS attn8_one<>(SB), Y3, Y5 \
	VANDPS attn8_sign<>(SB), Y1, Y1 \
	VXORPS Y1, Y5, Y5

// func gelugluFwdAVX2(n8 int, val, gate, out *float32)
TEXT ·gelugluFwdAVX2(SB), NOSPLIT, $0-32
	MOVQ n8+0(FP), CX
	MOVQ val+8(FP), SI
	MOVQ gate+16(FP), DX
	MOVQ out+24(FP), DI
	TESTQ CX, CX
	JZ gf8_done
gf8_loop:
	VMOVUPS (DX), Y8
	GELU8
	VADDPS attn8_one<>(SB), Y5, Y5
	VMULPS attn8_half<>(SB), Y8, Y9
	VMULPS Y5, Y9, Y9
	VMULPS (SI), Y9, Y9
	VMOVUPS Y9, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ gf8_loop
gf8_done:
	VZEROUPPER
	RET

// func gelugluBwdAVX2(n8 int, val, gate, dout, dval, dgate *float32)
TEXT ·gelugluBwdAVX2(SB), NOSPLIT, $0-48
	MOVQ n8+0(FP), CX
	MOVQ val+8(FP), SI
	MOVQ gate+16(FP), DX
	MOVQ dout+24(FP), BX
	MOVQ dval+32(FP), DI
	MOVQ dgate+40(FP), R8
	TESTQ CX, CX
	JZ gb8_done
gb8_loop:
	VMOVUPS (DX), Y8
	GELU8
	VADDPS attn8_one<>(SB), Y5, Y5
	VMULPS attn8_half<>(SB), Y5, Y5
	VMULPS attn8_invsqrt2pi<>(SB), Y3, Y3
	VMULPS Y8, Y3, Y3
	VADDPS Y5, Y3, Y3
	VMULPS Y8, Y5, Y5
	VMOVUPS (BX), Y9
	VMULPS Y9, Y5, Y5
	VMOVUPS Y5, (DI)
	VMULPS (SI), Y9, Y9
	VMULPS Y9, Y3, Y3
	VMOVUPS Y3, (R8)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, BX
	ADDQ $32, DI
	ADDQ $32, R8
	DECQ CX
	JNZ gb8_loop
gb8_done:
	VZEROUPPER
	RET
