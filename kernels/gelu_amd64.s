//go:build amd64 && !purego

#include "textflag.h"

// GeGLU rows on AVX-512: gelu(g) = ½·g·(1 + erf(g/√2)) with erf by
// Abramowitz & Stegun 7.1.26 (as geluErf) and exp as attnExpRowAVX512.

DATA geluK_log2e<>+0(SB)/4, $0x3fb8aa3b
GLOBL geluK_log2e<>(SB), RODATA|NOPTR, $4
DATA geluK_ln2hi<>+0(SB)/4, $0x3f318000
GLOBL geluK_ln2hi<>(SB), RODATA|NOPTR, $4
DATA geluK_ln2lo<>+0(SB)/4, $0xb95e8083
GLOBL geluK_ln2lo<>(SB), RODATA|NOPTR, $4
DATA geluK_c7<>+0(SB)/4, $0x39500d01
GLOBL geluK_c7<>(SB), RODATA|NOPTR, $4
DATA geluK_c6<>+0(SB)/4, $0x3ab60b61
GLOBL geluK_c6<>(SB), RODATA|NOPTR, $4
DATA geluK_c5<>+0(SB)/4, $0x3c088889
GLOBL geluK_c5<>(SB), RODATA|NOPTR, $4
DATA geluK_c4<>+0(SB)/4, $0x3d2aaaab
GLOBL geluK_c4<>(SB), RODATA|NOPTR, $4
DATA geluK_c3<>+0(SB)/4, $0x3e2aaaab
GLOBL geluK_c3<>(SB), RODATA|NOPTR, $4
DATA geluK_c2<>+0(SB)/4, $0x3f000000
GLOBL geluK_c2<>(SB), RODATA|NOPTR, $4
DATA geluK_one<>+0(SB)/4, $0x3f800000
GLOBL geluK_one<>(SB), RODATA|NOPTR, $4
DATA geluK_lo<>+0(SB)/4, $0xc2ae999a
GLOBL geluK_lo<>(SB), RODATA|NOPTR, $4
DATA geluK_invsqrt2<>+0(SB)/4, $0x3f3504f3
GLOBL geluK_invsqrt2<>(SB), RODATA|NOPTR, $4
DATA geluK_p<>+0(SB)/4, $0x3ea7ba05
GLOBL geluK_p<>(SB), RODATA|NOPTR, $4
DATA geluK_a5<>+0(SB)/4, $0x3f87dc22
GLOBL geluK_a5<>(SB), RODATA|NOPTR, $4
DATA geluK_a4<>+0(SB)/4, $0xbfba00e3
GLOBL geluK_a4<>(SB), RODATA|NOPTR, $4
DATA geluK_a3<>+0(SB)/4, $0x3fb5f0e3
GLOBL geluK_a3<>(SB), RODATA|NOPTR, $4
DATA geluK_a2<>+0(SB)/4, $0xbe91a98e
GLOBL geluK_a2<>(SB), RODATA|NOPTR, $4
DATA geluK_a1<>+0(SB)/4, $0x3e827906
GLOBL geluK_a1<>(SB), RODATA|NOPTR, $4
DATA geluK_half<>+0(SB)/4, $0x3f000000
GLOBL geluK_half<>(SB), RODATA|NOPTR, $4
DATA geluK_abs<>+0(SB)/4, $0x7fffffff
GLOBL geluK_abs<>(SB), RODATA|NOPTR, $4
DATA geluK_sign<>+0(SB)/4, $0x80000000
GLOBL geluK_sign<>(SB), RODATA|NOPTR, $4
DATA geluK_invsqrt2pi<>+0(SB)/4, $0x3ecc422a
GLOBL geluK_invsqrt2pi<>(SB), RODATA|NOPTR, $4

// GELU_CORE computes from the gate Z0: Z5 = erf(Z0/√2) and Z8 =
// exp(−Z0²/2). Clobbers Z1–Z7.
#define GELU_CORE \
	VMULPS Z16, Z0, Z1 \
	VPANDD.BCST geluK_abs<>(SB), Z1, Z2 \
	VMOVAPS Z15, Z3 \
	VFMADD213PS Z30, Z2, Z3 \
	VDIVPS Z3, Z30, Z4 \
	VMOVAPS Z14, Z5 \
	VFMADD213PS Z13, Z4, Z5 \
	VFMADD213PS Z12, Z4, Z5 \
	VFMADD213PS Z11, Z4, Z5 \
	VFMADD213PS Z10, Z4, Z5 \
	VMULPS Z4, Z5, Z5 \
	VMULPS Z2, Z2, Z6 \
	VPXORD.BCST geluK_sign<>(SB), Z6, Z6 \
	VMAXPS Z18, Z6, Z6 \
	VMULPS Z21, Z6, Z7 \
	VRNDSCALEPS $0, Z7, Z7 \
	VFNMADD231PS Z22, Z7, Z6 \
	VFNMADD231PS Z23, Z7, Z6 \
	VMOVAPS Z24, Z8 \
	VFMADD213PS Z25, Z6, Z8 \
	VFMADD213PS Z26, Z6, Z8 \
	VFMADD213PS Z27, Z6, Z8 \
	VFMADD213PS Z28, Z6, Z8 \
	VFMADD213PS Z29, Z6, Z8 \
	VFMADD213PS Z30, Z6, Z8 \
	VFMADD213PS Z30, Z6, Z8 \
	VSCALEFPS Z7, Z8, Z8 \
	VFNMADD213PS Z30, Z8, Z5 \
	VPANDD.BCST geluK_sign<>(SB), Z1, Z1 \
	VPXORD Z1, Z5, Z5

#define GELU_CONSTS \
	VBROADCASTSS geluK_log2e<>(SB), Z21 \
	VBROADCASTSS geluK_ln2hi<>(SB), Z22 \
	VBROADCASTSS geluK_ln2lo<>(SB), Z23 \
	VBROADCASTSS geluK_c7<>(SB), Z24 \
	VBROADCASTSS geluK_c6<>(SB), Z25 \
	VBROADCASTSS geluK_c5<>(SB), Z26 \
	VBROADCASTSS geluK_c4<>(SB), Z27 \
	VBROADCASTSS geluK_c3<>(SB), Z28 \
	VBROADCASTSS geluK_c2<>(SB), Z29 \
	VBROADCASTSS geluK_one<>(SB), Z30 \
	VBROADCASTSS geluK_lo<>(SB), Z18 \
	VBROADCASTSS geluK_invsqrt2<>(SB), Z16 \
	VBROADCASTSS geluK_p<>(SB), Z15 \
	VBROADCASTSS geluK_a5<>(SB), Z14 \
	VBROADCASTSS geluK_a4<>(SB), Z13 \
	VBROADCASTSS geluK_a3<>(SB), Z12 \
	VBROADCASTSS geluK_a2<>(SB), Z11 \
	VBROADCASTSS geluK_a1<>(SB), Z10 \
	VBROADCASTSS geluK_half<>(SB), Z9

// func gelugluFwdAVX512(n16 int, val, gate, out *float32)
TEXT ·gelugluFwdAVX512(SB), NOSPLIT, $0-32
	GELU_CONSTS
	MOVQ n16+0(FP), CX
	MOVQ val+8(FP), SI
	MOVQ gate+16(FP), DX
	MOVQ out+24(FP), DI
	TESTQ CX, CX
	JZ fwd_done
fwd_loop:
	VMOVUPS (DX), Z0
	GELU_CORE
	VADDPS Z30, Z5, Z5
	VMULPS Z9, Z0, Z0
	VMULPS Z5, Z0, Z0
	VMULPS (SI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	DECQ CX
	JNZ fwd_loop
fwd_done:
	VZEROUPPER
	RET

// func gelugluBwdAVX512(n16 int, val, gate, dout, dval, dgate *float32)
// dval = dout·gelu(g); dgate = dout·val·(Φ(g) + g·φ(g)),
// Φ = ½(1 + erf(g/√2)), φ = e^(−g²/2)/√(2π).
TEXT ·gelugluBwdAVX512(SB), NOSPLIT, $0-48
	GELU_CONSTS
	VBROADCASTSS geluK_invsqrt2pi<>(SB), Z17
	MOVQ n16+0(FP), CX
	MOVQ val+8(FP), SI
	MOVQ gate+16(FP), DX
	MOVQ dout+24(FP), BX
	MOVQ dval+32(FP), DI
	MOVQ dgate+40(FP), R8
	TESTQ CX, CX
	JZ bwd_done
bwd_loop:
	VMOVUPS (DX), Z0
	GELU_CORE
	VADDPS Z30, Z5, Z5
	VMULPS Z9, Z5, Z5
	VMULPS Z17, Z8, Z8
	VMULPS Z0, Z8, Z8
	VADDPS Z5, Z8, Z8
	VMULPS Z0, Z5, Z5
	VMOVUPS (BX), Z19
	VMULPS Z19, Z5, Z5
	VMOVUPS Z5, (DI)
	VMULPS (SI), Z19, Z19
	VMULPS Z19, Z8, Z8
	VMOVUPS Z8, (R8)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, BX
	ADDQ $64, DI
	ADDQ $64, R8
	DECQ CX
	JNZ bwd_loop
bwd_done:
	VZEROUPPER
	RET
