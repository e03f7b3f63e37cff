//go:build goexperiment.simd && amd64

package ops

import (
	"simd/archsimd"
	"unsafe"
)

// q6KValuesFast is q6KValues on 32 weights at a time (AVX2): each of the
// four quant planes of a half super-block is one 32-byte vector (low or
// high nibbles of ql, two bits of qh moved to bits 4..5, as q6KHalf makes
// them), widened to int16, less 32, times its two scales.
func q6KValuesFast(x []byte, v *[256]int16) {
	if !hasAVX2 {
		q6KValues(x, v)
		return
	}
	x = x[:210]
	m4 := archsimd.BroadcastUint8x32(0x0f)
	m30 := archsimd.BroadcastUint8x32(0x30)
	x16, x4 := archsimd.BroadcastUint16x16(16), archsimd.BroadcastUint16x16(4)
	x4096, x16384 := archsimd.BroadcastUint16x16(4096), archsimd.BroadcastUint16x16(16384)
	off := archsimd.BroadcastInt16x16(32)
	for h := 0; h < 2; h++ {
		qlA := archsimd.LoadUint8x32((*[32]uint8)(x[64*h:]))
		qlB := archsimd.LoadUint8x32((*[32]uint8)(x[64*h+32:]))
		qh := archsimd.LoadUint8x32((*[32]uint8)(x[128+32*h:]))
		qh16 := qh.AsUint16x16()
		planes := [4]archsimd.Uint8x32{
			qlA.And(m4).Or(qh16.Mul(x16).AsUint8x32().And(m30)),
			qlB.And(m4).Or(qh16.Mul(x4).AsUint8x32().And(m30)),
			qlA.AsUint16x16().MulHigh(x4096).AsUint8x32().And(m4).Or(qh.And(m30)),
			qlB.AsUint16x16().MulHigh(x4096).AsUint8x32().And(m4).Or(qh16.MulHigh(x16384).AsUint8x32().And(m30)),
		}
		for k, q := range planes {
			e := 128*h + 32*k
			s0 := archsimd.BroadcastInt16x16(int16(int8(x[192+e/16])))
			s1 := archsimd.BroadcastInt16x16(int16(int8(x[192+e/16+1])))
			q.GetLo().ExtendToUint16().AsInt16x16().Sub(off).Mul(s0).Store((*[16]int16)(v[e:]))
			q.GetHi().ExtendToUint16().AsInt16x16().Sub(off).Mul(s1).Store((*[16]int16)(v[e+16:]))
		}
	}
	archsimd.ClearAVXUpperBits()
}

// scatterQ6KPairs writes the 128 int16 pairs of v to the panel super-block
// sb at 64p + o (o: the row's place in a chunk), as 32-bit moves.
func scatterQ6KPairs(sb []byte, o int, v *[256]int16) {
	_ = sb[64*127+o+3]
	dst := unsafe.Pointer(&sb[o])
	src := unsafe.Pointer(&v[0])
	for p := 0; p < 128; p++ {
		*(*uint32)(unsafe.Add(dst, 64*p)) = *(*uint32)(unsafe.Add(src, 4*p))
	}
}
