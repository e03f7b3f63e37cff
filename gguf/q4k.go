package gguf

// Q4_K: super-blocks of 256 weights in 8 sub-blocks of 32 with 6-bit scales
// and mins (ggml-common.h).
//
//	block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }
//	x = d*sc[j] * q - dmin*m[j]
//
// qs holds 4 groups of 32 bytes; group g has sub-block 2g in its low nibbles
// and sub-block 2g+1 in its high nibbles.

const blockQ4_K = 144

func decodeQ4_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ4_K : (i+1)*blockQ4_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := halfAt(b)
		dmin := halfAt(b[2:])
		scales := b[4:16]
		q := b[16:144]
		for g := 0; g < 4; g++ {
			sc, m := getScaleMinK4(2*g, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = getScaleMinK4(2*g+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			qg := q[32*g : 32*g+32]
			yg := y[64*g : 64*g+64]
			for l := 0; l < 32; l++ {
				yg[l] = float32(d1*float32(qg[l]&0xf)) - m1
				yg[l+32] = float32(d2*float32(qg[l]>>4)) - m2
			}
		}
	}
}

// encodeQ4_K is quantize_row_q4_K_ref (what llama-quantize uses without an
// importance matrix): per sub-block make_qkx2_quants with weights
// av_x + |x|, then the scales and mins are quantized to 6 bits against
// their maxima and the quants recomputed with the rounded scales.
func encodeQ4_K(src []float32, dst []byte) {
	var (
		L       [QK_K]uint8
		laux    [32]uint8
		weights [32]float32
		scales  [8]float32
		mins    [8]float32
		ls, lm  [8]uint8
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K]
		b := dst[i*blockQ4_K : (i+1)*blockQ4_K]
		var maxScale, maxMin float32
		for j := 0; j < 8; j++ {
			xs := x[32*j : 32*j+32]
			var sumX2 float32
			for _, v := range xs {
				sumX2 += float32(v * v)
			}
			avX := sqrt32(sumX2 / 32)
			for l, v := range xs {
				weights[l] = avX + abs32(v)
			}
			scales[j], mins[j] = makeQKX2Quants(15, xs, weights[:], L[32*j:32*j+32], laux[:], -1, 0.1, 20, false)
			maxScale = max(maxScale, scales[j])
			maxMin = max(maxMin, mins[j])
		}
		var invScale, invMin float32
		if maxScale > 0 {
			invScale = 63 / maxScale
		}
		if maxMin > 0 {
			invMin = 63 / maxMin
		}
		for j := 0; j < 8; j++ {
			ls[j] = min(63, uint8(nearestInt(float32(invScale*scales[j]))))
			lm[j] = min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		}
		clear(b[4:16])
		putScaleMinK4(b[4:16], &ls, &lm)
		putHalf(b, maxScale/63)
		putHalf(b[2:], maxMin/63)
		d, dmin := halfAt(b), halfAt(b[2:])
		for j := 0; j < 8; j++ {
			sc, m := getScaleMinK4(j, b[4:16])
			dj := d * float32(sc)
			if dj == 0 {
				continue
			}
			dm := dmin * float32(m)
			for ii := 0; ii < 32; ii++ {
				l := nearestInt((x[32*j+ii] + dm) / dj)
				L[32*j+ii] = uint8(max(0, min(15, l)))
			}
		}
		q := b[16:144]
		for g := 0; g < 4; g++ {
			for l := 0; l < 32; l++ {
				q[32*g+l] = L[64*g+l] | L[64*g+l+32]<<4
			}
		}
	}
}
