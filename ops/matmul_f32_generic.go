//go:build !(goexperiment.simd && amd64)

package ops

// Pure-Go float32 kernels; matmul_f32_simd.go has the vector versions and
// matmul_f32_test.go checks one against the other.

func dotF32(x, y []float32) float32 { return dotF32Go(x, y) }

func dot4F32(w0, w1, w2, w3, x []float32) (float32, float32, float32, float32) {
	return dot4F32Go(w0, w1, w2, w3, x)
}

func axpyF32(y []float32, a float32, x []float32) { axpyF32Go(y, a, x) }
