//go:build goexperiment.simd && amd64

package ops

// The Q6_K tile kernel in assembly (matmul_gemm_q6k_avx2_amd64.s), used on
// CPUs with AVX2; q6kKernelGo is its reference (TestQ6KKernelAVX2).
var q6kKernelAVX2 = q6kAVX2()

// q6kAVX2 wraps the assembly kernel in the q6kKernel contract (bounds
// checked here, once per tile); nil without AVX2.
func q6kAVX2() q6kKernel {
	if !hasAVX2 {
		return nil
	}
	return func(panel []byte, a []int16, lda int, d []float32, ldd, nsb int, c []float32, ldc int, accumulate bool) {
		_ = c[(q6kMR-1)*ldc+q6kNR-1]
		if nsb == 0 {
			q6kKernelGo(panel, a, lda, d, ldd, nsb, c, ldc, accumulate)
			return
		}
		_ = panel[nsb*q6kSuperBytes-1]
		_ = a[(q6kMR-1)*lda+256*nsb-1]
		_ = d[(q6kMR-1)*ldd+nsb-1]
		q6kKernel4x16AVX2(&panel[0], &a[0], lda, &d[0], ldd, nsb, &c[0], ldc, accumulate)
	}
}

//go:noescape
func q6kKernel4x16AVX2(panel *byte, a *int16, lda int, d *float32, ldd, nsb int, c *float32, ldc int, accumulate bool)

//go:noescape
func q6kHalfAVX2(ql, qh, sc *byte, v *int16)
