package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gemmRef is an independent float64 reference: C = op(A)·op(B) + beta·C.
// It also returns, per element, Σ|op(A)ᵢₚ·op(B)ₚⱼ| + |beta·Cᵢⱼ| to scale
// the float32 rounding tolerance.
// Rows for which rowChecked is false are left zero.
func gemmRef(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, rowChecked func(int) bool) (want, mag []float64) {
	want = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		if !rowChecked(i) {
			continue
		}
		for j := 0; j < n; j++ {
			var s, abs float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = float64(a[p*lda+i])
				} else {
					av = float64(a[i*lda+p])
				}
				if transB {
					bv = float64(b[j*ldb+p])
				} else {
					bv = float64(b[p*ldb+j])
				}
				s += av * bv
				abs += math.Abs(av * bv)
			}
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
				abs += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*n+j] = s
			mag[i*n+j] = abs
		}
	}
	return want, mag
}

// gemmImpl is one path under test.
type gemmImpl struct {
	name string
	run  func(ws *Workspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// gemmImpls returns every GEMM path this build can run: the generic
// reference loop, each blocked configuration with its production
// blocking, and each again with tiny blocks so that small shapes cross
// every block boundary (several k, row and column blocks), once with A
// always copied/packed and once with A always read in place; each of
// these also with op(B) pre-packed (PackB).
func gemmImpls() []gemmImpl {
	impls := []gemmImpl{{"generic", func(_ *Workspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		gemmGeneric(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
	}}}
	for _, g := range gemmKernels() {
		small := *g
		small.kc, small.mc, small.nc = 5, 2*g.mr, 2*g.nr
		small.slabA = gemmSlabAlways
		inplace := small
		inplace.slabA = gemmSlabNever
		for _, cfg := range []*gemmKernel{g, &small, &inplace} {
			name := g.name
			switch cfg {
			case &small:
				name += "-smallblocks"
			case &inplace:
				name += "-smallblocks-inplace"
			}
			impls = append(impls, gemmImpl{name, func(ws *Workspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
				gemmCheck(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
				gemmBlocked(cfg, ws, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
			}})
			impls = append(impls, gemmImpl{name + "-prepacked", func(ws *Workspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
				var pb PackedB
				gemmPackBInto(cfg, &pb, transB, k, n, b, ldb)
				GemmPacked(ws, transA, m, a, lda, &pb, beta, c, ldc)
			}})
		}
	}
	return impls
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// gemmCase runs one product through impl and checks it against gemmRef,
// including that the padding between rows of C is left untouched. For
// products above 2²⁴ multiply-adds only a sample of rows is compared
// (the first and last 16 and every 16th), to keep the test fast.
func gemmCase(t *testing.T, impl gemmImpl, ws *Workspace, r *rand.Rand, transA, transB bool, m, n, k, pad int, beta float32) {
	t.Helper()
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+pad, bc+pad, n+pad
	a := randSlice(r, max(ar*lda, 1))
	b := randSlice(r, max(br*ldb, 1))
	c := randSlice(r, m*ldc)
	const sentinel = -12345.5
	for i := 0; i < m; i++ {
		for j := n; j < ldc; j++ {
			c[i*ldc+j] = sentinel
		}
	}
	if beta == 0 {
		// beta = 0 must not read C: NaNs there must vanish.
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	rowChecked := func(i int) bool {
		return m*n*k <= 1<<24 || i < 16 || i >= m-16 || i%16 == 0
	}
	want, mag := gemmRef(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc, rowChecked)
	impl.run(ws, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
	for i := 0; i < m; i++ {
		if !rowChecked(i) {
			continue
		}
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= n {
				if got != sentinel {
					t.Fatalf("%s tA=%v tB=%v m=%d n=%d k=%d pad=%d beta=%v: padding C[%d][%d] overwritten with %v", impl.name, transA, transB, m, n, k, pad, beta, i, j, got)
				}
				continue
			}
			w, tol := want[i*n+j], 2e-6*float64(k+2)*mag[i*n+j]+1e-30
			if d := math.Abs(float64(got) - w); !(d <= tol) {
				t.Fatalf("%s tA=%v tB=%v m=%d n=%d k=%d pad=%d beta=%v: C[%d][%d] = %v, want %v (tol %g)", impl.name, transA, transB, m, n, k, pad, beta, i, j, got, w, tol)
			}
		}
	}
}

func TestGemmPathsAgreeWithReference(t *testing.T) {
	impls := gemmImpls()
	if len(impls) < 3 {
		t.Fatalf("only %d GEMM paths", len(impls))
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			ws := new(Workspace)
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					// Every edge size 1..17 for each dimension, the others random.
					// beta cycles through 0, 1 and 0.5 across sizes and dimensions.
					betas := []float32{0, 1, 0.5}
					for s := 1; s <= 17; s++ {
						pad := r.IntN(3)
						gemmCase(t, impl, ws, r, tA, tB, s, 1+r.IntN(40), 1+r.IntN(20), pad, betas[s%3])
						gemmCase(t, impl, ws, r, tA, tB, 1+r.IntN(40), s, 1+r.IntN(20), pad, betas[(s+1)%3])
						gemmCase(t, impl, ws, r, tA, tB, 1+r.IntN(20), 1+r.IntN(40), s, pad, betas[(s+2)%3])
					}
					// Shapes spanning several full tiles and blocks.
					for _, sh := range [][3]int{{29, 67, 33}, {64, 48, 16}, {33, 16, 300}, {15, 100, 4}, {130, 70, 260}} {
						gemmCase(t, impl, ws, r, tA, tB, sh[0], sh[1], sh[2], 3, 1)
						gemmCase(t, impl, ws, r, tA, tB, sh[0], sh[1], sh[2], 0, 0)
					}
				}
			}
		})
	}
}

// TestGemmModelShapes checks the public Gemm on the model's real shapes
// (token count 401, NetMamba's projections, forward and both backward
// products) against the float64 reference.
func TestGemmModelShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	impl := gemmImpl{"Gemm", func(_ *Workspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		Gemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
	}}
	for _, sh := range gemmModelShapes {
		gemmCase(t, impl, nil, r, sh.transA, sh.transB, sh.m, sh.n, sh.k, 0, sh.beta)
	}
}

func TestGemmK0ScalesC(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Gemm(false, false, 2, 2, 0, nil, 1, nil, 2, 0.5, c, 2)
	if fmt.Sprint(c) != "[0.5 1 1.5 2]" {
		t.Fatalf("k=0, beta=0.5: C = %v, want [0.5 1 1.5 2]", c)
	}
	Gemm(false, false, 2, 2, 0, nil, 1, nil, 2, 0, c, 2)
	if fmt.Sprint(c) != "[0 0 0 0]" {
		t.Fatalf("k=0, beta=0: C = %v, want zeros", c)
	}
}

func TestGemmHandComputed(t *testing.T) {
	// [1 2; 3 4]·[5 6; 7 8] = [19 22; 43 50]; Aᵀ·B = [26 30; 38 44].
	a := []float32{1, 2, 3, 4}
	b := []float32{5, 6, 7, 8}
	c := make([]float32, 4)
	Gemm(false, false, 2, 2, 2, a, 2, b, 2, 0, c, 2)
	if fmt.Sprint(c) != "[19 22 43 50]" {
		t.Fatalf("A·B = %v, want [19 22 43 50]", c)
	}
	Gemm(true, false, 2, 2, 2, a, 2, b, 2, 1, c, 2)
	if fmt.Sprint(c) != "[45 52 81 94]" {
		t.Fatalf("C + Aᵀ·B = %v, want [45 52 81 94]", c)
	}
}

func TestGemmWSDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m, n, k := 401, 48, 512
	a, b, c := randSlice(r, m*k), randSlice(r, n*k), make([]float32, m*n)
	ws := new(Workspace)
	GemmWS(ws, false, true, m, n, k, a, k, b, k, 0, c, n)
	if allocs := testing.AllocsPerRun(5, func() {
		GemmWS(ws, false, true, m, n, k, a, k, b, k, 0, c, n)
	}); allocs != 0 {
		t.Fatalf("GemmWS allocates %v times per call with a warm workspace", allocs)
	}
}

func TestGemmPanicsOnShortSlices(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a, b, c int
		lda     int
	}{
		{"short a", 5, 6, 6, 3},
		{"short b", 6, 5, 6, 3},
		{"short c", 6, 6, 3, 3},
		{"lda too small", 6, 6, 6, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("no panic")
				}
			}()
			// m=2, n=3, k=3: A 2×3, B 3×3 needs 9 — use n=2 so B is 3×2=6.
			Gemm(false, false, 2, 2, 3, make([]float32, tc.a), tc.lda, make([]float32, tc.b), 2, 0, make([]float32, tc.c), 3)
		})
	}
}

// gemmShape is one product of the model: C(m×n) = op(A)·op(B) + beta·C.
type gemmShape struct {
	name           string
	transA, transB bool
	m, n, k        int
	beta           float32
}

// gemmModelShapes are NetMamba's GEMMs at 401 tokens (d_model 256,
// d_inner 512, d_state 16, dt_rank 16): forward Y = X·Wᵀ, backward
// dX = dY·W and dW += dYᵀ·X (named by the forward layer, in×out).
var gemmModelShapes = []gemmShape{
	{"in_proj_fwd_256x1024", false, true, 401, 1024, 256, 0},
	{"out_proj_fwd_512x256", false, true, 401, 256, 512, 0},
	{"x_proj_fwd_512x48", false, true, 401, 48, 512, 0},
	{"dt_proj_fwd_16x512", false, true, 401, 512, 16, 0},
	{"in_proj_dX_1024x256", false, false, 401, 256, 1024, 0},
	{"out_proj_dX_256x512", false, false, 401, 512, 256, 0},
	{"x_proj_dX_48x512", false, false, 401, 512, 48, 0},
	{"in_proj_dW_1024x256", true, false, 1024, 256, 401, 1},
	{"out_proj_dW_256x512", true, false, 256, 512, 401, 1},
	{"x_proj_dW_48x512", true, false, 48, 512, 401, 1},
	{"dt_proj_dX_512x16", false, false, 401, 16, 512, 0},
	{"dt_proj_dW_512x16", true, false, 512, 16, 401, 1},
}

// TestGemmPackedModelShapes checks the public PackB/GemmPacked on the
// forward projections (Y = X·Wᵀ, W stored [out, in]) and that a warm
// GemmPacked call does not allocate.
func TestGemmPackedModelShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	ws := new(Workspace)
	pb := new(PackedB)
	impl := gemmImpl{"GemmPacked", func(ws *Workspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		pb.Repack(transB, k, n, b, ldb) // reuses pb across shapes
		if pb.K() != k || pb.N() != n {
			t.Fatalf("PackedB is %d×%d, want %d×%d", pb.K(), pb.N(), k, n)
		}
		GemmPacked(ws, transA, m, a, lda, pb, beta, c, ldc)
	}}
	for _, sh := range gemmModelShapes[:4] {
		gemmCase(t, impl, ws, r, sh.transA, sh.transB, sh.m, sh.n, sh.k, 1, sh.beta)
	}
	m, n, k := 401, 48, 512
	x, w, y := randSlice(r, m*k), randSlice(r, n*k), make([]float32, m*n)
	pw := PackB(true, k, n, w, k)
	GemmPacked(ws, false, m, x, k, pw, 0, y, n)
	if allocs := testing.AllocsPerRun(5, func() {
		GemmPacked(ws, false, m, x, k, pw, 0, y, n)
	}); allocs != 0 {
		t.Fatalf("GemmPacked allocates %v times per call with a warm workspace", allocs)
	}
}

// TestGemmConcurrent runs Gemm (pooled scratch) and GemmPacked (one
// shared PackedB) from several goroutines at once; every result must
// equal the sequential one bit for bit.
func TestGemmConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	const jobs, m, n, k = 8, 37, 70, 300
	w := randSlice(r, n*k)
	pb := PackB(true, k, n, w, k)
	xs := make([][]float32, jobs)
	want := make([][]float32, jobs)
	for i := range xs {
		xs[i] = randSlice(r, m*k)
		want[i] = make([]float32, m*n)
		Gemm(false, true, m, n, k, xs[i], k, w, k, 0, want[i], n)
	}
	got := make([][]float32, jobs)
	gotPacked := make([][]float32, jobs)
	ParallelFor(jobs, 4, func(_, i int) {
		got[i] = make([]float32, m*n)
		gotPacked[i] = make([]float32, m*n)
		Gemm(false, true, m, n, k, xs[i], k, w, k, 0, got[i], n)
		GemmPacked(nil, false, m, xs[i], k, pb, 0, gotPacked[i], n)
	})
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] || gotPacked[i][j] != want[i][j] {
				t.Fatalf("job %d: C[%d] = %v (Gemm), %v (GemmPacked), want %v", i, j, got[i][j], gotPacked[i][j], want[i][j])
			}
		}
	}
}
