//go:build goexperiment.simd && amd64

package ops

import (
	"math"
	"math/bits"
	"simd/archsimd"
	"unsafe"

	"ladder-engine/gguf"
)

// roundActsAVX2 is roundActsFast with 8-lane AVX2 vectors, bit for bit the
// plain Go versions (kernels_avx2_test.go): the same float32 products and
// quotients, rounded half to even (VROUNDPS), and + 0 to turn −0 into +0 as
// the integer quants do. The per-block scalars (amax, 127/amax, the f16
// scale) are computed in vector registers too: on the CPU this was written
// on, scalar SSE arithmetic between 256-bit instructions cost about a
// microsecond a switch, far more than the block's work.
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

// hmaxV8 is the largest lane, as a scalar.
func hmaxV8(v archsimd.Float32x8) float32 {
	q := v.GetLo().Max(v.GetHi())
	var t [4]float32
	q.Store(&t)
	archsimd.ClearAVXUpperBits() // scalar code follows
	return max(max(t[0], t[1]), max(t[2], t[3]))
}

// allMax8 is the largest lane in every lane (no NaNs).
func allMax8(v archsimd.Float32x8) archsimd.Float32x8 {
	v = v.Max(v.Select128FromPair(1, 0, v))
	v = v.Max(v.SelectFromPairGrouped(2, 3, 0, 1, v))
	return v.Max(v.SelectFromPairGrouped(1, 0, 3, 2, v))
}

func fakeQ8_0AVX2(x, y []float32) {
	nb := len(x) / 32
	for b := 0; b < nb; b++ {
		xb, yb := x[32*b:32*b+32], y[32*b:32*b+32]
		v0 := archsimd.LoadFloat32x8Slice(xb[0:8])
		v1 := archsimd.LoadFloat32x8Slice(xb[8:16])
		v2 := archsimd.LoadFloat32x8Slice(xb[16:24])
		v3 := archsimd.LoadFloat32x8Slice(xb[24:32])
		amax := allMax8(absV8(v0).Max(absV8(v1)).Max(absV8(v2).Max(absV8(v3))))
		dq := amax.Div(archsimd.BroadcastFloat32x8(127))
		if dq.GreaterEqual(archsimd.BroadcastFloat32x8(65504)).ToBits() != 0 || amax.IsNaN().ToBits() != 0 {
			archsimd.ClearAVXUpperBits()
			fakeQ8_0Go(xb, yb) // the f16 scale overflows: the exact path
			continue
		}
		var zero archsimd.Float32x8
		// id = 127/amax, 0 for an all-zero block
		id := zero.Merge(archsimd.BroadcastFloat32x8(127).Div(amax), amax.Equal(zero))
		d := roundF16V8(dq)
		v0.Mul(id).RoundToEven().Add(zero).Mul(d).StoreSlice(yb[0:8])
		v1.Mul(id).RoundToEven().Add(zero).Mul(d).StoreSlice(yb[8:16])
		v2.Mul(id).RoundToEven().Add(zero).Mul(d).StoreSlice(yb[16:24])
		v3.Mul(id).RoundToEven().Add(zero).Mul(d).StoreSlice(yb[24:32])
	}
	archsimd.ClearAVXUpperBits()
}

func fakeQ8_KAVX2(x, y []float32) {
	for b := 0; b < len(x)/256; b++ {
		xb, yb := x[256*b:256*b+256], y[256*b:256*b+256]
		var m0, m1 archsimd.Float32x8
		for j := 0; j < 256; j += 16 {
			m0 = m0.Max(absV8(archsimd.LoadFloat32x8Slice(xb[j : j+8])))
			m1 = m1.Max(absV8(archsimd.LoadFloat32x8Slice(xb[j+8 : j+16])))
		}
		amax := allMax8(m0.Max(m1))
		var zero archsimd.Float32x8
		if amax.Equal(zero).ToBits() != 0 {
			archsimd.ClearAVXUpperBits()
			clear(yb)
			continue
		}
		first := -1 // the first value of largest magnitude
		for j := 0; j < 256 && first < 0; j += 8 {
			if bits := absV8(archsimd.LoadFloat32x8Slice(xb[j : j+8])).Equal(amax).ToBits(); bits != 0 {
				first = j + bitsTrailingZeros8(bits)
			}
		}
		if first < 0 { // NaNs: the exact path
			archsimd.ClearAVXUpperBits()
			fakeQ8_KGo(xb, yb)
			continue
		}
		mx := archsimd.BroadcastUint32x8(*(*uint32)(unsafe.Pointer(&xb[first]))).AsFloat32x8()
		is := archsimd.BroadcastFloat32x8(-127).Div(mx)
		d := archsimd.BroadcastFloat32x8(1).Div(is)
		top := archsimd.BroadcastFloat32x8(127)
		for j := 0; j < 256; j += 8 {
			archsimd.LoadFloat32x8Slice(xb[j : j+8]).Mul(is).RoundToEven().Add(zero).Min(top).Mul(d).StoreSlice(yb[j : j+8])
		}
	}
	archsimd.ClearAVXUpperBits()
}

func bitsTrailingZeros8(b uint8) int { return bits.TrailingZeros8(b) }

// roundF16V8 rounds to the nearest half (ties to even) for |v| < 65504:
// normal halves by rounding the float32 mantissa to 10 bits, subnormal ones
// (|v| < 2^-14) to a multiple of 2^-24.
func roundF16V8(v archsimd.Float32x8) archsimd.Float32x8 {
	u := v.AsUint32x8()
	odd := shr32x8(u, 13).And(archsimd.BroadcastUint32x8(1))
	u = u.Add(archsimd.BroadcastUint32x8(0x0fff)).Add(odd).AndNot(archsimd.BroadcastUint32x8(0x1fff))
	r := u.AsFloat32x8()
	small := absV8(v).Less(archsimd.BroadcastFloat32x8(0x1p-14))
	if small.ToBits() == 0 {
		return r
	}
	sub := v.Mul(archsimd.BroadcastFloat32x8(0x1p24)).RoundToEven().Mul(archsimd.BroadcastFloat32x8(0x1p-24))
	return sub.Merge(r, small)
}

// roundF16AVX2 rounds to float16 precision: with F16C's conversions
// there and back (roundF16F16C) where the CPU has them, else
// roundF16AVX2Bits.
func roundF16AVX2(x, y []float32) {
	if !hasF16C {
		roundF16AVX2Bits(x, y)
		return
	}
	n8 := len(x) &^ 7
	if n8 > 0 {
		_ = y[n8-1]
		roundF16F16C(&x[0], &y[0], n8)
	}
	roundF16Go(x[n8:], y[n8:len(x)])
}

// roundF16F16C: y[i] = x[i] rounded to a half (nearest even) and back,
// for i < n, a multiple of 8 (matmul_actquant_avx2_amd64.s).
//
//go:noescape
func roundF16F16C(x, y *float32, n int)

// roundF16AVX2Bits rounds to float16 precision in integer arithmetic;
// groups with a value at or beyond 65504 (which would round to infinity),
// or NaNs, take the scalar path.
func roundF16AVX2Bits(x, y []float32) {
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := archsimd.LoadFloat32x8Slice(x[i : i+8])
		av := absV8(v)
		if av.GreaterEqual(archsimd.BroadcastFloat32x8(65504)).ToBits() != 0 || av.IsNaN().ToBits() != 0 {
			archsimd.ClearAVXUpperBits()
			roundF16Go(x[i:i+8], y[i:i+8])
			continue
		}
		roundF16V8(v).StoreSlice(y[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
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
			archsimd.ClearAVXUpperBits()
			roundBF16Go(x[i:i+8], y[i:i+8])
			continue
		}
		u := v.AsUint32x8()
		u = u.Add(archsimd.BroadcastUint32x8(0x7fff)).Add(shr32x8(u, 16).And(one)).And(archsimd.BroadcastUint32x8(0xffff0000))
		u.AsFloat32x8().StoreSlice(y[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
	roundBF16Go(x[i:], y[i:])
}
