//go:build goexperiment.simd && amd64

package ops

import "simd/archsimd"

// AVX2+FMA panel kernels for the batched matmul (matmul_gemm.go), for CPUs
// without AVX-512. AVX2 has 16 ymm registers of 8 lanes (Go allocates 15),
// so a 32-wide panel is done in two passes of 16 columns: per column k, two
// 8-lane loads of the panel, one broadcast per activation row and two FMAs
// per row; with 5 rows that is 10 accumulators + 2 weights + 1 broadcast =
// 13 registers, no spills. The activation rows are read twice (from L1).
// The 5-row pass is in assembly (matmul_gemm_avx2_amd64.s), the others use
// archsimd. Each output is the same Σ_k a·w in the same k order as gemmKernelGo (one
// FMA per term instead of a multiply and an add), so results differ from
// the Go kernel only by the fused roundings.
func gemmKernelAVX2(panel, a []float32, lda, depth, mr int, c []float32, ldc int, accumulate bool) {
	panel = panel[:depth*gemmNR]
	if mr == 5 && depth > 0 { // the full tile: assembly (Go's register allocator moved the accumulators around every step)
		_ = a[4*lda+depth-1]
		_ = c[4*ldc+gemmNR-1]
		gemm5x16AVX2(&panel[0], &a[0], lda, depth, &c[0], ldc, accumulate)
		gemm5x16AVX2(&panel[16], &a[0], lda, depth, &c[16], ldc, accumulate)
		return
	}
	for _, off := range [2]int{0, 16} {
		switch mr {
		case 1:
			gemmHalf1AVX2(panel, a, lda, depth, c, ldc, accumulate, off)
		case 2:
			gemmHalf2AVX2(panel, a, lda, depth, c, ldc, accumulate, off)
		case 3:
			gemmHalf3AVX2(panel, a, lda, depth, c, ldc, accumulate, off)
		case 4:
			gemmHalf4AVX2(panel, a, lda, depth, c, ldc, accumulate, off)
		}
	}
	archsimd.ClearAVXUpperBits()
}

// gemmHalf1AVX2: 1 row(s) times panel columns off..off+15.
func gemmHalf1AVX2(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool, off int) {
	a0 := a[0*lda : 0*lda+depth]
	o0 := c[0*ldc+off : 0*ldc+off+16]
	var c00, c01 archsimd.Float32x8
	if accumulate {
		c00 = archsimd.LoadFloat32x8Slice(o0[0:8])
		c01 = archsimd.LoadFloat32x8Slice(o0[8:16])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR+off : k*gemmNR+off+16]
		w0 := archsimd.LoadFloat32x8Slice(pk[0:8])
		w1 := archsimd.LoadFloat32x8Slice(pk[8:16])
		b0 := archsimd.BroadcastFloat32x8(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
	}
	c00.StoreSlice(o0[0:8])
	c01.StoreSlice(o0[8:16])
}

// gemmHalf2AVX2: 2 row(s) times panel columns off..off+15.
func gemmHalf2AVX2(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool, off int) {
	a0 := a[0*lda : 0*lda+depth]
	a1 := a[1*lda : 1*lda+depth]
	o0 := c[0*ldc+off : 0*ldc+off+16]
	o1 := c[1*ldc+off : 1*ldc+off+16]
	var c00, c01, c10, c11 archsimd.Float32x8
	if accumulate {
		c00 = archsimd.LoadFloat32x8Slice(o0[0:8])
		c01 = archsimd.LoadFloat32x8Slice(o0[8:16])
		c10 = archsimd.LoadFloat32x8Slice(o1[0:8])
		c11 = archsimd.LoadFloat32x8Slice(o1[8:16])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR+off : k*gemmNR+off+16]
		w0 := archsimd.LoadFloat32x8Slice(pk[0:8])
		w1 := archsimd.LoadFloat32x8Slice(pk[8:16])
		b0 := archsimd.BroadcastFloat32x8(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
		b1 := archsimd.BroadcastFloat32x8(a1[k])
		c10 = w0.MulAdd(b1, c10)
		c11 = w1.MulAdd(b1, c11)
	}
	c00.StoreSlice(o0[0:8])
	c01.StoreSlice(o0[8:16])
	c10.StoreSlice(o1[0:8])
	c11.StoreSlice(o1[8:16])
}

// gemmHalf3AVX2: 3 row(s) times panel columns off..off+15.
func gemmHalf3AVX2(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool, off int) {
	a0 := a[0*lda : 0*lda+depth]
	a1 := a[1*lda : 1*lda+depth]
	a2 := a[2*lda : 2*lda+depth]
	o0 := c[0*ldc+off : 0*ldc+off+16]
	o1 := c[1*ldc+off : 1*ldc+off+16]
	o2 := c[2*ldc+off : 2*ldc+off+16]
	var c00, c01, c10, c11, c20, c21 archsimd.Float32x8
	if accumulate {
		c00 = archsimd.LoadFloat32x8Slice(o0[0:8])
		c01 = archsimd.LoadFloat32x8Slice(o0[8:16])
		c10 = archsimd.LoadFloat32x8Slice(o1[0:8])
		c11 = archsimd.LoadFloat32x8Slice(o1[8:16])
		c20 = archsimd.LoadFloat32x8Slice(o2[0:8])
		c21 = archsimd.LoadFloat32x8Slice(o2[8:16])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR+off : k*gemmNR+off+16]
		w0 := archsimd.LoadFloat32x8Slice(pk[0:8])
		w1 := archsimd.LoadFloat32x8Slice(pk[8:16])
		b0 := archsimd.BroadcastFloat32x8(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
		b1 := archsimd.BroadcastFloat32x8(a1[k])
		c10 = w0.MulAdd(b1, c10)
		c11 = w1.MulAdd(b1, c11)
		b2 := archsimd.BroadcastFloat32x8(a2[k])
		c20 = w0.MulAdd(b2, c20)
		c21 = w1.MulAdd(b2, c21)
	}
	c00.StoreSlice(o0[0:8])
	c01.StoreSlice(o0[8:16])
	c10.StoreSlice(o1[0:8])
	c11.StoreSlice(o1[8:16])
	c20.StoreSlice(o2[0:8])
	c21.StoreSlice(o2[8:16])
}

// gemmHalf4AVX2: 4 row(s) times panel columns off..off+15.
func gemmHalf4AVX2(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool, off int) {
	a0 := a[0*lda : 0*lda+depth]
	a1 := a[1*lda : 1*lda+depth]
	a2 := a[2*lda : 2*lda+depth]
	a3 := a[3*lda : 3*lda+depth]
	o0 := c[0*ldc+off : 0*ldc+off+16]
	o1 := c[1*ldc+off : 1*ldc+off+16]
	o2 := c[2*ldc+off : 2*ldc+off+16]
	o3 := c[3*ldc+off : 3*ldc+off+16]
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x8
	if accumulate {
		c00 = archsimd.LoadFloat32x8Slice(o0[0:8])
		c01 = archsimd.LoadFloat32x8Slice(o0[8:16])
		c10 = archsimd.LoadFloat32x8Slice(o1[0:8])
		c11 = archsimd.LoadFloat32x8Slice(o1[8:16])
		c20 = archsimd.LoadFloat32x8Slice(o2[0:8])
		c21 = archsimd.LoadFloat32x8Slice(o2[8:16])
		c30 = archsimd.LoadFloat32x8Slice(o3[0:8])
		c31 = archsimd.LoadFloat32x8Slice(o3[8:16])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR+off : k*gemmNR+off+16]
		w0 := archsimd.LoadFloat32x8Slice(pk[0:8])
		w1 := archsimd.LoadFloat32x8Slice(pk[8:16])
		b0 := archsimd.BroadcastFloat32x8(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
		b1 := archsimd.BroadcastFloat32x8(a1[k])
		c10 = w0.MulAdd(b1, c10)
		c11 = w1.MulAdd(b1, c11)
		b2 := archsimd.BroadcastFloat32x8(a2[k])
		c20 = w0.MulAdd(b2, c20)
		c21 = w1.MulAdd(b2, c21)
		b3 := archsimd.BroadcastFloat32x8(a3[k])
		c30 = w0.MulAdd(b3, c30)
		c31 = w1.MulAdd(b3, c31)
	}
	c00.StoreSlice(o0[0:8])
	c01.StoreSlice(o0[8:16])
	c10.StoreSlice(o1[0:8])
	c11.StoreSlice(o1[8:16])
	c20.StoreSlice(o2[0:8])
	c21.StoreSlice(o2[8:16])
	c30.StoreSlice(o3[0:8])
	c31.StoreSlice(o3[8:16])
}

// gemm5x16AVX2 is gemmHalf5 in assembly: rows 0..4 of a (lda apart, depth
// values each) times panel columns 0..15 (rows of 32 floats from panel)
// into c (ldc apart, 16 values per row).
//
//go:noescape
func gemm5x16AVX2(panel, a *float32, lda, depth int, c *float32, ldc int, accumulate bool)
