//go:build !(goexperiment.simd && amd64)

package ops

// No integer backward in the plain Go build: the float GEMM is faster
// than q6kBwdKernelGo.
var q6kBwdKernelAVX2 q6kBwdKernel

func q6kBwdQuant(g, dv []float32, k []int16) float32 { return q6kBwdQuantGo(g, dv, k) }
