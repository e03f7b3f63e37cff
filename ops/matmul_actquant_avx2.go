//go:build goexperiment.simd && amd64

package ops

import (
	"math"
	"simd/archsimd"

	"ladder-engine/gguf"
)

// roundActsAVX2 is roundActsFast with 8-lane AVX2 vectors, bit for bit the
// plain Go versions (kernels_avx2_test.go): the same float32 products,
// rounded half to even (VROUNDPS), and + 0 to turn −0 into +0 as the
// integer quants do.
func roundActsAVX2(t gguf.Type, x, y []float32) bool {
	switch t {
	case gguf.TypeQ8_0:
		fakeQ8_0AVX2(x, y)
	case gguf.TypeQ8_K:
		fakeQ8_KAVX2(x, y)
	case gguf.TypeF16:
		roundF16AVX2(x, y)
	case gguf.TypeBF16:
		roundBF16AVX2(x, y)
	default:
		return false
	}
	return true
}

// absV8 clears the sign bits (the mask made here, not at package init).
func absV8(v archsimd.Float32x8) archsimd.Float32x8 {
	return v.AsUint32x8().And(archsimd.BroadcastUint32x8(0x7fffffff)).AsFloat32x8()
}

func hmaxV8(v archsimd.Float32x8) float32 {
	q := v.GetLo().Max(v.GetHi())
	var t [4]float32
	q.Store(&t)
	return max(max(t[0], t[1]), max(t[2], t[3]))
}

func fakeQ8_0AVX2(x, y []float32) {
	zero := archsimd.BroadcastFloat32x8(0)
	for b := 0; b < len(x)/32; b++ {
		xb, yb := x[32*b:32*b+32], y[32*b:32*b+32]
		v0 := archsimd.LoadFloat32x8Slice(xb[0:8])
		v1 := archsimd.LoadFloat32x8Slice(xb[8:16])
		v2 := archsimd.LoadFloat32x8Slice(xb[16:24])
		v3 := archsimd.LoadFloat32x8Slice(xb[24:32])
		amax := hmaxV8(absV8(v0).Max(absV8(v1)).Max(absV8(v2).Max(absV8(v3))))
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		d := archsimd.BroadcastFloat32x8(gguf.F16ToF32(gguf.F32ToF16(amax / 127)))
		vid := archsimd.BroadcastFloat32x8(id)
		v0.Mul(vid).RoundToEven().Add(zero).Mul(d).StoreSlice(yb[0:8])
		v1.Mul(vid).RoundToEven().Add(zero).Mul(d).StoreSlice(yb[8:16])
		v2.Mul(vid).RoundToEven().Add(zero).Mul(d).StoreSlice(yb[16:24])
		v3.Mul(vid).RoundToEven().Add(zero).Mul(d).StoreSlice(yb[24:32])
	}
}

func fakeQ8_KAVX2(x, y []float32) {
	for b := 0; b < len(x)/256; b++ {
		xb, yb := x[256*b:256*b+256], y[256*b:256*b+256]
		m0 := archsimd.BroadcastFloat32x8(0)
		m1 := m0
		for j := 0; j < 256; j += 16 {
			m0 = m0.Max(absV8(archsimd.LoadFloat32x8Slice(xb[j : j+8])))
			m1 = m1.Max(absV8(archsimd.LoadFloat32x8Slice(xb[j+8 : j+16])))
		}
		amax := hmaxV8(m0.Max(m1))
		if amax == 0 {
			clear(yb)
			continue
		}
		var mx float32
		for _, v := range xb { // the first value of largest magnitude
			if abs32(v) == amax {
				mx = v
				break
			}
		}
		iscale := -127 / mx
		d := archsimd.BroadcastFloat32x8(1 / iscale)
		is := archsimd.BroadcastFloat32x8(iscale)
		top := archsimd.BroadcastFloat32x8(127)
		zero := archsimd.BroadcastFloat32x8(0)
		for j := 0; j < 256; j += 8 {
			archsimd.LoadFloat32x8Slice(xb[j : j+8]).Mul(is).RoundToEven().Add(zero).Min(top).Mul(d).StoreSlice(yb[j : j+8])
		}
	}
}

// roundF16V8 rounds to the nearest half (ties to even) for |v| < 65504:
// normal halves by rounding the float32 mantissa to 10 bits, subnormal ones
// (|v| < 2^-14) to a multiple of 2^-24.
func roundF16V8(v archsimd.Float32x8) archsimd.Float32x8 {
	u := v.AsUint32x8()
	odd := u.ShiftAllRight(13).And(archsimd.BroadcastUint32x8(1))
	u = u.Add(archsimd.BroadcastUint32x8(0x0fff)).Add(odd).AndNot(archsimd.BroadcastUint32x8(0x1fff))
	r := u.AsFloat32x8()
	small := absV8(v).Less(archsimd.BroadcastFloat32x8(0x1p-14))
	if small.ToBits() == 0 {
		return r
	}
	sub := v.Mul(archsimd.BroadcastFloat32x8(0x1p24)).RoundToEven().Mul(archsimd.BroadcastFloat32x8(0x1p-24))
	return sub.Merge(r, small)
}

// roundF16AVX2 rounds to float16 precision; groups with a value at or
// beyond 65504 (which would round to infinity), or NaNs, take the scalar path.
func roundF16AVX2(x, y []float32) {
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := archsimd.LoadFloat32x8Slice(x[i : i+8])
		av := absV8(v)
		if av.GreaterEqual(archsimd.BroadcastFloat32x8(65504)).ToBits() != 0 || av.IsNaN().ToBits() != 0 {
			roundF16Go(x[i:i+8], y[i:i+8])
			continue
		}
		roundF16V8(v).StoreSlice(y[i : i+8])
	}
	roundF16Go(x[i:], y[i:])
}

// roundBF16AVX2 is F32ToBF16 and back; groups holding NaNs, infinities or
// subnormals take the scalar path.
func roundBF16AVX2(x, y []float32) {
	i := 0
	one := archsimd.BroadcastUint32x8(1)
	for ; i+8 <= len(x); i += 8 {
		v := archsimd.LoadFloat32x8Slice(x[i : i+8])
		av := absV8(v)
		odd := av.GreaterEqual(archsimd.BroadcastFloat32x8(float32(math.Inf(1)))).Or(av.Less(archsimd.BroadcastFloat32x8(0x1p-126)))
		if odd.ToBits() != 0 || av.IsNaN().ToBits() != 0 {
			roundBF16Go(x[i:i+8], y[i:i+8])
			continue
		}
		u := v.AsUint32x8()
		u = u.Add(archsimd.BroadcastUint32x8(0x7fff)).Add(u.ShiftAllRight(16).And(one)).And(archsimd.BroadcastUint32x8(0xffff0000))
		u.AsFloat32x8().StoreSlice(y[i : i+8])
	}
	roundBF16Go(x[i:], y[i:])
}
