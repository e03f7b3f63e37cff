package gguf

import (
	"encoding/binary"
	"math"
)

// Q5_0 and Q5_1: blocks of 32 weights with 5-bit quants (ggml-common.h).
//
//	block_q5_0 { f16 d; u8 qh[4]; u8 qs[16] }          x = (q - 16) * d
//	block_q5_1 { f16 d; f16 m; u8 qh[4]; u8 qs[16] }   x = q * d + m
//
// The low 4 bits are packed as in Q4_0; bit j of the little-endian uint32 qh
// is the fifth bit of element j.

const (
	blockQ5_0 = 22
	blockQ5_1 = 24
)

func decodeQ5_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ5_0 : (i+1)*blockQ5_0]
		y := dst[i*32 : i*32+32]
		d := halfAt(b)
		qh := binary.LittleEndian.Uint32(b[2:])
		qs := b[6:22]
		for j := 0; j < 16; j++ {
			xh0 := byte((qh>>j)<<4) & 0x10
			xh1 := byte(qh>>(j+12)) & 0x10
			y[j] = float32(int((qs[j]&0x0f)|xh0)-16) * d
			y[j+16] = float32(int((qs[j]>>4)|xh1)-16) * d
		}
	}
}

// encodeQ5_0 is quantize_row_q5_0_ref: d = max/-16, q = min(31, trunc(x/d + 16.5)).
func encodeQ5_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/32; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ5_0 : (i+1)*blockQ5_0]
		var amax, max float32
		for _, v := range x {
			if av := abs32(v); amax < av {
				amax, max = av, v
			}
		}
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+16] * id)
			xi0 := uint8(min(31, truncInt8(x0+16.5)))
			xi1 := uint8(min(31, truncInt8(x1+16.5)))
			b[6+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

func decodeQ5_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ5_1 : (i+1)*blockQ5_1]
		y := dst[i*32 : i*32+32]
		d := halfAt(b)
		m := halfAt(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		qs := b[8:24]
		for j := 0; j < 16; j++ {
			xh0 := byte((qh>>j)<<4) & 0x10
			xh1 := byte(qh>>(j+12)) & 0x10
			y[j] = float32(float32((qs[j]&0x0f)|xh0)*d) + m
			y[j+16] = float32(float32((qs[j]>>4)|xh1)*d) + m
		}
	}
}

// encodeQ5_1 is quantize_row_q5_1_ref: d = (max-min)/31, m = min,
// q = trunc((x-min)/d + 0.5).
func encodeQ5_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/32; i++ {
		x := src[i*32 : i*32+32]
		b := dst[i*blockQ5_1 : (i+1)*blockQ5_1]
		mn, mx := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			mn = min(mn, v)
			mx = max(mx, v)
		}
		d := (mx - mn) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		putHalf(b[2:], mn)
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := float32((x[j] - mn) * id)
			x1 := float32((x[j+16] - mn) * id)
			xi0 := uint8(truncInt8(x0 + 0.5))
			xi1 := uint8(truncInt8(x1 + 0.5))
			b[8+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}
