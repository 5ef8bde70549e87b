package main

import "fmt"

// genScanBwd writes scanBwd16AVX512 (see scan_amd64.go): phase 1
// recomputes the 16 channels' states into hbuf rows 1…L (row 0 is zeros),
// phase 2 runs the reverse recurrence with dh for the 16 states in
// Z0–Z15. Registers Z21–Z23 and Z30 hold exp constants; the polynomial
// coefficients are broadcast from memory to free registers.
func genScanBwd(g *gen) {
	g.header("selective scan backward")
	g.data("bwdK", expConsts)
	g.data("bwdK", []konst{{"sign", math32Sign}})
	g.data("bwdK", clampConsts)
	g.w("")
	args := []string{"L", "u", "dt", "z", "gy", "ldd", "ldz", "at", "b", "c", "ldbc", "dsk", "hbuf", "accB", "accC", "du", "ddt", "dz", "yout", "dA", "dD"}
	off := map[string]int{}
	for j, a := range args {
		off[a] = 8 * j
	}
	arg := func(name string) string { return fmt.Sprintf("%s+%d(FP)", name, off[name]) }
	rowptr := func(reg, name, offreg string) {
		g.i("MOVQ %s, %s", arg(name), reg)
		g.i("ADDQ %s, %s", offreg, reg)
	}
	exp := func(zx, zk, zp string) { g.expMem("bwdK", zx, zk, zp) }
	g.w("// func scanBwd16AVX512(L int, u, dt, z, gy *float32, ldd, ldz int, at, b, c *float32, ldbc int, dsk, hbuf, accB, accC, du, ddt, dz, yout, dA, dD *float32)")
	g.w("TEXT ·scanBwd16AVX512(SB), NOSPLIT, $0-%d", 8*len(args))
	g.i("VBROADCASTSS bwdK_log2e<>(SB), Z21")
	g.i("VBROADCASTSS bwdK_ln2hi<>(SB), Z22")
	g.i("VBROADCASTSS bwdK_ln2lo<>(SB), Z23")
	g.i("VBROADCASTSS bwdK_one<>(SB), Z30")
	g.i("MOVQ %s, R12", arg("at"))
	g.i("MOVQ %s, R13", arg("dA"))
	// Phase 1: states.
	for n := 0; n < 16; n++ {
		g.i("VXORPS Z%d, Z%d, Z%d", n, n, n)
	}
	g.i("XORQ R8, R8")
	g.i("XORQ R10, R10")
	g.i("MOVQ %s, R11", arg("hbuf"))
	g.i("ADDQ $1024, R11")
	g.i("MOVQ %s, CX", arg("L"))
	g.w("fwd_loop:")
	rowptr("DI", "dt", "R8")
	g.i("VMOVUPS (DI), Z16")
	rowptr("SI", "u", "R8")
	g.i("VMULPS (SI), Z16, Z17")
	rowptr("BX", "b", "R10")
	for n := 0; n < 16; n++ {
		g.i("VMULPS %d(R12), Z16, Z19", 64*n)
		exp("Z19", "Z20", "Z31")
		g.i("VMULPS Z31, Z%d, Z%d", n, n)
		g.i("VFMADD231PS.BCST %d(BX), Z17, Z%d", 4*n, n)
		g.i("VMOVUPS Z%d, %d(R11)", n, 64*n)
	}
	for _, p := range [][2]string{{"ldd", "R8"}, {"ldbc", "R10"}} {
		g.i("MOVQ %s, DI", arg(p[0]))
		g.i("SHLQ $2, DI")
		g.i("ADDQ DI, %s", p[1])
	}
	g.i("ADDQ $1024, R11")
	g.i("DECQ CX")
	g.i("JNZ fwd_loop")
	// Phase 2: reverse, from t = L−1.
	for n := 0; n < 16; n++ {
		g.i("VXORPS Z%d, Z%d, Z%d", n, n, n)
	}
	g.i("MOVQ %s, CX", arg("L"))
	g.i("LEAQ -1(CX), AX")
	for _, p := range [][2]string{{"ldd", "R8"}, {"ldz", "R9"}, {"ldbc", "R10"}} {
		g.i("MOVQ %s, %s", arg(p[0]), p[1])
		g.i("IMULQ AX, %s", p[1])
		g.i("SHLQ $2, %s", p[1])
	}
	g.i("MOVQ AX, R11")
	g.i("SHLQ $10, R11")
	g.w("bwd_loop:")
	rowptr("DI", "dt", "R8")
	g.i("VMOVUPS (DI), Z16") // Δ
	rowptr("SI", "u", "R8")
	g.i("VMOVUPS (SI), Z28")    // u
	g.i("VMULPS Z28, Z16, Z27") // Δu
	rowptr("DX", "c", "R10")
	rowptr("BX", "b", "R10")
	g.i("MOVQ %s, R14", arg("hbuf"))
	g.i("ADDQ R11, R14")
	g.i("ADDQ $1024, R14") // h_t
	g.i("VXORPS Z18, Z18, Z18")
	for n := 0; n < 16; n++ { // y (pre-gate) = C·h_t
		g.i("VMOVUPS %d(R14), Z19", 64*n)
		g.i("VFMADD231PS.BCST %d(DX), Z19, Z18", 4*n)
	}
	g.i("MOVQ %s, DI", arg("dsk"))
	g.i("VFMADD231PS (DI), Z28, Z18") // + D·u
	rowptr("DI", "z", "R9")
	g.i("VMOVUPS (DI), Z29")
	g.i("VPXORD.BCST bwdK_sign<>(SB), Z29, Z19")
	g.i("VMAXPS.BCST bwdK_lo<>(SB), Z19, Z19") // clamp as expRegsClamped
	g.i("VMINPS.BCST bwdK_hi<>(SB), Z19, Z19")
	exp("Z19", "Z20", "Z31")
	g.i("VADDPS Z30, Z31, Z31")
	g.i("VDIVPS Z31, Z30, Z26") // σ(z)
	g.i("VMULPS Z26, Z29, Z25") // SiLU(z)
	g.i("VMULPS Z25, Z18, Z19")
	rowptr("DI", "yout", "R8")
	g.i("VMOVUPS Z19, (DI)")
	rowptr("DI", "gy", "R8")
	g.i("VMOVUPS (DI), Z24")
	g.i("VSUBPS Z26, Z30, Z20")      // 1−σ
	g.i("VFMADD213PS Z30, Z29, Z20") // 1 + z(1−σ)
	g.i("VMULPS Z26, Z20, Z20")
	g.i("VMULPS Z18, Z20, Z20")
	g.i("VMULPS Z24, Z20, Z20")
	rowptr("DI", "dz", "R9")
	g.i("VMOVUPS Z20, (DI)")
	g.i("VMULPS Z25, Z24, Z17") // dy = gy·SiLU(z)
	g.i("MOVQ %s, DI", arg("dD"))
	g.i("VMOVUPS (DI), Z19")
	g.i("VFMADD231PS Z28, Z17, Z19")
	g.i("VMOVUPS Z19, (DI)")
	g.i("MOVQ %s, R15", arg("accB"))
	g.i("ADDQ R11, R15")
	g.i("MOVQ %s, AX", arg("accC"))
	g.i("ADDQ R11, AX")
	g.i("VXORPS Z24, Z24, Z24") // Σ_n v·B_n
	g.i("VXORPS Z18, Z18, Z18") // dΔ
	for n := 0; n < 16; n++ {
		z := fmt.Sprintf("Z%d", n)
		g.i("VMULPS %d(R12), Z16, Z19", 64*n)
		exp("Z19", "Z20", "Z31")
		g.i("VFMADD231PS.BCST %d(DX), Z17, %s", 4*n, z) // v = dh + dy·C_n
		g.i("VMOVUPS %d(R14), Z25", 64*n)
		g.i("VMOVUPS %d(AX), Z26", 64*n)
		g.i("VFMADD231PS Z25, Z17, Z26") // dC += dy·h_t
		g.i("VMOVUPS Z26, %d(AX)", 64*n)
		g.i("VMOVUPS %d(R14), Z25", 64*n-1024) // h_{t−1}
		g.i("VMULPS %s, Z25, Z25", z)
		g.i("VMULPS Z31, Z25, Z25")                // da
		g.i("VFMADD231PS %d(R12), Z25, Z18", 64*n) // dΔ += da·A_n
		g.i("VMOVUPS %d(R13), Z26", 64*n)
		g.i("VFMADD231PS Z16, Z25, Z26") // dA += da·Δ
		g.i("VMOVUPS Z26, %d(R13)", 64*n)
		g.i("VFMADD231PS.BCST %d(BX), %s, Z24", 4*n, z)
		g.i("VMOVUPS %d(R15), Z26", 64*n)
		g.i("VFMADD231PS Z27, %s, Z26", z) // dB += v·Δu
		g.i("VMOVUPS Z26, %d(R15)", 64*n)
		g.i("VMULPS Z31, %s, %s", z, z) // dh_{t−1} = v·e
	}
	g.i("VFMADD231PS Z28, Z24, Z18")
	rowptr("DI", "ddt", "R8")
	g.i("VMOVUPS Z18, (DI)")
	g.i("MOVQ %s, DI", arg("dsk"))
	g.i("VMULPS (DI), Z17, Z19")
	g.i("VFMADD231PS Z16, Z24, Z19")
	rowptr("DI", "du", "R8")
	g.i("VMOVUPS Z19, (DI)")
	for _, p := range [][2]string{{"ldd", "R8"}, {"ldz", "R9"}, {"ldbc", "R10"}} {
		g.i("MOVQ %s, DI", arg(p[0]))
		g.i("SHLQ $2, DI")
		g.i("SUBQ DI, %s", p[1])
	}
	g.i("SUBQ $1024, R11")
	g.i("DECQ CX")
	g.i("JNZ bwd_loop")
	g.i("VZEROUPPER")
	g.i("RET")
}
