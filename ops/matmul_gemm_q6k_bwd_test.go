package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// q6kBwdBlocks are gradient blocks for the quantizer tests: random, zero,
// a single value, tiny and huge magnitudes, values that round at .5 after
// scaling, and zero row scales.
func q6kBwdBlocks(rng *rand.Rand) [][2][]float32 {
	var out [][2][]float32
	mk := func(f func(v int) (g, d float32)) {
		g, d := make([]float32, q6kBwdBlock), make([]float32, q6kBwdBlock)
		for v := range g {
			g[v], d[v] = f(v)
		}
		out = append(out, [2][]float32{g, d})
	}
	for range 20 {
		mk(func(int) (float32, float32) { return float32(rng.NormFloat64()), float32(rng.Float64() * 0.01) })
	}
	mk(func(int) (float32, float32) { return 0, 1 })
	mk(func(v int) (float32, float32) { return 0, float32(v) })
	mk(func(v int) (float32, float32) {
		if v == 37 {
			return -3, 0.5
		}
		return 0, 0.5
	})
	mk(func(int) (float32, float32) { return float32(rng.NormFloat64() * 1e-30), 1e-5 })
	mk(func(int) (float32, float32) { return float32(rng.NormFloat64() * 1e30), 1e3 })
	mk(func(v int) (float32, float32) { return float32(v) - 31.5, 4095.0 / 32 }) // scaled values on .5
	mk(func(v int) (float32, float32) { return float32(rng.NormFloat64()), float32(v % 2) })
	for _, bad := range []struct {
		at int
		x  float32
	}{{0, float32(math.NaN())}, {63, float32(math.NaN())}, {29, float32(math.Inf(1))}, {40, float32(math.Inf(-1))}, {7, 3e38}} {
		mk(func(v int) (float32, float32) { // 3e38·4: an overflow to Inf
			if v == bad.at {
				return bad.x, 4
			}
			return float32(rng.NormFloat64()), 0.01
		})
	}
	return out
}

// TestQ6KBwdQuantAVX2: the assembly quantizer against q6kBwdQuantGo, bit
// for bit (the same float32 products and divisions, round to nearest even),
// and NaN scales from both for blocks holding a NaN, an Inf or a product
// that overflows to one.
func TestQ6KBwdQuantAVX2(t *testing.T) {
	rng := rand.New(rand.NewPCG(64, 6))
	for i, b := range q6kBwdBlocks(rng) {
		want, got := make([]int16, q6kBwdBlock), make([]int16, q6kBwdBlock)
		ew := q6kBwdQuantGo(b[0], b[1], want)
		eg := q6kBwdQuant(b[0], b[1], got)
		if ew != ew || eg != eg { // not finite: both NaN, the codes unspecified
			if ew == ew || eg == eg {
				t.Fatalf("block %d: scale %g, Go %g: want both NaN", i, eg, ew)
			}
			continue
		}
		if math.Float32bits(ew) != math.Float32bits(eg) {
			t.Fatalf("block %d: scale %g, Go %g", i, eg, ew)
		}
		for v := range want {
			if got[v] != want[v] {
				t.Fatalf("block %d value %d: %d, Go %d", i, v, got[v], want[v])
			}
			if want[v] > q6kBwdMax || want[v] < -q6kBwdMax {
				t.Fatalf("block %d value %d: %d out of range", i, v, want[v])
			}
		}
	}
}

// TestQ6KBwdInterleave: the vector interleave against q6kBwdInterleaveGo
// on random values, the extremes among them.
func TestQ6KBwdInterleave(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 6))
	var a, b [128]int16
	for i := range a {
		a[i], b[i] = int16(rng.IntN(8193)-4096), int16(rng.IntN(8193)-4096)
	}
	a[0], b[127] = -4096, 4096
	const stride = 100
	want, got := make([]byte, 7*stride+64), make([]byte, 7*stride+64)
	q6kBwdInterleaveGo(want, stride, &a, &b)
	q6kBwdInterleave(got, stride, &a, &b)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("byte %d: %d, Go %d", i, got[i], want[i])
		}
	}
}

// TestQ6KBwdKernelAVX2: the assembly tile kernel against q6kBwdKernelGo on
// random panels with the weight extremes of randQ6KWeight and gradient
// values at ±q6kBwdMax (the largest int32 block sums), one to four blocks:
// the same integer sums and fused multiply-adds in the same order, equal
// up to the Go twin's double rounding of the FMA.
func TestQ6KBwdKernelAVX2(t *testing.T) {
	if q6kBwdKernelAVX2 == nil {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(65, 6))
	for _, nblk := range []int{1, 2, 3, 4} {
		w := randQ6KWeight(t, rng, q6kBwdKC, 256)
		// Row scales d are not in the panel: only the int16 values matter.
		panel := make([]byte, 8*q6kBwdKC*32) // the first of eight
		packQ6KBwdPanels(panel, w, 0, q6kBwdKC, q6kBwdKC, 128, 256)
		ldk := q6kBwdKC + 3
		k := make([]int16, q6kBwdMR*ldk)
		for i := range k {
			k[i] = int16(rng.IntN(2*q6kBwdMax+1) - q6kBwdMax)
		}
		for v := 0; v < q6kBwdKC; v++ { // row 0 at the extremes
			k[v] = q6kBwdMax
			if v%3 == 0 {
				k[v] = -q6kBwdMax
			}
		}
		e := make([]float32, q6kBwdMR*nblk)
		for i := range e {
			e[i] = float32(rng.Float64() * 1e-4)
		}
		e[0] = 0
		ldc := q6kNR + 5
		c0 := randVec(rng, q6kBwdMR*ldc)
		got, want := append([]float32(nil), c0...), append([]float32(nil), c0...)
		q6kBwdKernelAVX2(panel, k, ldk, e, nblk, got, ldc)
		q6kBwdKernelGo(panel, k, ldk, e, nblk, want, ldc)
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-6*math.Abs(float64(want[i]))+1e-30 {
				t.Fatalf("nblk %d: c[%d][%d] = %g, Go %g", nblk, i/ldc, i%ldc, got[i], want[i])
			}
		}
	}
}

// q6kBwdExpect is dIn0 + dOut·W in float64 from gguf's decoding, and each
// value's error bound: the rounding of the gradient, Σ_blocks e/2 ·
// Σ_v |sc·(q−32)| (e = the block's max|dOut·d|/q6kBwdMax), plus float32
// accumulation, 1e-5·Σ_v |dOut·W|.
func q6kBwdExpect(t *testing.T, dIn0, dOut []float32, n int, w *Matrix) (want, tol []float64) {
	rows, cols := w.Rows, w.Cols
	wf := make([]float32, rows*cols)
	if err := gguf.Dequantize(gguf.TypeQ6_K, w.Raw, wf); err != nil {
		t.Fatal(err)
	}
	want, tol = make([]float64, n*cols), make([]float64, n*cols)
	var vals [256]int16
	for i := 0; i < n; i++ {
		for j := 0; j < cols; j++ {
			want[i*cols+j] = float64(dIn0[i*cols+j])
		}
		for sb := 0; sb < cols/256; sb++ {
			for v0 := 0; v0 < rows; v0 += q6kBwdBlock {
				v1 := min(rows, v0+q6kBwdBlock)
				var amax float64
				for v := v0; v < v1; v++ {
					d := gguf.F16ToF32(binary.LittleEndian.Uint16(w.Raw[v*w.rowBytes+210*sb+208:]))
					amax = max(amax, math.Abs(float64(dOut[i*rows+v]*d)))
				}
				for v := v0; v < v1; v++ {
					q6KValues(w.Raw[v*w.rowBytes+210*sb:v*w.rowBytes+210*(sb+1)], &vals)
					for l := 0; l < 256; l++ {
						j := 256*sb + l
						g, x := float64(dOut[i*rows+v]), float64(wf[v*cols+j])
						want[i*cols+j] += g * x
						tol[i*cols+j] += amax/q6kBwdMax/2*math.Abs(float64(vals[l])) + 1e-5*math.Abs(g*x)
					}
				}
			}
		}
	}
	return want, tol
}

// TestQ6KBackwardGEMM: the integer backward, with the Go and the assembly
// kernel, against float64 sums of the decoded head, within the rounding
// bound of q6kBwdExpect, over partial tiles (n not a multiple of 6),
// vocabularies that end inside a block and a chunk, one to three
// super-blocks of columns, and one to three workers (whose results must
// be identical: the sums do not depend on the split).
func TestQ6KBackwardGEMM(t *testing.T) {
	rng := rand.New(rand.NewPCG(66, 6))
	kernels := map[string]q6kBwdKernel{"go": q6kBwdKernelGo}
	if q6kBwdKernelAVX2 != nil {
		kernels["asm"] = q6kBwdKernelAVX2
	}
	for _, sz := range []struct{ n, rows, cols int }{
		{6, 64, 256}, {1, 3, 256}, {7, 300, 512}, {13, 517, 768}, {12, 256, 768},
	} {
		w := randQ6KWeight(t, rng, sz.rows, sz.cols)
		dOut := randVec(rng, sz.n*sz.rows)
		for i := range dOut[:sz.rows] { // a row of zeros and one of extremes
			dOut[i] = 0
		}
		if sz.n > 2 {
			dOut[sz.rows+rng.IntN(sz.rows)] = 1e6
		}
		dIn0 := randVec(rng, sz.n*sz.cols)
		want, tol := q6kBwdExpect(t, dIn0, dOut, sz.n, w)
		for name, k := range kernels {
			var first []float32
			for _, threads := range []int{1, 2, 3} {
				t.Run(fmt.Sprintf("%s/n%d/rows%d/cols%d/t%d", name, sz.n, sz.rows, sz.cols, threads), func(t *testing.T) {
					p := NewPool(threads)
					defer p.Close()
					got := append([]float32(nil), dIn0...)
					p.mmu.Lock()
					q6kBackwardGEMM(p, got, dOut, sz.n, w, k, q6kBwdQuant)
					p.mmu.Unlock()
					for i, g := range got {
						if math.Abs(float64(g)-want[i]) > tol[i]+1e-30 {
							t.Fatalf("dIn[%d][%d] = %g, float64 %g (bound %g)", i/sz.cols, i%sz.cols, g, want[i], tol[i])
						}
					}
					if first == nil {
						first = got
						return
					}
					for i := range got {
						if got[i] != first[i] {
							t.Fatalf("dIn[%d][%d] = %g with %d threads, %g with 1", i/sz.cols, i%sz.cols, got[i], threads, first[i])
						}
					}
				})
			}
		}
	}
}

// TestQ6KBackwardAgainstBF16: on a softmax cross-entropy gradient (the
// head backward's input in training: (softmax − onehot)/n over a 4000-word
// vocabulary), the integer backward's error against float64 is smaller
// than that of rounding the gradient to bf16 and summing exactly, as a
// QLoRA run with bf16 compute does; both relative to ‖dIn‖.
func TestQ6KBackwardAgainstBF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(67, 6))
	const n, rows, cols = 8, 4000, 256
	w := randQ6KWeight(t, rng, rows, cols)
	dOut := make([]float32, n*rows)
	for i := 0; i < n; i++ {
		x := randVec(rng, rows)
		for v := range x {
			x[v] *= 3
		}
		row := dOut[i*rows : (i+1)*rows]
		crossentropyRow(row, x, int32(rng.IntN(rows)), 1/float32(n), 0)
	}
	zero := make([]float32, n*cols)
	want, _ := q6kBwdExpect(t, zero, dOut, n, w)
	bf := make([]float32, len(dOut))
	for i, g := range dOut {
		bf[i] = gguf.BF16ToF32(gguf.F32ToBF16(g))
	}
	wantBF, _ := q6kBwdExpect(t, zero, bf, n, w)
	p := NewPool(2)
	defer p.Close()
	got := make([]float32, n*cols)
	kernel := q6kBwdKernelAVX2
	if kernel == nil {
		kernel = q6kBwdKernelGo
	}
	p.mmu.Lock()
	q6kBackwardGEMM(p, got, dOut, n, w, kernel, q6kBwdQuant)
	p.mmu.Unlock()
	var norm, errInt, errBF float64
	for i := range want {
		norm += want[i] * want[i]
		errInt += (float64(got[i]) - want[i]) * (float64(got[i]) - want[i])
		errBF += (wantBF[i] - want[i]) * (wantBF[i] - want[i])
	}
	relInt, relBF := math.Sqrt(errInt/norm), math.Sqrt(errBF/norm)
	t.Logf("relative error: integer %.3g, bf16 gradient %.3g", relInt, relBF)
	if relInt >= relBF || relInt > 1e-3 {
		t.Fatalf("relative error %.3g, bf16's %.3g", relInt, relBF)
	}
}

// BenchmarkMatMulQ6KBackward is a 160m model's LM head backward in
// training (512 rows of dlogits through a 32000 × 768 Q6_K matrix) on the
// integer kernel and on the float GEMM it replaces.
func BenchmarkMatMulQ6KBackward(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	n, rows, cols := 512, 32000, 768
	w := randQ6KWeight(b, rng, rows, cols)
	dOut := randVec(rng, n*rows)
	dIn := make([]float32, n*cols)
	p := NewPool(2)
	defer p.Close()
	for _, k := range []struct {
		name string
		int  bool
	}{{"float", false}, {"int", true}} {
		if k.int && q6kBwdKernelAVX2 == nil {
			continue
		}
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if k.int {
					matmulTrainingHeadBackward(p, dIn, dOut, n, w)
				} else {
					MatMulBackwardInput(p, dIn, dOut, n, w)
				}
			}
			b.ReportMetric(float64(n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// TestLMHeadCrossEntropyQ6KBackward: the fused loss on a Q6_K head, rows
// in several chunks and some ignored, takes the integer backward; its
// hidden gradient matches the float backward's (the same forward) within
// the gradient's rounding, 1e-3 of the largest value.
func TestLMHeadCrossEntropyQ6KBackward(t *testing.T) {
	if q6kBwdKernelAVX2 == nil {
		t.Skip("no integer backward in this build")
	}
	const n, d, vocab = 23, 512, 700
	defer func(old int) { ceTrainChunkFloats = old }(ceTrainChunkFloats)
	ceTrainChunkFloats = 9 * vocab // chunks of 9 rows
	rng := rand.New(rand.NewPCG(68, 6))
	head := randQ6KWeight(t, rng, vocab, d)
	h := gcParam(3, 1, n, d)
	targets := make([]int32, n)
	for i := range targets {
		targets[i] = int32(rng.IntN(vocab))
		if i%5 == 2 {
			targets[i] = -100
		}
	}
	run := func() []float32 {
		h.ZeroGrad()
		tp := NewTape(NewCPU(NewPool(2)))
		tp.Backward(tp.LMHeadCrossEntropy(h, head, 0, targets))
		return append([]float32(nil), h.GradF32()...)
	}
	got := run()
	saved := q6kBwdKernelAVX2
	q6kBwdKernelAVX2 = nil
	want := run()
	q6kBwdKernelAVX2 = saved
	var scale float64
	for _, g := range want {
		scale = math.Max(scale, math.Abs(float64(g)))
	}
	same := true
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-3*scale {
			t.Fatalf("dhidden[%d][%d]: integer backward %g, float %g (largest %g)", i/d, i%d, got[i], want[i], scale)
		}
		same = same && got[i] == want[i]
		if targets[i/d] < 0 && got[i] != 0 {
			t.Fatalf("dhidden[%d][%d] = %g for an ignored row", i/d, i%d, got[i])
		}
	}
	if same {
		t.Fatal("the integer backward gave the float path's values bit for bit: was it taken?")
	}
}

// BenchmarkLMHeadCE160m is the 160m model's head in a training step: the
// fused loss over 512 rows (forward, softmax, backward into the hidden
// state) on a 32000 × 768 Q6_K head, and its two products alone.
func BenchmarkLMHeadCE160m(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	const n, vocab, d = 512, 32000, 768
	head := randQ6KWeight(b, rng, vocab, d)
	hidden := randVec(rng, n*d)
	for i := range hidden { // logits of a few units, as a model's
		hidden[i] *= 0.05
	}
	targets := make([]int32, n)
	for i := range targets {
		targets[i] = int32(rng.IntN(vocab))
	}
	p := NewPool(2)
	defer p.Close()
	dh := make([]float32, n*d)
	logits := make([]float32, n*vocab)
	b.Run("fused", func(b *testing.B) {
		for b.Loop() {
			lmHeadCE(p, nil, dh, hidden, n, head, 0, targets, 1.0/n)
		}
	})
	b.Run("forward", func(b *testing.B) {
		for b.Loop() {
			matmulTrainingHead(p, logits, hidden, n, head)
		}
	})
	b.Run("backward", func(b *testing.B) {
		for b.Loop() {
			matmulTrainingHeadBackward(p, dh, logits, n, head)
		}
	})
}

// A NaN in the gradient (a diverged step) makes its row of dIn NaN, as the
// float product does, and leaves the other rows as they were.
func TestQ6KBackwardNaN(t *testing.T) {
	kernel := q6kBwdKernelAVX2
	if kernel == nil {
		kernel = q6kBwdKernelGo
	}
	rng := rand.New(rand.NewPCG(69, 6))
	const n, rows, cols = 7, 300, 512
	w := randQ6KWeight(t, rng, rows, cols)
	dOut := randVec(rng, n*rows)
	want := make([]float32, n*cols)
	p := NewPool(2)
	defer p.Close()
	p.mmu.Lock()
	q6kBackwardGEMM(p, want, dOut, n, w, kernel, q6kBwdQuant)
	p.mmu.Unlock()
	dOut[2*rows+123] = float32(math.NaN())
	got := make([]float32, n*cols)
	p.mmu.Lock()
	q6kBackwardGEMM(p, got, dOut, n, w, kernel, q6kBwdQuant)
	p.mmu.Unlock()
	for i := 0; i < n; i++ {
		for j := 0; j < cols; j++ {
			g := got[i*cols+j]
			if i == 2 && g == g {
				t.Fatalf("dIn[2][%d] = %g, want NaN", j, g)
			}
			if i != 2 && g != want[i*cols+j] {
				t.Fatalf("dIn[%d][%d] = %g, %g without the NaN", i, j, g, want[i*cols+j])
			}
		}
	}
}
