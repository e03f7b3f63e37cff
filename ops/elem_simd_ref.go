package ops

import (
	"math"

	"ladder-engine/gguf"
)

// Plain Go versions of the engine's elementwise loops (the fallback build
// uses them; simd_test.go compares the AVX-512 ones against them).

// softmaxRowGo: x = softmax(scale·x), double sum, optionally rounded to f16.
func softmaxRowGo(x []float32, scale float32, round16 bool) {
	maxv := float32(math.Inf(-1))
	for i := range x {
		x[i] *= scale
		maxv = max(maxv, x[i])
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxv)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
		if round16 {
			x[i] = roundF16One(x[i])
		}
	}
}

// roundF16One rounds to the nearest float16 value (ties to even): for
// normal halves, the float32 mantissa rounded to 10 bits; otherwise
// (subnormal, overflow, NaN) through gguf's exact conversion.
func roundF16One(v float32) float32 {
	u := math.Float32bits(v)
	if e := u >> 23 & 0xff; e >= 127-14 && e < 127+15 {
		u += 0x0fff + (u >> 13 & 1)
		if u>>23&0xff < 127+16 { // no overflow past the largest half
			return math.Float32frombits(u &^ 0x1fff)
		}
	}
	return gguf.F16ToF32(gguf.F32ToF16(v))
}

// roundF16InPlaceGo rounds to the nearest float16 (ggml's f32→f16→f32).
func roundF16InPlaceGo(x []float32) {
	for i, v := range x {
		x[i] = roundF16One(v)
	}
}

// siluMulGo: gate = gate/(1+e^−gate) · up.
func siluMulGo(gate, up []float32) {
	up = up[:len(gate)]
	for i, x := range gate {
		gate[i] = x / (1 + float32(math.Exp(float64(-x)))) * up[i]
	}
}

// Vectorized reports whether the AVX-512 elementwise kernels are in use
// (GOEXPERIMENT=simd build on a CPU with AVX-512), so tests can size their
// work to the kernels they run on.
func Vectorized() bool { return vectorizedElem }
