//go:build !(goexperiment.simd && amd64)

package ops

// No int8 kernels in the plain Go build: i8KernelGo multiplies byte by byte
// and the float GEMM is faster there.
var i8KernelQ4_0, i8KernelQ8_0 i8Kernel

func quantizeRowI8(x []float32, q []byte, d []float32, sum []int32, enc []byte) {
	quantizeRowI8Go(x, q, d, sum, enc)
}

func packI8PanelFast(panel []byte, w *Matrix, j0, nr int) bool { return false }
