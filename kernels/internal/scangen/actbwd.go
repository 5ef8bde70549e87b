package main

import "fmt"

// Backward kernels of the element-wise layers: SiLU', softplus'(x+bias)
// (= sigmoid, exactly 1 above the threshold 20 in float32 as in PyTorch)
// with the bias gradient, and the width-4 causal conv's dx, dw, db.

// genActBwd appends siluBwdAVX512 and softplusBiasBwdAVX512 (see
// act_amd64.go) to the AVX-512 activation file (constants actK_*, the exp
// constants in Z21–Z30).
func genActBwd(g *gen) {
	g.w("")
	// dx = dy·s·(1 + x·(1−s)), s = 1/(1+e), 1−s = e·s, e = e^−x.
	g.w("// func siluBwdAVX512(n16 int, x, dy, dx *float32)")
	g.w("TEXT ·siluBwdAVX512(SB), NOSPLIT, $0-32")
	g.loadExpConsts("actK")
	g.i("MOVQ n16+0(FP), CX")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ dy+16(FP), DX")
	g.i("MOVQ dx+24(FP), DI")
	g.i("TESTQ CX, CX")
	g.i("JZ silub_done")
	g.w("silub_loop:")
	g.i("VMOVUPS (SI), Z0")
	g.i("VPXORD.BCST actK_sign<>(SB), Z0, Z1")
	g.expRegsClamped("actK", "Z1", "Z2", "Z3") // e^−x
	g.i("VADDPS Z30, Z3, Z4")
	g.i("VDIVPS Z4, Z30, Z4")      // s
	g.i("VMULPS Z4, Z3, Z3")       // 1 − s = e·s, no cancellation
	g.i("VMINPS Z30, Z3, Z3")      // e = +Inf: 1 − s = 1 (NaN → 1)
	g.i("VFMADD213PS Z30, Z0, Z3") // 1 + x·(1−s)
	g.i("VMULPS Z3, Z4, Z4")       // SiLU'(x)
	g.i("VMULPS (DX), Z4, Z4")     // ·dy
	g.i("VMOVUPS Z4, (DI)")
	g.i("ADDQ $64, SI")
	g.i("ADDQ $64, DX")
	g.i("ADDQ $64, DI")
	g.i("DECQ CX")
	g.i("JNZ silub_loop")
	g.w("silub_done:")
	g.i("VZEROUPPER")
	g.i("RET")
	g.w("")
	// g = dy·sigmoid(v), v = x + bias; dx = g; dbias += g. A NaN v gives
	// a NaN gradient (the clamped exp alone would give sigmoid = 1).
	g.w("// func softplusBiasBwdAVX512(n16 int, x, bias, dy, dx, dbias *float32)")
	g.w("TEXT ·softplusBiasBwdAVX512(SB), NOSPLIT, $0-48")
	g.loadExpConsts("actK")
	g.i("MOVQ n16+0(FP), CX")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ bias+16(FP), DX")
	g.i("MOVQ dy+24(FP), R8")
	g.i("MOVQ dx+32(FP), DI")
	g.i("MOVQ dbias+40(FP), R9")
	g.i("TESTQ CX, CX")
	g.i("JZ spb_done")
	g.w("spb_loop:")
	g.i("VMOVUPS (SI), Z0")
	g.i("VADDPS (DX), Z0, Z0")                 // v
	g.i("VPXORD.BCST actK_sign<>(SB), Z0, Z1") // −v
	g.expRegsClamped("actK", "Z1", "Z2", "Z3")
	g.i("VADDPS Z30, Z3, Z3")
	g.i("VDIVPS Z3, Z30, Z3")    // sigmoid(v)
	g.i("VCMPPS $3, Z0, Z0, K1") // v is NaN
	g.i("VMOVAPS Z0, K1, Z3")
	g.i("VMULPS (R8), Z3, Z3") // g
	g.i("VMOVUPS Z3, (DI)")
	g.i("VADDPS (R9), Z3, Z3")
	g.i("VMOVUPS Z3, (R9)")
	g.i("ADDQ $64, SI")
	g.i("ADDQ $64, DX")
	g.i("ADDQ $64, R8")
	g.i("ADDQ $64, DI")
	g.i("ADDQ $64, R9")
	g.i("DECQ CX")
	g.i("JNZ spb_loop")
	g.w("spb_done:")
	g.i("VZEROUPPER")
	g.i("RET")
}

// loop2 emits an AVX2 loop over n8 (the first argument) blocks of 8: two
// blocks per iteration with their code interleaved instruction by
// instruction, then one last block when n8 is odd, then RET. body(k)
// returns the code of block k (0 or 1) at byte offset 32·k; ptrs advance
// by 64 bytes per iteration.
func (g *gen) loop2(label string, body func(k int) []string, ptrs []string) {
	g.i("MOVQ n8+0(FP), CX")
	g.w("%s_loop2:", label)
	g.i("CMPQ CX, $2")
	g.i("JLT %s_tail", label)
	a, b := body(0), body(1)
	for j := range a {
		g.i("%s", a[j])
		g.i("%s", b[j])
	}
	for _, p := range ptrs {
		g.i("ADDQ $64, %s", p)
	}
	g.i("SUBQ $2, CX")
	g.i("JMP %s_loop2", label)
	g.w("%s_tail:", label)
	g.i("TESTQ CX, CX")
	g.i("JZ %s_done", label)
	for _, ins := range body(0) {
		g.i("%s", ins)
	}
	g.w("%s_done:", label)
	g.i("VZEROUPPER")
	g.i("RET")
}

// genActBwdAVX2 appends siluBwdAVX2 and softplusBiasBwdAVX2 to the AVX2
// activation file (constants act2K_*; exp constants in Y9–Y15, block k
// uses Y(4k)…Y(4k+3)).
func genActBwdAVX2(g *gen) {
	regs := fwdExpRegs
	g.w("")
	g.w("// func siluBwdAVX2(n8 int, x, dy, dx *float32)")
	g.w("TEXT ·siluBwdAVX2(SB), NOSPLIT, $0-32")
	g.loadExpRegs("act2K", regs)
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ dy+16(FP), DX")
	g.i("MOVQ dx+24(FP), DI")
	g.loop2("silub", func(k int) []string {
		y := func(j int) string { return fmt.Sprintf("Y%d", 4*k+j) }
		x, r, t, e := y(0), y(1), y(2), y(3)
		code := []string{
			fmt.Sprintf("VMOVUPS %d(SI), %s", 32*k, x),
			fmt.Sprintf("VXORPS act2K_sign<>(SB), %s, %s", x, r),
		}
		code = append(code, ymmExpCode("act2K", regs, r, t, e)...)
		return append(code,
			fmt.Sprintf("VADDPS Y15, %s, %s", e, t),
			fmt.Sprintf("VDIVPS %s, Y15, %s", t, t),      // s
			fmt.Sprintf("VMULPS %s, %s, %s", t, e, e),    // 1 − s = e·s, no cancellation
			fmt.Sprintf("VMINPS Y15, %s, %s", e, e),      // e = +Inf: 1 − s = 1 (NaN → 1)
			fmt.Sprintf("VFMADD213PS Y15, %s, %s", x, e), // 1 + x·(1−s)
			fmt.Sprintf("VMULPS %s, %s, %s", e, t, t),
			fmt.Sprintf("VMULPS %d(DX), %s, %s", 32*k, t, t),
			fmt.Sprintf("VMOVUPS %s, %d(DI)", t, 32*k))
	}, []string{"SI", "DX", "DI"})
	g.w("")
	g.w("// func softplusBiasBwdAVX2(n8 int, x, bias, dy, dx, dbias *float32)")
	g.w("TEXT ·softplusBiasBwdAVX2(SB), NOSPLIT, $0-48")
	g.loadExpRegs("act2K", regs)
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ bias+16(FP), DX")
	g.i("MOVQ dy+24(FP), R8")
	g.i("MOVQ dx+32(FP), DI")
	g.i("MOVQ dbias+40(FP), R9")
	g.loop2("spb", func(k int) []string {
		y := func(j int) string { return fmt.Sprintf("Y%d", 4*k+j) }
		v, r, t, e := y(0), y(1), y(2), y(3)
		code := []string{
			fmt.Sprintf("VMOVUPS %d(SI), %s", 32*k, v),
			fmt.Sprintf("VADDPS %d(DX), %s, %s", 32*k, v, v),
			fmt.Sprintf("VXORPS act2K_sign<>(SB), %s, %s", v, r),
		}
		code = append(code, ymmExpCode("act2K", regs, r, t, e)...)
		return append(code,
			fmt.Sprintf("VADDPS Y15, %s, %s", e, e),
			fmt.Sprintf("VDIVPS %s, Y15, %s", e, e),             // sigmoid(v)
			fmt.Sprintf("VCMPPS $3, %s, %s, %s", v, v, t),       // v is NaN
			fmt.Sprintf("VBLENDVPS %s, %s, %s, %s", t, v, e, e), // NaN → v
			fmt.Sprintf("VMULPS %d(R8), %s, %s", 32*k, e, e),    // g
			fmt.Sprintf("VMOVUPS %s, %d(DI)", e, 32*k),
			fmt.Sprintf("VADDPS %d(R9), %s, %s", 32*k, e, e),
			fmt.Sprintf("VMOVUPS %s, %d(R9)", e, 32*k))
	}, []string{"SI", "DX", "R8", "DI", "R9"})
}

// genConvBwd appends conv4BwdAVX512 (or conv4BwdAVX2 on 8 lanes, vec
// "Y", lanes 8) to a conv file: for each block of channels, the weights
// and the dw, db accumulators stay in registers over the rows.
//
//	dx[j]  = w3⊙dy[j] + w2⊙dy[j+1] + w1⊙dy[j+2] + w0⊙dy[j+3]
//	dw_k  += dy[j+3]⊙x[j+k]
//	db    += dy[j+3]
//
// for j < rows (= L−3: the rows where every tap exists; the caller does
// the three edge rows of each).
func genConvBwd(g *gen, name, vec string, lanes int) {
	r := func(j int) string { return fmt.Sprintf("%s%d", vec, j) }
	blk := 4 * lanes
	g.w("")
	g.w("// func %s(rows int, x *float32, ldx int, dy *float32, lddy int, dx *float32, lddx int, wt, dwt *float32, ldw int, db *float32, nbytes int)", name)
	g.w("// wt, dwt are (4, ldw) tap-major; dwt and db are accumulated; n = nbytes/4 channels (multiple of %d).", lanes)
	g.w("TEXT ·%s(SB), NOSPLIT, $0-96", name)
	g.i("MOVQ ldx+16(FP), AX")
	g.i("SHLQ $2, AX")
	g.i("LEAQ (AX)(AX*2), R12") // 3·ldx
	g.i("MOVQ lddy+32(FP), BX")
	g.i("SHLQ $2, BX")
	g.i("LEAQ (BX)(BX*2), R13") // 3·lddy
	g.i("MOVQ lddx+48(FP), DX")
	g.i("SHLQ $2, DX")
	g.i("MOVQ ldw+72(FP), R10")
	g.i("SHLQ $2, R10")
	g.i("MOVQ db+80(FP), R14")
	g.i("XORQ R8, R8")
	g.i("CMPQ rows+0(FP), $0")
	g.i("JLE done")
	g.w("blk:")
	for j, p := range []string{"wt+56(FP)", "dwt+64(FP)"} {
		g.i("MOVQ %s, SI", p)
		g.i("ADDQ R8, SI")
		g.i("LEAQ (SI)(R10*2), DI")
		g.i("VMOVUPS (SI), %s", r(4*j))
		g.i("VMOVUPS (SI)(R10*1), %s", r(4*j+1))
		g.i("VMOVUPS (DI), %s", r(4*j+2))
		g.i("VMOVUPS (DI)(R10*1), %s", r(4*j+3))
	}
	g.i("VMOVUPS (R14)(R8*1), %s", r(8))
	g.i("MOVQ x+8(FP), SI")
	g.i("ADDQ R8, SI")
	g.i("MOVQ dy+24(FP), DI")
	g.i("ADDQ R8, DI")
	g.i("MOVQ dx+40(FP), R15")
	g.i("ADDQ R8, R15")
	g.i("MOVQ rows+0(FP), CX")
	g.w("row:")
	g.i("VMOVUPS (DI)(R13*1), %s", r(10)) // dy[j+3]
	g.i("VADDPS %s, %s, %s", r(10), r(8), r(8))
	g.i("VFMADD231PS (SI), %s, %s", r(10), r(4))
	g.i("VFMADD231PS (SI)(AX*1), %s, %s", r(10), r(5))
	g.i("VFMADD231PS (SI)(AX*2), %s, %s", r(10), r(6))
	g.i("VFMADD231PS (SI)(R12*1), %s, %s", r(10), r(7))
	g.i("VMULPS (DI), %s, %s", r(3), r(9))
	g.i("VFMADD231PS (DI)(BX*1), %s, %s", r(2), r(9))
	g.i("VFMADD231PS (DI)(BX*2), %s, %s", r(1), r(9))
	g.i("VFMADD231PS %s, %s, %s", r(10), r(0), r(9))
	g.i("VMOVUPS %s, (R15)", r(9))
	g.i("ADDQ AX, SI")
	g.i("ADDQ BX, DI")
	g.i("ADDQ DX, R15")
	g.i("DECQ CX")
	g.i("JNZ row")
	g.i("MOVQ dwt+64(FP), SI")
	g.i("ADDQ R8, SI")
	g.i("LEAQ (SI)(R10*2), DI")
	g.i("VMOVUPS %s, (SI)", r(4))
	g.i("VMOVUPS %s, (SI)(R10*1)", r(5))
	g.i("VMOVUPS %s, (DI)", r(6))
	g.i("VMOVUPS %s, (DI)(R10*1)", r(7))
	g.i("VMOVUPS %s, (R14)(R8*1)", r(8))
	g.i("ADDQ $%d, R8", blk)
	g.i("CMPQ R8, nbytes+88(FP)")
	g.i("JLT blk")
	g.w("done:")
	g.i("VZEROUPPER")
	g.i("RET")
}
