//go:build goexperiment.simd && amd64

package ops

import "simd/archsimd"

// AVX-512 float32 kernels (16 lanes, fused multiply-add); machines without
// AVX-512 use the AVX2 ones (elem_simd_avx2.go) or the plain Go versions in
// matmul_f32_ref.go.
var hasAVX512 = archsimd.X86.AVX512()

func dotF32(x, y []float32) float32 {
	if !hasAVX512 {
		if hasAVX2 {
			return dotF32sAVX2(x, y)
		}
		return dotF32Go(x, y)
	}
	n := len(x)
	y = y[:n]
	acc0 := archsimd.BroadcastFloat32x16(0)
	acc1 := acc0
	i := 0
	for ; i+32 <= n; i += 32 {
		acc0 = archsimd.LoadFloat32x16Slice(x[i:]).MulAdd(archsimd.LoadFloat32x16Slice(y[i:]), acc0)
		acc1 = archsimd.LoadFloat32x16Slice(x[i+16:]).MulAdd(archsimd.LoadFloat32x16Slice(y[i+16:]), acc1)
	}
	for ; i+16 <= n; i += 16 {
		acc0 = archsimd.LoadFloat32x16Slice(x[i:]).MulAdd(archsimd.LoadFloat32x16Slice(y[i:]), acc0)
	}
	s := hsum16(acc0.Add(acc1))
	for ; i < n; i++ {
		s += x[i] * y[i]
	}
	return s
}

func dot4F32(w0, w1, w2, w3, x []float32) (float32, float32, float32, float32) {
	if !hasAVX512 {
		if hasAVX2 {
			return dot4F32AVX2(w0, w1, w2, w3, x)
		}
		return dot4F32Go(w0, w1, w2, w3, x)
	}
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	a0 := archsimd.BroadcastFloat32x16(0)
	a1, a2, a3 := a0, a0, a0
	i := 0
	for ; i+16 <= n; i += 16 {
		v := archsimd.LoadFloat32x16Slice(x[i:])
		a0 = archsimd.LoadFloat32x16Slice(w0[i:]).MulAdd(v, a0)
		a1 = archsimd.LoadFloat32x16Slice(w1[i:]).MulAdd(v, a1)
		a2 = archsimd.LoadFloat32x16Slice(w2[i:]).MulAdd(v, a2)
		a3 = archsimd.LoadFloat32x16Slice(w3[i:]).MulAdd(v, a3)
	}
	s0, s1, s2, s3 := hsum16(a0), hsum16(a1), hsum16(a2), hsum16(a3)
	for ; i < n; i++ {
		v := x[i]
		s0 += w0[i] * v
		s1 += w1[i] * v
		s2 += w2[i] * v
		s3 += w3[i] * v
	}
	return s0, s1, s2, s3
}

func axpyF32(y []float32, a float32, x []float32) {
	if !hasAVX512 {
		if hasAVX2 {
			axpyF32AVX2(y, a, x)
			return
		}
		axpyF32Go(y, a, x)
		return
	}
	n := len(y)
	x = x[:n]
	va := archsimd.BroadcastFloat32x16(a)
	i := 0
	for ; i+16 <= n; i += 16 {
		archsimd.LoadFloat32x16Slice(x[i:]).MulAdd(va, archsimd.LoadFloat32x16Slice(y[i:])).StoreSlice(y[i:])
	}
	for ; i < n; i++ {
		y[i] += a * x[i]
	}
}

// hsum16 adds the 16 lanes.
func hsum16(v archsimd.Float32x16) float32 {
	h := v.GetLo().Add(v.GetHi())
	q := h.GetLo().Add(h.GetHi())
	var t [4]float32
	q.Store(&t)
	return (t[0] + t[1]) + (t[2] + t[3])
}
