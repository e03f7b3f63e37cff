//go:build goexperiment.simd && amd64

package ops

import (
	"encoding/binary"
	"math"
	"simd/archsimd"
	"unsafe"

	"ladder-engine/gguf"
)

// roundActsFast handles the common activation types with AVX-512; the
// results equal the plain Go versions bit for bit (matmul_test.go).
func roundActsFast(t gguf.Type, x, y []float32) bool {
	if !hasAVX512 {
		if hasAVX2 {
			return roundActsAVX2(t, x, y)
		}
		return roundActsGo(t, x, y)
	}
	switch t {
	case gguf.TypeQ8_0:
		fakeQ8_0AVX512(x, y)
	case gguf.TypeQ8_K:
		fakeQ8_KAVX512(x, y)
	case gguf.TypeF16:
		roundF16AVX512(x, y)
	case gguf.TypeBF16:
		roundBF16AVX512(x, y)
	default:
		return false
	}
	return true
}

// absV clears the sign bits. The mask is made here, not in a package
// variable: an AVX-512 instruction at package init would crash the program
// on CPUs without AVX-512 before any feature check could run.
func absV(v archsimd.Float32x16) archsimd.Float32x16 {
	return v.AsUint32x16().And(archsimd.BroadcastUint32x16(0x7fffffff)).AsFloat32x16()
}

func hmaxV(v archsimd.Float32x16) float32 {
	h := v.GetLo().Max(v.GetHi())
	q := h.GetLo().Max(h.GetHi())
	var t [4]float32
	q.Store(&t)
	return max(max(t[0], t[1]), max(t[2], t[3]))
}

func fakeQ8_0AVX512(x, y []float32) {
	zero := archsimd.BroadcastFloat32x16(0)
	for b := 0; b < len(x)/32; b++ {
		xb, yb := x[32*b:32*b+32], y[32*b:32*b+32]
		v0 := archsimd.LoadFloat32x16Slice(xb[0:16])
		v1 := archsimd.LoadFloat32x16Slice(xb[16:32])
		amax := hmaxV(absV(v0).Max(absV(v1)))
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		d := archsimd.BroadcastFloat32x16(gguf.F16ToF32(gguf.F32ToF16(amax / 127)))
		vid := archsimd.BroadcastFloat32x16(id)
		// + 0 turns −0 into +0, as the integer quant does.
		v0.Mul(vid).RoundToEvenScaled(0).Add(zero).Mul(d).StoreSlice(yb[0:16])
		v1.Mul(vid).RoundToEvenScaled(0).Add(zero).Mul(d).StoreSlice(yb[16:32])
	}
}

func fakeQ8_KAVX512(x, y []float32) {
	for b := 0; b < len(x)/256; b++ {
		xb, yb := x[256*b:256*b+256], y[256*b:256*b+256]
		m := archsimd.BroadcastFloat32x16(0)
		for j := 0; j < 256; j += 16 {
			m = m.Max(absV(archsimd.LoadFloat32x16Slice(xb[j : j+16])))
		}
		amax := hmaxV(m)
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
		d := archsimd.BroadcastFloat32x16(1 / iscale)
		is := archsimd.BroadcastFloat32x16(iscale)
		top := archsimd.BroadcastFloat32x16(127)
		zero := archsimd.BroadcastFloat32x16(0)
		for j := 0; j < 256; j += 16 {
			archsimd.LoadFloat32x16Slice(xb[j : j+16]).Mul(is).RoundToEvenScaled(0).Add(zero).Min(top).Mul(d).StoreSlice(yb[j : j+16])
		}
	}
}

// roundF16AVX512 rounds to float16 precision; blocks with a value at or
// beyond 65504 (which would round to infinity) take the exact scalar path.
func roundF16AVX512(x, y []float32) {
	i := 0
	one := archsimd.BroadcastUint32x16(1)
	for ; i+16 <= len(x); i += 16 {
		v := archsimd.LoadFloat32x16Slice(x[i : i+16])
		av := absV(v)
		if av.GreaterEqual(archsimd.BroadcastFloat32x16(65504)).ToBits() != 0 {
			roundF16Go(x[i:i+16], y[i:i+16])
			continue
		}
		u := v.AsUint32x16()
		u = u.Add(archsimd.BroadcastUint32x16(0x0fff)).Add(u.ShiftAllRight(13).And(one)).AndNot(archsimd.BroadcastUint32x16(0x1fff))
		r := u.AsFloat32x16()
		small := av.Less(archsimd.BroadcastFloat32x16(0x1p-14))
		if small.ToBits() != 0 { // half subnormals: multiples of 2^-24
			sub := v.Mul(archsimd.BroadcastFloat32x16(0x1p24)).RoundToEvenScaled(0).Mul(archsimd.BroadcastFloat32x16(0x1p-24))
			r = sub.Merge(r, small)
		}
		r.StoreSlice(y[i : i+16])
	}
	roundF16Go(x[i:], y[i:])
}

// roundBF16AVX512 is F32ToBF16 and back; blocks holding NaNs, infinities
// or subnormals take the scalar path.
func roundBF16AVX512(x, y []float32) {
	i := 0
	one := archsimd.BroadcastUint32x16(1)
	for ; i+16 <= len(x); i += 16 {
		v := archsimd.LoadFloat32x16Slice(x[i : i+16])
		av := absV(v)
		odd := av.GreaterEqual(archsimd.BroadcastFloat32x16(float32(math.Inf(1)))).Or(av.Less(archsimd.BroadcastFloat32x16(0x1p-126)))
		if odd.ToBits() != 0 || av.IsNaN().ToBits() != 0 {
			roundBF16Go(x[i:i+16], y[i:i+16])
			continue
		}
		u := v.AsUint32x16()
		u = u.Add(archsimd.BroadcastUint32x16(0x7fff)).Add(u.ShiftAllRight(16).And(one)).And(archsimd.BroadcastUint32x16(0xffff0000))
		u.AsFloat32x16().StoreSlice(y[i : i+16])
	}
	roundBF16Go(x[i:], y[i:])
}

// quantizeActFast encodes one activation row for the row-dot path (small
// batches) with AVX-512, or on AVX2 in assembly (quantizeActAVX2: Q8_0 and
// F16), bit for bit as the dot kernel's own Quantize (QuantizeActQ8_0,
// QuantizeActQ8_K, encodeActF16; matmul_test.go and
// quant_dot_rows_avx2_test.go check), and reports whether it handled the
// type.
func quantizeActFast(t gguf.Type, x []float32, dst []byte) bool {
	if !hasAVX512 {
		return hasAVX2 && quantizeActAVX2(t, x, dst)
	}
	switch t {
	case gguf.TypeQ8_0:
		quantizeQ8_0AVX512(x, dst)
	case gguf.TypeQ8_K:
		quantizeQ8_KAVX512(x, dst)
	default:
		return false
	}
	return true
}

func int8View(b []byte) []int8 { return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b)) }

// quantizeQ8_0AVX512: per 32 values d = f16(amax/127), q = roundToEven(x·127/amax).
func quantizeQ8_0AVX512(x []float32, dst []byte) {
	for b := 0; b < len(x)/32; b++ {
		xb, ob := x[32*b:32*b+32], dst[34*b:34*b+34]
		v0 := archsimd.LoadFloat32x16Slice(xb[0:16])
		v1 := archsimd.LoadFloat32x16Slice(xb[16:32])
		amax := hmaxV(absV(v0).Max(absV(v1)))
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		binary.LittleEndian.PutUint16(ob, gguf.F32ToF16(amax/127))
		vid := archsimd.BroadcastFloat32x16(id)
		q := int8View(ob[2:34])
		// ConvertToInt32 truncates: round to even first, as the reference.
		v0.Mul(vid).RoundToEvenScaled(0).ConvertToInt32().TruncateToInt8().StoreSlice(q[0:16])
		v1.Mul(vid).RoundToEvenScaled(0).ConvertToInt32().TruncateToInt8().StoreSlice(q[16:32])
	}
}

// quantizeQ8_KAVX512 is quantize_row_q8_K_ref: per 256 values the first of
// largest magnitude max, iscale = −127/max, q = min(127, roundToEven(x·iscale)),
// d = 1/iscale, and the sums of each 16 quants.
func quantizeQ8_KAVX512(x []float32, dst []byte) {
	for b := 0; b < len(x)/256; b++ {
		xb, ob := x[256*b:256*b+256], dst[292*b:292*b+292]
		m := archsimd.BroadcastFloat32x16(0)
		for j := 0; j < 256; j += 16 {
			m = m.Max(absV(archsimd.LoadFloat32x16Slice(xb[j : j+16])))
		}
		amax := hmaxV(m)
		if amax == 0 {
			clear(ob)
			continue
		}
		var mx float32
		for _, v := range xb {
			if abs32(v) == amax {
				mx = v
				break
			}
		}
		iscale := -127 / mx
		is := archsimd.BroadcastFloat32x16(iscale)
		top := archsimd.BroadcastInt32x16(127)
		q := int8View(ob[4:260])
		for j := 0; j < 256; j += 16 {
			v := archsimd.LoadFloat32x16Slice(xb[j : j+16]).Mul(is).RoundToEvenScaled(0).ConvertToInt32().Min(top)
			v.TruncateToInt8().StoreSlice(q[j : j+16])
			h := v.GetLo().Add(v.GetHi())
			var t [8]int32
			h.Store(&t)
			sum := t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]
			binary.LittleEndian.PutUint16(ob[260+2*(j/16):], uint16(int16(sum)))
		}
		binary.LittleEndian.PutUint32(ob, math.Float32bits(1/iscale))
	}
}
