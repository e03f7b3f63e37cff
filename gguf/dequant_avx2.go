//go:build goexperiment.simd && amd64

package gguf

import "simd/archsimd"

// AVX2 decoders for CPUs without AVX-512, bit for bit the scalar ones (the
// same float32 multiplies and subtractions, never fused;
// TestFastDecodersBitExact). Block scales are converted and multiplied in
// vector registers and shifts use vector counts or multiplies: on the CPU
// these were written on, a legacy-SSE instruction (Go's scalar float code,
// or the MOVQ archsimd's ShiftAll* uses for its count) between 256-bit
// instructions stalled for about a microsecond.

var avx2Decoders = map[Type]func([]byte, []float32){
	TypeF16: decodeF16AVX2, TypeQ4_0: decodeQ4_0AVX2, TypeQ8_0: decodeQ8_0AVX2, TypeQ4_K: decodeQ4_KAVX2, TypeQ6_K: decodeQ6_KAVX2,
}

func useAVX2Decoders() {
	for t, f := range avx2Decoders {
		typeTable[t].decode = f
	}
}

func shl32x8(v archsimd.Uint32x8, n uint32) archsimd.Uint32x8 {
	return v.ShiftLeft(archsimd.BroadcastUint32x8(n))
}

// halfV8 widens 8 halves (finite or not) to float32, exactly: exponent and
// mantissa 13 bits up are the value times 2^-112, fixed by one multiply;
// infinities and NaNs get the all-ones exponent.
func halfV8(u archsimd.Uint32x8) archsimd.Float32x8 {
	em := shl32x8(u.And(archsimd.BroadcastUint32x8(0x7fff)), 13)
	f := em.AsFloat32x8().Mul(archsimd.BroadcastFloat32x8(0x1p112))
	special := u.And(archsimd.BroadcastUint32x8(0x7c00)).Equal(archsimd.BroadcastUint32x8(0x7c00))
	f = em.Or(archsimd.BroadcastUint32x8(0x7f800000)).AsFloat32x8().Merge(f, special)
	return f.AsUint32x8().Or(shl32x8(u.And(archsimd.BroadcastUint32x8(0x8000)), 16)).AsFloat32x8()
}

// halfB8 is the half at b[0:2] in all 8 lanes.
func halfB8(b []byte) archsimd.Float32x8 {
	return halfV8(archsimd.BroadcastUint32x8(uint32(b[0]) | uint32(b[1])<<8))
}

// store16 stores the 16 signed values of q times d at y[0:16].
func store16(q archsimd.Int8x16, d archsimd.Float32x8, y []float32) {
	w := q.ExtendToInt16()
	w.GetLo().ExtendToInt32().ConvertToFloat32().Mul(d).StoreSlice(y[0:8])
	w.GetHi().ExtendToInt32().ConvertToFloat32().Mul(d).StoreSlice(y[8:16])
}

// storeAffine16 is y = d*q - m for the 16 values of q, the multiply
// rounded before the subtraction as in ggml.
func storeAffine16(q archsimd.Int8x16, d, m archsimd.Float32x8, y []float32) {
	w := q.ExtendToInt16()
	w.GetLo().ExtendToInt32().ConvertToFloat32().Mul(d).Sub(m).StoreSlice(y[0:8])
	w.GetHi().ExtendToInt32().ConvertToFloat32().Mul(d).Sub(m).StoreSlice(y[8:16])
}

// shr16x16 shifts 16-bit lanes right by n (1..15): the high half of v·2^(16−n).
func shr16x16(v archsimd.Uint16x16, n uint) archsimd.Uint16x16 {
	return v.MulHigh(archsimd.BroadcastUint16x16(uint16(1) << (16 - n)))
}

// shl16x16 shifts 16-bit lanes left by n: the low half of v·2^n.
func shl16x16(v archsimd.Uint16x16, n uint) archsimd.Uint16x16 {
	return v.Mul(archsimd.BroadcastUint16x16(uint16(1) << n))
}

// i32b8 is the integer v as float32 in all 8 lanes.
func i32b8(v int) archsimd.Float32x8 { return archsimd.BroadcastInt32x8(int32(v)).ConvertToFloat32() }

func decodeF16AVX2(src []byte, dst []float32) {
	n := len(dst)
	src = src[:2*n]
	i := 0
	for ; i+8 <= n; i += 8 {
		halfV8(archsimd.LoadUint8x16Slice(src[2*i:]).AsUint16x8().ExtendToUint32()).StoreSlice(dst[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
	decodeF16(src[2*i:], dst[i:])
}

func decodeQ8_0AVX2(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ8_0 : (i+1)*blockQ8_0]
		y := dst[i*32 : i*32+32]
		d := halfB8(b)
		q := archsimd.LoadUint8x32Slice(b[2:]).AsInt8x32()
		store16(q.GetLo(), d, y[0:16])
		store16(q.GetHi(), d, y[16:32])
	}
	archsimd.ClearAVXUpperBits()
}

func decodeQ4_0AVX2(src []byte, dst []float32) {
	m := archsimd.BroadcastUint8x16(0x0f)
	eight := archsimd.BroadcastInt8x16(8)
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ4_0 : (i+1)*blockQ4_0]
		y := dst[i*32 : i*32+32]
		d := halfB8(b)
		v := archsimd.LoadUint8x16Slice(b[2:18])
		lo := v.And(m).AsInt8x16().Sub(eight)
		hi := v.AsUint16x8().MulHigh(archsimd.BroadcastUint16x8(1 << 12)).AsUint8x16().And(m).AsInt8x16().Sub(eight)
		store16(lo, d, y[0:16])
		store16(hi, d, y[16:32])
	}
	archsimd.ClearAVXUpperBits()
}

func decodeQ4_KAVX2(src []byte, dst []float32) {
	m := archsimd.BroadcastUint8x32(0x0f)
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ4_K : (i+1)*blockQ4_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := halfB8(b)
		dmin := halfB8(b[2:])
		scales := b[4:16]
		for g := 0; g < 4; g++ {
			sc, mn := getScaleMinK4(2*g, scales)
			d1, m1 := d.Mul(i32b8(int(sc))), dmin.Mul(i32b8(int(mn)))
			sc, mn = getScaleMinK4(2*g+1, scales)
			d2, m2 := d.Mul(i32b8(int(sc))), dmin.Mul(i32b8(int(mn)))
			qv := archsimd.LoadUint8x32Slice(b[16+32*g:])
			lo := qv.And(m).AsInt8x32()
			hi := shr16x16(qv.AsUint16x16(), 4).AsUint8x32().And(m).AsInt8x32()
			yg := y[64*g : 64*g+64]
			storeAffine16(lo.GetLo(), d1, m1, yg[0:16])
			storeAffine16(lo.GetHi(), d1, m1, yg[16:32])
			storeAffine16(hi.GetLo(), d2, m2, yg[32:48])
			storeAffine16(hi.GetHi(), d2, m2, yg[48:64])
		}
	}
	archsimd.ClearAVXUpperBits()
}

func decodeQ6_KAVX2(src []byte, dst []float32) {
	m4 := archsimd.BroadcastUint8x32(0x0f)
	m30 := archsimd.BroadcastUint8x32(0x30)
	off := archsimd.BroadcastInt8x32(32)
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ6_K : (i+1)*blockQ6_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := halfB8(b[208:])
		for h := 0; h < 2; h++ {
			qlA := archsimd.LoadUint8x32Slice(b[64*h:])
			qlB := archsimd.LoadUint8x32Slice(b[64*h+32:])
			qh := archsimd.LoadUint8x32Slice(b[128+32*h:])
			qh16 := qh.AsUint16x16()
			q := [4]archsimd.Int8x32{
				qlA.And(m4).Or(shl16x16(qh16, 4).AsUint8x32().And(m30)).AsInt8x32().Sub(off),
				qlB.And(m4).Or(shl16x16(qh16, 2).AsUint8x32().And(m30)).AsInt8x32().Sub(off),
				shr16x16(qlA.AsUint16x16(), 4).AsUint8x32().And(m4).Or(qh.And(m30)).AsInt8x32().Sub(off),
				shr16x16(qlB.AsUint16x16(), 4).AsUint8x32().And(m4).Or(shr16x16(qh16, 2).AsUint8x32().And(m30)).AsInt8x32().Sub(off),
			}
			sc := b[192+8*h : 192+8*h+8]
			yh := y[128*h : 128*h+128]
			for k := 0; k < 4; k++ {
				// y = (d*sc)*q: the scale product is rounded first, as in ggml.
				store16(q[k].GetLo(), d.Mul(i32b8(int(int8(sc[2*k])))), yh[32*k:32*k+16])
				store16(q[k].GetHi(), d.Mul(i32b8(int(int8(sc[2*k+1])))), yh[32*k+16:32*k+32])
			}
		}
	}
	archsimd.ClearAVXUpperBits()
}
