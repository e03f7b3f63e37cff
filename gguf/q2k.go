package gguf

// Q2_K: super-blocks of 256 weights in 16 sub-blocks of 16 with 4-bit scales
// and mins (ggml-common.h).
//
//	block_q2_K { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin }
//	x = d*(sc&15) * q - dmin*(sc>>4)
//
// Each half (128 weights) uses 32 qs bytes; weight l+32k of the half sits in
// bits 2k..2k+1 of qs[l].

const blockQ2_K = 84

func decodeQ2_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ2_K : (i+1)*blockQ2_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		scales := b[0:16]
		d := halfAt(b[80:])
		dmin := halfAt(b[82:])
		is := 0
		for h := 0; h < 2; h++ {
			q := b[16+32*h : 16+32*h+32]
			for k := 0; k < 4; k++ {
				shift := uint(2 * k)
				for half := 0; half < 2; half++ {
					sc := scales[is]
					is++
					dl, ml := d*float32(sc&0xf), dmin*float32(sc>>4)
					qq := q[16*half : 16*half+16]
					yy := y[128*h+32*k+16*half : 128*h+32*k+16*half+16]
					for l := 0; l < 16; l++ {
						yy[l] = float32(dl*float32((qq[l]>>shift)&3)) - ml
					}
				}
			}
		}
	}
}

// encodeQ2_K is quantize_row_q2_K_ref: per sub-block make_qkx2_quants(nmax 3,
// weights |x|, mean absolute error), scales and mins quantized to 4 bits.
func encodeQ2_K(src []float32, dst []byte) {
	var (
		L       [QK_K]uint8
		laux    [16]uint8
		weights [16]float32
		scales  [16]float32
		mins    [16]float32
	)
	const q4scale = 15
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K]
		b := dst[i*blockQ2_K : (i+1)*blockQ2_K]
		var maxScale, maxMin float32
		for j := 0; j < 16; j++ {
			xs := x[16*j : 16*j+16]
			for l, v := range xs {
				weights[l] = abs32(v)
			}
			scales[j], mins[j] = makeQKX2Quants(3, xs, weights[:], L[16*j:16*j+16], laux[:], -0.5, 0.1, 15, true)
			maxScale = max(maxScale, scales[j])
			maxMin = max(maxMin, mins[j])
		}
		sc := b[0:16]
		if maxScale > 0 {
			iscale := q4scale / maxScale
			for j := range sc {
				sc[j] = uint8(nearestInt(float32(iscale * scales[j])))
			}
			putHalf(b[80:], maxScale/q4scale)
		} else {
			clear(sc)
			putHalf(b[80:], 0)
		}
		if maxMin > 0 {
			iscale := q4scale / maxMin
			for j := range sc {
				sc[j] |= uint8(nearestInt(float32(iscale*mins[j]))) << 4
			}
			putHalf(b[82:], maxMin/q4scale)
		} else {
			putHalf(b[82:], 0)
		}
		d, dmin := halfAt(b[80:]), halfAt(b[82:])
		for j := 0; j < 16; j++ {
			dj := d * float32(sc[j]&0xf)
			if dj == 0 {
				continue
			}
			dm := dmin * float32(sc[j]>>4)
			for ii := 0; ii < 16; ii++ {
				l := nearestInt((x[16*j+ii] + dm) / dj)
				L[16*j+ii] = uint8(max(0, min(3, l)))
			}
		}
		for h := 0; h < 2; h++ {
			for l := 0; l < 32; l++ {
				o := 128*h + l
				b[16+32*h+l] = L[o] | L[o+32]<<2 | L[o+64]<<4 | L[o+96]<<6
			}
		}
	}
}
