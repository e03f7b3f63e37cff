//go:build goexperiment.simd && amd64

package ops

import (
	"simd/archsimd"
	"unsafe"
)

// q6KValuesFast is q6KValues on 32 weights at a time (AVX2), one half
// super-block after the other (q6KHalfValuesFast).
func q6KValuesFast(x []byte, v *[256]int16) {
	if !hasAVX2 {
		q6KValues(x, v)
		return
	}
	q6KHalfValuesFast(x, 0, (*[128]int16)(v[:128]))
	q6KHalfValuesFast(x, 1, (*[128]int16)(v[128:]))
}

// q6KHalfValuesFast decodes half h of a Q6_K super-block (elements
// 128h..128h+127) as q6KValues does, 32 values to a register
// (q6kHalfAVX2).
func q6KHalfValuesFast(x []byte, h int, v *[128]int16) {
	if !hasAVX2 {
		q6KHalfValues(x, h, v)
		return
	}
	x = x[:210]
	q6kHalfAVX2(&x[64*h], &x[128+32*h], &x[192+8*h], &v[0])
}

// q6kBwdInterleave is q6kBwdInterleaveGo on 16 columns at a time: the
// two rows' values interleaved within each 128-bit lane, then the lanes
// put in column order.
func q6kBwdInterleave(dst []byte, stride int, a, b *[128]int16) {
	if !hasAVX2 {
		q6kBwdInterleaveGo(dst, stride, a, b)
		return
	}
	_ = dst[7*stride+63]
	for p := 0; p < 8; p++ {
		x := archsimd.LoadInt16x16((*[16]int16)(a[16*p:]))
		y := archsimd.LoadInt16x16((*[16]int16)(b[16*p:]))
		lo, hi := x.InterleaveLoGrouped(y), x.InterleaveHiGrouped(y)
		o := (*[32]int16)(unsafe.Pointer(&dst[p*stride]))
		lo.Select128FromPair(0, 2, hi).Store((*[16]int16)(o[:16]))
		lo.Select128FromPair(1, 3, hi).Store((*[16]int16)(o[16:]))
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
