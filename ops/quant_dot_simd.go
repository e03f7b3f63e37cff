//go:build goexperiment.simd && amd64

package ops

import (
	"simd/archsimd"
	"unsafe"

	"ladder-engine/gguf"
)

// AVX-512 dot kernels (GOEXPERIMENT=simd). Each follows its reference in
// quant_dot_ref.go: the integer block sums are the same, only the float32
// accumulation order differs (lane-wise partial sums, reduced at the end).
// The 8-bit products use widening (VPMOVSXBW + VPMADDWD) or, where one side
// is unsigned, VPMADDUBSW followed by VPMADDWD with the block scale, as
// ggml's AVX2 kernels do; no pair sum can saturate int16 (|q| <= 63, |y| <= 127).
// The Q4_K and Q6_K kernels (the K-quants decoding spends its time in) sum
// the sub-blocks unscaled, gather the sums with VPHADDD and scale them with
// one VPMULLD, and take the activation-sum terms from the bsums in vector
// registers. Decoding runs the row kernels of quant_dot_rows_simd.go.

func useFastDots() {
	if !archsimd.X86.AVX512() {
		if hasAVX2 {
			useFastDotsAVX2()
		}
		return
	}
	for _, e := range dotTable {
		e.fastImpl = "avx512"
	}
	dotTable[gguf.TypeF32].fast = dotF32AVX512
	dotTable[gguf.TypeF16].fast = dotF16AVX512
	dotTable[gguf.TypeBF16].fast = dotBF16AVX512
	dotTable[gguf.TypeQ4_0].fast = dotQ4_0AVX512
	dotTable[gguf.TypeQ8_0].fast = dotQ8_0AVX512
	dotTable[gguf.TypeQ4_K].fast = dotQ4_KAVX512
	dotTable[gguf.TypeQ6_K].fast = dotQ6_KAVX512
	dotTable[gguf.TypeQ4_1].fast = dotQ4_1AVX512
	dotTable[gguf.TypeQ5_0].fast = dotQ5_0AVX512
	dotTable[gguf.TypeQ5_1].fast = dotQ5_1AVX512
	dotTable[gguf.TypeIQ4_NL].fast = dotIQ4_NLAVX512
	dotTable[gguf.TypeIQ4_XS].fast = dotIQ4_XSAVX512
	dotTable[gguf.TypeQ2_K].fast = dotQ2_KAVX512
	dotTable[gguf.TypeQ3_K].fast = dotQ3_KAVX512
	dotTable[gguf.TypeQ5_K].fast = dotQ5_KAVX512
	useFastDotRows()
}

func dotHsum8(v archsimd.Float32x8) float32 { return hsum8(v) }

func dotF32AVX512(n int, w, a []byte) float32 {
	w, a = w[:4*n], a[:4*n]
	var acc0, acc1 archsimd.Float32x16
	i := 0
	for ; i+32 <= n; i += 32 {
		x0 := archsimd.LoadUint8x64Slice(w[4*i:]).AsFloat32x16()
		y0 := archsimd.LoadUint8x64Slice(a[4*i:]).AsFloat32x16()
		x1 := archsimd.LoadUint8x64Slice(w[4*i+64:]).AsFloat32x16()
		y1 := archsimd.LoadUint8x64Slice(a[4*i+64:]).AsFloat32x16()
		acc0 = x0.MulAdd(y0, acc0)
		acc1 = x1.MulAdd(y1, acc1)
	}
	sum := hsum16(acc0.Add(acc1))
	for ; i < n; i++ {
		sum += f32At(w[4*i:]) * f32At(a[4*i:])
	}
	return sum
}

// f16ToF32x16 widens 16 halves to float32 without F16C (archsimd has no
// VCVTPH2PS): placing the half's exponent and mantissa 13 bits up gives a
// float32 whose value is the half's times 2^-112 (normal and subnormal
// alike), so one exact multiply by 2^112 fixes it; infinities and NaNs get
// the all-ones exponent instead.
func f16ToF32x16(h archsimd.Uint16x16) archsimd.Float32x16 {
	u := h.ExtendToUint32()
	em := u.And(archsimd.BroadcastUint32x16(0x7fff)).ShiftAllLeft(13)
	f := em.AsFloat32x16().Mul(archsimd.BroadcastFloat32x16(0x1p112))
	special := u.And(archsimd.BroadcastUint32x16(0x7c00)).Equal(archsimd.BroadcastUint32x16(0x7c00))
	f = em.Or(archsimd.BroadcastUint32x16(0x7f800000)).AsFloat32x16().Merge(f, special)
	sign := u.And(archsimd.BroadcastUint32x16(0x8000)).ShiftAllLeft(16)
	return f.AsUint32x16().Or(sign).AsFloat32x16()
}

func dotF16AVX512(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	var acc0, acc1 archsimd.Float32x16
	i := 0
	for ; i+32 <= n; i += 32 {
		x0 := f16ToF32x16(archsimd.LoadUint8x32Slice(w[2*i:]).AsUint16x16())
		y0 := f16ToF32x16(archsimd.LoadUint8x32Slice(a[2*i:]).AsUint16x16())
		x1 := f16ToF32x16(archsimd.LoadUint8x32Slice(w[2*i+32:]).AsUint16x16())
		y1 := f16ToF32x16(archsimd.LoadUint8x32Slice(a[2*i+32:]).AsUint16x16())
		acc0 = x0.MulAdd(y0, acc0)
		acc1 = x1.MulAdd(y1, acc1)
	}
	sum := hsum16(acc0.Add(acc1))
	for ; i < n; i++ {
		sum += half(w[2*i:]) * half(a[2*i:])
	}
	return sum
}

func dotBF16AVX512(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	var acc0, acc1 archsimd.Float32x16
	i := 0
	for ; i+32 <= n; i += 32 {
		x0 := archsimd.LoadUint8x32Slice(w[2*i:]).AsUint16x16().ExtendToUint32().ShiftAllLeft(16).AsFloat32x16()
		y0 := archsimd.LoadUint8x32Slice(a[2*i:]).AsUint16x16().ExtendToUint32().ShiftAllLeft(16).AsFloat32x16()
		x1 := archsimd.LoadUint8x32Slice(w[2*i+32:]).AsUint16x16().ExtendToUint32().ShiftAllLeft(16).AsFloat32x16()
		y1 := archsimd.LoadUint8x32Slice(a[2*i+32:]).AsUint16x16().ExtendToUint32().ShiftAllLeft(16).AsFloat32x16()
		acc0 = x0.MulAdd(y0, acc0)
		acc1 = x1.MulAdd(y1, acc1)
	}
	sum := hsum16(acc0.Add(acc1))
	for ; i < n; i++ {
		sum += gguf.BF16ToF32(uint16(w[2*i])|uint16(w[2*i+1])<<8) * gguf.BF16ToF32(uint16(a[2*i])|uint16(a[2*i+1])<<8)
	}
	return sum
}

// dotQ8_0AVX512: per block, sign-extend both 32 int8 vectors to int16,
// VPMADDWD to 16 int32 pair sums, convert and FMA with dw*da.
func dotQ8_0AVX512(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:34*nb], a[:34*nb]
	var acc0, acc1 archsimd.Float32x16
	ib := 0
	for ; ib+2 <= nb; ib += 2 {
		x0, y0 := w[34*ib:34*ib+34], a[34*ib:34*ib+34]
		x1, y1 := w[34*ib+34:34*ib+68], a[34*ib+34:34*ib+68]
		p0 := archsimd.LoadUint8x32Slice(x0[2:]).AsInt8x32().ExtendToInt16().
			DotProductPairs(archsimd.LoadUint8x32Slice(y0[2:]).AsInt8x32().ExtendToInt16())
		p1 := archsimd.LoadUint8x32Slice(x1[2:]).AsInt8x32().ExtendToInt16().
			DotProductPairs(archsimd.LoadUint8x32Slice(y1[2:]).AsInt8x32().ExtendToInt16())
		acc0 = p0.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x0)*half(y0)), acc0)
		acc1 = p1.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x1)*half(y1)), acc1)
	}
	sum := hsum16(acc0.Add(acc1))
	if ib < nb {
		sum += dotQ8_0Ref(32, w[34*ib:], a[34*ib:])
	}
	return sum
}

// q4_0Block unpacks 16 bytes of nibbles into 32 signed values q-8 (low
// nibbles are elements 0..15, high nibbles 16..31) widened to int16.
func q4_0Block(qs []byte) archsimd.Int16x32 {
	m := archsimd.BroadcastUint8x16(0x0f)
	v := archsimd.LoadUint8x16Slice(qs)
	var q archsimd.Uint8x32
	q = q.SetLo(v.And(m)).SetHi(v.AsUint16x8().ShiftAllRight(4).AsUint8x16().And(m))
	return q.AsInt8x32().Sub(archsimd.BroadcastInt8x32(8)).ExtendToInt16()
}

func dotQ4_0AVX512(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:18*nb], a[:34*nb]
	var acc0, acc1 archsimd.Float32x16
	ib := 0
	for ; ib+2 <= nb; ib += 2 {
		x0, y0 := w[18*ib:18*ib+18], a[34*ib:34*ib+34]
		x1, y1 := w[18*ib+18:18*ib+36], a[34*ib+34:34*ib+68]
		p0 := q4_0Block(x0[2:]).DotProductPairs(archsimd.LoadUint8x32Slice(y0[2:]).AsInt8x32().ExtendToInt16())
		p1 := q4_0Block(x1[2:]).DotProductPairs(archsimd.LoadUint8x32Slice(y1[2:]).AsInt8x32().ExtendToInt16())
		acc0 = p0.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x0)*half(y0)), acc0)
		acc1 = p1.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x1)*half(y1)), acc1)
	}
	sum := hsum16(acc0.Add(acc1))
	if ib < nb {
		sum += dotQ4_0Ref(32, w[18*ib:], a[34*ib:])
	}
	return sum
}

// dotQ4_KAVX512: per super-block, the eight sub-block sums Σq·y are
// formed without their scales (VPMADDUBSW, VPMADDWD by ones) and gathered by
// VPHADDD into one vector [S0..S7]; the 6-bit scales and mins are unpacked
// with 32-bit masks (as ggml's utmp/kmask code does) and applied with one
// VPMULLD each, the mins against the activation's pair sums of bsums.
func dotQ4_KAVX512(n int, w, a []byte) float32 {
	nb := n / 256
	if len(w) < 144*nb || len(a) < q8KBlock*nb {
		panic("ops: dotQ4_K: weight or activation row too short")
	}
	if nb == 0 {
		return 0
	}
	m4 := archsimd.BroadcastUint8x32(0x0f)
	ones := archsimd.BroadcastInt16x16(1)
	x := unsafe.Pointer(unsafe.SliceData(w))
	y := unsafe.Pointer(unsafe.SliceData(a))
	var acc archsimd.Float32x8
	for i := 0; i < nb; i++ {
		acc = q4KSuper(x, y, m4, ones, acc)
		x, y = unsafe.Add(x, 144), unsafe.Add(y, q8KBlock)
	}
	return dotHsum8(acc)
}

// q4KSuper adds one Q4_K super-block (x) times one Q8_K block (y) to acc.
func q4KSuper(x, y unsafe.Pointer, m4 archsimd.Uint8x32, ones archsimd.Int16x16, acc archsimd.Float32x8) archsimd.Float32x8 {
	ld := func(p unsafe.Pointer, off uintptr) archsimd.Uint8x32 {
		return archsimd.LoadUint8x32((*[32]uint8)(unsafe.Add(p, off)))
	}
	sub := func(q archsimd.Uint8x32, off uintptr) archsimd.Int32x8 {
		return q.DotProductPairsSaturated(ld(y, off).AsInt8x32()).DotProductPairs(ones)
	}
	sh4 := archsimd.BroadcastUint16x16(1 << 12) // >> 4 as a high multiply (shr16x16), made once
	q := ld(x, 16)
	h01 := sub(q.And(m4), 4).AddPairsGrouped(sub(q.AsUint16x16().MulHigh(sh4).AsUint8x32().And(m4), 36))
	q = ld(x, 48)
	h23 := sub(q.And(m4), 68).AddPairsGrouped(sub(q.AsUint16x16().MulHigh(sh4).AsUint8x32().And(m4), 100))
	q = ld(x, 80)
	h45 := sub(q.And(m4), 132).AddPairsGrouped(sub(q.AsUint16x16().MulHigh(sh4).AsUint8x32().And(m4), 164))
	q = ld(x, 112)
	h67 := sub(q.And(m4), 196).AddPairsGrouped(sub(q.AsUint16x16().MulHigh(sh4).AsUint8x32().And(m4), 228))
	h0 := h01.AddPairsGrouped(h23) // [S0 S1 S2 S3 | S0 S1 S2 S3] (halves of each sum)
	h1 := h45.AddPairsGrouped(h67)
	s := h0.Select128FromPair(0, 2, h1).Add(h0.Select128FromPair(1, 3, h1)) // [S0..S7]

	// 6-bit scales and mins (scaleMinK4), four bytes at a time
	u0 := *(*uint32)(unsafe.Add(x, 4))
	u1 := *(*uint32)(unsafe.Add(x, 8))
	u2 := *(*uint32)(unsafe.Add(x, 12))
	sc := uint64(u0&0x3f3f3f3f) | uint64(u2&0x0f0f0f0f|(u0>>6&0x03030303)<<4)<<32
	mn := uint64(u1&0x3f3f3f3f) | uint64(u2>>4&0x0f0f0f0f|(u1>>6&0x03030303)<<4)<<32
	scv := archsimd.BroadcastUint64x2(sc).AsUint8x16().ExtendLo8ToUint32().AsInt32x8()
	mnv := archsimd.BroadcastUint64x2(mn).AsUint8x16().ExtendLo8ToUint32().AsInt32x8()
	bs := archsimd.LoadInt16x16((*[16]int16)(unsafe.Add(y, 4+256))).DotProductPairs(ones) // bsum pairs per sub-block

	// the scales in vector registers (no scalar float code between vector
	// instructions: see shl32x8)
	dy := f32b8(y)
	d := f16b8(*(*uint16)(x)).Mul(dy)
	dmin := f16b8(*(*uint16)(unsafe.Add(x, 2))).Mul(dy)
	acc = s.Mul(scv).ConvertToFloat32().MulAdd(d, acc)
	return acc.Sub(mnv.Mul(bs).ConvertToFloat32().Mul(dmin))
}

// q6KOrder0/1 pick the int8 scales of a Q6_K super-block's first / second
// half in the order VPHADDD leaves the 16-weight group sums: 0 2 4 6 1 3 5 7.
var (
	q6KOrder0 = [16]int8{0, 2, 4, 6, 1, 3, 5, 7}
	q6KOrder1 = [16]int8{8, 10, 12, 14, 9, 11, 13, 15}
)

// dotQ6_KAVX512: the 6-bit quants are used unsigned (q+32) with
// VPMADDUBSW; the sixteen 16-weight group sums are gathered by VPHADDD and
// scaled with VPMULLD, and the 32·Σ sc_j·bsum_j excess of the +32 comes off
// lane-wise (the lanes are only ever summed).
func dotQ6_KAVX512(n int, w, a []byte) float32 {
	nb := n / 256
	if len(w) < 210*nb || len(a) < q8KBlock*nb {
		panic("ops: dotQ6_K: weight or activation row too short")
	}
	if nb == 0 {
		return 0
	}
	m4 := archsimd.BroadcastUint8x32(0x0f)
	m30 := archsimd.BroadcastUint8x32(0x30)
	ones := archsimd.BroadcastInt16x16(1)
	x := unsafe.Pointer(unsafe.SliceData(w))
	y := unsafe.Pointer(unsafe.SliceData(a))
	var acc archsimd.Float32x8
	for i := 0; i < nb; i++ {
		acc = q6KSuper(x, y, m4, m30, ones, acc)
		x, y = unsafe.Add(x, 210), unsafe.Add(y, q8KBlock)
	}
	return dotHsum8(acc)
}

// q6KHalf is the eight 16-weight group sums Σ(q+32)·y of one half (128
// weights: ql[64], qh[32], activations y[128]) of a Q6_K super-block, as
// [g0 g2 g4 g6 | g1 g3 g5 g7].
func q6KHalf(ql, qh, y unsafe.Pointer, m4, m30 archsimd.Uint8x32, ones archsimd.Int16x16, k *q6KShifts) archsimd.Int32x8 {
	ld := func(p unsafe.Pointer, off uintptr) archsimd.Uint8x32 {
		return archsimd.LoadUint8x32((*[32]uint8)(unsafe.Add(p, off)))
	}
	dot := func(q archsimd.Uint8x32, off uintptr) archsimd.Int32x8 {
		return q.DotProductPairsSaturated(ld(y, off).AsInt8x32()).DotProductPairs(ones)
	}
	qlA, qlB, h := ld(ql, 0), ld(ql, 32), ld(qh, 0)
	h16 := h.AsUint16x16()
	q1 := qlA.And(m4).Or(h16.Mul(k.x16).AsUint8x32().And(m30))
	q2 := qlB.And(m4).Or(h16.Mul(k.x4).AsUint8x32().And(m30))
	q3 := qlA.AsUint16x16().MulHigh(k.x4096).AsUint8x32().And(m4).Or(h.And(m30))
	q4 := qlB.AsUint16x16().MulHigh(k.x4096).AsUint8x32().And(m4).Or(h16.MulHigh(k.x16384).AsUint8x32().And(m30))
	return dot(q1, 0).AddPairsGrouped(dot(q2, 32)).AddPairsGrouped(dot(q3, 64).AddPairsGrouped(dot(q4, 96)))
}

// q6KShifts are the multipliers that shift 16-bit lanes (shl16x16,
// shr16x16): ×16 and ×4 are << 4 and << 2, the high halves of ×4096 and
// ×16384 >> 4 and >> 2.
type q6KShifts struct{ x16, x4, x4096, x16384 archsimd.Uint16x16 }

// q6KSuper adds one Q6_K super-block (x) times one Q8_K block (y) to acc.
func q6KSuper(x, y unsafe.Pointer, m4, m30 archsimd.Uint8x32, ones archsimd.Int16x16, acc archsimd.Float32x8) archsimd.Float32x8 {
	k := q6KShifts{ // made once per super-block
		x16: archsimd.BroadcastUint16x16(16), x4: archsimd.BroadcastUint16x16(4),
		x4096: archsimd.BroadcastUint16x16(4096), x16384: archsimd.BroadcastUint16x16(16384),
	}
	s0 := q6KHalf(x, unsafe.Add(x, 128), unsafe.Add(y, 4), m4, m30, ones, &k)
	s1 := q6KHalf(unsafe.Add(x, 64), unsafe.Add(x, 160), unsafe.Add(y, 4+128), m4, m30, ones, &k)
	sc := archsimd.LoadInt8x16((*[16]int8)(unsafe.Add(x, 192)))
	isum := s0.Mul(sc.PermuteOrZero(archsimd.LoadInt8x16(&q6KOrder0)).ExtendLo8ToInt32()).
		Add(s1.Mul(sc.PermuteOrZero(archsimd.LoadInt8x16(&q6KOrder1)).ExtendLo8ToInt32()))
	corr := archsimd.LoadInt16x16((*[16]int16)(unsafe.Add(y, 4+256))).DotProductPairs(sc.ExtendToInt16())
	isum = isum.Sub(corr.Mul(archsimd.BroadcastInt32x8(32)))
	d := f16b8(*(*uint16)(unsafe.Add(x, 208))).Mul(f32b8(y))
	return isum.ConvertToFloat32().MulAdd(d, acc)
}

func h16q(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

// scalePair is 8 lanes of the int8 scale a then 8 lanes of b: after
// VPMADDUBSW, int16 lanes 0..7 hold elements 0..15 of a 32-group (first
// 16-weight sub-block) and lanes 8..15 elements 16..31.
func scalePair(a, b byte) archsimd.Int16x16 {
	var s archsimd.Int16x16
	return s.SetLo(archsimd.BroadcastInt16x8(int16(int8(a)))).SetHi(archsimd.BroadcastInt16x8(int16(int8(b))))
}

// nibbles32 splits 16 bytes into 32 values: low nibbles (elements 0..15)
// then high nibbles (16..31), the Q4_0/Q4_1/Q5_x/IQ4_NL packing.
func nibbles32(qs []byte) archsimd.Uint8x32 {
	m := archsimd.BroadcastUint8x16(0x0f)
	v := archsimd.LoadUint8x16Slice(qs)
	var q archsimd.Uint8x32
	return q.SetLo(v.And(m)).SetHi(v.AsUint16x8().ShiftAllRight(4).AsUint8x16().And(m))
}

// bitSpread picks byte k/8 of the broadcast 32-bit word into byte k
// (VPSHUFB works within each 128-bit half, and every 4-byte group of the
// broadcast holds the whole word).
var bitSpread = [32]int8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3}

var bitSelect = [32]uint8{1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128}

// highBits32 expands bit k of qh (little-endian uint32) into 0x10 in byte k:
// the fifth bit of Q5_0/Q5_1 element k.
func highBits32(qh []byte) archsimd.Uint8x32 {
	w := archsimd.BroadcastUint32x8(uint32(qh[0]) | uint32(qh[1])<<8 | uint32(qh[2])<<16 | uint32(qh[3])<<24)
	b := w.AsUint8x32().AsInt8x32().PermuteOrZeroGrouped(archsimd.LoadInt8x32(&bitSpread)).AsUint8x32()
	b = b.And(archsimd.LoadUint8x32(&bitSelect)).Min(archsimd.BroadcastUint8x32(1))
	return b.AsUint16x16().ShiftAllLeft(4).AsUint8x32()
}

func q8Block16(y []byte) archsimd.Int16x32 {
	return archsimd.LoadUint8x32Slice(y).AsInt8x32().ExtendToInt16()
}

// dotQ4_1AVX512: unsigned nibbles widened to int16 against Q8_1, plus the
// weight min times the activation block sum s.
func dotQ4_1AVX512(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:20*nb], a[:36*nb]
	var acc archsimd.Float32x16
	var mins float32
	for ib := 0; ib < nb; ib++ {
		x, y := w[20*ib:20*ib+20], a[36*ib:36*ib+36]
		p := nibbles32(x[4:20]).AsInt8x32().ExtendToInt16().DotProductPairs(q8Block16(y[4:]))
		acc = p.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x)*half(y)), acc)
		mins += half(x[2:]) * half(y[2:])
	}
	return hsum16(acc) + mins
}

func dotQ5_0AVX512(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:22*nb], a[:34*nb]
	var acc archsimd.Float32x16
	sixteen := archsimd.BroadcastInt8x32(16)
	for ib := 0; ib < nb; ib++ {
		x, y := w[22*ib:22*ib+22], a[34*ib:34*ib+34]
		q := nibbles32(x[6:22]).Or(highBits32(x[2:6])).AsInt8x32().Sub(sixteen)
		p := q.ExtendToInt16().DotProductPairs(q8Block16(y[2:]))
		acc = p.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x)*half(y)), acc)
	}
	return hsum16(acc)
}

func dotQ5_1AVX512(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:24*nb], a[:36*nb]
	var acc archsimd.Float32x16
	var mins float32
	for ib := 0; ib < nb; ib++ {
		x, y := w[24*ib:24*ib+24], a[36*ib:36*ib+36]
		q := nibbles32(x[8:24]).Or(highBits32(x[4:8]))
		p := q.AsInt8x32().ExtendToInt16().DotProductPairs(q8Block16(y[4:]))
		acc = p.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x)*half(y)), acc)
		mins += half(x[2:]) * half(y[2:])
	}
	return hsum16(acc) + mins
}

// kvalues32 is the IQ4_NL codebook in both 128-bit halves, for VPSHUFB.
var kvalues32 = func() (t [32]int8) {
	for i := range t {
		t[i] = gguf.KValuesIQ4NL[i%16]
	}
	return
}()

func dotIQ4_NLAVX512(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:18*nb], a[:34*nb]
	kv := archsimd.LoadInt8x32(&kvalues32)
	var acc archsimd.Float32x16
	for ib := 0; ib < nb; ib++ {
		x, y := w[18*ib:18*ib+18], a[34*ib:34*ib+34]
		q := kv.PermuteOrZeroGrouped(nibbles32(x[2:18]).AsInt8x32())
		p := q.ExtendToInt16().DotProductPairs(q8Block16(y[2:]))
		acc = p.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x)*half(y)), acc)
	}
	return hsum16(acc)
}

func dotIQ4_XSAVX512(n int, w, a []byte) float32 {
	nb := n / 256
	w, a = w[:136*nb], a[:q8KBlock*nb]
	kv := archsimd.LoadInt8x32(&kvalues32)
	var acc archsimd.Float32x16
	for i := 0; i < nb; i++ {
		x, y := w[136*i:136*i+136], a[q8KBlock*i:q8KBlock*(i+1)]
		var isum archsimd.Int32x16
		for ib := 0; ib < 8; ib++ {
			q := kv.PermuteOrZeroGrouped(nibbles32(x[8+16*ib:]).AsInt8x32())
			p := q.ExtendToInt16().DotProductPairs(q8Block16(y[4+32*ib:]))
			isum = isum.Add(p.Mul(archsimd.BroadcastInt32x16(int32(gguf.IQ4XSScale(x, ib) - 32))))
		}
		acc = isum.ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x16(half(x)*f32At(y)), acc)
	}
	return hsum16(acc)
}

// dotQ2_KAVX512: 2-bit quants (unsigned) with VPMADDUBSW, 4-bit scales per
// 16 weights via VPMADDWD, mins through the activation group sums.
func dotQ2_KAVX512(n int, w, a []byte) float32 {
	nb := n / 256
	w, a = w[:84*nb], a[:q8KBlock*nb]
	m3 := archsimd.BroadcastUint8x32(3)
	var acc, mins archsimd.Float32x8
	for i := 0; i < nb; i++ {
		x, y := w[84*i:84*i+84], a[q8KBlock*i:q8KBlock*(i+1)]
		sc := x[0:16]
		summs := 0
		for j := 0; j < 16; j++ {
			summs += int(sc[j]>>4) * q8KBsum(y, j)
		}
		var isum archsimd.Int32x8
		for h := 0; h < 2; h++ {
			qs := archsimd.LoadUint8x32Slice(x[16+32*h:]).AsUint16x16()
			for k := 0; k < 4; k++ {
				q := qs
				if k > 0 {
					q = shr16x16(qs, uint(2*k))
				}
				q8 := q.AsUint8x32().And(m3)
				yv := archsimd.LoadUint8x32Slice(y[4+128*h+32*k:]).AsInt8x32()
				s := 8*h + 2*k
				isum = isum.Add(q8.DotProductPairsSaturated(yv).DotProductPairs(scalePair(sc[s]&0xf, sc[s+1]&0xf)))
			}
		}
		dy := f32b8(unsafe.Pointer(&y[0]))
		acc = isum.ConvertToFloat32().MulAdd(f16b8(h16q(x[80:])).Mul(dy), acc)
		mins = mins.Add(f16b8(h16q(x[82:])).Mul(dy).Mul(archsimd.BroadcastInt32x8(int32(summs)).ConvertToFloat32()))
	}
	m := mins.GetLo().GetElem(0)
	return dotHsum8(acc) - m
}

// dotQ3_KAVX512: q+4 = low2 | hbit<<2 is unsigned (0..7) for VPMADDUBSW; the
// 4*sum(y) excess per 16-group comes off through the activation group sums.
func dotQ3_KAVX512(n int, w, a []byte) float32 {
	nb := n / 256
	w, a = w[:110*nb], a[:q8KBlock*nb]
	m3 := archsimd.BroadcastUint8x32(3)
	one := archsimd.BroadcastUint8x32(1)
	var acc, excess archsimd.Float32x8
	var scales [16]int8
	for i := 0; i < nb; i++ {
		x, y := w[110*i:110*i+110], a[q8KBlock*i:q8KBlock*(i+1)]
		unpackQ3KScales(x[96:108], &scales)
		corr := 0
		for j := 0; j < 16; j++ {
			scales[j] -= 32
			corr += int(scales[j]) * q8KBsum(y, j)
		}
		hm := archsimd.LoadUint8x32Slice(x[0:32]).AsUint16x16()
		var isum archsimd.Int32x8
		for h := 0; h < 2; h++ {
			qs := archsimd.LoadUint8x32Slice(x[32+32*h:]).AsUint16x16()
			for k := 0; k < 4; k++ {
				lo, hs := qs, hm
				if k > 0 {
					lo = shr16x16(qs, uint(2*k))
				}
				if 4*h+k > 0 {
					hs = shr16x16(hm, uint(4*h+k))
				}
				hb := shl16x16(hs.AsUint8x32().And(one).AsUint16x16(), 2).AsUint8x32()
				yv := archsimd.LoadUint8x32Slice(y[4+128*h+32*k:]).AsInt8x32()
				s := 8*h + 2*k
				isum = isum.Add(lo.AsUint8x32().And(m3).Or(hb).DotProductPairsSaturated(yv).DotProductPairs(scalePair(byte(scales[s]), byte(scales[s+1]))))
			}
		}
		d := f16b8(h16q(x[108:])).Mul(f32b8(unsafe.Pointer(&y[0])))
		acc = isum.ConvertToFloat32().MulAdd(d, acc)
		excess = excess.Add(d.Mul(archsimd.BroadcastInt32x8(int32(4 * corr)).ConvertToFloat32()))
	}
	e := excess.GetLo().GetElem(0)
	return dotHsum8(acc) - e
}

// dotQ5_KAVX512: as Q4_K with the fifth bit of sub-block j taken from bit j
// of qh[l].
func dotQ5_KAVX512(n int, w, a []byte) float32 {
	nb := n / 256
	w, a = w[:176*nb], a[:q8KBlock*nb]
	m := archsimd.BroadcastUint8x32(0x0f)
	one := archsimd.BroadcastUint8x32(1)
	var acc, mins archsimd.Float32x8
	for i := 0; i < nb; i++ {
		x := w[176*i : 176*i+176]
		y := a[q8KBlock*i : q8KBlock*(i+1)]
		dy := f32b8(unsafe.Pointer(&y[0]))
		qh := archsimd.LoadUint8x32Slice(x[16:48]).AsUint16x16()
		var isum archsimd.Int32x8
		summs := 0
		for g := 0; g < 4; g++ {
			sc0, m0 := scaleMinK4(2*g, x[4:16])
			sc1, m1 := scaleMinK4(2*g+1, x[4:16])
			summs += m0*(q8KBsum(y, 4*g)+q8KBsum(y, 4*g+1)) + m1*(q8KBsum(y, 4*g+2)+q8KBsum(y, 4*g+3))
			qv := archsimd.LoadUint8x32Slice(x[48+32*g:])
			q0 := qh
			if g > 0 {
				q0 = shr16x16(qh, uint(2*g))
			}
			h0 := shl16x16(q0.AsUint8x32().And(one).AsUint16x16(), 4).AsUint8x32()
			h1 := shl16x16(shr16x16(qh, uint(2*g+1)).AsUint8x32().And(one).AsUint16x16(), 4).AsUint8x32()
			lo := qv.And(m).Or(h0)
			hi := shr16x16(qv.AsUint16x16(), 4).AsUint8x32().And(m).Or(h1)
			y0 := archsimd.LoadUint8x32Slice(y[4+64*g:]).AsInt8x32()
			y1 := archsimd.LoadUint8x32Slice(y[4+64*g+32:]).AsInt8x32()
			p0 := lo.DotProductPairsSaturated(y0).DotProductPairs(archsimd.BroadcastInt16x16(int16(sc0)))
			p1 := hi.DotProductPairsSaturated(y1).DotProductPairs(archsimd.BroadcastInt16x16(int16(sc1)))
			isum = isum.Add(p0).Add(p1)
		}
		acc = isum.ConvertToFloat32().MulAdd(f16b8(h16q(x)).Mul(dy), acc)
		mins = mins.Add(f16b8(h16q(x[2:])).Mul(dy).Mul(archsimd.BroadcastInt32x8(int32(summs)).ConvertToFloat32()))
	}
	mn := mins.GetLo().GetElem(0)
	return dotHsum8(acc) - mn
}
