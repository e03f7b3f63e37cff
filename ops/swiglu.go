package ops

// silu is x·σ(x) = x/(1+e^-x), ggml_silu_f32.
func silu(x float32) float32 {
	return x / (1 + expf(-x))
}

// SwiGLUForward computes out = silu(gate)·up elementwise (ggml_swiglu_split).
// out, gate, up have n values; out may alias gate or up.
func SwiGLUForward(out, gate, up []float32, n int) {
	if n == 0 {
		return
	}
	_ = out[n-1]
	_ = gate[n-1]
	_ = up[n-1]
	for i := 0; i < n; i++ {
		out[i] = silu(gate[i]) * up[i]
	}
}

// swigluBackwardGo accumulates dgate += dout·up·silu'(gate) and
// dup += dout·silu(gate), where silu'(x) = σ(x)·(1 + x·(1−σ(x))).
// Either of dgate, dup may be nil when not wanted. swigluBackward is the
// vector version where there is one (elem_simd_*.go).
func swigluBackwardGo(dgate, dup, dout, gate, up []float32, n int) {
	for i := 0; i < n; i++ {
		g := gate[i]
		s := 1 / (1 + expf(-g))
		if dup != nil {
			dup[i] += dout[i] * g * s
		}
		if dgate != nil {
			dgate[i] += dout[i] * up[i] * s * (1 + g*(1-s))
		}
	}
}

// siluForward computes out = silu(inp) over n values.
func siluForward(out, inp []float32, n int) {
	for i := 0; i < n; i++ {
		out[i] = silu(inp[i])
	}
}

// siluBackward accumulates dinp += dout·silu'(inp).
func siluBackward(dinp, dout, inp []float32, n int) {
	for i := 0; i < n; i++ {
		x := inp[i]
		s := 1 / (1 + expf(-x))
		dinp[i] += dout[i] * s * (1 + x*(1-s))
	}
}

// SwiGLU returns silu(gate)⊙up; gate and up have the same shape.
func (tp *Tape) SwiGLU(gate, up *Tensor) *Tensor {
	be := tp.backendFor("SwiGLU", gate, up)
	mustMatch("SwiGLU", gate, up)
	out := tp.newLike(be, gate)
	n := gate.Len()
	be.SwiGLU(out.buf, gate.buf, up.buf, n)
	if tp.needsGrad(gate, up) {
		tp.record(out, func() {
			be.SwiGLUBackward(tp.grad(gate), tp.grad(up), out.grad, gate.buf, up.buf, n)
		})
	}
	return out
}

// SiLU returns x·sigmoid(x) elementwise.
func (tp *Tape) SiLU(x *Tensor) *Tensor {
	be := tp.backendFor("SiLU", x)
	out := tp.newLike(be, x)
	be.SiLU(out.buf, x.buf, x.Len())
	if tp.needsGrad(x) {
		tp.record(out, func() { be.SiLUBackward(tp.grad(x), out.grad, x.buf, x.Len()) })
	}
	return out
}
