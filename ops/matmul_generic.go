//go:build !(goexperiment.simd && amd64)

package ops

import "ladder-engine/gguf"

// The plain Go build of the matmul kernels: the reference versions
// (matmul_f32_ref.go, gemmKernelGo, the fake-quant functions); the
// GOEXPERIMENT=simd build has AVX-512 versions in matmul_*_simd.go, and the
// tests check one against the other.

func dotF32(x, y []float32) float32 { return dotF32Go(x, y) }

func dot4F32(w0, w1, w2, w3, x []float32) (float32, float32, float32, float32) {
	return dot4F32Go(w0, w1, w2, w3, x)
}

func axpyF32(y []float32, a float32, x []float32) { axpyF32Go(y, a, x) }

func gemmKernel(panel, a []float32, lda, depth, mr int, c []float32, ldc int, accumulate bool) {
	gemmKernelGo(panel, a, lda, depth, mr, c, ldc, accumulate)
}

// roundActsFast handles the common activation types in plain Go.
func roundActsFast(t gguf.Type, x, y []float32) bool { return roundActsGo(t, x, y) }

// quantizeActFast: the plain Go build uses the kernels' own Quantize.
func quantizeActFast(gguf.Type, []float32, []byte) bool { return false }

// packPanelFast: no assembly packer in the plain Go build (packPanelGo).
func packPanelFast(panel []float32, w *Matrix, j0, nr, k0, k1 int) bool { return false }

// gemmPackedActs: the plain Go build keeps matmulGEMMOpt's row-major
// activations (matmulGEMMPacked is for the AVX2 kernel).
const gemmPackedActs = false

func gemmKernelPacked(panel, ap []float32, depth int, c []float32, ldc int, accumulate bool) {
	gemmKernelPackedGo(panel, ap, depth, c, ldc, accumulate)
}

func packActs6(dst, src []float32, lda, cols int) { packActs6Go(dst, src, lda, cols) }

func canPackRows32F32(depth int) bool { return false }

func packRows32F32(dst, src []float32, lda, depth int) { panic("unreachable") }
