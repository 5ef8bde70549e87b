package main

import (
	"fmt"
	"math"
)

// AVX2+FMA versions of the kernels, 8 lanes (ymm) instead of 16. AVX2 has
// 16 vector registers and no VSCALEFPS, so:
//   - the states (16 per channel) live in memory, not in registers: a
//     block of 8 channels would need all 16 ymm registers;
//   - 2^k is built from exponent bits: x is first clamped to [−88, 89],
//     so k = round(x·log2e) is in [−127, 128] and the biased exponent
//     k+127 in [0, 255]: 0 gives +0 (e^x flushed, as Exp32 does below
//     −87.34) and 255 gives +Inf (overflow). Unlike Exp32 the result is
//     +Inf already for x in (88.38, 88.72] (k = 128) and a NaN x gives 0
//     (the clamp is a VMAXPS with a memory operand); both are far outside
//     what the mixer feeds it, and NaN inputs still reach the outputs
//     through the other terms.
//   - constants that do not fit in registers are 32-byte vectors in
//     memory (VEX instructions have no embedded broadcast).

// expKonsts are the vector constants of the AVX2 exp beyond expConsts.
var expKonsts = []konst{{"lo", -88}, {"hi", 89}}

// dataVec emits each constant as 8 float32 copies (a 32-byte vector).
func (g *gen) dataVec(prefix string, ks []konst) {
	for _, k := range ks {
		for j := 0; j < 8; j++ {
			g.w("DATA %s_%s<>+%d(SB)/4, $0x%08x", prefix, k.name, 4*j, math.Float32bits(float32(k.v)))
		}
		g.w("GLOBL %s_%s<>(SB), RODATA|NOPTR, $32", prefix, k.name)
	}
}

// dataVecInt emits an int32 constant as a 32-byte vector.
func (g *gen) dataVecInt(prefix, name string, v int32) {
	for j := 0; j < 8; j++ {
		g.w("DATA %s_%s<>+%d(SB)/4, $0x%08x", prefix, name, 4*j, uint32(v))
	}
	g.w("GLOBL %s_%s<>(SB), RODATA|NOPTR, $32", prefix, name)
}

// avx2Data emits the exp constants (float vectors and the exponent bias)
// and extra float vectors.
func (g *gen) avx2Data(prefix string, extra []konst) {
	g.dataVec(prefix, expConsts)
	g.dataVec(prefix, expKonsts)
	g.dataVecInt(prefix, "bias", 127)
	g.dataVec(prefix, extra)
}

// ymmExp emits e^x for the 8 lanes of yx (clobbered), with yk a
// temporary and the result in yp. regs maps constant names (log2e, ln2hi,
// ln2lo, c7…c2, one) to the registers holding them; the others are read
// from memory (prefix_name).
func (g *gen) ymmExp(prefix string, regs map[string]string, yx, yk, yp string) {
	for _, ins := range ymmExpCode(prefix, regs, yx, yk, yp) {
		g.i("%s", ins)
	}
}

// ymmExp2 emits two independent exps (registers a and b, each x, k, p as
// in ymmExp) interleaved instruction by instruction: one exp is a chain
// of ~20 dependent instructions, and two chains side by side keep both
// FMA pipes busy where one would leave them waiting on latency.
func (g *gen) ymmExp2(prefix string, regs map[string]string, a, b [3]string) {
	ca := ymmExpCode(prefix, regs, a[0], a[1], a[2])
	cb := ymmExpCode(prefix, regs, b[0], b[1], b[2])
	for j := range ca {
		g.i("%s", ca[j])
		g.i("%s", cb[j])
	}
}

// ymmExpCode returns the instructions of ymmExp.
func ymmExpCode(prefix string, regs map[string]string, yx, yk, yp string) []string {
	c := func(name string) string {
		if r, ok := regs[name]; ok {
			return r
		}
		return fmt.Sprintf("%s_%s<>(SB)", prefix, name)
	}
	code := []string{
		fmt.Sprintf("VMAXPS %s_lo<>(SB), %s, %s", prefix, yx, yx),
		fmt.Sprintf("VMINPS %s_hi<>(SB), %s, %s", prefix, yx, yx),
		fmt.Sprintf("VMULPS %s, %s, %s", c("log2e"), yx, yk),
		fmt.Sprintf("VROUNDPS $0, %s, %s", yk, yk),
		fmt.Sprintf("VFNMADD231PS %s, %s, %s", c("ln2hi"), yk, yx),
		fmt.Sprintf("VFNMADD231PS %s, %s, %s", c("ln2lo"), yk, yx),
		fmt.Sprintf("VMOVUPS %s, %s", c("c7"), yp),
	}
	for _, n := range []string{"c6", "c5", "c4", "c3", "c2", "one", "one"} {
		code = append(code, fmt.Sprintf("VFMADD213PS %s, %s, %s", c(n), yx, yp))
	}
	return append(code,
		fmt.Sprintf("VCVTPS2DQ %s, %s", yk, yk),
		fmt.Sprintf("VPADDD %s_bias<>(SB), %s, %s", prefix, yk, yk),
		fmt.Sprintf("VPSLLD $23, %s, %s", yk, yk),
		fmt.Sprintf("VMULPS %s, %s, %s", yk, yp, yp))
}

// allExpRegs keeps every exp constant in Y6–Y15.
var allExpRegs = map[string]string{
	"log2e": "Y6", "ln2hi": "Y7", "ln2lo": "Y8", "c7": "Y9", "c6": "Y10",
	"c5": "Y11", "c4": "Y12", "c3": "Y13", "c2": "Y14", "one": "Y15",
}

// fwdExpRegs are the exp constants the forward scan keeps in registers
// (Y9–Y15; Y0–Y8 hold Δ, Δu, y and two exps' temporaries).
var fwdExpRegs = map[string]string{
	"log2e": "Y9", "ln2hi": "Y10", "ln2lo": "Y11", "c7": "Y12", "c6": "Y13", "c5": "Y14", "one": "Y15",
}

// loadExpRegs broadcasts the constants of regs into their registers.
func (g *gen) loadExpRegs(prefix string, regs map[string]string) {
	for _, k := range expConsts {
		if r, ok := regs[k.name]; ok {
			g.i("VMOVUPS %s_%s<>(SB), %s", prefix, k.name, r)
		}
	}
}

// genScanAVX2 writes scan8AVX2 (see scan_amd64.go): 8 channels, d_state
// 16; ah holds A (16 states × 8 channels) then the state h (same shape).
func genScanAVX2(g *gen) {
	g.header("selective scan forward, AVX2+FMA")
	g.avx2Data("scan2K", []konst{{"sign", math32Sign}})
	g.w("")
	g.w("// func scan8AVX2(L int, u *float32, ldu int, dt *float32, lddt int, z *float32, ldz int, ah *float32, b *float32, c *float32, ldbc int, dsk *float32, y *float32, ldy int)")
	g.w("// 8 channels, d_state 16: ah is A then h, each (16 states, 8 channels); y gets the gated output.")
	g.w("TEXT ·scan8AVX2(SB), NOSPLIT, $0-112")
	g.loadExpRegs("scan2K", fwdExpRegs)
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
	g.i("MOVQ ah+56(FP), R12")
	g.i("MOVQ b+64(FP), BX")
	g.i("MOVQ c+72(FP), DX")
	g.i("MOVQ ldbc+80(FP), R13")
	g.i("SHLQ $2, R13")
	g.i("MOVQ dsk+88(FP), R14")
	g.i("MOVQ y+96(FP), R15")
	g.i("MOVQ ldy+104(FP), AX")
	g.i("SHLQ $2, AX")
	g.i("TESTQ CX, CX")
	g.i("JZ done")
	g.w("loop:")
	g.i("VMOVUPS (DI), Y0")    // Δ
	g.i("VMULPS (SI), Y0, Y1") // Δ·u
	g.i("VXORPS Y2, Y2, Y2")   // y
	for n := 0; n < 16; n += 2 {
		g.i("// states %d, %d", n, n+1)
		g.i("VMULPS %d(R12), Y0, Y3", 32*n) // Δ·A_n
		g.i("VMULPS %d(R12), Y0, Y6", 32*n+32)
		g.ymmExp2("scan2K", fwdExpRegs, [3]string{"Y3", "Y4", "Y5"}, [3]string{"Y6", "Y7", "Y8"})
		for _, p := range []struct {
			n    int
			e, t string
		}{{n, "Y5", "Y4"}, {n + 1, "Y8", "Y7"}} {
			g.i("VMULPS %d(R12), %s, %s", 512+32*p.n, p.e, p.e) // e·h
			g.i("VBROADCASTSS %d(BX), %s", 4*p.n, p.t)
			g.i("VFMADD231PS %s, Y1, %s", p.t, p.e) // + Δu·B_n
			g.i("VMOVUPS %s, %d(R12)", p.e, 512+32*p.n)
			g.i("VBROADCASTSS %d(DX), %s", 4*p.n, p.t)
			g.i("VFMADD231PS %s, %s, Y2", p.t, p.e) // y += C_n·h
		}
	}
	g.i("// skip and gate: y = (y + D*u) * z/(1+exp(-z))")
	g.i("VMOVUPS (SI), Y3")
	g.i("VFMADD231PS (R14), Y3, Y2")
	g.i("VMOVUPS (R10), Y3")
	g.i("VXORPS scan2K_sign<>(SB), Y3, Y3")
	g.ymmExp("scan2K", fwdExpRegs, "Y3", "Y4", "Y5")
	g.i("VADDPS Y15, Y5, Y5")
	g.i("VMOVUPS (R10), Y3")
	g.i("VDIVPS Y5, Y3, Y3")
	g.i("VMULPS Y3, Y2, Y2")
	g.i("VMOVUPS Y2, (R15)")
	g.i("ADDQ R8, SI")
	g.i("ADDQ R9, DI")
	g.i("ADDQ R11, R10")
	g.i("ADDQ R13, BX")
	g.i("ADDQ R13, DX")
	g.i("ADDQ AX, R15")
	g.i("DECQ CX")
	g.i("JNZ loop")
	g.w("done:")
	g.i("VZEROUPPER")
	g.i("RET")
}

// genScanBwdAVX2 writes scanBwd8AVX2 (see scan_amd64.go), the backward
// of scan8AVX2 for 8 channels. ah holds A (16 states × 8 channels), the
// dA accumulator (same shape), the carried dh (same shape) and the dD
// accumulator (8); hbuf is (L+1) rows of 16×8 states (row 0 zeros);
// accBC is L rows of the lane-wise dB (16×8) then dC (16×8)
// contributions. Phase 1 recomputes the states reading h_{t−1} back from
// hbuf; phase 2 runs the reverse recurrence with dh in memory. Both
// handle two states at a time (interleaved exps, see ymmExp2).
func genScanBwdAVX2(g *gen) {
	g.header("selective scan backward, AVX2+FMA")
	g.avx2Data("bwd2K", []konst{{"sign", math32Sign}})
	g.w("")
	args := []string{"L", "u", "dt", "z", "gy", "ldd", "ldz", "ah", "b", "c", "ldbc", "dsk", "hbuf", "accBC", "du", "ddt", "dz", "yout"}
	off := map[string]int{}
	for j, a := range args {
		off[a] = 8 * j
	}
	arg := func(name string) string { return fmt.Sprintf("%s+%d(FP)", name, off[name]) }
	rowptr := func(reg, name, offreg string) {
		g.i("MOVQ %s, %s", arg(name), reg)
		g.i("ADDQ %s, %s", offreg, reg)
	}
	regs := map[string]string{"log2e": "Y11", "ln2hi": "Y12", "ln2lo": "Y13", "c7": "Y14", "one": "Y15"}
	exp := func(yx, yk, yp string) { g.ymmExp("bwd2K", regs, yx, yk, yp) }
	// exp2 computes two exps: x in Y5 and Y8, results in Y7 and Y10.
	exp2 := func() { g.ymmExp2("bwd2K", regs, [3]string{"Y5", "Y6", "Y7"}, [3]string{"Y8", "Y9", "Y10"}) }
	g.w("// func scanBwd8AVX2(L int, u, dt, z, gy *float32, ldd, ldz int, ah, b, c *float32, ldbc int, dsk, hbuf, accBC, du, ddt, dz, yout *float32)")
	g.w("TEXT ·scanBwd8AVX2(SB), NOSPLIT, $0-%d", 8*len(args))
	g.loadExpRegs("bwd2K", regs)
	g.i("MOVQ %s, R12", arg("ah"))
	// Phase 1: states.
	g.i("XORQ R8, R8")
	g.i("XORQ R10, R10")
	g.i("MOVQ %s, R11", arg("hbuf"))
	g.i("ADDQ $512, R11")
	g.i("MOVQ %s, CX", arg("L"))
	g.w("fwd_loop:")
	rowptr("DI", "dt", "R8")
	g.i("VMOVUPS (DI), Y0")
	rowptr("SI", "u", "R8")
	g.i("VMULPS (SI), Y0, Y1")
	rowptr("BX", "b", "R10")
	for n := 0; n < 16; n += 2 {
		g.i("VMULPS %d(R12), Y0, Y5", 32*n)
		g.i("VMULPS %d(R12), Y0, Y8", 32*n+32)
		exp2()
		for _, p := range []struct {
			n    int
			e, t string
		}{{n, "Y7", "Y6"}, {n + 1, "Y10", "Y9"}} {
			g.i("VMULPS %d(R11), %s, %s", 32*p.n-512, p.e, p.e) // e·h_{t−1}
			g.i("VBROADCASTSS %d(BX), %s", 4*p.n, p.t)
			g.i("VFMADD231PS %s, Y1, %s", p.t, p.e)
			g.i("VMOVUPS %s, %d(R11)", p.e, 32*p.n)
		}
	}
	for _, p := range [][2]string{{"ldd", "R8"}, {"ldbc", "R10"}} {
		g.i("MOVQ %s, DI", arg(p[0]))
		g.i("SHLQ $2, DI")
		g.i("ADDQ DI, %s", p[1])
	}
	g.i("ADDQ $512, R11")
	g.i("DECQ CX")
	g.i("JNZ fwd_loop")
	// Phase 2: reverse, from t = L−1.
	g.i("MOVQ %s, CX", arg("L"))
	g.i("LEAQ -1(CX), AX")
	for _, p := range [][2]string{{"ldd", "R8"}, {"ldz", "R9"}, {"ldbc", "R10"}} {
		g.i("MOVQ %s, %s", arg(p[0]), p[1])
		g.i("IMULQ AX, %s", p[1])
		g.i("SHLQ $2, %s", p[1])
	}
	g.i("MOVQ AX, R11")
	g.i("SHLQ $9, R11") // t·512: offset of row t in hbuf (row t+1 is h_t)
	g.w("bwd_loop:")
	rowptr("DI", "dt", "R8")
	g.i("VMOVUPS (DI), Y0") // Δ
	rowptr("SI", "u", "R8")
	g.i("VMOVUPS (SI), Y9")  // u
	g.i("VMULPS Y9, Y0, Y1") // Δu
	rowptr("DX", "c", "R10")
	rowptr("BX", "b", "R10")
	g.i("MOVQ %s, R14", arg("hbuf"))
	g.i("LEAQ 512(R14)(R11*1), R14") // h_t
	g.i("MOVQ %s, R15", arg("accBC"))
	g.i("LEAQ (R15)(R11*2), R15") // accBC row t
	g.i("VXORPS Y3, Y3, Y3")
	for n := 0; n < 16; n++ { // y (pre-gate) = C·h_t
		g.i("VBROADCASTSS %d(DX), Y10", 4*n)
		g.i("VFMADD231PS %d(R14), Y10, Y3", 32*n)
	}
	g.i("MOVQ %s, DI", arg("dsk"))
	g.i("VFMADD231PS (DI), Y9, Y3") // + D·u
	rowptr("DI", "z", "R9")
	g.i("VMOVUPS (DI), Y8")
	g.i("VXORPS bwd2K_sign<>(SB), Y8, Y5")
	exp("Y5", "Y6", "Y7")
	g.i("VADDPS Y15, Y7, Y7")
	g.i("VDIVPS Y7, Y15, Y10") // σ(z)
	g.i("VMULPS Y10, Y8, Y4")  // SiLU(z)
	g.i("VMULPS Y4, Y3, Y5")
	rowptr("DI", "yout", "R8")
	g.i("VMOVUPS Y5, (DI)")
	rowptr("DI", "gy", "R8")
	g.i("VMOVUPS (DI), Y2")
	g.i("VSUBPS Y10, Y15, Y6")     // 1−σ
	g.i("VFMADD213PS Y15, Y8, Y6") // 1 + z(1−σ)
	g.i("VMULPS Y10, Y6, Y6")
	g.i("VMULPS Y3, Y6, Y6")
	g.i("VMULPS Y2, Y6, Y6")
	rowptr("DI", "dz", "R9")
	g.i("VMOVUPS Y6, (DI)")
	g.i("VMULPS Y4, Y2, Y2") // dy = gy·SiLU(z)
	g.i("VMOVUPS 1536(R12), Y6")
	g.i("VFMADD231PS Y9, Y2, Y6") // dD += dy·u
	g.i("VMOVUPS Y6, 1536(R12)")
	g.i("VXORPS Y3, Y3, Y3") // dΔ
	g.i("VXORPS Y4, Y4, Y4") // Σ_n v·B_n
	for n := 0; n < 16; n += 2 {
		g.i("// states %d, %d", n, n+1)
		g.i("VMULPS %d(R12), Y0, Y5", 32*n)
		g.i("VMULPS %d(R12), Y0, Y8", 32*n+32)
		exp2()
		for _, p := range []struct {
			n int
			e string
		}{{n, "Y7"}, {n + 1, "Y10"}} {
			n, e := p.n, p.e
			// v in Y5, temporaries Y6 and Y8 (free after the exps).
			g.i("VBROADCASTSS %d(DX), Y5", 4*n)
			g.i("VFMADD213PS %d(R12), Y2, Y5", 1024+32*n) // v = dy·C_n + dh
			g.i("VMOVUPS %d(R14), Y6", 32*n)
			g.i("VFMADD213PS %d(R15), Y2, Y6", 512+32*n) // dC += dy·h_t
			g.i("VMOVUPS Y6, %d(R15)", 512+32*n)
			g.i("VMULPS %d(R14), Y5, Y6", 32*n-512)  // v·h_{t−1}
			g.i("VMULPS %s, Y6, Y6", e)              // da
			g.i("VFMADD231PS %d(R12), Y6, Y3", 32*n) // dΔ += da·A_n
			g.i("VMOVUPS %d(R12), Y8", 512+32*n)
			g.i("VFMADD231PS Y0, Y6, Y8") // dA += da·Δ
			g.i("VMOVUPS Y8, %d(R12)", 512+32*n)
			g.i("VBROADCASTSS %d(BX), Y8", 4*n)
			g.i("VFMADD231PS Y8, Y5, Y4")
			g.i("VMOVUPS %d(R15), Y8", 32*n)
			g.i("VFMADD231PS Y1, Y5, Y8") // dB += v·Δu
			g.i("VMOVUPS Y8, %d(R15)", 32*n)
			g.i("VMULPS %s, Y5, Y5", e) // dh_{t−1} = v·e
			g.i("VMOVUPS Y5, %d(R12)", 1024+32*n)
		}
	}
	rowptr("SI", "u", "R8")
	g.i("VFMADD231PS (SI), Y4, Y3")
	rowptr("DI", "ddt", "R8")
	g.i("VMOVUPS Y3, (DI)")
	g.i("MOVQ %s, DI", arg("dsk"))
	g.i("VMULPS (DI), Y2, Y9")
	g.i("VFMADD231PS Y0, Y4, Y9")
	rowptr("DI", "du", "R8")
	g.i("VMOVUPS Y9, (DI)")
	for _, p := range [][2]string{{"ldd", "R8"}, {"ldz", "R9"}, {"ldbc", "R10"}} {
		g.i("MOVQ %s, DI", arg(p[0]))
		g.i("SHLQ $2, DI")
		g.i("SUBQ DI, %s", p[1])
	}
	g.i("SUBQ $512, R11")
	g.i("DECQ CX")
	g.i("JNZ bwd_loop")
	g.i("VZEROUPPER")
	g.i("RET")
}

// genActAVX2 writes siluAVX2 and softplusBiasAVX2 (see act_amd64.go),
// the AVX-512 activations on 8 lanes. The loops do two blocks of 8 per
// iteration with their exps (and softplus's atanh polynomials)
// interleaved, then one last block of 8 when n8 is odd.
func genActAVX2(g *gen) {
	g.header("SiLU, softplus, AVX2+FMA")
	atanh := []konst{}
	for j, v := range []float64{2.0 / 15, 2.0 / 13, 2.0 / 11, 2.0 / 9, 2.0 / 7, 2.0 / 5, 2.0 / 3, 2.0} {
		atanh = append(atanh, konst{name: "at" + string(rune('0'+j)), v: v})
	}
	g.avx2Data("act2K", append(atanh, konst{"sign", math32Sign}, konst{"two", 2}))
	g.w("")
	regs := fwdExpRegs // Y9–Y15; Y0–Y8 are free for two blocks
	// SiLU: y = x / (1 + exp(-x)); block k uses x Y(4k), exp Y(4k+1…4k+3).
	g.w("// func siluAVX2(n8 int, x, y *float32)")
	g.w("TEXT ·siluAVX2(SB), NOSPLIT, $0-24")
	g.loadExpRegs("act2K", regs)
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ y+16(FP), DI")
	g.loop2("silu", func(k int) []string {
		y := func(j int) string { return fmt.Sprintf("Y%d", 4*k+j) }
		code := []string{
			fmt.Sprintf("VMOVUPS %d(SI), %s", 32*k, y(0)),
			fmt.Sprintf("VXORPS act2K_sign<>(SB), %s, %s", y(0), y(1)),
		}
		code = append(code, ymmExpCode("act2K", regs, y(1), y(2), y(3))...)
		return append(code,
			fmt.Sprintf("VADDPS Y15, %s, %s", y(3), y(3)),
			fmt.Sprintf("VDIVPS %s, %s, %s", y(3), y(0), y(0)),
			fmt.Sprintf("VMOVUPS %s, %d(DI)", y(0), 32*k))
	}, []string{"SI", "DI"})
	g.w("")
	// softplus(x + bias) = max(v,0) + log1p(exp(-|v|)); log1p(w) = 2·atanh(w/(2+w)).
	// Block k uses Y(4k)…Y(4k+3): v, then −|v| (later 2+w and s), the
	// exp's k (later s²) and w (later the atanh polynomial q).
	g.w("// func softplusBiasAVX2(n8 int, x, bias, y *float32)")
	g.w("TEXT ·softplusBiasAVX2(SB), NOSPLIT, $0-32")
	g.loadExpRegs("act2K", regs)
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ bias+16(FP), DX")
	g.i("MOVQ y+24(FP), DI")
	g.loop2("sp", func(k int) []string {
		y := func(j int) string { return fmt.Sprintf("Y%d", 4*k+j) }
		v, x, t, w := y(0), y(1), y(2), y(3) // w = e^−|v| after the exp
		code := []string{
			fmt.Sprintf("VMOVUPS %d(SI), %s", 32*k, v),
			fmt.Sprintf("VADDPS %d(DX), %s, %s", 32*k, v, v),    // v
			fmt.Sprintf("VORPS act2K_sign<>(SB), %s, %s", v, x), // −|v|
		}
		code = append(code, ymmExpCode("act2K", regs, x, t, w)...)
		code = append(code,
			fmt.Sprintf("VADDPS act2K_two<>(SB), %s, %s", w, x), // 2 + w
			fmt.Sprintf("VDIVPS %s, %s, %s", x, w, x),           // s = w/(2+w)
			fmt.Sprintf("VMULPS %s, %s, %s", x, x, t),           // s²
			fmt.Sprintf("VMOVUPS act2K_at0<>(SB), %s", w))       // q
		for j := 1; j < 8; j++ {
			code = append(code, fmt.Sprintf("VFMADD213PS act2K_at%d<>(SB), %s, %s", j, t, w))
		}
		return append(code,
			fmt.Sprintf("VMULPS %s, %s, %s", w, x, x), // log1p(w) = s·q
			fmt.Sprintf("VXORPS %s, %s, %s", t, t, t),
			fmt.Sprintf("VMAXPS %s, %s, %s", t, v, v),
			fmt.Sprintf("VADDPS %s, %s, %s", x, v, v),
			fmt.Sprintf("VMOVUPS %s, %d(DI)", v, 32*k))
	}, []string{"SI", "DX", "DI"})
	genActBwdAVX2(g)
}

// genConvAVX2 writes conv4AVX2 (see conv_amd64.go), conv4AVX512 on 8
// lanes: multiply and add kept separate so results equal the Go loop.
func genConvAVX2(g *gen) {
	g.header("causal depthwise conv, width 4, AVX2")
	g.w("// func conv4AVX2(rows int, x *float32, ldx int, wt *float32, ldw int, b *float32, y *float32, ldy int, nbytes int)")
	g.w("// y[t, :n] = b + w0⊙x[t] + w1⊙x[t+1] + w2⊙x[t+2] + w3⊙x[t+3] for t < rows, n = nbytes/4 (multiple of 8);")
	g.w("// wt is (4, ldw) (tap-major weights).")
	g.w("TEXT ·conv4AVX2(SB), NOSPLIT, $0-72")
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
	g.i("VMOVUPS (BX)(R8*1), Y0")
	for j, p := range [][2]string{{"R9", "SI"}, {"R11", "DI"}, {"R12", "R13"}, {"R10", "R14"}} {
		g.i("VMOVUPS (%s)(R8*1), Y%d", p[0], j+1)
		g.i("VMULPS (%s)(R8*1), Y%d, Y%d", p[1], j+1, j+5)
		g.i("VADDPS Y%d, Y0, Y0", j+5)
	}
	g.i("VMOVUPS Y0, (R15)(R8*1)")
	g.i("ADDQ $32, R8")
	g.i("CMPQ R8, nbytes+64(FP)")
	g.i("JLT blk")
	g.i("ADDQ AX, SI")
	g.i("ADDQ DX, R15")
	g.i("DECQ CX")
	g.i("JNZ row")
	g.w("done:")
	g.i("VZEROUPPER")
	g.i("RET")
	genConvBwd(g, "conv4BwdAVX2", "Y", 8)
}
