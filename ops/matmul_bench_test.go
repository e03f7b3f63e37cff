package ops

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"ladder-engine/gguf"
)

// BenchmarkGemmKernel measures the panel kernel alone (GFLOP/s) for each
// row count, with the panel and rows in L1: the one gemmKernel dispatches
// to, and the plain Go one (go/).
func BenchmarkGemmKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	const depth = 256
	panel := randVec(rng, depth*gemmNR)
	a := randVec(rng, gemmMR*depth)
	c := make([]float32, gemmMR*gemmNR)
	kernels := []struct {
		name string
		fn   func(panel, a []float32, lda, depth, mr int, c []float32, ldc int, accumulate bool)
	}{{"", gemmKernel}, {"go/", gemmKernelGo}}
	for _, k := range kernels {
		for _, mr := range []int{1, 2, 3, 4, 5} {
			b.Run(k.name+string(rune('0'+mr)), func(b *testing.B) {
				runtime.LockOSThread() // thread CPU time: wall time on a shared machine measures the neighbours
				defer runtime.UnlockOSThread()
				cpu0 := threadCPUSeconds()
				for range b.N {
					k.fn(panel, a, depth, depth, mr, c, gemmNR, false)
				}
				flop := float64(2 * mr * gemmNR * depth * b.N)
				b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := threadCPUSeconds() - cpu0; cpu > 0 {
					b.ReportMetric(flop/cpu/1e9, "cpu-GFLOP/s")
				}
			})
		}
	}
}

// BenchmarkMatMul: a 768×2048 Q4_0 weight times 512 rows (a 160M model's
// FFN shape, prompt processing) and times 1 row (decoding), on 2 threads.
func BenchmarkMatMul(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	const rows, cols = 2048, 768
	for _, typ := range []gguf.Type{gguf.TypeQ4_0, gguf.TypeQ8_0, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ4_K, gguf.TypeF32} {
		wf := randVec(rng, rows*cols)
		rb, _ := gguf.RowSize(typ, cols)
		raw := make([]byte, rows*rb)
		if err := gguf.Quantize(typ, wf, raw); err != nil {
			b.Fatal(err)
		}
		w, err := NewMatrix(typ.String(), typ, rows, cols, raw)
		if err != nil {
			b.Fatal(err)
		}
		p := NewPool(2)
		for _, n := range []int{1, 512} {
			in := randVec(rng, n*cols)
			out := make([]float32, n*rows)
			b.Run(typ.String()+"/n="+map[int]string{1: "1", 512: "512"}[n], func(b *testing.B) {
				for range b.N {
					MatMul(p, out, in, n, w)
				}
				b.ReportMetric(float64(2*n*rows*cols*b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		p.Close()
	}
}

// BenchmarkMatMulBackwardInput: the gradient through a frozen 32000×768
// LM head (Q6_K, as llama-quantize leaves output.weight) for 128 rows,
// with dOut packed for the 6-row kernel (AVX2) and without.
func BenchmarkMatMulBackwardInput(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	const rows, cols, n = 32000, 768, 128
	for _, typ := range []gguf.Type{gguf.TypeQ6_K, gguf.TypeF32} {
		rb, _ := gguf.RowSize(typ, cols)
		raw := make([]byte, rows*rb)
		if err := gguf.Quantize(typ, randVec(rng, rows*cols), raw); err != nil {
			b.Fatal(err)
		}
		w, err := NewMatrix(typ.String(), typ, rows, cols, raw)
		if err != nil {
			b.Fatal(err)
		}
		p := NewPool(2)
		dOut, dIn := randVec(rng, n*rows), make([]float32, n*cols)
		for _, packed := range []bool{false, true} {
			if packed && !gemmPackedActs {
				continue
			}
			restore := setGemmPacked(packed)
			b.Run(fmt.Sprintf("%s/packed=%v", typ, packed), func(b *testing.B) {
				for range b.N {
					MatMulBackwardInput(p, dIn, dOut, n, w)
				}
				b.ReportMetric(float64(2*n*rows*cols*b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			restore()
		}
		p.Close()
	}
}

// BenchmarkMatMulOneThread: BenchmarkMatMul's prompt-processing shape
// (2048×768 weight, 512 rows) on a pool of one, reported per thread CPU
// second as well (cpu-GFLOP/s): on a shared machine, the batched kernel's
// own speed (packing included) without the neighbours' share of the cores.
func BenchmarkMatMulOneThread(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	const rows, cols, n = 2048, 768, 512
	for _, typ := range []gguf.Type{gguf.TypeF16, gguf.TypeBF16, gguf.TypeF32, gguf.TypeQ4_K} {
		wf := randVec(rng, rows*cols)
		rb, _ := gguf.RowSize(typ, cols)
		raw := make([]byte, rows*rb)
		if err := gguf.Quantize(typ, wf, raw); err != nil {
			b.Fatal(err)
		}
		w, err := NewMatrix(typ.String(), typ, rows, cols, raw)
		if err != nil {
			b.Fatal(err)
		}
		p := NewPool(1)
		in := randVec(rng, n*cols)
		out := make([]float32, n*rows)
		b.Run(typ.String(), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPUSeconds()
			for range b.N {
				MatMul(p, out, in, n, w)
			}
			flop := float64(2 * n * rows * cols * b.N)
			b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			if cpu := threadCPUSeconds() - cpu0; cpu > 0 {
				b.ReportMetric(flop/cpu/1e9, "cpu-GFLOP/s")
			}
		})
		p.Close()
	}
}
