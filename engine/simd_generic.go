//go:build !(goexperiment.simd && amd64)

package engine

// vectorized says whether the AVX-512 kernels are in use.
const vectorized = false

func softmaxRow(x []float32, scale float32, round16 bool) { softmaxRowGo(x, scale, round16) }
func roundF16(x []float32)                                { roundF16Go(x) }
func siluMul(gate, up []float32)                          { siluMulGo(gate, up) }
