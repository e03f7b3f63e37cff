//go:build goexperiment.simd && amd64

package ops

// AVX2+FMA panel kernel for the batched matmul (matmul_gemm.go), for CPUs
// without AVX-512. AVX2 has 16 ymm registers of 8 lanes, so a 32-wide panel
// is done in two passes of 16 columns: per column k, two 8-lane loads of the
// panel, one broadcast per activation row and two FMAs per row; with 5 rows
// that is 10 accumulators + 2 weights + a broadcast, no spills. The activation
// rows are read twice (from L1). The passes are in assembly
// (matmul_gemm_avx2_amd64.s): written with archsimd, Go's register allocator
// moved the accumulators between registers every step (33 against 104
// cpu-GFLOP/s for 5 rows, BenchmarkGemmKernel). Each output is the same Σ_k a·w
// in the same k order as gemmKernelGo, one FMA per term, so results differ
// from the Go kernel only by the fused roundings (TestGemmKernelAVX2).
func gemmKernelAVX2(panel, a []float32, lda, depth, mr int, c []float32, ldc int, accumulate bool) {
	if depth == 0 || mr == 0 {
		gemmKernelGo(panel, a, lda, depth, mr, c, ldc, accumulate)
		return
	}
	panel = panel[:depth*gemmNR]
	_ = a[(mr-1)*lda+depth-1] // the assembly reads rows < mr of a, columns < depth
	_ = c[(mr-1)*ldc+gemmNR-1]
	var pass func(panel, a *float32, lda, depth int, c *float32, ldc int, accumulate bool)
	switch mr {
	case 1:
		pass = gemm1x16AVX2
	case 2:
		pass = gemm2x16AVX2
	case 3:
		pass = gemm3x16AVX2
	case 4:
		pass = gemm4x16AVX2
	case 5:
		pass = gemm5x16AVX2
	default:
		panic("ops: gemmKernelAVX2: more than 5 rows")
	}
	pass(&panel[0], &a[0], lda, depth, &c[0], ldc, accumulate)
	pass(&panel[16], &a[0], lda, depth, &c[16], ldc, accumulate)
}

// gemmMx16AVX2 (M = 1..5): c[i*ldc+j] (+)= Σ_{k<depth} a[i*lda+k]·panel[k*32+j]
// for i < M, j < 16 (panel rows are 32 floats apart).
//
//go:noescape
func gemm1x16AVX2(panel, a *float32, lda, depth int, c *float32, ldc int, accumulate bool)

//go:noescape
func gemm2x16AVX2(panel, a *float32, lda, depth int, c *float32, ldc int, accumulate bool)

//go:noescape
func gemm3x16AVX2(panel, a *float32, lda, depth int, c *float32, ldc int, accumulate bool)

//go:noescape
func gemm4x16AVX2(panel, a *float32, lda, depth int, c *float32, ldc int, accumulate bool)

//go:noescape
func gemm5x16AVX2(panel, a *float32, lda, depth int, c *float32, ldc int, accumulate bool)

// gemmPackedActs: the batched matmul packs the activations for the 6-row
// kernel (matmulGEMMPacked) where this file's kernels serve, i.e. on AVX2
// CPUs without AVX-512. Six rows fill AVX2's 16 registers (12 accumulators,
// two panel vectors, two broadcasts) where five left one idle.
var gemmPackedActs = hasAVX2 && !hasAVX512

// gemmKernelPacked is gemmKernelAVX2 for 6 rows packed k-major
// (ap[6k+i] = row i at k, len >= 6·depth): c[i*ldc+j] (+)=
// Σ_k ap[6k+i]·panel[k*32+j] for i < 6, j < 32, in two passes of 16
// columns (gemm6x16PackedAVX2).
func gemmKernelPacked(panel, ap []float32, depth int, c []float32, ldc int, accumulate bool) {
	if depth == 0 {
		gemmKernelPackedGo(panel, ap, depth, c, ldc, accumulate)
		return
	}
	_ = panel[depth*gemmNR-1]
	_ = ap[depth*gemmPackedRows-1]
	_ = c[(gemmPackedRows-1)*ldc+gemmNR-1]
	gemm6x16PackedAVX2(&panel[0], &ap[0], depth, &c[0], ldc, accumulate)
	gemm6x16PackedAVX2(&panel[16], &ap[0], depth, &c[16], ldc, accumulate)
}

// gemm6x16PackedAVX2: c[i*ldc+j] (+)= Σ_{k<depth} ap[6k+i]·panel[k*32+j]
// for i < 6, j < 16; depth > 0.
//
//go:noescape
func gemm6x16PackedAVX2(panel, ap *float32, depth int, c *float32, ldc int, accumulate bool)
