//go:build !(goexperiment.simd && amd64)

package ops

// vectorizedElem says whether the AVX-512 kernels are in use.
const vectorizedElem = false

func softmaxRow(x []float32, scale float32, round16 bool) { softmaxRowGo(x, scale, round16) }
func roundF16(x []float32)                                { roundF16InPlaceGo(x) }
func siluMul(gate, up []float32)                          { siluMulGo(gate, up) }
func swigluBackward(dgate, dup, dout, gate, up []float32, n int) {
	swigluBackwardGo(dgate, dup, dout, gate, up, n)
}
