package gguf

import "math"

// Q8_0 and Q8_1: blocks of 32 weights with 8-bit quants (ggml-common.h).
//
//	block_q8_0 { f16 d; i8 qs[32] }            x = q * d
//	block_q8_1 { f16 d; f16 s; i8 qs[32] }     x = q * d, s = d * sum(q)
//
// Q8_1 only exists as the activation encoding of Q4_1/Q5_1 dot products.

const (
	blockQ8_0 = 34
	blockQ8_1 = 36
)

func decodeQ8_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ8_0 : (i+1)*blockQ8_0]
		y := dst[i*32 : i*32+32]
		d := halfAt(b)
		qs := b[2:34]
		for j := range y {
			y[j] = float32(int8(qs[j])) * d
		}
	}
}

// encodeQ8_0 is quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d) (ties
// away from zero).
func encodeQ8_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/32; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ8_0 : (i+1)*blockQ8_0]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		for j, v := range x {
			b[2+j] = byte(roundAway(float32(v * id)))
		}
	}
}

func decodeQ8_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ8_1 : (i+1)*blockQ8_1]
		y := dst[i*32 : i*32+32]
		d := halfAt(b)
		qs := b[4:36]
		for j := range y {
			y[j] = float32(int8(qs[j])) * d
		}
	}
}

// encodeQ8_1 is quantize_row_q8_1_ref: as Q8_0 plus s = sum(q)*d.
func encodeQ8_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/32; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ8_1 : (i+1)*blockQ8_1]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		sum := 0
		for j, v := range x {
			q := roundAway(float32(v * id))
			b[4+j] = byte(q)
			sum += int(q)
		}
		putHalf(b[2:], float32(sum)*d)
	}
}

// roundAway is C's roundf (halves away from zero) converted to int8, saturating.
func roundAway(f float32) int8 {
	r := math.Round(float64(f))
	switch {
	case r >= 127:
		return 127
	case r <= -128:
		return -128
	case r != r:
		return 0
	}
	return int8(r)
}
