//go:build goexperiment.simd && amd64

package ops

import "simd/archsimd"

// hasAVX2 says whether the AVX2+FMA kernels (the *_avx2.go files) run
// where AVX-512 is missing: 8-lane float32 and 32-byte integer vectors with
// fused multiply-add, as on AMD Zen 1–3 and Intel Haswell to Comet Lake.
// CPUID only: no vector instruction runs at package init.
var hasAVX2 = archsimd.X86.AVX2() && archsimd.X86.FMA()

// Legacy-SSE instructions inside 256-bit code. archsimd's ShiftAll* moves
// its count into a vector register with a non-VEX MOVQ, a broadcast of the
// constant 0 starts from a non-VEX XORPS, and Go's scalar float arithmetic
// is SSE; on the CPU these kernels were written on (an AMD EPYC guest
// without AVX-512) each such instruction after 256-bit ones stalled for
// about a microsecond (dotQ8_0AVX2 with one scalar scale product per block
// ran 20× slower than without). So the AVX2 kernels shift with vector
// counts (VPSLLVD, VPSRLVD) or multiplies (VPMULLW, VPMULHUW), make zero
// vectors as zero values, keep scalar float arithmetic out of their loops,
// and end with VZEROUPPER (archsimd.ClearAVXUpperBits) before scalar code.

func shl32x8(v archsimd.Uint32x8, n uint32) archsimd.Uint32x8 {
	return v.ShiftLeft(archsimd.BroadcastUint32x8(n))
}

func shr32x8(v archsimd.Uint32x8, n uint32) archsimd.Uint32x8 {
	return v.ShiftRight(archsimd.BroadcastUint32x8(n))
}

// shr16x16 shifts 16-bit lanes right by n (1..15): the high half of v·2^(16−n).
func shr16x16(v archsimd.Uint16x16, n uint) archsimd.Uint16x16 {
	return v.MulHigh(archsimd.BroadcastUint16x16(uint16(1) << (16 - n)))
}

// shl16x16 shifts 16-bit lanes left by n (0..15): the low half of v·2^n.
func shl16x16(v archsimd.Uint16x16, n uint) archsimd.Uint16x16 {
	return v.Mul(archsimd.BroadcastUint16x16(uint16(1) << n))
}

// hsum8 adds the 8 lanes ((lo+hi), then (0+1)+(2+3), as dotHsum8) after
// clearing the upper halves, so that the scalar adds run clean.
func hsum8(v archsimd.Float32x8) float32 {
	q := v.GetLo().Add(v.GetHi())
	var t [4]float32
	q.Store(&t)
	archsimd.ClearAVXUpperBits()
	return (t[0] + t[1]) + (t[2] + t[3])
}
