package ops

import (
	"encoding/binary"
	"math"

	"ladder-engine/gguf"
)

// Plain Go reference dot kernels, one per weight type, following ggml's
// generic (non-SIMD) ggml_vec_dot_* in ggml-cpu-quants.c: integer sums per
// block, scaled by the product of the block scales and accumulated in
// float32. The SIMD kernels are tested against these.
//
// Block layouts are those of gguf (ggml-common.h); w is one weight row of n
// elements, a the activation row encoded in the kernel's ActType.

func half(b []byte) float32 { return gguf.F16ToF32(binary.LittleEndian.Uint16(b)) }

func f32At(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }

func dotF32Ref(n int, w, a []byte) float32 {
	var sum float64
	for i := 0; i < n; i++ {
		sum += float64(f32At(w[4*i:])) * float64(f32At(a[4*i:]))
	}
	return float32(sum)
}

// dotF16Ref: ggml_vec_dot_f16 sums in ggml_float (double).
func dotF16Ref(n int, w, a []byte) float32 {
	var sum float64
	for i := 0; i < n; i++ {
		sum += float64(half(w[2*i:])) * float64(half(a[2*i:]))
	}
	return float32(sum)
}

func dotBF16Ref(n int, w, a []byte) float32 {
	var sum float64
	for i := 0; i < n; i++ {
		sum += float64(gguf.BF16ToF32(binary.LittleEndian.Uint16(w[2*i:]))) *
			float64(gguf.BF16ToF32(binary.LittleEndian.Uint16(a[2*i:])))
	}
	return float32(sum)
}

// dotQ4_0Ref: Q4_0 x Q8_0, sum((q-8)*y) * dw*da per block.
func dotQ4_0Ref(n int, w, a []byte) float32 {
	var sum float32
	for ib := 0; ib < n/32; ib++ {
		x := (*[18]byte)(w[18*ib:])
		y := (*[34]byte)(a[34*ib:])
		sumi := 0
		for j := 0; j < 16; j++ {
			sumi += (int(x[2+j]&0xf) - 8) * int(int8(y[2+j]))
			sumi += (int(x[2+j]>>4) - 8) * int(int8(y[18+j]))
		}
		sum += float32(sumi) * (half(x[:]) * half(y[:]))
	}
	return sum
}

// dotQ4_1Ref: Q4_1 x Q8_1, dw*da*sum(q*y) + m*s, s = da*sum(y) from Q8_1.
func dotQ4_1Ref(n int, w, a []byte) float32 {
	var sum float32
	for ib := 0; ib < n/32; ib++ {
		x := w[20*ib : 20*ib+20]
		y := a[36*ib : 36*ib+36]
		sumi := 0
		for j := 0; j < 16; j++ {
			sumi += int(x[4+j]&0xf) * int(int8(y[4+j]))
			sumi += int(x[4+j]>>4) * int(int8(y[20+j]))
		}
		sum += float32(half(x)*half(y))*float32(sumi) + float32(half(x[2:])*half(y[2:]))
	}
	return sum
}

// dotQ5_0Ref: Q5_0 x Q8_0.
func dotQ5_0Ref(n int, w, a []byte) float32 {
	var sum float32
	for ib := 0; ib < n/32; ib++ {
		x := w[22*ib : 22*ib+22]
		y := a[34*ib : 34*ib+34]
		qh := binary.LittleEndian.Uint32(x[2:])
		sumi := 0
		for j := 0; j < 16; j++ {
			x0 := int(x[6+j]&0xf) | int((qh>>j)<<4)&0x10
			x1 := int(x[6+j]>>4) | int(qh>>(j+12))&0x10
			sumi += (x0 - 16) * int(int8(y[2+j]))
			sumi += (x1 - 16) * int(int8(y[18+j]))
		}
		sum += float32(sumi) * (half(x) * half(y))
	}
	return sum
}

// dotQ5_1Ref: Q5_1 x Q8_1.
func dotQ5_1Ref(n int, w, a []byte) float32 {
	var sum float32
	for ib := 0; ib < n/32; ib++ {
		x := w[24*ib : 24*ib+24]
		y := a[36*ib : 36*ib+36]
		qh := binary.LittleEndian.Uint32(x[4:])
		sumi := 0
		for j := 0; j < 16; j++ {
			x0 := int(x[8+j]&0xf) | int((qh>>j)<<4)&0x10
			x1 := int(x[8+j]>>4) | int(qh>>(j+12))&0x10
			sumi += x0 * int(int8(y[4+j]))
			sumi += x1 * int(int8(y[20+j]))
		}
		sum += float32(half(x)*half(y))*float32(sumi) + float32(half(x[2:])*half(y[2:]))
	}
	return sum
}

// dotQ8_0Ref: Q8_0 x Q8_0.
func dotQ8_0Ref(n int, w, a []byte) float32 {
	var sum float32
	for ib := 0; ib < n/32; ib++ {
		x := (*[34]byte)(w[34*ib:])
		y := (*[34]byte)(a[34*ib:])
		sumi := 0
		for j := 2; j < 34; j++ {
			sumi += int(int8(x[j])) * int(int8(y[j]))
		}
		sum += float32(sumi) * (half(x[:]) * half(y[:]))
	}
	return sum
}

// dotIQ4_NLRef: IQ4_NL x Q8_0 through the kvalues codebook.
func dotIQ4_NLRef(n int, w, a []byte) float32 {
	var sum float32
	for ib := 0; ib < n/32; ib++ {
		x := w[18*ib : 18*ib+18]
		y := a[34*ib : 34*ib+34]
		sumi := 0
		for j := 0; j < 16; j++ {
			sumi += int(gguf.KValuesIQ4NL[x[2+j]&0xf]) * int(int8(y[2+j]))
			sumi += int(gguf.KValuesIQ4NL[x[2+j]>>4]) * int(int8(y[18+j]))
		}
		sum += (half(x) * half(y)) * float32(sumi)
	}
	return sum
}

// Q8_K activation block: f32 d; i8 qs[256]; i16 bsums[16].
const q8KBlock = 292

func q8KBsum(y []byte, j int) int { return int(int16(binary.LittleEndian.Uint16(y[4+256+2*j:]))) }

// dotQ2_KRef: Q2_K x Q8_K; the mins are folded in through the activation
// group sums (bsums).
func dotQ2_KRef(n int, w, a []byte) float32 {
	var sum float32
	for i := 0; i < n/256; i++ {
		x := (*[84]byte)(w[84*i:])
		y := (*[q8KBlock]byte)(a[q8KBlock*i:])
		sc := x[0:16]
		summs := 0
		for j := 0; j < 16; j++ {
			summs += int(sc[j]>>4) * q8KBsum(y[:], j)
		}
		isum := 0
		for h := 0; h < 2; h++ { // 128 weights: 32 bytes of qs, 4 shifts
			qs := (*[32]byte)(x[16+32*h:])
			for k := 0; k < 4; k++ {
				shift := uint(2 * k)
				yq := (*[32]byte)(y[4+128*h+32*k:])
				s0, s1 := 0, 0
				for l := 0; l < 16; l++ {
					s0 += int(qs[l]>>shift&3) * int(int8(yq[l]))
					s1 += int(qs[l+16]>>shift&3) * int(int8(yq[l+16]))
				}
				isum += int(sc[8*h+2*k]&0xf)*s0 + int(sc[8*h+2*k+1]&0xf)*s1
			}
		}
		dy := f32At(y[:])
		sum += dy*half(x[80:])*float32(isum) - dy*half(x[82:])*float32(summs)
	}
	return sum
}

// dotQ3_KRef: Q3_K x Q8_K.
func dotQ3_KRef(n int, w, a []byte) float32 {
	var sum float32
	var scales [16]int8
	for i := 0; i < n/256; i++ {
		x := (*[110]byte)(w[110*i:])
		y := (*[q8KBlock]byte)(a[q8KBlock*i:])
		unpackQ3KScales(x[96:108], &scales)
		hm := (*[32]byte)(x[0:])
		isum := 0
		for h := 0; h < 2; h++ {
			qs := (*[32]byte)(x[32+32*h:])
			for k := 0; k < 4; k++ {
				shift, bit := uint(2*k), byte(1)<<(4*h+k)
				yq := (*[32]byte)(y[4+128*h+32*k:])
				s0, s1 := 0, 0
				for l := 0; l < 32; l++ {
					q := int(qs[l]>>shift) & 3
					if hm[l]&bit == 0 {
						q -= 4
					}
					if l < 16 {
						s0 += q * int(int8(yq[l]))
					} else {
						s1 += q * int(int8(yq[l]))
					}
				}
				isum += (int(scales[8*h+2*k])-32)*s0 + (int(scales[8*h+2*k+1])-32)*s1
			}
		}
		sum += half(x[108:]) * f32At(y[:]) * float32(isum)
	}
	return sum
}

// unpackQ3KScales expands Q3_K's 12 packed scale bytes into 16 values in
// [0,64) (same shuffle as gguf's decoder).
func unpackQ3KScales(p []byte, out *[16]int8) {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	a0 := binary.LittleEndian.Uint32(p[0:])
	a1 := binary.LittleEndian.Uint32(p[4:])
	tmp := binary.LittleEndian.Uint32(p[8:])
	aux := [4]uint32{
		a0&kmask2 | (tmp&kmask1)<<4,
		a1&kmask2 | ((tmp>>2)&kmask1)<<4,
		(a0>>4)&kmask2 | ((tmp>>4)&kmask1)<<4,
		(a1>>4)&kmask2 | ((tmp>>6)&kmask1)<<4,
	}
	for k, v := range aux {
		out[4*k], out[4*k+1], out[4*k+2], out[4*k+3] = int8(v), int8(v>>8), int8(v>>16), int8(v>>24)
	}
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j (Q4_K/Q5_K).
func scaleMinK4(j int, q []byte) (d, m int) {
	if j < 4 {
		return int(q[j] & 63), int(q[j+4] & 63)
	}
	return int(q[j+4]&0xf | (q[j-4]>>6)<<4), int(q[j+4]>>4 | (q[j]>>6)<<4)
}

// dotQ4_KRef: Q4_K x Q8_K: d*sum_j sc_j*sum(q*y) - dmin*sum_j m_j*bsum_j.
func dotQ4_KRef(n int, w, a []byte) float32 {
	var sum float32
	for i := 0; i < n/256; i++ {
		x := (*[144]byte)(w[144*i:])
		y := (*[q8KBlock]byte)(a[q8KBlock*i:])
		isum, summs := 0, 0
		for g := 0; g < 4; g++ { // 32 bytes: sub-block 2g low nibbles, 2g+1 high
			qs := (*[32]byte)(x[16+32*g:])
			y0 := (*[32]byte)(y[4+64*g:])
			y1 := (*[32]byte)(y[4+64*g+32:])
			s0, s1 := 0, 0
			for l := 0; l < 32; l++ {
				s0 += int(qs[l]&0xf) * int(int8(y0[l]))
				s1 += int(qs[l]>>4) * int(int8(y1[l]))
			}
			sc0, m0 := scaleMinK4(2*g, x[4:16])
			sc1, m1 := scaleMinK4(2*g+1, x[4:16])
			isum += sc0*s0 + sc1*s1
			summs += m0*(q8KBsum(y[:], 4*g)+q8KBsum(y[:], 4*g+1)) + m1*(q8KBsum(y[:], 4*g+2)+q8KBsum(y[:], 4*g+3))
		}
		dy := f32At(y[:])
		sum += half(x[:])*dy*float32(isum) - half(x[2:])*dy*float32(summs)
	}
	return sum
}

// dotQ5_KRef: Q5_K x Q8_K.
func dotQ5_KRef(n int, w, a []byte) float32 {
	var sum float32
	for i := 0; i < n/256; i++ {
		x := w[176*i : 176*i+176]
		y := a[q8KBlock*i : q8KBlock*(i+1)]
		qh := x[16:48]
		isum, summs := 0, 0
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, x[4:16])
			summs += m * (q8KBsum(y, 2*j) + q8KBsum(y, 2*j+1))
			ql := x[48+32*(j/2) : 48+32*(j/2)+32]
			shift := uint(4 * (j % 2))
			s := 0
			for l := 0; l < 32; l++ {
				q := int(ql[l]>>shift&0xf) | int(qh[l]>>j&1)<<4
				s += q * int(int8(y[4+32*j+l]))
			}
			isum += sc * s
		}
		dy := f32At(y)
		sum += half(x)*dy*float32(isum) - half(x[2:])*dy*float32(summs)
	}
	return sum
}

// dotQ6_KRef: Q6_K x Q8_K.
func dotQ6_KRef(n int, w, a []byte) float32 {
	var sum float32
	for i := 0; i < n/256; i++ {
		x := (*[210]byte)(w[210*i:])
		y := (*[q8KBlock]byte)(a[q8KBlock*i:])
		isum := 0
		for h := 0; h < 2; h++ { // 128 weights: ql[64], qh[32], 8 scales
			ql := (*[64]byte)(x[64*h:])
			qh := (*[32]byte)(x[128+32*h:])
			yq := (*[128]byte)(y[4+128*h:])
			var s [8]int // sums per 16 weights, in scale order
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0xf|(qh[l]&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6)<<4) - 32
				s[is] += q1 * int(int8(yq[l]))
				s[is+2] += q2 * int(int8(yq[l+32]))
				s[is+4] += q3 * int(int8(yq[l+64]))
				s[is+6] += q4 * int(int8(yq[l+96]))
			}
			for j, v := range s {
				isum += int(int8(x[192+8*h+j])) * v
			}
		}
		sum += half(x[208:]) * f32At(y[:]) * float32(isum)
	}
	return sum
}

// dotIQ4_XSRef: IQ4_XS x Q8_K.
func dotIQ4_XSRef(n int, w, a []byte) float32 {
	var sum float32
	for i := 0; i < n/256; i++ {
		x := w[136*i : 136*i+136]
		y := a[q8KBlock*i : q8KBlock*(i+1)]
		isum := 0
		for ib := 0; ib < 8; ib++ {
			qs := x[8+16*ib : 8+16*ib+16]
			s := 0
			for j := 0; j < 16; j++ {
				s += int(gguf.KValuesIQ4NL[qs[j]&0xf]) * int(int8(y[4+32*ib+j]))
				s += int(gguf.KValuesIQ4NL[qs[j]>>4]) * int(int8(y[4+32*ib+16+j]))
			}
			isum += (gguf.IQ4XSScale(x, ib) - 32) * s
		}
		sum += half(x) * f32At(y) * float32(isum)
	}
	return sum
}
