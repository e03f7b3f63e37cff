package gguf

import "encoding/binary"

// Q3_K: super-blocks of 256 weights in 16 sub-blocks of 16 with 6-bit signed
// scales (ggml-common.h).
//
//	block_q3_K { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d }
//	x = d*(sc-32) * (q - 4*(1-hbit))
//
// The 2 low bits are packed as in Q2_K; the high bit of weight 32k+l (k =
// 0..7, l = 0..31) is bit k of hmask[l]. scales holds 16 6-bit values: low
// nibbles in bytes 0..7, high 2-bit pairs in bytes 8..11.

const blockQ3_K = 110

// unpackQ3KScales expands the 12 packed scale bytes into 16 values in
// [0, 64) (ggml's kmask1/kmask2 shuffle).
func unpackQ3KScales(packed []byte, out *[16]int8) {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	a0 := binary.LittleEndian.Uint32(packed[0:])
	a1 := binary.LittleEndian.Uint32(packed[4:])
	tmp := binary.LittleEndian.Uint32(packed[8:])
	aux := [4]uint32{
		a0&kmask2 | ((tmp>>0)&kmask1)<<4,
		a1&kmask2 | ((tmp>>2)&kmask1)<<4,
		(a0>>4)&kmask2 | ((tmp>>4)&kmask1)<<4,
		(a1>>4)&kmask2 | ((tmp>>6)&kmask1)<<4,
	}
	for k, v := range aux {
		out[4*k+0] = int8(v)
		out[4*k+1] = int8(v >> 8)
		out[4*k+2] = int8(v >> 16)
		out[4*k+3] = int8(v >> 24)
	}
}

func decodeQ3_K(src []byte, dst []float32) {
	var scales [16]int8
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ3_K : (i+1)*blockQ3_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		hm := b[0:32]
		dAll := halfAt(b[108:])
		unpackQ3KScales(b[96:108], &scales)
		is := 0
		m := byte(1)
		for h := 0; h < 2; h++ {
			q := b[32+32*h : 32+32*h+32]
			for k := 0; k < 4; k++ {
				shift := uint(2 * k)
				for half := 0; half < 2; half++ {
					dl := dAll * float32(int(scales[is])-32)
					is++
					o := 16 * half
					yy := y[128*h+32*k+o : 128*h+32*k+o+16]
					for l := 0; l < 16; l++ {
						v := int((q[o+l] >> shift) & 3)
						if hm[o+l]&m == 0 {
							v -= 4
						}
						yy[l] = dl * float32(v)
					}
				}
				m <<= 1
			}
		}
	}
}

// encodeQ3_K is quantize_row_q3_K_ref: per sub-block make_q3_quants(nmax 4)
// with coordinate refinement, scales quantized to 6 bits against the largest.
func encodeQ3_K(src []float32, dst []byte) {
	var (
		L      [QK_K]int8
		scales [16]float32
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K]
		b := dst[i*blockQ3_K : (i+1)*blockQ3_K]
		var maxScale, amax float32
		for j := 0; j < 16; j++ {
			scales[j] = makeQ3Quants(4, x[16*j:16*j+16], L[16*j:16*j+16])
			if s := abs32(scales[j]); s > amax {
				amax, maxScale = s, scales[j]
			}
		}
		ps := b[96:108]
		clear(ps)
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := 0; j < 16; j++ {
				l := int8(nearestInt(float32(iscale * scales[j])))
				l = max(-32, min(31, l)) + 32
				if j < 8 {
					ps[j] = byte(l & 0xf)
				} else {
					ps[j-8] |= byte(l&0xf) << 4
				}
				l >>= 4
				ps[j%4+8] |= byte(l) << (2 * (j / 4))
			}
			putHalf(b[108:], 1/iscale)
		} else {
			putHalf(b[108:], 0)
		}
		d := halfAt(b[108:])
		for j := 0; j < 16; j++ {
			var sc int8
			if j < 8 {
				sc = int8(ps[j] & 0xf)
			} else {
				sc = int8(ps[j-8] >> 4)
			}
			sc = (sc | int8((ps[8+j%4]>>(2*(j/4)))&3)<<4) - 32
			dj := d * float32(sc)
			if dj == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(x[16*j+ii] / dj)
				L[16*j+ii] = int8(max(-4, min(3, l)) + 4)
			}
		}
		hmask := b[0:32]
		clear(hmask)
		m, hm := 0, byte(1)
		for j := 0; j < QK_K; j++ {
			if L[j] > 3 {
				hmask[m] |= hm
				L[j] -= 4
			}
			if m++; m == QK_K/8 {
				m = 0
				hm <<= 1
			}
		}
		for h := 0; h < 2; h++ {
			for l := 0; l < 32; l++ {
				o := 128*h + l
				b[32+32*h+l] = uint8(L[o]) | uint8(L[o+32])<<2 | uint8(L[o+64])<<4 | uint8(L[o+96])<<6
			}
		}
	}
}
