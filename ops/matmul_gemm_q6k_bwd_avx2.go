//go:build goexperiment.simd && amd64

package ops

// The Q6_K backward's tile kernel and block quantizer in assembly
// (matmul_gemm_q6k_bwd_avx2_amd64.s), used on CPUs with AVX2;
// q6kBwdKernelGo and q6kBwdQuantGo are their references
// (TestQ6KBwdKernelAVX2, TestQ6KBwdQuantAVX2).
var q6kBwdKernelAVX2 = q6kBwdAVX2()

// q6kBwdAVX2 wraps the assembly kernel in the q6kBwdKernel contract
// (bounds checked here, once per tile); nil without AVX2.
func q6kBwdAVX2() q6kBwdKernel {
	if !hasAVX2 {
		return nil
	}
	return func(panel []byte, k []int16, ldk int, e []float32, nblk int, c []float32, ldc int) {
		if nblk <= 0 {
			return
		}
		_ = c[(q6kBwdMR-1)*ldc+q6kNR-1]
		_ = panel[nblk*q6kBwdBlock*32-1]
		_ = k[(q6kBwdMR-1)*ldk+nblk*q6kBwdBlock-1]
		_ = e[q6kBwdMR*nblk-1]
		q6kBwdKernel6x16AVX2(&panel[0], &k[0], ldk, &e[0], nblk, &c[0], ldc)
	}
}

// q6kBwdQuant is the quantizer the integer backward uses.
func q6kBwdQuant(g, dv []float32, k []int16) float32 {
	if !hasAVX2 {
		return q6kBwdQuantGo(g, dv, k)
	}
	_, _, _ = g[q6kBwdBlock-1], dv[q6kBwdBlock-1], k[q6kBwdBlock-1]
	return q6kBwdQuantAVX2(&g[0], &dv[0], &k[0])
}

//go:noescape
func q6kBwdKernel6x16AVX2(panel *byte, k *int16, ldk int, e *float32, nblk int, c *float32, ldc int)

//go:noescape
func q6kBwdQuantAVX2(x, dv *float32, k *int16) float32
