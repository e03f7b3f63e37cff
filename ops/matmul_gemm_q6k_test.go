package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// randQ6KWeight makes a (rows, cols) Q6_K matrix of random super-blocks
// and, every few, an edge case: d = 0, every scale −128 with every quant 0
// (weights of 4096·d, the largest magnitude), every scale 127 with every
// quant 63, all scales zero.
func randQ6KWeight(t testing.TB, rng *rand.Rand, rows, cols int) *Matrix {
	t.Helper()
	ns := rows * cols / 256
	raw := make([]byte, ns*210)
	for s := 0; s < ns; s++ {
		blk := raw[s*210 : (s+1)*210]
		for i := 0; i < 208; i++ {
			blk[i] = byte(rng.IntN(256))
		}
		d := float32(rng.NormFloat64() * 0.001)
		switch rng.IntN(6) {
		case 0:
			d = 0
		case 1:
			clear(blk[:192])
			for j := 192; j < 208; j++ {
				blk[j] = 0x80
			}
		case 2:
			for j := 0; j < 192; j++ {
				blk[j] = 0xff
			}
			for j := 192; j < 208; j++ {
				blk[j] = 127
			}
		case 3:
			clear(blk[192:208])
		}
		binary.LittleEndian.PutUint16(blk[208:], gguf.F32ToF16(d))
	}
	m, err := NewMatrix("w", gguf.TypeQ6_K, rows, cols, raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestQ6KValues: the decoder of packQ6KPanel (and its vector twins, whole
// and by halves) against gguf's, super-block
// by super-block (gguf's value is d times ours).
func TestQ6KValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	w := randQ6KWeight(t, rng, 4, 1024)
	ref := make([]float32, 256)
	var v [256]int16
	for s := 0; s < 16; s++ {
		blk := w.Raw[210*s : 210*(s+1)]
		if err := gguf.Dequantize(gguf.TypeQ6_K, blk, ref); err != nil {
			t.Fatal(err)
		}
		q6KValues(blk, &v)
		var fast [256]int16
		q6KValuesFast(blk, &fast)
		if fast != v {
			t.Fatalf("super-block %d: q6KValuesFast differs from q6KValues", s)
		}
		for h := 0; h < 2; h++ {
			var half [128]int16
			q6KHalfValuesFast(blk, h, &half)
			if half != [128]int16(v[128*h:]) {
				t.Fatalf("super-block %d: q6KHalfValuesFast half %d differs from q6KValues", s, h)
			}
		}
		d := gguf.F16ToF32(binary.LittleEndian.Uint16(blk[208:]))
		for e := range ref {
			if got := d * float32(v[e]); got != ref[e] {
				t.Fatalf("super-block %d element %d: %g·%d = %g, gguf %g", s, e, d, v[e], got, ref[e])
			}
		}
	}
}

// TestMatMulGEMMQ6K: the Q6_K integer matmul, with the Go kernel and the
// assembly, against ggml's dot (dotQ6_KRef of the Q8_K-encoded activation
// row: the same integer sums, rounded per super-block) and against float64
// sums of the decoded operands, over partial tiles (n not a multiple of 4,
// rows not of 16), one to four super-blocks, and two workers. Tolerance:
// the scale products and the float32 accumulation round, |Δ| <= 1e-5·Σ|w·a|.
func TestMatMulGEMMQ6K(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 6))
	kernels := map[string]q6kKernel{"go": q6kKernelGo}
	if q6kKernelAVX2 != nil {
		kernels["asm"] = q6kKernelAVX2
	}
	for _, sz := range []struct{ n, rows, cols int }{
		{4, 16, 256}, {1, 3, 256}, {5, 21, 512}, {7, 40, 768}, {13, 37, 1024}, {8, 64, 256},
	} {
		w := randQ6KWeight(t, rng, sz.rows, sz.cols)
		in := randI8Acts(rng, sz.n, sz.cols)
		enc := make([]byte, sz.cols/256*q8KBlock)
		a := make([]float32, sz.cols)
		wr := make([]float32, sz.cols)
		ggml, mag := make([]float64, sz.n*sz.rows), make([]float64, sz.n*sz.rows)
		for i := 0; i < sz.n; i++ {
			QuantizeActQ8_K(in[i*sz.cols:(i+1)*sz.cols], enc)
			if err := gguf.Dequantize(gguf.TypeQ8_K, enc, a); err != nil {
				t.Fatal(err)
			}
			for r := 0; r < sz.rows; r++ {
				row := w.Raw[r*w.rowBytes : (r+1)*w.rowBytes]
				ggml[i*sz.rows+r] = float64(dotQ6_KRef(sz.cols, row, enc))
				if err := gguf.Dequantize(gguf.TypeQ6_K, row, wr); err != nil {
					t.Fatal(err)
				}
				for k, v := range wr {
					mag[i*sz.rows+r] += math.Abs(float64(v) * float64(a[k]))
				}
			}
		}
		for name, k := range kernels {
			for _, threads := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s/n%d/rows%d/cols%d/t%d", name, sz.n, sz.rows, sz.cols, threads), func(t *testing.T) {
					p := NewPool(threads)
					defer p.Close()
					out := make([]float32, sz.n*sz.rows)
					p.mmu.Lock()
					matmulGEMMQ6K(p, out, in, sz.n, w, k)
					p.mmu.Unlock()
					for i, g := range out {
						if math.Abs(float64(g)-ggml[i]) > 1e-5*mag[i]+1e-30 {
							t.Fatalf("out[%d][%d] = %g, ggml's dot %g (Σ|w·a| %g)", i/sz.rows, i%sz.rows, g, ggml[i], mag[i])
						}
					}
				})
			}
		}
	}
}

// TestQ6KKernelAVX2: the assembly tile kernel against q6kKernelGo on
// random panels, with and without accumulating into c: the same integer
// sums and the same fused multiply-adds in the same order, so equal up to
// the Go twin's double rounding of the FMA (float64 then float32).
func TestQ6KKernelAVX2(t *testing.T) {
	if q6kKernelAVX2 == nil {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(61, 6))
	for _, nsb := range []int{1, 2, 3, 5} {
		cols := 256 * nsb
		w := randQ6KWeight(t, rng, q6kNR, cols)
		panel := make([]byte, nsb*q6kSuperBytes)
		packQ6KPanel(panel, w, 0, q6kNR)
		a := make([]int16, q6kMR*cols)
		for i := range a {
			a[i] = int16(rng.IntN(255) - 127)
		}
		for i := 0; i < cols; i++ { // a row at the extremes
			a[i] = 127
			if i%3 == 0 {
				a[i] = -127
			}
		}
		d := make([]float32, q6kMR*nsb)
		for i := range d {
			d[i] = float32(rng.Float64() * 0.01)
		}
		for _, acc := range []bool{false, true} {
			c0 := randVec(rng, q6kMR*q6kNR)
			got, want := append([]float32(nil), c0...), append([]float32(nil), c0...)
			q6kKernelAVX2(panel, a, cols, d, nsb, nsb, got, q6kNR, acc)
			q6kKernelGo(panel, a, cols, d, nsb, nsb, want, q6kNR, acc)
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > 1e-6*math.Abs(float64(want[i]))+1e-30 {
					t.Fatalf("nsb %d accumulate %v: c[%d][%d] = %g, Go %g", nsb, acc, i/q6kNR, i%q6kNR, got[i], want[i])
				}
			}
		}
	}
}

// BenchmarkMatMulQ6K is a 160m model's LM head in training (512 rows
// against a 32000 × 768 Q6_K matrix, one pass) with the integer kernel and
// with the float GEMM it replaces.
func BenchmarkMatMulQ6K(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	n, rows, cols := 512, 32000, 768
	w := randQ6KWeight(b, rng, rows, cols)
	in := randVec(rng, n*cols)
	out := make([]float32, n*rows)
	p := NewPool(2)
	defer p.Close()
	saved := q6kKernelAVX2
	defer func() { q6kKernelAVX2 = saved }()
	for _, k := range []struct {
		name string
		k    q6kKernel
	}{{"float", nil}, {"int", saved}} {
		q6kKernelAVX2 = k.k
		b.Run(k.name, func(b *testing.B) {
			cpu0 := cpuSeconds()
			for b.Loop() {
				matmulTrainingHead(p, out, in, n, w)
			}
			b.ReportMetric(float64(n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
		})
	}
}
