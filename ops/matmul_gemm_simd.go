//go:build goexperiment.simd && amd64

package ops

import "simd/archsimd"

// AVX-512 panel kernels for the batched matmul (matmul_gemm.go): mr
// activation rows (up to 5) times a packed panel of 32 weight rows. Per
// column k: two loads of the panel (32 weight rows), one broadcast per
// activation row, two fused multiply-adds per row; no horizontal sums.
// gemmKernelGo is the reference; matmul_test.go checks MatMul against
// independent sums in both builds.

func gemmKernel(panel, a []float32, lda, depth, mr int, c []float32, ldc int, accumulate bool) {
	if !hasAVX512 {
		if hasAVX2 {
			gemmKernelAVX2(panel, a, lda, depth, mr, c, ldc, accumulate)
			return
		}
		gemmKernelGo(panel, a, lda, depth, mr, c, ldc, accumulate)
		return
	}
	panel = panel[:depth*gemmNR]
	switch mr {
	case 1:
		gemmKernel1(panel, a, lda, depth, c, ldc, accumulate)
	case 2:
		gemmKernel2(panel, a, lda, depth, c, ldc, accumulate)
	case 3:
		gemmKernel3(panel, a, lda, depth, c, ldc, accumulate)
	case 4:
		gemmKernel4(panel, a, lda, depth, c, ldc, accumulate)
	case 5:
		gemmKernel5(panel, a, lda, depth, c, ldc, accumulate)
	}
}

func gemmKernel1(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool) {
	a0 := a[0*lda : 0*lda+depth]
	o0 := c[0*ldc : 0*ldc+gemmNR]
	var c00, c01 archsimd.Float32x16
	if accumulate {
		c00 = archsimd.LoadFloat32x16Slice(o0[0:16])
		c01 = archsimd.LoadFloat32x16Slice(o0[16:32])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR : k*gemmNR+gemmNR]
		w0 := archsimd.LoadFloat32x16Slice(pk[0:16])
		w1 := archsimd.LoadFloat32x16Slice(pk[16:32])
		b0 := archsimd.BroadcastFloat32x16(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
	}
	c00.StoreSlice(o0[0:16])
	c01.StoreSlice(o0[16:32])
}

func gemmKernel2(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool) {
	a0 := a[0*lda : 0*lda+depth]
	a1 := a[1*lda : 1*lda+depth]
	o0 := c[0*ldc : 0*ldc+gemmNR]
	o1 := c[1*ldc : 1*ldc+gemmNR]
	var c00, c01, c10, c11 archsimd.Float32x16
	if accumulate {
		c00 = archsimd.LoadFloat32x16Slice(o0[0:16])
		c01 = archsimd.LoadFloat32x16Slice(o0[16:32])
		c10 = archsimd.LoadFloat32x16Slice(o1[0:16])
		c11 = archsimd.LoadFloat32x16Slice(o1[16:32])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR : k*gemmNR+gemmNR]
		w0 := archsimd.LoadFloat32x16Slice(pk[0:16])
		w1 := archsimd.LoadFloat32x16Slice(pk[16:32])
		b0 := archsimd.BroadcastFloat32x16(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
		b1 := archsimd.BroadcastFloat32x16(a1[k])
		c10 = w0.MulAdd(b1, c10)
		c11 = w1.MulAdd(b1, c11)
	}
	c00.StoreSlice(o0[0:16])
	c01.StoreSlice(o0[16:32])
	c10.StoreSlice(o1[0:16])
	c11.StoreSlice(o1[16:32])
}

func gemmKernel3(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool) {
	a0 := a[0*lda : 0*lda+depth]
	a1 := a[1*lda : 1*lda+depth]
	a2 := a[2*lda : 2*lda+depth]
	o0 := c[0*ldc : 0*ldc+gemmNR]
	o1 := c[1*ldc : 1*ldc+gemmNR]
	o2 := c[2*ldc : 2*ldc+gemmNR]
	var c00, c01, c10, c11, c20, c21 archsimd.Float32x16
	if accumulate {
		c00 = archsimd.LoadFloat32x16Slice(o0[0:16])
		c01 = archsimd.LoadFloat32x16Slice(o0[16:32])
		c10 = archsimd.LoadFloat32x16Slice(o1[0:16])
		c11 = archsimd.LoadFloat32x16Slice(o1[16:32])
		c20 = archsimd.LoadFloat32x16Slice(o2[0:16])
		c21 = archsimd.LoadFloat32x16Slice(o2[16:32])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR : k*gemmNR+gemmNR]
		w0 := archsimd.LoadFloat32x16Slice(pk[0:16])
		w1 := archsimd.LoadFloat32x16Slice(pk[16:32])
		b0 := archsimd.BroadcastFloat32x16(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
		b1 := archsimd.BroadcastFloat32x16(a1[k])
		c10 = w0.MulAdd(b1, c10)
		c11 = w1.MulAdd(b1, c11)
		b2 := archsimd.BroadcastFloat32x16(a2[k])
		c20 = w0.MulAdd(b2, c20)
		c21 = w1.MulAdd(b2, c21)
	}
	c00.StoreSlice(o0[0:16])
	c01.StoreSlice(o0[16:32])
	c10.StoreSlice(o1[0:16])
	c11.StoreSlice(o1[16:32])
	c20.StoreSlice(o2[0:16])
	c21.StoreSlice(o2[16:32])
}

func gemmKernel4(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool) {
	a0 := a[0*lda : 0*lda+depth]
	a1 := a[1*lda : 1*lda+depth]
	a2 := a[2*lda : 2*lda+depth]
	a3 := a[3*lda : 3*lda+depth]
	o0 := c[0*ldc : 0*ldc+gemmNR]
	o1 := c[1*ldc : 1*ldc+gemmNR]
	o2 := c[2*ldc : 2*ldc+gemmNR]
	o3 := c[3*ldc : 3*ldc+gemmNR]
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x16
	if accumulate {
		c00 = archsimd.LoadFloat32x16Slice(o0[0:16])
		c01 = archsimd.LoadFloat32x16Slice(o0[16:32])
		c10 = archsimd.LoadFloat32x16Slice(o1[0:16])
		c11 = archsimd.LoadFloat32x16Slice(o1[16:32])
		c20 = archsimd.LoadFloat32x16Slice(o2[0:16])
		c21 = archsimd.LoadFloat32x16Slice(o2[16:32])
		c30 = archsimd.LoadFloat32x16Slice(o3[0:16])
		c31 = archsimd.LoadFloat32x16Slice(o3[16:32])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR : k*gemmNR+gemmNR]
		w0 := archsimd.LoadFloat32x16Slice(pk[0:16])
		w1 := archsimd.LoadFloat32x16Slice(pk[16:32])
		b0 := archsimd.BroadcastFloat32x16(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
		b1 := archsimd.BroadcastFloat32x16(a1[k])
		c10 = w0.MulAdd(b1, c10)
		c11 = w1.MulAdd(b1, c11)
		b2 := archsimd.BroadcastFloat32x16(a2[k])
		c20 = w0.MulAdd(b2, c20)
		c21 = w1.MulAdd(b2, c21)
		b3 := archsimd.BroadcastFloat32x16(a3[k])
		c30 = w0.MulAdd(b3, c30)
		c31 = w1.MulAdd(b3, c31)
	}
	c00.StoreSlice(o0[0:16])
	c01.StoreSlice(o0[16:32])
	c10.StoreSlice(o1[0:16])
	c11.StoreSlice(o1[16:32])
	c20.StoreSlice(o2[0:16])
	c21.StoreSlice(o2[16:32])
	c30.StoreSlice(o3[0:16])
	c31.StoreSlice(o3[16:32])
}

func gemmKernel5(panel, a []float32, lda, depth int, c []float32, ldc int, accumulate bool) {
	a0 := a[0*lda : 0*lda+depth]
	a1 := a[1*lda : 1*lda+depth]
	a2 := a[2*lda : 2*lda+depth]
	a3 := a[3*lda : 3*lda+depth]
	a4 := a[4*lda : 4*lda+depth]
	o0 := c[0*ldc : 0*ldc+gemmNR]
	o1 := c[1*ldc : 1*ldc+gemmNR]
	o2 := c[2*ldc : 2*ldc+gemmNR]
	o3 := c[3*ldc : 3*ldc+gemmNR]
	o4 := c[4*ldc : 4*ldc+gemmNR]
	var c00, c01, c10, c11, c20, c21, c30, c31, c40, c41 archsimd.Float32x16
	if accumulate {
		c00 = archsimd.LoadFloat32x16Slice(o0[0:16])
		c01 = archsimd.LoadFloat32x16Slice(o0[16:32])
		c10 = archsimd.LoadFloat32x16Slice(o1[0:16])
		c11 = archsimd.LoadFloat32x16Slice(o1[16:32])
		c20 = archsimd.LoadFloat32x16Slice(o2[0:16])
		c21 = archsimd.LoadFloat32x16Slice(o2[16:32])
		c30 = archsimd.LoadFloat32x16Slice(o3[0:16])
		c31 = archsimd.LoadFloat32x16Slice(o3[16:32])
		c40 = archsimd.LoadFloat32x16Slice(o4[0:16])
		c41 = archsimd.LoadFloat32x16Slice(o4[16:32])
	}
	for k := 0; k < depth; k++ {
		pk := panel[k*gemmNR : k*gemmNR+gemmNR]
		w0 := archsimd.LoadFloat32x16Slice(pk[0:16])
		w1 := archsimd.LoadFloat32x16Slice(pk[16:32])
		b0 := archsimd.BroadcastFloat32x16(a0[k])
		c00 = w0.MulAdd(b0, c00)
		c01 = w1.MulAdd(b0, c01)
		b1 := archsimd.BroadcastFloat32x16(a1[k])
		c10 = w0.MulAdd(b1, c10)
		c11 = w1.MulAdd(b1, c11)
		b2 := archsimd.BroadcastFloat32x16(a2[k])
		c20 = w0.MulAdd(b2, c20)
		c21 = w1.MulAdd(b2, c21)
		b3 := archsimd.BroadcastFloat32x16(a3[k])
		c30 = w0.MulAdd(b3, c30)
		c31 = w1.MulAdd(b3, c31)
		b4 := archsimd.BroadcastFloat32x16(a4[k])
		c40 = w0.MulAdd(b4, c40)
		c41 = w1.MulAdd(b4, c41)
	}
	c00.StoreSlice(o0[0:16])
	c01.StoreSlice(o0[16:32])
	c10.StoreSlice(o1[0:16])
	c11.StoreSlice(o1[16:32])
	c20.StoreSlice(o2[0:16])
	c21.StoreSlice(o2[16:32])
	c30.StoreSlice(o3[0:16])
	c31.StoreSlice(o3[16:32])
	c40.StoreSlice(o4[0:16])
	c41.StoreSlice(o4[16:32])
}
