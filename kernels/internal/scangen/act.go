package main

// genAct writes siluAVX512 and softplusBiasAVX512 (see act_amd64.go).
func genAct(g *gen) {
	g.header("SiLU, softplus")
	g.data("actK", expConsts)
	atanh := []float64{2.0 / 15, 2.0 / 13, 2.0 / 11, 2.0 / 9, 2.0 / 7, 2.0 / 5, 2.0 / 3, 2.0}
	for j, v := range atanh {
		g.data("actK", []konst{{name: "at" + string(rune('0'+j)), v: v}})
	}
	g.data("actK", []konst{{"sign", math32Sign}, {"two", 2}})
	g.data("actK", clampConsts)
	g.w("")
	// SiLU: y = x / (1 + exp(-x)), n16 blocks of 16.
	g.w("// func siluAVX512(n16 int, x, y *float32)")
	g.w("TEXT ·siluAVX512(SB), NOSPLIT, $0-24")
	g.loadExpConsts("actK")
	g.i("MOVQ n16+0(FP), CX")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ y+16(FP), DI")
	g.i("TESTQ CX, CX")
	g.i("JZ silu_done")
	g.w("silu_loop:")
	g.i("VMOVUPS (SI), Z0")
	g.i("VPXORD.BCST actK_sign<>(SB), Z0, Z1")
	g.expRegsClamped("actK", "Z1", "Z2", "Z3")
	g.i("VADDPS Z30, Z3, Z3")
	g.i("VDIVPS Z3, Z0, Z0")
	g.i("VMOVUPS Z0, (DI)")
	g.i("ADDQ $64, SI")
	g.i("ADDQ $64, DI")
	g.i("DECQ CX")
	g.i("JNZ silu_loop")
	g.w("silu_done:")
	g.i("VZEROUPPER")
	g.i("RET")
	g.w("")
	// softplus(x + bias) = max(v,0) + log1p(exp(-|v|)); log1p(w) = 2·atanh(w/(2+w)).
	g.w("// func softplusBiasAVX512(n16 int, x, bias, y *float32)")
	g.w("TEXT ·softplusBiasAVX512(SB), NOSPLIT, $0-32")
	g.loadExpConsts("actK")
	g.i("MOVQ n16+0(FP), CX")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ bias+16(FP), DX")
	g.i("MOVQ y+24(FP), DI")
	g.i("VXORPS Z20, Z20, Z20")
	g.i("TESTQ CX, CX")
	g.i("JZ sp_done")
	g.w("sp_loop:")
	g.i("VMOVUPS (SI), Z0")
	g.i("VADDPS (DX), Z0, Z0")                 // v
	g.i("VPORD.BCST actK_sign<>(SB), Z0, Z1")  // −|v|
	g.expRegsClamped("actK", "Z1", "Z2", "Z3") // w = e^−|v|
	g.i("VADDPS.BCST actK_two<>(SB), Z3, Z4")  // 2 + w
	g.i("VDIVPS Z4, Z3, Z4")                   // s = w/(2+w)
	g.i("VMULPS Z4, Z4, Z5")                   // s²
	g.i("VBROADCASTSS actK_at0<>(SB), Z6")
	for j := 1; j < 8; j++ {
		g.i("VFMADD213PS.BCST actK_at%d<>(SB), Z5, Z6", j)
	}
	g.i("VMULPS Z6, Z4, Z4") // log1p(w) = s·q
	g.i("VMAXPS Z20, Z0, Z0")
	g.i("VADDPS Z4, Z0, Z0")
	g.i("VMOVUPS Z0, (DI)")
	g.i("ADDQ $64, SI")
	g.i("ADDQ $64, DX")
	g.i("ADDQ $64, DI")
	g.i("DECQ CX")
	g.i("JNZ sp_loop")
	g.w("sp_done:")
	g.i("VZEROUPPER")
	g.i("RET")
	genActBwd(g)
}

// genConv writes conv4AVX512 (see conv_amd64.go): multiply and add kept
// separate (no FMA) so results equal the Go loop bit for bit.
func genConv(g *gen) {
	g.header("causal depthwise conv, width 4")
	g.w("// func conv4AVX512(rows int, x *float32, ldx int, wt *float32, ldw int, b *float32, y *float32, ldy int, nbytes int)")
	g.w("// y[t, :n] = b + w0⊙x[t] + w1⊙x[t+1] + w2⊙x[t+2] + w3⊙x[t+3] for t < rows, n = nbytes/4 (multiple of 16);")
	g.w("// wt is (4, ldw) (tap-major weights).")
	g.w("TEXT ·conv4AVX512(SB), NOSPLIT, $0-72")
	g.i("MOVQ rows+0(FP), CX")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ ldx+16(FP), AX")
	g.i("SHLQ $2, AX")
	g.i("MOVQ wt+24(FP), R9")
	g.i("MOVQ ldw+32(FP), R10")
	g.i("SHLQ $2, R10")
	g.i("LEAQ (R9)(R10*1), R11")
	g.i("LEAQ (R11)(R10*1), R12")
	g.i("LEAQ (R12)(R10*1), R10")
	g.i("MOVQ b+40(FP), BX")
	g.i("MOVQ y+48(FP), R15")
	g.i("MOVQ ldy+56(FP), DX")
	g.i("SHLQ $2, DX")
	g.i("TESTQ CX, CX")
	g.i("JZ done")
	g.w("row:")
	g.i("LEAQ (SI)(AX*1), DI")
	g.i("LEAQ (DI)(AX*1), R13")
	g.i("LEAQ (R13)(AX*1), R14")
	g.i("XORQ R8, R8")
	g.w("blk:")
	g.i("VMOVUPS (BX)(R8*1), Z0")
	for j, p := range [][2]string{{"R9", "SI"}, {"R11", "DI"}, {"R12", "R13"}, {"R10", "R14"}} {
		g.i("VMOVUPS (%s)(R8*1), Z%d", p[0], j+1)
		g.i("VMULPS (%s)(R8*1), Z%d, Z%d", p[1], j+1, j+5)
		g.i("VADDPS Z%d, Z0, Z0", j+5)
	}
	g.i("VMOVUPS Z0, (R15)(R8*1)")
	g.i("ADDQ $64, R8")
	g.i("CMPQ R8, nbytes+64(FP)")
	g.i("JLT blk")
	g.i("ADDQ AX, SI")
	g.i("ADDQ DX, R15")
	g.i("DECQ CX")
	g.i("JNZ row")
	g.w("done:")
	g.i("VZEROUPPER")
	g.i("RET")
	genConvBwd(g, "conv4BwdAVX512", "Z", 16)
}
