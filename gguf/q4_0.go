package gguf

import "math"

// Q4_0 and Q4_1: blocks of 32 weights with 4-bit quants (ggml-common.h).
//
//	block_q4_0 { f16 d; u8 qs[16] }          x = (q - 8) * d
//	block_q4_1 { f16 d; f16 m; u8 qs[16] }   x = q * d + m
//
// qs[j] holds element j in its low nibble and element j+16 in its high nibble.

const (
	blockQ4_0 = 18
	blockQ4_1 = 20
)

func decodeQ4_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ4_0 : (i+1)*blockQ4_0]
		y := dst[i*32 : i*32+32]
		d := halfAt(b)
		qs := b[2:18]
		for j := 0; j < 16; j++ {
			// float32 multiply of the signed quant: yields -0.0 for q==8 when d<0, as ggml.
			y[j] = float32(int(qs[j]&0x0f)-8) * d
			y[j+16] = float32(int(qs[j]>>4)-8) * d
		}
	}
}

// encodeQ4_0 is quantize_row_q4_0_ref: d = max/-8 where max is the value of
// largest magnitude, q = min(15, trunc(x/d + 8.5)).
func encodeQ4_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/32; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ4_0 : (i+1)*blockQ4_0]
		var amax, max float32
		for _, v := range x {
			if av := abs32(v); amax < av {
				amax, max = av, v
			}
		}
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		for j := 0; j < 16; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+16] * id)
			b[2+j] = uint8(min(15, truncInt8(x0+8.5))) | uint8(min(15, truncInt8(x1+8.5)))<<4
		}
	}
}

func decodeQ4_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ4_1 : (i+1)*blockQ4_1]
		y := dst[i*32 : i*32+32]
		d := halfAt(b)
		m := halfAt(b[2:])
		qs := b[4:20]
		for j := 0; j < 16; j++ {
			y[j] = float32(float32(qs[j]&0x0f)*d) + m
			y[j+16] = float32(float32(qs[j]>>4)*d) + m
		}
	}
}

// encodeQ4_1 is quantize_row_q4_1_ref: d = (max-min)/15, m = min,
// q = min(15, trunc((x-min)/d + 0.5)).
func encodeQ4_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/32; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ4_1 : (i+1)*blockQ4_1]
		mn, mx := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			mn = min(mn, v)
			mx = max(mx, v)
		}
		d := (mx - mn) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		putHalf(b[2:], mn)
		for j := 0; j < 16; j++ {
			x0 := float32((x[j] - mn) * id)
			x1 := float32((x[j+16] - mn) * id)
			b[4+j] = uint8(min(15, truncInt8(x0+0.5))) | uint8(min(15, truncInt8(x1+0.5)))<<4
		}
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// truncInt8 is C's (int8_t)f for f in range; out-of-range or NaN inputs
// (which C leaves undefined) saturate instead of wrapping.
func truncInt8(f float32) int8 {
	switch {
	case f >= 127:
		return 127
	case f <= -128:
		return -128
	case f != f:
		return 0
	}
	return int8(f)
}
