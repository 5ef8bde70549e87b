package main

import "math"

// genScan writes scan16AVX512 (see scan_amd64.go for the contract).
func genScan(g *gen) {
	g.header("selective scan forward")
	g.data("scanK", expConsts)
	g.data("scanK", []konst{{"sign", math32Sign}})
	g.data("scanK", clampConsts)
	g.w("")
	g.w("// func scan16AVX512(L int, u *float32, ldu int, dt *float32, lddt int, z *float32, ldz int, at *float32, b *float32, c *float32, ldbc int, dsk *float32, h *float32, y *float32, ldy int)")
	g.w("// 16 channels, d_state 16: at and h are (16 states, 16 channels); y gets the gated output.")
	g.w("TEXT ·scan16AVX512(SB), NOSPLIT, $0-120")
	g.i("MOVQ h+96(FP), AX")
	for n := 0; n < 16; n++ {
		g.i("VMOVUPS %d(AX), Z%d", 64*n, n)
	}
	g.loadExpConsts("scanK")
	g.i("MOVQ L+0(FP), CX")
	g.i("MOVQ u+8(FP), SI")
	g.i("MOVQ ldu+16(FP), R8")
	g.i("SHLQ $2, R8")
	g.i("MOVQ dt+24(FP), DI")
	g.i("MOVQ lddt+32(FP), R9")
	g.i("SHLQ $2, R9")
	g.i("MOVQ z+40(FP), R10")
	g.i("MOVQ ldz+48(FP), R11")
	g.i("SHLQ $2, R11")
	g.i("MOVQ at+56(FP), R12")
	g.i("MOVQ b+64(FP), BX")
	g.i("MOVQ c+72(FP), DX")
	g.i("MOVQ ldbc+80(FP), R13")
	g.i("SHLQ $2, R13")
	g.i("MOVQ dsk+88(FP), R14")
	g.i("MOVQ y+104(FP), R15")
	g.i("MOVQ ldy+112(FP), AX")
	g.i("SHLQ $2, AX")
	g.i("TESTQ CX, CX")
	g.i("JZ done")
	g.w("loop:")
	g.i("VMOVUPS (DI), Z16")     // Δ
	g.i("VMULPS (SI), Z16, Z17") // Δ·u
	g.i("VXORPS Z18, Z18, Z18")  // y
	for n := 0; n < 16; n++ {
		g.i("// state %d", n)
		g.i("VMULPS %d(R12), Z16, Z19", 64*n) // Δ·A_n
		g.expRegs("Z19", "Z20", "Z31")
		g.i("VMULPS Z31, Z%d, Z%d", n, n)                // h *= e
		g.i("VFMADD231PS.BCST %d(BX), Z17, Z%d", 4*n, n) // h += Δu·B_n
		g.i("VFMADD231PS.BCST %d(DX), Z%d, Z18", 4*n, n) // y += C_n·h
	}
	g.i("// skip and gate: y = (y + D*u) * z/(1+exp(-z))")
	g.i("VMOVUPS (SI), Z19")
	g.i("VFMADD231PS (R14), Z19, Z18")
	g.i("VMOVUPS (R10), Z19")
	g.i("VPXORD.BCST scanK_sign<>(SB), Z19, Z19")
	g.expRegsClamped("scanK", "Z19", "Z20", "Z31")
	g.i("VADDPS Z30, Z31, Z31")
	g.i("VMOVUPS (R10), Z19")
	g.i("VDIVPS Z31, Z19, Z19")
	g.i("VMULPS Z19, Z18, Z18")
	g.i("VMOVUPS Z18, (R15)")
	g.i("ADDQ R8, SI")
	g.i("ADDQ R9, DI")
	g.i("ADDQ R11, R10")
	g.i("ADDQ R13, BX")
	g.i("ADDQ R13, DX")
	g.i("ADDQ AX, R15")
	g.i("DECQ CX")
	g.i("JNZ loop")
	g.w("done:")
	g.i("MOVQ h+96(FP), AX")
	for n := 0; n < 16; n++ {
		g.i("VMOVUPS Z%d, %d(AX)", n, 64*n)
	}
	g.i("VZEROUPPER")
	g.i("RET")
}

// math32Sign is −0 (bits 0x80000000): XOR with it flips signs, OR sets them.
var math32Sign = math.Copysign(0, -1)
