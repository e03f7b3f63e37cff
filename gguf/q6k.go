package gguf

// Q6_K: super-blocks of 256 weights in 16 sub-blocks of 16 with signed 8-bit
// scales (ggml-common.h).
//
//	block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }
//	x = d*sc[j] * (q - 32)
//
// Each half (128 weights) uses 64 ql bytes and 32 qh bytes: weight l+32k of
// the half takes the low/high nibble of ql[l] or ql[l+32] and bits 2k..2k+1
// of qh[l].

const blockQ6_K = 210

func decodeQ6_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ6_K : (i+1)*blockQ6_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := halfAt(b[208:])
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			sc := b[192+8*h : 192+8*h+8]
			yh := y[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				yh[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				yh[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				yh[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				yh[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
		}
	}
}

// encodeQ6_K is quantize_row_q6_K_ref: per sub-block make_qx_quants(nmax 32),
// the 16 scales quantized to int8 against the largest, the quants
// recomputed with the rounded scales.
func encodeQ6_K(src []float32, dst []byte) {
	var (
		L      [QK_K]int8
		scales [16]float32
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K]
		b := dst[i*blockQ6_K : (i+1)*blockQ6_K]
		var maxScale, maxAbsScale float32
		for ib := 0; ib < 16; ib++ {
			s := makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16])
			scales[ib] = s
			if as := abs32(s); as > maxAbsScale {
				maxAbsScale, maxScale = as, s
			}
		}
		if maxAbsScale < groupMaxEps {
			clear(b)
			continue
		}
		iscale := -128 / maxScale
		putHalf(b[208:], 1/iscale)
		for ib := 0; ib < 16; ib++ {
			b[192+ib] = byte(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
		}
		d := halfAt(b[208:])
		for j := 0; j < 16; j++ {
			dj := d * float32(int8(b[192+j]))
			if dj == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(x[16*j+ii] / dj)
				L[16*j+ii] = int8(max(-32, min(31, l)) + 32)
			}
		}
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			Lh := L[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				q1, q2, q3, q4 := uint8(Lh[l]), uint8(Lh[l+32]), uint8(Lh[l+64]), uint8(Lh[l+96])
				ql[l] = q1&0xf | (q3&0xf)<<4
				ql[l+32] = q2&0xf | (q4&0xf)<<4
				qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
	}
}
