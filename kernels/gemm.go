package kernels

import "fmt"

// Gemm computes C (M, N) = A (M, K) · B (K, N), or adds it to C when
// accumulate is set, with A[m][k] at a[m·sam + k·sak] and B[k][n] at
// b[k·sbk + n·sbn] (strides in floats), so transposed operands need no
// copy. C is dense row-major. f32 throughout, accumulated with fma.
func (d *Device) Gemm(c, a, b Buffer, m, n, k int, sam, sak, sbk, sbn int64, accumulate bool) error {
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
		if err := need("Gemm", "A", a, 4*(int64(m-1)*sam+int64(k-1)*sak+1)); err != nil {
			return err
		}
		if err := need("Gemm", "B", b, 4*(int64(k-1)*sbk+int64(n-1)*sbn+1)); err != nil {
			return err
		}
	}
	return d.launch("gemm_f32", dim3{ceilDiv(n, 32), ceilDiv(m, 32), 1}, dim3{16, 16, 1}, 0,
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
