package gguf

import "encoding/binary"

// IQ4_NL and IQ4_XS: 4-bit indices into a fixed non-linear codebook
// (ggml-common.h kvalues_iq4nl).
//
//	block_iq4_nl { f16 d; u8 qs[16] }                                    32 weights
//	block_iq4_xs { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128] }     256 weights
//	x = d * kvalues[q]            (IQ4_NL)
//	x = d*(ls-32) * kvalues[q]    (IQ4_XS, ls the 6-bit scale of the 32-weight sub-block)
//
// Nibbles are packed as in Q4_0 within each 32-weight (sub-)block.

const (
	blockIQ4_NL = 18
	blockIQ4_XS = 136
)

// KValuesIQ4NL is ggml's kvalues_iq4nl codebook.
var KValuesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

func decodeIQ4_NL(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockIQ4_NL : (i+1)*blockIQ4_NL]
		y := dst[i*32 : i*32+32]
		d := halfAt(b)
		qs := b[2:18]
		for j := 0; j < 16; j++ {
			y[j] = d * float32(KValuesIQ4NL[qs[j]&0xf])
			y[j+16] = d * float32(KValuesIQ4NL[qs[j]>>4])
		}
	}
}

// IQ4XSScale returns the 6-bit scale (0..63, 32 meaning 0) of sub-block ib
// of an IQ4_XS block.
func IQ4XSScale(block []byte, ib int) int {
	scalesH := binary.LittleEndian.Uint16(block[2:])
	return int((block[4+ib/2]>>(4*(ib%2)))&0xf) | int((scalesH>>(2*ib))&3)<<4
}

func decodeIQ4_XS(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockIQ4_XS : (i+1)*blockIQ4_XS]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := halfAt(b)
		for ib := 0; ib < 8; ib++ {
			dl := d * float32(IQ4XSScale(b, ib)-32)
			qs := b[8+16*ib : 8+16*ib+16]
			yy := y[32*ib : 32*ib+32]
			for j := 0; j < 16; j++ {
				yy[j] = dl * float32(KValuesIQ4NL[qs[j]&0xf])
				yy[j+16] = dl * float32(KValuesIQ4NL[qs[j]>>4])
			}
		}
	}
}

// bestIndexIQ4 is best_index_int8 over the sorted codebook: the index of
// the value nearest x, ties going up.
func bestIndexIQ4(x float32) int {
	val := &KValuesIQ4NL
	if x <= float32(val[0]) {
		return 0
	}
	if x >= float32(val[15]) {
		return 15
	}
	ml, mu := 0, 15
	for mu-ml > 1 {
		mav := (ml + mu) / 2
		if x < float32(val[mav]) {
			mu = mav
		} else {
			ml = mav
		}
	}
	if x-float32(val[mu-1]) < float32(val[mu])-x {
		return mu - 1
	}
	return mu
}

// iq4Scale is the per-32-weight search of quantize_row_iq4_nl_impl without
// importance weights (w = x^2) and ntry 7: start from d = -max/-127, fit
// the least-squares scale for the resulting codebook indices, then try 15
// scales (itry-127)/max and keep the best fit. L receives the indices of the
// starting scale; the caller recomputes them from the final scale.
func iq4Scale(x []float32, L []uint8) float32 {
	const ntry = 7
	val := &KValuesIQ4NL
	var amax, maxv float32
	for _, v := range x {
		if av := abs32(v); av > amax {
			amax, maxv = av, v
		}
	}
	if amax < groupMaxEps {
		return 0
	}
	d := -maxv / float32(val[0])
	id := 1 / d
	var sumqx, sumq2 float32
	for j, v := range x {
		l := bestIndexIQ4(float32(id * v))
		L[j] = uint8(l)
		q := float32(val[l])
		w := float32(v * v)
		sumqx += float32(float32(w*q) * v)
		sumq2 += float32(float32(w*q) * q)
	}
	d = sumqx / sumq2
	best := float32(d * sumqx)
	for itry := -ntry; itry <= ntry; itry++ {
		id = float32(itry+int(val[0])) / maxv
		sumqx, sumq2 = 0, 0
		for _, v := range x {
			q := float32(val[bestIndexIQ4(float32(id*v))])
			w := float32(v * v)
			sumqx += float32(float32(w*q) * v)
			sumq2 += float32(float32(w*q) * q)
		}
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			d = sumqx / sumq2
			best = float32(d * sumqx)
		}
	}
	return d
}

// encodeIQ4_NL is quantize_iq4_nl without an importance matrix (what
// llama-quantize runs): one searched scale per 32 weights.
func encodeIQ4_NL(src []float32, dst []byte) {
	var L [32]uint8
	for i := 0; i < len(src)/32; i++ {
		x := src[32*i : 32*i+32]
		b := dst[blockIQ4_NL*i : blockIQ4_NL*(i+1)]
		d := iq4Scale(x, L[:])
		putHalf(b, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for j, v := range x {
			L[j] = uint8(bestIndexIQ4(float32(id * v)))
		}
		for j := 0; j < 16; j++ {
			b[2+j] = L[j] | L[j+16]<<4
		}
	}
}

// encodeIQ4_XS is quantize_iq4_xs without an importance matrix: searched
// scales per 32 weights, quantized to 6 bits against the largest.
func encodeIQ4_XS(src []float32, dst []byte) {
	var (
		L      [QK_K]uint8
		scales [8]float32
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[QK_K*i : QK_K*(i+1)]
		b := dst[blockIQ4_XS*i : blockIQ4_XS*(i+1)]
		clear(b)
		var maxScale, amaxScale float32
		for ib := 0; ib < 8; ib++ {
			scales[ib] = iq4Scale(x[32*ib:32*ib+32], L[32*ib:32*ib+32])
			if ad := abs32(scales[ib]); ad > amaxScale {
				amaxScale, maxScale = ad, scales[ib]
			}
		}
		d := -maxScale / 32
		putHalf(b, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var scalesH uint16
		for ib := 0; ib < 8; ib++ {
			l := max(-32, min(31, nearestInt(float32(id*scales[ib]))))
			dl := d * float32(l)
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			for j, v := range x[32*ib : 32*ib+32] {
				L[32*ib+j] = uint8(bestIndexIQ4(float32(idl * v)))
			}
			l += 32
			if ib%2 == 0 {
				b[4+ib/2] = uint8(l & 0xf)
			} else {
				b[4+ib/2] |= uint8(l&0xf) << 4
			}
			scalesH |= uint16(l>>4) << (2 * ib)
		}
		binary.LittleEndian.PutUint16(b[2:], scalesH)
		for ib := 0; ib < 8; ib++ {
			for j := 0; j < 16; j++ {
				b[8+16*ib+j] = L[32*ib+j] | L[32*ib+16+j]<<4
			}
		}
	}
}
