package ops

import (
	"math"
	"sync"

	"ladder-engine/gguf"
)

// GELU with the tanh approximation (ggml_gelu_f32, gemma2's feed-forward):
//
//	gelu(x) = ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
const (
	geluCoefA       = 0.044715
	geluSqrt2OverPi = 0.79788456080286535587989211986876
)

func geluTanh(x float32) float32 {
	return 0.5 * x * (1 + float32(math.Tanh(float64(geluSqrt2OverPi*x*(1+geluCoefA*x*x)))))
}

// geluTanhGrad is d gelu/dx = ½(1+t) + ½x·(1−t²)·√(2/π)·(1 + 3·0.044715·x²).
func geluTanhGrad(x float32) float32 {
	t := float32(math.Tanh(float64(geluSqrt2OverPi * x * (1 + geluCoefA*x*x))))
	return 0.5*(1+t) + 0.5*x*(1-t*t)*geluSqrt2OverPi*(1+3*geluCoefA*x*x)
}

// geluF16Table is ggml's GELU lookup (GGML_GELU_FP16): the value at every
// f16 input, rounded to f16. ggml_vec_gelu_f32 reads it for |x| < 10.
var geluF16Table = sync.OnceValue(func() []float32 {
	t := make([]float32, 1<<16)
	for i := range t {
		t[i] = gguf.F16ToF32(gguf.F32ToF16(geluTanh(gguf.F16ToF32(uint16(i)))))
	}
	return t
})

// geluF16 is ggml_vec_gelu_f32 with its f16 table: 0 below −10, x above
// 10, else f16(gelu(f16(x))).
func geluF16(table []float32, x float32) float32 {
	switch {
	case x <= -10:
		return 0
	case x >= 10:
		return x
	}
	return table[gguf.F32ToF16(x)]
}

// gegluForward computes out = gelu(gate)·up over n values (out may alias
// gate), through ggml's f16 GELU table when f16Table (inference, as
// llama.cpp) or exactly (training: the table has no derivative).
func gegluForward(out, gate, up []float32, n int, f16Table bool) {
	if n == 0 {
		return
	}
	_, _, _ = out[n-1], gate[n-1], up[n-1]
	if f16Table {
		t := geluF16Table()
		for i := 0; i < n; i++ {
			out[i] = geluF16(t, gate[i]) * up[i]
		}
		return
	}
	for i := 0; i < n; i++ {
		out[i] = geluTanh(gate[i]) * up[i]
	}
}

// gegluBackward accumulates dgate += dout·up·gelu'(gate) and
// dup += dout·gelu(gate) (the exact function); either may be nil.
func gegluBackward(dgate, dup, dout, gate, up []float32, n int) {
	for i := 0; i < n; i++ {
		g := gate[i]
		if dup != nil {
			dup[i] += dout[i] * geluTanh(g)
		}
		if dgate != nil {
			dgate[i] += dout[i] * up[i] * geluTanhGrad(g)
		}
	}
}

// GeGLU returns gelu(gate)⊙up (tanh GELU; llama.cpp's build_ffn with
// LLM_FFN_GELU, LLM_FFN_PAR: gemma2). With f16Table it goes through ggml's
// f16 GELU table, as llama.cpp's CPU forward does (inference with
// llama.cpp's numerics, like the f16 KV cache); the table is a step
// function, so training uses the exact function and the backward is its
// derivative (recording with f16Table panics).
func (tp *Tape) GeGLU(gate, up *Tensor, f16Table bool) *Tensor {
	be := tp.backendFor("GeGLU", gate, up)
	mustMatch("GeGLU", gate, up)
	out := tp.newLike(be, gate)
	n := gate.Len()
	rec := tp.needsGrad(gate, up)
	if rec && f16Table {
		panic("ops.GeGLU: the f16 GELU table has no gradient; train with f16Table = false")
	}
	be.GeGLU(out.buf, gate.buf, up.buf, n, f16Table)
	if rec {
		tp.record(out, func() {
			be.GeGLUBackward(tp.grad(gate), tp.grad(up), out.grad, gate.buf, up.buf, n)
		})
	}
	return out
}

// softCapForward writes out = c·tanh(x/c) over n values (out may alias x).
func softCapForward(out, x []float32, n int, c float32) {
	for i := 0; i < n; i++ {
		out[i] = softCap(x[i], c)
	}
}

// softCapBackward accumulates dx += dout·(1 − (out/c)²), from the output.
func softCapBackward(dx, dout, out []float32, n int, c float32) {
	for i := 0; i < n; i++ {
		t := out[i] / c
		dx[i] += dout[i] * (1 - t*t)
	}
}

// SoftCap returns c·tanh(x/c) elementwise (gemma2's final logit
// soft-capping, final_logit_softcapping).
func (tp *Tape) SoftCap(x *Tensor, c float32) *Tensor {
	be := tp.backendFor("SoftCap", x)
	out := tp.newLike(be, x)
	n := x.Len()
	be.SoftCap(out.buf, x.buf, n, c)
	if tp.needsGrad(x) {
		tp.record(out, func() { be.SoftCapBackward(tp.grad(x), out.grad, out.buf, n, c) })
	}
	return out
}
