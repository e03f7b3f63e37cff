package kernels

import "fmt"

// elementwise launches a one-thread-per-value kernel over n values.
func (d *Device) elementwise(name string, n int, args ...any) error {
	if n == 0 {
		return nil
	}
	return d.launch(name, dim3{ceilDiv(n, 256), 1, 1}, dim3{256, 1, 1}, 0, args...)
}

// checkBcast checks n values against a b operand of bn values that repeats
// (bn = n, or bn a row length dividing n).
func checkBcast(kernel string, n, bn int) error {
	if n < 0 || bn <= 0 || n%bn != 0 {
		return fmt.Errorf("kernels: %s: %d values with an operand of %d", kernel, n, bn)
	}
	return nil
}

// SwiGLUForward is out = silu(gate)·up over n values (ops.SwiGLUForward).
func (d *Device) SwiGLUForward(out, gate, up Buffer, n int) error {
	if err := needAll("SwiGLUForward", 4*int64(n), map[string]Buffer{"out": out, "gate": gate, "up": up}); err != nil {
		return err
	}
	return d.elementwise("swiglu_fwd", n, out, gate, up, n)
}

// SwiGLUBackward accumulates dgate += dout·up·silu'(gate), dup += dout·silu(gate);
// either may be the zero Buffer.
func (d *Device) SwiGLUBackward(dgate, dup, dout, gate, up Buffer, n int) error {
	bufs := map[string]Buffer{"dout": dout, "gate": gate, "up": up}
	if dgate.ptr != 0 {
		bufs["dgate"] = dgate
	}
	if dup.ptr != 0 {
		bufs["dup"] = dup
	}
	if err := needAll("SwiGLUBackward", 4*int64(n), bufs); err != nil {
		return err
	}
	return d.elementwise("swiglu_bwd", n, dgate, dup, dout, gate, up, n)
}

// SiLUForward is out = x·sigmoid(x) over n values.
func (d *Device) SiLUForward(out, inp Buffer, n int) error {
	if err := needAll("SiLUForward", 4*int64(n), map[string]Buffer{"out": out, "inp": inp}); err != nil {
		return err
	}
	return d.elementwise("silu_fwd", n, out, inp, n)
}

// SiLUBackward accumulates dinp += dout·silu'(inp).
func (d *Device) SiLUBackward(dinp, dout, inp Buffer, n int) error {
	if err := needAll("SiLUBackward", 4*int64(n), map[string]Buffer{"dinp": dinp, "dout": dout, "inp": inp}); err != nil {
		return err
	}
	return d.elementwise("silu_bwd", n, dinp, dout, inp, n)
}

// Add is out (n) = a (n) + b, b of bn values repeated (bn = n, or a row
// of bn values added to every row: a bias).
func (d *Device) Add(out, a, b Buffer, n, bn int) error {
	if err := checkBcast("Add", n, bn); err != nil {
		return err
	}
	if err := needAll("Add", 4*int64(n), map[string]Buffer{"out": out, "a": a}); err != nil {
		return err
	}
	if err := need("Add", "b", b, 4*int64(bn)); err != nil {
		return err
	}
	return d.elementwise("add_bcast", n, out, a, b, n, bn)
}

// Axpy is dst (n) += s·src: s = 1 accumulates a gradient.
func (d *Device) Axpy(dst, src Buffer, s float32, n int) error {
	if err := needAll("Axpy", 4*int64(n), map[string]Buffer{"dst": dst, "src": src}); err != nil {
		return err
	}
	return d.elementwise("axpy", n, dst, src, s, n)
}

// AxpyDevice is dst (n) += s·src with s the float at the start of the
// device buffer scale (a gradient of a loss, never read back); with src
// the zero Buffer it adds s to every value.
func (d *Device) AxpyDevice(dst, src, scale Buffer, n int) error {
	if err := need("AxpyDevice", "dst", dst, 4*int64(n)); err != nil {
		return err
	}
	if err := need("AxpyDevice", "scale", scale, 4); err != nil {
		return err
	}
	if src.ptr != 0 {
		if err := need("AxpyDevice", "src", src, 4*int64(n)); err != nil {
			return err
		}
	}
	return d.elementwise("axpy_dev", n, dst, src, scale, n)
}

// Scale is out (n) = s·a; out may be a.
func (d *Device) Scale(out, a Buffer, s float32, n int) error {
	if err := needAll("Scale", 4*int64(n), map[string]Buffer{"out": out, "a": a}); err != nil {
		return err
	}
	return d.elementwise("scale", n, out, a, s, n)
}

// Mul is out (n) = a ⊙ b, b of bn values repeated (bn = n or a row).
func (d *Device) Mul(out, a, b Buffer, n, bn int) error {
	if err := checkBcast("Mul", n, bn); err != nil {
		return err
	}
	if err := needAll("Mul", 4*int64(n), map[string]Buffer{"out": out, "a": a}); err != nil {
		return err
	}
	if err := need("Mul", "b", b, 4*int64(bn)); err != nil {
		return err
	}
	return d.elementwise("mul_bcast", n, out, a, b, n, bn)
}

// MulBackward accumulates da (n) += dout⊙b and db (bn) += Σ_repeats dout⊙a;
// either may be the zero Buffer.
func (d *Device) MulBackward(da, db, dout, a, b Buffer, n, bn int) error {
	if err := checkBcast("MulBackward", n, bn); err != nil {
		return err
	}
	if err := needAll("MulBackward", 4*int64(n), map[string]Buffer{"dout": dout, "a": a}); err != nil {
		return err
	}
	if err := need("MulBackward", "b", b, 4*int64(bn)); err != nil {
		return err
	}
	if da.ptr != 0 {
		if err := need("MulBackward", "da", da, 4*int64(n)); err != nil {
			return err
		}
		if err := d.elementwise("mul_bwd_a", n, da, dout, b, n, bn); err != nil {
			return err
		}
	}
	if db.ptr != 0 {
		if err := need("MulBackward", "db", db, 4*int64(bn)); err != nil {
			return err
		}
		return d.elementwise("mul_bwd_b", bn, db, dout, a, n, bn)
	}
	return nil
}

// GatedMixForward is out (n, c) = μ⊙a + (1−μ)⊙b with μ = sigmoid(alpha/temp)
// (the ladder's gate, ops GatedMix); alpha holds nGate = 1 (scalar) or c values.
func (d *Device) GatedMixForward(out, a, b, alpha Buffer, n, c, nGate int, temp float32) error {
	if err := checkGate("GatedMixForward", out, a, b, alpha, n, c, nGate); err != nil {
		return err
	}
	return d.elementwise("gated_mix_fwd", n*c, out, a, b, alpha, n, c, nGate, temp)
}

// GatedMixBackward accumulates da += μ·dout, db += (1−μ)·dout and
// dalpha += Σ dout·(a−b)·μ(1−μ)/temp (summed in double over rows, and over
// columns for a scalar gate). da, db, dalpha may each be the zero Buffer.
func (d *Device) GatedMixBackward(dalpha, da, db, dout, a, b, alpha Buffer, n, c, nGate int, temp float32) error {
	if err := checkGate("GatedMixBackward", dout, a, b, alpha, n, c, nGate); err != nil {
		return err
	}
	for what, buf := range map[string]Buffer{"da": da, "db": db} {
		if buf.ptr != 0 {
			if err := need("GatedMixBackward", what, buf, 4*int64(n)*int64(c)); err != nil {
				return err
			}
		}
	}
	if da.ptr != 0 || db.ptr != 0 {
		if err := d.elementwise("gated_mix_bwd_inputs", n*c, da, db, dout, alpha, n, c, nGate, temp); err != nil {
			return err
		}
	}
	if dalpha.ptr == 0 || n == 0 {
		return nil
	}
	if err := need("GatedMixBackward", "dalpha", dalpha, 4*int64(nGate)); err != nil {
		return err
	}
	grid := ceilDiv(c, 256)
	if nGate == 1 {
		grid = 1 // one block reduces everything
	}
	return d.launch("gated_mix_bwd_gate", dim3{grid, 1, 1}, dim3{256, 1, 1}, 0, dalpha, dout, a, b, alpha, n, c, nGate, temp)
}

func checkGate(kernel string, out, a, b, alpha Buffer, n, c, nGate int) error {
	if n < 0 || c <= 0 || (nGate != 1 && nGate != c) {
		return fmt.Errorf("kernels: %s: (%d, %d) with %d gate values, want 1 or %d", kernel, n, c, nGate, c)
	}
	if err := needAll(kernel, 4*int64(n)*int64(c), map[string]Buffer{"out": out, "a": a, "b": b}); err != nil {
		return err
	}
	return need(kernel, "alpha", alpha, 4*int64(nGate))
}

// CastF32ToF16 writes n halves (rounded to nearest even, as gguf.F32ToF16).
func (d *Device) CastF32ToF16(out, in Buffer, n int) error {
	if err := need("CastF32ToF16", "out", out, 2*int64(n)); err != nil {
		return err
	}
	if err := need("CastF32ToF16", "in", in, 4*int64(n)); err != nil {
		return err
	}
	return d.elementwise("cast_f32_f16", n, out, in, n)
}

// CastF16ToF32 writes n floats from halves (exact).
func (d *Device) CastF16ToF32(out, in Buffer, n int) error {
	if err := need("CastF16ToF32", "out", out, 4*int64(n)); err != nil {
		return err
	}
	if err := need("CastF16ToF32", "in", in, 2*int64(n)); err != nil {
		return err
	}
	return d.elementwise("cast_f16_f32", n, out, in, n)
}

// CastF32ToBF16 writes n brain floats as gguf.F32ToBF16 rounds them (ties
// to even, NaNs quieted, subnormals flushed to zero).
func (d *Device) CastF32ToBF16(out, in Buffer, n int) error {
	if err := need("CastF32ToBF16", "out", out, 2*int64(n)); err != nil {
		return err
	}
	if err := need("CastF32ToBF16", "in", in, 4*int64(n)); err != nil {
		return err
	}
	return d.elementwise("cast_f32_bf16", n, out, in, n)
}

// CastBF16ToF32 writes n floats from brain floats (exact).
func (d *Device) CastBF16ToF32(out, in Buffer, n int) error {
	if err := need("CastBF16ToF32", "out", out, 4*int64(n)); err != nil {
		return err
	}
	if err := need("CastBF16ToF32", "in", in, 2*int64(n)); err != nil {
		return err
	}
	return d.elementwise("cast_bf16_f32", n, out, in, n)
}

// EmbeddingBackward accumulates dtable (vocab, c) [ids[i]] += dout (n, c) [i]
// for a trainable f32 table (the forward is GetRows). ids (n int32) must lie
// in [0, vocab): the caller checks them on the host.
func (d *Device) EmbeddingBackward(dtable, dout, ids Buffer, n, vocab, c int) error {
	if err := checkRows("EmbeddingBackward", n, c); err != nil {
		return err
	}
	if err := need("EmbeddingBackward", "dtable", dtable, 4*int64(vocab)*int64(c)); err != nil {
		return err
	}
	if err := need("EmbeddingBackward", "dout", dout, 4*int64(n)*int64(c)); err != nil {
		return err
	}
	if err := need("EmbeddingBackward", "ids", ids, 4*int64(n)); err != nil {
		return err
	}
	return d.elementwise("embedding_bwd", c, dtable, dout, ids, n, c)
}

// CastF64ToF32 writes n floats from doubles (rounded to nearest).
func (d *Device) CastF64ToF32(out, in Buffer, n int) error {
	if err := need("CastF64ToF32", "out", out, 4*int64(n)); err != nil {
		return err
	}
	if err := need("CastF64ToF32", "in", in, 8*int64(n)); err != nil {
		return err
	}
	return d.elementwise("cast_f64_f32", n, out, in, n)
}
