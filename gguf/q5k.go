package gguf

// Q5_K: as Q4_K with a fifth bit per weight (ggml-common.h).
//
//	block_q5_K { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }
//	x = d*sc[j] * q - dmin*m[j]
//
// Sub-block 2g / 2g+1 take their fifth bit from bit 2g / 2g+1 of qh[l].

const blockQ5_K = 176

func decodeQ5_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ5_K : (i+1)*blockQ5_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := halfAt(b)
		dmin := halfAt(b[2:])
		scales := b[4:16]
		qh := b[16:48]
		ql := b[48:176]
		for g := 0; g < 4; g++ {
			sc, m := getScaleMinK4(2*g, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = getScaleMinK4(2*g+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			u1, u2 := byte(1)<<(2*g), byte(2)<<(2*g)
			qg := ql[32*g : 32*g+32]
			yg := y[64*g : 64*g+64]
			for l := 0; l < 32; l++ {
				h1, h2 := 0, 0
				if qh[l]&u1 != 0 {
					h1 = 16
				}
				if qh[l]&u2 != 0 {
					h2 = 16
				}
				yg[l] = float32(d1*float32(int(qg[l]&0xf)+h1)) - m1
				yg[l+32] = float32(d2*float32(int(qg[l]>>4)+h2)) - m2
			}
		}
	}
}

// encodeQ5_K is quantize_row_q5_K_ref: as Q4_K with nmax 31 and the search
// make_qkx2_quants(rmin -0.5, rdelta 0.1, 15 steps).
func encodeQ5_K(src []float32, dst []byte) {
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
		b := dst[i*blockQ5_K : (i+1)*blockQ5_K]
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
			scales[j], mins[j] = makeQKX2Quants(31, xs, weights[:], L[32*j:32*j+32], laux[:], -0.5, 0.1, 15, false)
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
				L[32*j+ii] = uint8(max(0, min(31, l)))
			}
		}
		qh := b[16:48]
		ql := b[48:176]
		clear(qh)
		m1, m2 := byte(1), byte(2)
		for g := 0; g < 4; g++ {
			for j := 0; j < 32; j++ {
				l1, l2 := L[64*g+j], L[64*g+j+32]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[32*g+j] = l1 | l2<<4
			}
			m1 <<= 2
			m2 <<= 2
		}
	}
}
