package ops

import (
	"fmt"
	"math"
)

// AddForward computes out = a + b elementwise; out may alias a or b.
func AddForward(out, a, b []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	_ = a[n-1]
	_ = b[n-1]
	for i := range out {
		out[i] = a[i] + b[i]
	}
}

// accumulate adds src into dst (the backward of add, and of any copy).
func accumulate(dst, src []float32) {
	if len(dst) == 0 {
		return
	}
	_ = src[len(dst)-1]
	for i := range dst {
		dst[i] += src[i]
	}
}

// broadcastRow reports whether b combines with a as one row repeated over
// a's rows (a bias, a per-dimension gate) rather than value for value.
func broadcastRow(op string, a, b *Tensor) bool {
	switch {
	case b.Len() == a.Len():
		return false
	case b.Len() == a.Cols():
		return true
	}
	panic(fmt.Sprintf("ops.%s: %v and %v: want equal sizes or a row of %d", op, a, b, a.Cols()))
}

// Add returns a + b. b is either a's size or one row of a.Cols() values
// added to every row (a bias).
func (tp *Tape) Add(a, b *Tensor) *Tensor {
	be := tp.backendFor("Add", a, b)
	bcast := broadcastRow("Add", a, b)
	out := tp.newLike(be, a)
	n, c := a.Rows(), a.Cols()
	be.Add(out.buf, a.buf, b.buf, n, c, bcast)
	if tp.needsGrad(a, b) {
		tp.record(out, func() {
			if da := tp.grad(a); da != nil {
				be.Accumulate(da, out.grad)
			}
			if db := tp.grad(b); db != nil {
				if bcast {
					be.AccumulateRows(db, out.grad, n, c)
				} else {
					be.Accumulate(db, out.grad)
				}
			}
		})
	}
	return out
}

// Mul returns a ⊙ b. b is either a's size or one row of a.Cols() values
// applied to every row.
func (tp *Tape) Mul(a, b *Tensor) *Tensor {
	be := tp.backendFor("Mul", a, b)
	bcast := broadcastRow("Mul", a, b)
	out := tp.newLike(be, a)
	c := a.Cols()
	if !bcast {
		c = a.Len() // one "row" holding everything
	}
	n := a.Len() / max(c, 1)
	be.Mul(out.buf, a.buf, b.buf, n, c)
	if tp.needsGrad(a, b) {
		tp.record(out, func() {
			be.MulBackward(tp.grad(a), tp.grad(b), out.grad, a.buf, b.buf, n, c)
		})
	}
	return out
}

// mulForward: out (n, c) = a (n, c) ⊙ b (c) repeated over rows.
func mulForward(out, a, b []float32, n, c int) {
	for r := 0; r < n; r++ {
		o, x := out[r*c:r*c+c], a[r*c:r*c+c]
		for j, y := range b[:c] {
			o[j] = x[j] * y
		}
	}
}

// mulBackward accumulates da += dout⊙b and db += Σ_rows dout⊙a.
func mulBackward(da, db, dout, a, b []float32, n, c int) {
	for r := 0; r < n; r++ {
		g, x := dout[r*c:r*c+c], a[r*c:r*c+c]
		if da != nil {
			d := da[r*c : r*c+c]
			for j, y := range b[:c] {
				d[j] += g[j] * y
			}
		}
		if db != nil {
			for j := range db[:c] {
				db[j] += g[j] * x[j]
			}
		}
	}
}

// Scale returns s·a for a constant s.
func (tp *Tape) Scale(a *Tensor, s float32) *Tensor {
	be := tp.backendFor("Scale", a)
	out := tp.newLike(be, a)
	be.Scale(out.buf, a.buf, s)
	if tp.needsGrad(a) {
		tp.record(out, func() { be.ScaleAccumulate(tp.grad(a), out.grad, s) })
	}
	return out
}

// Sum returns the sum of all values of a as a one-value tensor (summed in
// double).
func (tp *Tape) Sum(a *Tensor) *Tensor {
	be := tp.backendFor("Sum", a)
	out := tp.newTensor(be, 1)
	be.Sum(out.buf, a.buf)
	if tp.needsGrad(a) {
		tp.record(out, func() { be.SumBackward(tp.grad(a), out.grad) })
	}
	return out
}

// RoundF16 returns a rounded to float16 precision (no gradient: the
// inference path's model of llama.cpp's f16 KV cache).
func (tp *Tape) RoundF16(a *Tensor) *Tensor {
	be := tp.backendFor("RoundF16", a)
	out := tp.newLike(be, a)
	be.Copy(out.buf, a.buf)
	be.RoundF16(out.buf)
	return out
}

// sigmoid is 1/(1+e^-x).
func sigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// GatedMix returns μ⊙a + (1−μ)⊙b with μ = sigmoid(alpha/temp), the ladder's
// learnable gate (LST: μ_i = sigmoid(α_i/T), T = 0.1). alpha holds one value
// (a scalar gate) or a.Cols() values (one gate per dimension). a and b have
// the same shape.
func (tp *Tape) GatedMix(alpha, a, b *Tensor, temp float32) *Tensor {
	be := tp.backendFor("GatedMix", alpha, a, b)
	mustMatch("GatedMix", a, b)
	c := a.Cols()
	if alpha.Len() != 1 && alpha.Len() != c {
		panic(fmt.Sprintf("ops.GatedMix: gate %v, want 1 or %d values", alpha, c))
	}
	out := tp.newLike(be, a)
	be.GatedMix(out.buf, a.buf, b.buf, alpha.buf, a.Rows(), c, temp)
	if tp.needsGrad(alpha, a, b) {
		tp.record(out, func() {
			be.GatedMixBackward(tp.grad(alpha), tp.grad(a), tp.grad(b), out.grad, a.buf, b.buf, alpha.buf, a.Rows(), c, temp)
		})
	}
	return out
}

// gateValues returns μ = sigmoid(alpha/temp) for each gate value.
func gateValues(alpha []float32, temp float32) []float32 {
	mu := make([]float32, len(alpha))
	for k, x := range alpha {
		mu[k] = sigmoid(x / temp)
	}
	return mu
}

// gatedMixForward: out = μ·a + (1−μ)·b, a, b, out (n, c); alpha (1) or (c).
func gatedMixForward(out, a, b, alpha []float32, n, c int, temp float32) {
	mu := gateValues(alpha, temp)
	for r := 0; r < n; r++ {
		for j := 0; j < c; j++ {
			m := mu[j%len(mu)]
			i := r*c + j
			out[i] = m*a[i] + (1-m)*b[i]
		}
	}
}

// gatedMixBackward accumulates da += μ·dout, db += (1−μ)·dout and
// dalpha += Σ dout·(a−b)·μ(1−μ)/temp (summed over rows, and over columns
// for a scalar gate, in double). Nil gradients are skipped.
func gatedMixBackward(dalpha, da, db, dout, a, b, alpha []float32, n, c int, temp float32) {
	mu := gateValues(alpha, temp)
	dmu := make([]float64, len(mu)) // Σ dout·(a−b) per gate
	for r := 0; r < n; r++ {
		for j := 0; j < c; j++ {
			k := j % len(mu)
			m := mu[k]
			i := r*c + j
			g := dout[i]
			if da != nil {
				da[i] += m * g
			}
			if db != nil {
				db[i] += (1 - m) * g
			}
			dmu[k] += float64(g * (a[i] - b[i]))
		}
	}
	if dalpha != nil {
		for k, m := range mu {
			dalpha[k] += float32(dmu[k]) * m * (1 - m) / temp
		}
	}
}
