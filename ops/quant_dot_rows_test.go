package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"ladder-engine/gguf"
)

// DotRows (the multi-row decode kernels) against the float64 dot of the
// dequantized operands, for row counts that exercise the four-row groups
// and the leftover rows, and block counts odd and even; same tolerance as
// TestDotKernelsMatchDequantized (integer block sums are exact, only the
// float32 scale products and accumulation round).
func TestDotRowsMatchDequantized(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, typ := range dotTypes {
		k, err := DotKernelFor(typ)
		if err != nil {
			t.Fatal(err)
		}
		bs := max(typ.BlockSize(), 32)
		for _, n := range []int{bs, 3 * bs, 768, 2048} {
			if n%typ.BlockSize() != 0 {
				continue
			}
			for _, rows := range []int{1, 4, 7, 9} {
				rb, _ := gguf.RowSize(typ, n)
				w := make([]byte, 0, rows*rb)
				for r := 0; r < rows; r++ {
					w = append(w, randomWeightRow(rng, typ, n)...)
				}
				ab, _ := gguf.RowSize(k.ActType, n)
				a := make([]byte, ab)
				k.Quantize(randomActivations(rng, n), a)
				out := make([]float32, rows)
				k.DotRows(n, w, rb, a, out)
				for r := range out {
					want, mag := expectedDot(t, typ, k, n, w[r*rb:(r+1)*rb], a)
					if math.Abs(float64(out[r])-want) > 1e-5*mag+1e-30 {
						t.Errorf("%s n=%d rows=%d row %d: %g, want %g (tol %g)", typ, n, rows, r, out[r], want, 1e-5*mag)
					}
				}
			}
		}
	}
}

// BenchmarkDotRows: a decode-shaped matrix (rows × cols weights, 160m
// shapes) against one activation row with DotKernel.DotRows on one thread,
// in weights per CPU-second. The 32000-row case is the LM head (more than
// the L2 cache); the 2048×768 one (an FFN matrix) fits the L2 of some CPUs.
func BenchmarkDotRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(15, 16))
	shapes := []struct{ rows, cols int }{{2048, 768}, {768, 2048}, {32000, 768}, {160000, 768}}
	for _, typ := range []gguf.Type{gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeQ8_0} {
		k, _ := DotKernelFor(typ)
		for _, sh := range shapes {
			rb, _ := gguf.RowSize(typ, sh.cols)
			w := make([]byte, 0, sh.rows*rb)
			row := randomWeightRow(rng, typ, sh.cols)
			for r := 0; r < sh.rows; r++ {
				if r%64 == 0 {
					row = randomWeightRow(rng, typ, sh.cols)
				}
				w = append(w, row...)
			}
			ab, _ := gguf.RowSize(k.ActType, sh.cols)
			a := make([]byte, ab)
			k.Quantize(randomActivations(rng, sh.cols), a)
			out := make([]float32, sh.rows)
			impls := []struct {
				name string
				fn   func(int, []byte, int, []byte, []float32)
			}{{"rows", k.DotRows}, {"loop", dotRowsLoop(k.Dot)}}
			if v2, ok := dotV2[typ]; ok {
				impls = append(impls, struct {
					name string
					fn   func(int, []byte, int, []byte, []float32)
				}{"v2", dotRowsLoop(v2)})
			}
			for _, im := range impls {
				b.Run(fmt.Sprintf("%s/%dx%d/%s", typ, sh.rows, sh.cols, im.name), func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					cpu0 := threadCPUSeconds()
					for b.Loop() {
						im.fn(sh.cols, w, rb, a, out)
					}
					cpu := threadCPUSeconds() - cpu0
					if cpu > 0 {
						b.ReportMetric(float64(sh.rows*sh.cols)*float64(b.N)/cpu/1e9, "cpu-Gweights/s")
						b.ReportMetric(float64(len(w))*float64(b.N)/cpu/1e9, "cpu-GB/s")
					}
				})
			}
		}
	}
}
