//go:build goexperiment.simd && amd64

package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// TestGemmKernelPackedAVX2: the 6-row packed kernel against its Go twin
// (within float32 rounding: fused products only) and bit for bit against
// the row-major AVX2 kernel it replaces (5 rows + 1 row, same FMAs in the
// same order), fresh and accumulating, short and odd depths, ldc wider
// than the panel, zeros, huge and tiny values; columns past 32 untouched.
func TestGemmKernelPackedAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(41, 42))
	const mr = gemmPackedRows
	for _, depth := range []int{1, 2, 7, 8, 33, 255, 256} {
		for _, acc := range []bool{false, true} {
			const ldc = 41
			panel := randVec(rng, depth*gemmNR)
			rowsA := randVec(rng, mr*depth) // row-major (lda = depth)
			rowsA[0] = 0
			rowsA[depth] = float32(math.Copysign(0, -1))
			panel[1] = 1e30 // a huge weight: the tolerance scales with it
			panel[len(panel)-1] = 0x1p-140
			rowsA[len(rowsA)-1] = 65504
			ap := make([]float32, mr*depth)
			packActs6Go(ap, rowsA, depth, depth)
			c0 := randVec(rng, mr*ldc)
			got := append([]float32(nil), c0...)
			want := append([]float32(nil), c0...)
			same := append([]float32(nil), c0...)
			gemmKernelPacked(panel, ap, depth, got, ldc, acc)
			gemmKernelPackedGo(panel, ap, depth, want, ldc, acc)
			gemmKernelAVX2(panel, rowsA, depth, depth, 5, same, ldc, acc)
			gemmKernelAVX2(panel, rowsA[5*depth:], depth, depth, 1, same[5*ldc:], ldc, acc)
			for i := range mr {
				for j := range ldc {
					g, w := got[i*ldc+j], want[i*ldc+j]
					if j >= gemmNR {
						if g != c0[i*ldc+j] {
							t.Fatalf("depth %d: wrote c[%d][%d]", depth, i, j)
						}
						continue
					}
					if math.Float32bits(g) != math.Float32bits(same[i*ldc+j]) {
						t.Fatalf("depth %d acc %v: c[%d][%d] = %g, row-major AVX2 kernel %g", depth, acc, i, j, g, same[i*ldc+j])
					}
					var mag float64
					for k := range depth {
						mag += math.Abs(float64(rowsA[i*depth+k] * panel[k*gemmNR+j]))
					}
					if acc {
						mag += math.Abs(float64(c0[i*ldc+j]))
					}
					if math.Abs(float64(g-w)) > 1e-5*mag+1e-30 {
						t.Fatalf("depth %d acc %v: c[%d][%d] = %g, want %g", depth, acc, i, j, g, w)
					}
				}
			}
		}
	}
}

// TestPackActs6AVX2: packActs6 (assembly for 8 columns at a time, Go for
// the rest) equals packActs6Go bit for bit, writes at most two values past
// 6·cols, and reads rows lda apart.
func TestPackActs6AVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(43, 44))
	const sentinel = float32(-777.25)
	for _, cols := range []int{1, 5, 7, 8, 9, 16, 23, 255, 256, 771} {
		for _, pad := range []int{0, 3, 64} {
			lda := cols + pad
			src := randVec(rng, 6*lda)
			src[0] = float32(math.Inf(1))
			src[len(src)-1] = 0x1p-149
			got := make([]float32, 6*cols+16)
			want := make([]float32, 6*cols+16)
			for i := range got {
				got[i], want[i] = sentinel, sentinel
			}
			packActs6(got, src, lda, cols)
			packActs6Go(want, src, lda, cols)
			for i := range got {
				if i >= 6*cols && i < 6*cols+2 {
					continue // room for the last store
				}
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("cols %d lda %d: dst[%d] (k %d, row %d) = %g, want %g", cols, lda, i, i/6, i%6, got[i], want[i])
				}
			}
		}
	}
}

// TestMatMulPackedActs: with the activations packed for the 6-row kernel
// (matmulGEMMPacked) MatMul gives what the row-major 5-row path gives, bit
// for bit (the same sums in the same order), for every fixture type, row
// counts around multiples of 6, 1 to 3 threads, rounded and exact
// activations.
func TestMatMulPackedActs(t *testing.T) {
	needAVX2(t)
	if !gemmPackedActs {
		t.Skip("the packed path is for AVX2 without AVX-512")
	}
	defer func() { gemmPackedActs = true }()
	rng := rand.New(rand.NewPCG(45, 46))
	ws := fixtureMatrices(t) // all 256 deep: add depths across kc blocks with tails of 8
	for _, m := range []struct {
		typ        gguf.Type
		rows, cols int
	}{{gguf.TypeF16, 70, 600}, {gguf.TypeBF16, 33, 517}, {gguf.TypeF32, 96, 263}} {
		ws = append(ws, packTestMatrix(t, rng, m.typ, m.rows, m.cols))
	}
	for _, w := range ws {
		for _, n := range []int{4, 6, 7, 13, 37, 97} { // 97: the last panels split by rows
			in := randVec(rng, n*w.Cols)
			for _, threads := range []int{1, 2, 3} {
				for _, exact := range []bool{false, true} {
					name := fmt.Sprintf("%s %dx%d n=%d threads=%d exact=%v", w.Type, w.Rows, w.Cols, n, threads, exact)
					p := NewPool(threads)
					got := randVec(rng, n*w.Rows)
					want := randVec(rng, n*w.Rows)
					gemmPackedActs = true
					matmulGEMMOpt(p, got, in, n, w, exact)
					gemmPackedActs = false
					matmulGEMMOpt(p, want, in, n, w, exact)
					gemmPackedActs = true
					p.Close()
					for i := range got {
						if !samePanelValue(got[i], want[i]) {
							t.Fatalf("%s: out[%d] = %g, row-major path %g", name, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestMatMulBackwardPacked: the gradient through W with dOut packed for the
// 6-row kernel against the row-major 5-row path, over row counts around
// multiples of 5 and 6, W's rows across kc blocks, 1 to 3 threads. Full
// tiles of both are the same sums in the same order; rows in a partial
// tile of one path are summed apart from dIn there and added, so the
// tolerance is a few roundings of Σ|dOut·w|.
func TestMatMulBackwardPacked(t *testing.T) {
	needAVX2(t)
	if !gemmPackedActs {
		t.Skip("the packed path is for AVX2 without AVX-512")
	}
	defer func() { gemmPackedActs = true }()
	rng := rand.New(rand.NewPCG(47, 48))
	ws := fixtureMatrices(t)
	ws = append(ws, packTestMatrix(t, rng, gguf.TypeF16, 600, 70), NewMatrixF32("f32-deep", 300, 72, randVec(rng, 300*72)))
	for _, w := range ws {
		for _, n := range []int{4, 6, 7, 13, 37} {
			dOut := randVec(rng, n*w.Rows)
			dIn0 := randVec(rng, n*w.Cols)
			row := make([]float32, w.Cols)
			mag := make([]float64, n*w.Cols)
			for r := 0; r < w.Rows; r++ {
				w.DequantizeRow(r, row)
				for i := 0; i < n; i++ {
					for c, v := range row {
						mag[i*w.Cols+c] += math.Abs(float64(dOut[i*w.Rows+r]) * float64(v))
					}
				}
			}
			for _, threads := range []int{1, 2, 3} {
				name := fmt.Sprintf("%s %dx%d n=%d threads=%d", w.Type, w.Rows, w.Cols, n, threads)
				p := NewPool(threads)
				got, want := append([]float32(nil), dIn0...), append([]float32(nil), dIn0...)
				gemmPackedActs = true
				matmulBackwardGEMM(p, got, dOut, n, w)
				gemmPackedActs = false
				matmulBackwardGEMM(p, want, dOut, n, w)
				gemmPackedActs = true
				p.Close()
				for i := range got {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-6*(mag[i]+math.Abs(float64(dIn0[i]))) {
						t.Fatalf("%s: dIn[%d] = %g, row-major path %g", name, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// setGemmPacked switches the packed 6-row path for a benchmark and returns
// what puts it back.
func setGemmPacked(on bool) func() {
	old := gemmPackedActs
	gemmPackedActs = on
	return func() { gemmPackedActs = old }
}

// linearBackward on the packed kernel (A read as it lies, dout transposed
// for the weight gradient; workers sharing columns or row groups) against
// the transposed copies of the other path, both accumulating into
// gradients that hold values already: shapes with partial tiles of rows
// and columns, narrow and wide layers, 1 to 3 threads. Both sum each
// product in float32 in a different grouping, so the tolerance is a few
// roundings of Σ|terms|.
func TestLinearBackwardPacked(t *testing.T) {
	needAVX2(t)
	if !gemmPackedActs {
		t.Skip("the packed path is for AVX2 without AVX-512")
	}
	defer func() { gemmPackedActs = true }()
	rng := rand.New(rand.NewPCG(49, 50))
	for _, sh := range []struct{ n, c, oc int }{{4, 5, 3}, {37, 96, 96}, {512, 96, 256}, {300, 256, 96}, {61, 40, 300}, {13, 768, 33}} {
		dout, inp, wt := randVec(rng, sh.n*sh.oc), randVec(rng, sh.n*sh.c), randVec(rng, sh.oc*sh.c)
		dx0, dw0 := randVec(rng, sh.n*sh.c), randVec(rng, sh.oc*sh.c)
		magX, magW := make([]float64, sh.n*sh.c), make([]float64, sh.oc*sh.c)
		for i := range sh.n {
			for o := range sh.oc {
				g := math.Abs(float64(dout[i*sh.oc+o]))
				for j := range sh.c {
					magX[i*sh.c+j] += g * math.Abs(float64(wt[o*sh.c+j]))
					magW[o*sh.c+j] += g * math.Abs(float64(inp[i*sh.c+j]))
				}
			}
		}
		for _, threads := range []int{1, 2, 3} {
			name := fmt.Sprintf("n=%d c=%d oc=%d threads=%d", sh.n, sh.c, sh.oc, threads)
			p := NewPool(threads)
			run := func(packed bool) (dx, dw []float32) {
				dx, dw = append([]float32(nil), dx0...), append([]float32(nil), dw0...)
				gemmPackedActs = packed
				linearBackward(p, dx, dw, dout, inp, wt, sh.n, sh.c, sh.oc)
				gemmPackedActs = true
				return dx, dw
			}
			gx, gw := run(true)
			wx, ww := run(false)
			p.Close()
			for _, c := range []struct {
				what           string
				got, want, ref []float32
				mag            []float64
			}{{"dinp", gx, wx, dx0, magX}, {"dweight", gw, ww, dw0, magW}} {
				for i := range c.got {
					if d := math.Abs(float64(c.got[i] - c.want[i])); d > 2e-6*(c.mag[i]+math.Abs(float64(c.ref[i]))) {
						t.Fatalf("%s: %s[%d] = %g, transposed copies give %g", name, c.what, i, c.got[i], c.want[i])
					}
				}
			}
		}
	}
}
