//go:build goexperiment.simd && amd64

package gguf

import "simd/archsimd"

// AVX-512 decoders for the types whose dequantization is on a hot path
// (backward through frozen weights dequantizes them every step). They are
// bit-identical to the scalar decoders: the same float32 multiplies and
// subtractions, lane by lane, never fused (TestFastDecodersBitExact, and
// the ggml hash test runs through them in this build).

func init() {
	if !archsimd.X86.AVX512() {
		if archsimd.X86.AVX2() {
			useAVX2Decoders() // dequant_avx2.go
		}
		return
	}
	typeTable[TypeF16].decode = decodeF16AVX512
	typeTable[TypeQ4_0].decode = decodeQ4_0AVX512
	typeTable[TypeQ8_0].decode = decodeQ8_0AVX512
	typeTable[TypeQ4_K].decode = decodeQ4_KAVX512
	typeTable[TypeQ6_K].decode = decodeQ6_KAVX512
}

// scalarDecoders keeps the plain decoders for tests of the fast ones.
var scalarDecoders = map[Type]func([]byte, []float32){
	TypeF16: decodeF16, TypeQ4_0: decodeQ4_0, TypeQ8_0: decodeQ8_0, TypeQ4_K: decodeQ4_K, TypeQ6_K: decodeQ6_K,
}

// storeInt8x16 converts 16 signed values to float32, multiplies by d and
// stores them at y[0:16].
func storeInt8x16(q archsimd.Int8x16, d archsimd.Float32x16, y []float32) {
	q.ExtendToInt32().ConvertToFloat32().Mul(d).StoreSlice(y)
}

// storeAffine is y = d*q - m for 16 unsigned values q (< 128), with the
// multiply rounded before the subtraction as in ggml.
func storeAffine(q archsimd.Int8x16, d, m archsimd.Float32x16, y []float32) {
	q.ExtendToInt32().ConvertToFloat32().Mul(d).Sub(m).StoreSlice(y)
}

func decodeF16AVX512(src []byte, dst []float32) {
	n := len(dst)
	src = src[:2*n]
	i := 0
	for ; i+16 <= n; i += 16 {
		h := archsimd.LoadUint8x32Slice(src[2*i:]).AsUint16x16()
		u := h.ExtendToUint32()
		em := u.And(archsimd.BroadcastUint32x16(0x7fff)).ShiftAllLeft(13)
		f := em.AsFloat32x16().Mul(archsimd.BroadcastFloat32x16(0x1p112))
		special := u.And(archsimd.BroadcastUint32x16(0x7c00)).Equal(archsimd.BroadcastUint32x16(0x7c00))
		f = em.Or(archsimd.BroadcastUint32x16(0x7f800000)).AsFloat32x16().Merge(f, special)
		sign := u.And(archsimd.BroadcastUint32x16(0x8000)).ShiftAllLeft(16)
		f.AsUint32x16().Or(sign).AsFloat32x16().StoreSlice(dst[i:])
	}
	decodeF16(src[2*i:], dst[i:])
}

func decodeQ8_0AVX512(src []byte, dst []float32) {
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ8_0 : (i+1)*blockQ8_0]
		y := dst[i*32 : i*32+32]
		d := archsimd.BroadcastFloat32x16(halfAt(b))
		q := archsimd.LoadUint8x32Slice(b[2:]).AsInt8x32()
		storeInt8x16(q.GetLo(), d, y[0:])
		storeInt8x16(q.GetHi(), d, y[16:])
	}
}

func decodeQ4_0AVX512(src []byte, dst []float32) {
	m := archsimd.BroadcastUint8x16(0x0f)
	eight := archsimd.BroadcastInt8x16(8)
	for i := 0; i < len(dst)/32; i++ {
		b := src[i*blockQ4_0 : (i+1)*blockQ4_0]
		y := dst[i*32 : i*32+32]
		d := archsimd.BroadcastFloat32x16(halfAt(b))
		v := archsimd.LoadUint8x16Slice(b[2:])
		lo := v.And(m).AsInt8x16().Sub(eight)
		hi := v.AsUint16x8().ShiftAllRight(4).AsUint8x16().And(m).AsInt8x16().Sub(eight)
		storeInt8x16(lo, d, y[0:])
		storeInt8x16(hi, d, y[16:])
	}
}

func decodeQ4_KAVX512(src []byte, dst []float32) {
	m := archsimd.BroadcastUint8x32(0x0f)
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ4_K : (i+1)*blockQ4_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := halfAt(b)
		dmin := halfAt(b[2:])
		scales := b[4:16]
		for g := 0; g < 4; g++ {
			sc, mn := getScaleMinK4(2*g, scales)
			d1 := archsimd.BroadcastFloat32x16(d * float32(sc))
			m1 := archsimd.BroadcastFloat32x16(dmin * float32(mn))
			sc, mn = getScaleMinK4(2*g+1, scales)
			d2 := archsimd.BroadcastFloat32x16(d * float32(sc))
			m2 := archsimd.BroadcastFloat32x16(dmin * float32(mn))
			qv := archsimd.LoadUint8x32Slice(b[16+32*g:])
			lo := qv.And(m).AsInt8x32()
			hi := qv.AsUint16x16().ShiftAllRight(4).AsUint8x32().And(m).AsInt8x32()
			yg := y[64*g : 64*g+64]
			storeAffine(lo.GetLo(), d1, m1, yg[0:])
			storeAffine(lo.GetHi(), d1, m1, yg[16:])
			storeAffine(hi.GetLo(), d2, m2, yg[32:])
			storeAffine(hi.GetHi(), d2, m2, yg[48:])
		}
	}
}

func decodeQ6_KAVX512(src []byte, dst []float32) {
	m4 := archsimd.BroadcastUint8x32(0x0f)
	m30 := archsimd.BroadcastUint8x32(0x30)
	off := archsimd.BroadcastInt8x32(32)
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*blockQ6_K : (i+1)*blockQ6_K]
		y := dst[i*QK_K : (i+1)*QK_K]
		d := halfAt(b[208:])
		for h := 0; h < 2; h++ {
			qlA := archsimd.LoadUint8x32Slice(b[64*h:])
			qlB := archsimd.LoadUint8x32Slice(b[64*h+32:])
			qh := archsimd.LoadUint8x32Slice(b[128+32*h:])
			qh16 := qh.AsUint16x16()
			q := [4]archsimd.Int8x32{
				qlA.And(m4).Or(qh16.ShiftAllLeft(4).AsUint8x32().And(m30)).AsInt8x32().Sub(off),
				qlB.And(m4).Or(qh16.ShiftAllLeft(2).AsUint8x32().And(m30)).AsInt8x32().Sub(off),
				qlA.AsUint16x16().ShiftAllRight(4).AsUint8x32().And(m4).Or(qh.And(m30)).AsInt8x32().Sub(off),
				qlB.AsUint16x16().ShiftAllRight(4).AsUint8x32().And(m4).Or(qh16.ShiftAllRight(2).AsUint8x32().And(m30)).AsInt8x32().Sub(off),
			}
			sc := b[192+8*h : 192+8*h+8]
			yh := y[128*h : 128*h+128]
			for k := 0; k < 4; k++ {
				// y = (d*sc)*q: the scale product is rounded first, as in ggml.
				storeInt8x16(q[k].GetLo(), archsimd.BroadcastFloat32x16(d*float32(int8(sc[2*k]))), yh[32*k:])
				storeInt8x16(q[k].GetHi(), archsimd.BroadcastFloat32x16(d*float32(int8(sc[2*k+1]))), yh[32*k+16:])
			}
		}
	}
}
