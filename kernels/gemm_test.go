package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// TestLinear checks the three products of a trainable f32 linear layer
// against double references on ragged shapes (none a multiple of the 32
// tile), accumulating into non-zero outputs. Tolerance 1e-5 of Σ|a·b|:
// float32 sums of at most 70 terms.
func TestLinear(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(5, 6))
	const n, rows, cols = 7, 33, 70
	x := randF32(r, n*cols, 1)
	w := randF32(r, rows*cols, 1)
	dout := randF32(r, n*rows, 1)
	xb, wb, db := upload(t, d, x), upload(t, d, w), upload(t, d, dout)

	// forward: out = x·Wᵀ
	want, mag := refMatMul(x, w, n, rows, cols)
	out := alloc(t, d, 4*n*rows)
	if err := d.LinearForward(out, xb, wb, n, rows, cols, false); err != nil {
		t.Fatal(err)
	}
	closeScaled(t, "out", download(t, d, out, n*rows), want, mag, 1e-5)

	// dx += dout·W = dout·(Wᵀ)ᵀ
	wt := transpose(w, rows, cols)
	want, mag = refMatMul(dout, wt, n, cols, rows)
	init := randF32(r, n*cols, 1)
	for i := range want {
		want[i] += init[i]
		mag[i] += abs(init[i])
	}
	dx := upload(t, d, init)
	if err := d.LinearBackwardInput(dx, db, wb, n, rows, cols, true); err != nil {
		t.Fatal(err)
	}
	closeScaled(t, "dx", download(t, d, dx, n*cols), want, mag, 1e-5)

	// dW += doutᵀ·x
	want, mag = refMatMul(transpose(dout, n, rows), transpose(x, n, cols), rows, cols, n)
	init = randF32(r, rows*cols, 1)
	for i := range want {
		want[i] += init[i]
		mag[i] += abs(init[i])
	}
	dw := upload(t, d, init)
	if err := d.LinearBackwardWeight(dw, db, xb, n, rows, cols, true); err != nil {
		t.Fatal(err)
	}
	closeScaled(t, "dw", download(t, d, dw, rows*cols), want, mag, 1e-5)

	if err := d.LinearForward(out, xb, wb, n, rows+1, cols, false); err == nil {
		t.Fatal("a weight larger than its buffer: no error")
	}

	// Half-precision operands: x·Wᵀ with x in f16 and W in bf16, then
	// with x in bf16 and W in f16; the reference uses the rounded values.
	for _, c := range []struct{ at, bt DType }{{F16, BF16}, {BF16, F16}, {F32, BF16}} {
		enc := func(v []float32, t DType) ([]byte, []float32) {
			if t == F32 {
				return nil, v
			}
			b, r := make([]byte, 2*len(v)), make([]float32, len(v))
			for i, f := range v {
				h := gguf.F32ToF16(f)
				r[i] = gguf.F16ToF32(h)
				if t == BF16 {
					h = gguf.F32ToBF16(f)
					r[i] = gguf.BF16ToF32(h)
				}
				b[2*i], b[2*i+1] = byte(h), byte(h>>8)
			}
			return b, r
		}
		xe, xr := enc(x, c.at)
		we, wr := enc(w, c.bt)
		xbuf, wbuf := xb, wb
		if xe != nil {
			xbuf = uploadBytes(t, d, xe)
		}
		if we != nil {
			wbuf = uploadBytes(t, d, we)
		}
		want, mag := refMatMul(xr, wr, n, rows, cols)
		if err := d.GemmMixed(out, xbuf, c.at, wbuf, c.bt, n, rows, cols, cols, 1, 1, cols, false); err != nil {
			t.Fatal(err)
		}
		closeScaled(t, fmt.Sprintf("out (%s·%sᵀ)", c.at.suffix(), c.bt.suffix()), download(t, d, out, n*rows), want, mag, 1e-5)
	}
}

// transpose returns the (cols, rows) transpose of a (rows, cols).
func transpose(a []float32, rows, cols int) []float32 {
	t := make([]float32, len(a))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			t[j*rows+i] = a[i*cols+j]
		}
	}
	return t
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
