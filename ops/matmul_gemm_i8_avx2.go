//go:build goexperiment.simd && amd64

package ops

import "ladder-engine/gguf"

// The int8 tile kernels in assembly (matmul_gemm_i8_avx2_amd64.s), used on
// CPUs with AVX2; i8KernelGo is their reference (TestI8KernelAVX2).

var (
	i8KernelQ4_0 = i8AVX2(i8Q4_0Kernel4x8AVX2)
	i8KernelQ8_0 = i8AVX2(i8Q8_0Kernel4x8AVX2)
)

// i8AVX2 wraps an assembly kernel in the i8Kernel contract (bounds checked
// here, once per tile); nil without AVX2.
func i8AVX2(k func(panel, q *byte, lda int, d *float32, corr *int32, ldd, nb int, c *float32, ldc int)) i8Kernel {
	if !hasAVX2 {
		return nil
	}
	return func(panel []byte, q []byte, lda int, d []float32, corr []int32, ldd, nb int, c []float32, ldc int) {
		if nb == 0 {
			i8KernelGo(false, panel, q, lda, d, corr, ldd, nb, c, ldc)
			return
		}
		_ = panel[nb*i8BlockBytes-1]
		_ = q[(i8MR-1)*lda+32*nb-1]
		_ = d[(i8MR-1)*ldd+nb-1]
		_ = corr[(i8MR-1)*ldd+nb-1]
		_ = c[(i8MR-1)*ldc+i8NR-1]
		k(&panel[0], &q[0], lda, &d[0], &corr[0], ldd, nb, &c[0], ldc)
	}
}

// quantizeRowI8 is quantizeRowI8Go in assembly where the CPU has AVX2 and
// F16C (bit for bit: TestQuantizeQ8_0I8AVX2).
func quantizeRowI8(x []float32, q []byte, d []float32, sum []int32, enc []byte) {
	nb := len(d)
	if !hasAVX2 || !hasF16C || nb == 0 {
		quantizeRowI8Go(x, q, d, sum, enc)
		return
	}
	_ = x[32*nb-1]
	_ = q[32*nb-1]
	_ = sum[nb-1]
	quantizeQ8_0I8AVX2(&x[0], nb, &q[0], &d[0], &sum[0])
}

//go:noescape
func quantizeQ8_0I8AVX2(x *float32, nb int, q *byte, d *float32, sum *int32)

//go:noescape
func i8Q4_0Kernel4x8AVX2(panel, q *byte, lda int, d *float32, corr *int32, ldd, nb int, c *float32, ldc int)

//go:noescape
func i8Q8_0Kernel4x8AVX2(panel, q *byte, lda int, d *float32, corr *int32, ldd, nb int, c *float32, ldc int)

// packI8PanelFast packs a full panel (eight rows) of Q4_0 or Q8_0 in
// assembly (matmul_gemm_i8_pack_avx2_amd64.s; packI8Panel's loop is its
// reference, TestPackI8PanelAVX2); false where it does not apply.
func packI8PanelFast(panel []byte, w *Matrix, j0, nr int) bool {
	nb := w.Cols / 32
	if !hasAVX2 || !hasF16C || nr != i8NR || nb == 0 {
		return false
	}
	_ = panel[nb*i8BlockBytes-1]
	_ = w.Raw[(j0+i8NR)*w.rowBytes-1]
	row := &w.Raw[j0*w.rowBytes]
	switch w.Type {
	case gguf.TypeQ4_0:
		packI8Q4_0AVX2(&panel[0], row, w.rowBytes, nb)
	case gguf.TypeQ8_0:
		packI8Q8_0AVX2(&panel[0], row, w.rowBytes, nb)
	default:
		return false
	}
	return true
}

//go:noescape
func packI8Q4_0AVX2(panel, row *byte, rowBytes, nb int)

//go:noescape
func packI8Q8_0AVX2(panel, row *byte, rowBytes, nb int)
