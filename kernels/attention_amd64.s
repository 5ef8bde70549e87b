//go:build amd64 && !purego

#include "textflag.h"

// exp(x) = 2^n · p(r), n = round(x·log2 e), r = x − n·ln2 (Cody–Waite
// hi/lo), p the degree-7 Taylor polynomial (|r| ≤ ln2/2: error < 1e−8).

DATA attnK_log2e<>+0(SB)/4, $0x3fb8aa3b
GLOBL attnK_log2e<>(SB), RODATA|NOPTR, $4
DATA attnK_ln2hi<>+0(SB)/4, $0x3f318000
GLOBL attnK_ln2hi<>(SB), RODATA|NOPTR, $4
DATA attnK_ln2lo<>+0(SB)/4, $0xb95e8083
GLOBL attnK_ln2lo<>(SB), RODATA|NOPTR, $4
DATA attnK_c7<>+0(SB)/4, $0x39500d01
GLOBL attnK_c7<>(SB), RODATA|NOPTR, $4
DATA attnK_c6<>+0(SB)/4, $0x3ab60b61
GLOBL attnK_c6<>(SB), RODATA|NOPTR, $4
DATA attnK_c5<>+0(SB)/4, $0x3c088889
GLOBL attnK_c5<>(SB), RODATA|NOPTR, $4
DATA attnK_c4<>+0(SB)/4, $0x3d2aaaab
GLOBL attnK_c4<>(SB), RODATA|NOPTR, $4
DATA attnK_c3<>+0(SB)/4, $0x3e2aaaab
GLOBL attnK_c3<>(SB), RODATA|NOPTR, $4
DATA attnK_c2<>+0(SB)/4, $0x3f000000
GLOBL attnK_c2<>(SB), RODATA|NOPTR, $4
DATA attnK_one<>+0(SB)/4, $0x3f800000
GLOBL attnK_one<>(SB), RODATA|NOPTR, $4
DATA attnK_lo<>+0(SB)/4, $0xc2ae999a
GLOBL attnK_lo<>(SB), RODATA|NOPTR, $4

// func attnExpRowAVX512(n16 int, row *float32, scale, shift float32, acc *[16]float32)
TEXT ·attnExpRowAVX512(SB), NOSPLIT, $0-32
	VBROADCASTSS attnK_log2e<>(SB), Z21
	VBROADCASTSS attnK_ln2hi<>(SB), Z22
	VBROADCASTSS attnK_ln2lo<>(SB), Z23
	VBROADCASTSS attnK_c7<>(SB), Z24
	VBROADCASTSS attnK_c6<>(SB), Z25
	VBROADCASTSS attnK_c5<>(SB), Z26
	VBROADCASTSS attnK_c4<>(SB), Z27
	VBROADCASTSS attnK_c3<>(SB), Z28
	VBROADCASTSS attnK_c2<>(SB), Z29
	VBROADCASTSS attnK_one<>(SB), Z30
	VBROADCASTSS attnK_lo<>(SB), Z18
	VBROADCASTSS scale+16(FP), Z19
	VBROADCASTSS shift+20(FP), Z20
	VPXORD Z17, Z17, Z17
	MOVQ n16+0(FP), CX
	MOVQ row+8(FP), SI
	TESTQ CX, CX
	JZ attn_done
attn_loop:
	VMOVUPS (SI), Z0
	VFMSUB213PS Z20, Z19, Z0
	VMAXPS Z18, Z0, Z0
	VMULPS Z21, Z0, Z2
	VRNDSCALEPS $0, Z2, Z2
	VFNMADD231PS Z22, Z2, Z0
	VFNMADD231PS Z23, Z2, Z0
	VMOVAPS Z24, Z3
	VFMADD213PS Z25, Z0, Z3
	VFMADD213PS Z26, Z0, Z3
	VFMADD213PS Z27, Z0, Z3
	VFMADD213PS Z28, Z0, Z3
	VFMADD213PS Z29, Z0, Z3
	VFMADD213PS Z30, Z0, Z3
	VFMADD213PS Z30, Z0, Z3
	VSCALEFPS Z2, Z3, Z3
	VMOVUPS Z3, (SI)
	VADDPS Z3, Z17, Z17
	ADDQ $64, SI
	DECQ CX
	JNZ attn_loop
attn_done:
	MOVQ acc+24(FP), DI
	VMOVUPS Z17, (DI)
	VZEROUPPER
	RET
