package kernels

import "fmt"

// DType is the element type of a GEMM operand.
type DType int

const (
	F32  DType = iota // float32
	F16               // IEEE half
	BF16              // brain float
)

func (t DType) suffix() string {
	switch t {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	}
	return ""
}

func (t DType) size() int64 {
	if t == F32 {
		return 4
	}
	return 2
}

// Gemm computes C (M, N) = A (M, K) · B (K, N), or adds it to C when
// accumulate is set, with A[m][k] at a[m·sam + k·sak] and B[k][n] at
// b[k·sbk + n·sbn] (strides in elements), so transposed operands need no
// copy. C is dense row-major. f32 throughout, accumulated with fma.
func (d *Device) Gemm(c, a, b Buffer, m, n, k int, sam, sak, sbk, sbn int64, accumulate bool) error {
	return d.GemmMixed(c, a, F32, b, F32, m, n, k, sam, sak, sbk, sbn, accumulate)
}

// GemmMixed is Gemm with A of type at and B of type bt (f32, f16 or bf16:
// weights or saved activations kept in half precision). Half operands widen
// exactly to f32; C is f32 and the accumulation f32.
func (d *Device) GemmMixed(c, a Buffer, at DType, b Buffer, bt DType, m, n, k int, sam, sak, sbk, sbn int64, accumulate bool) error {
	if at.suffix() == "" || bt.suffix() == "" {
		return fmt.Errorf("kernels: Gemm: operand types %d, %d", at, bt)
	}
	if m < 0 || n < 0 || k < 0 || sam < 0 || sak < 0 || sbk < 0 || sbn < 0 {
		return fmt.Errorf("kernels: Gemm: shape %d×%d×%d, strides %d %d %d %d", m, n, k, sam, sak, sbk, sbn)
	}
	if m == 0 || n == 0 {
		return nil
	}
	if err := need("Gemm", "C", c, 4*int64(m)*int64(n)); err != nil {
		return err
	}
	if k > 0 {
		if err := need("Gemm", "A", a, at.size()*(int64(m-1)*sam+int64(k-1)*sak+1)); err != nil {
			return err
		}
		if err := need("Gemm", "B", b, bt.size()*(int64(k-1)*sbk+int64(n-1)*sbn+1)); err != nil {
			return err
		}
	}
	return d.launch("gemm_"+at.suffix()+"_"+bt.suffix(), dim3{ceilDiv(n, 32), ceilDiv(m, 32), 1}, dim3{16, 16, 1}, 0,
		c, a, b, m, n, k, sam, sak, sbk, sbn, acc32(accumulate))
}

// LinearForward is out (n, rows) = x (n, cols) · Wᵀ for a trainable f32
// weight W (rows, cols) (accumulate: out +=).
func (d *Device) LinearForward(out, x, w Buffer, n, rows, cols int, accumulate bool) error {
	return d.Gemm(out, x, w, n, rows, cols, int64(cols), 1, 1, int64(cols), accumulate)
}

// LinearBackwardInput is dx (n, cols) += dout (n, rows) · W (accumulate
// false: dx =).
func (d *Device) LinearBackwardInput(dx, dout, w Buffer, n, rows, cols int, accumulate bool) error {
	return d.Gemm(dx, dout, w, n, cols, rows, int64(rows), 1, int64(cols), 1, accumulate)
}

// LinearBackwardWeight is dw (rows, cols) += doutᵀ (rows, n) · x (n, cols)
// (accumulate false: dw =).
func (d *Device) LinearBackwardWeight(dw, dout, x Buffer, n, rows, cols int, accumulate bool) error {
	return d.Gemm(dw, dout, x, rows, cols, n, 1, int64(rows), int64(cols), 1, accumulate)
}
