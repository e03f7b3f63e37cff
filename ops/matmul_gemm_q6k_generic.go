//go:build !(goexperiment.simd && amd64)

package ops

import "encoding/binary"

// No Q6_K integer kernel in the plain Go build: q6kKernelGo is slower than
// the float GEMM there.
var q6kKernelAVX2 q6kKernel

func q6KValuesFast(x []byte, v *[256]int16) { q6KValues(x, v) }

func q6KHalfValuesFast(x []byte, h int, v *[128]int16) { q6KHalfValues(x, h, v) }

func q6kBwdInterleave(dst []byte, stride int, a, b *[128]int16) {
	q6kBwdInterleaveGo(dst, stride, a, b)
}

func scatterQ6KPairs(sb []byte, o int, v *[256]int16) {
	for p := 0; p < 128; p++ {
		binary.LittleEndian.PutUint16(sb[64*p+o:], uint16(v[2*p]))
		binary.LittleEndian.PutUint16(sb[64*p+o+2:], uint16(v[2*p+1]))
	}
}
