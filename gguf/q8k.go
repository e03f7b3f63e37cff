package gguf

import (
	"encoding/binary"
	"math"
)

// Q8_K: the activation encoding of K-quant dot products (ggml-common.h).
//
//	block_q8_K { f32 d; i8 qs[256]; i16 bsums[16] }   x = q * d
//
// bsums[j] is the sum of the 16 quants of group j, which lets dot products
// fold the weight mins in without touching every activation.

const blockQ8_K = 292

func decodeQ8_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ8_K : (i+1)*blockQ8_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b))
		for j := range y {
			y[j] = d * float32(int8(b[4+j]))
		}
	}
}

// encodeQ8_K is quantize_row_q8_K_ref: iscale = -127/max where max is the
// value of largest magnitude, q = min(127, nearest_int(x*iscale)), d = 1/iscale.
func encodeQ8_K(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K]
		b := dst[i*blockQ8_K : (i+1)*blockQ8_K]
		var max, amax float32
		for _, v := range x {
			if av := abs32(v); av > amax {
				amax, max = av, v
			}
		}
		if amax == 0 {
			clear(b)
			continue
		}
		iscale := -127 / max
		qs := b[4 : 4+QK_K]
		for j, v := range x {
			qs[j] = byte(int8(min(127, nearestInt(float32(iscale*v)))))
		}
		for j := 0; j < 16; j++ {
			sum := 0
			for _, q := range qs[16*j : 16*j+16] {
				sum += int(int8(q))
			}
			binary.LittleEndian.PutUint16(b[4+QK_K+2*j:], uint16(int16(sum)))
		}
		binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
	}
}
