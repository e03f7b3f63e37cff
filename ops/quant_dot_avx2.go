//go:build goexperiment.simd && amd64

package ops

import (
	"simd/archsimd"
	"unsafe"

	"golang.org/x/sys/cpu"

	"ladder-engine/gguf"
)

// AVX2 dot kernels, for CPUs without AVX-512 (useFastDots installs them
// when hasAVX2). The K-quant kernels of quant_dot_simd.go (Q2_K..Q6_K) and
// the row kernels of quant_dot_rows_simd.go use only 256-bit AVX2
// instructions and serve both; this file has 256-bit versions of the
// 512-bit ones. The 8-bit products follow ggml's AVX2 mul_sum_i8_pairs:
// VPSIGNB moves the weight's sign onto the activation, VPMADDUBSW
// multiplies |q| (unsigned) by it into int16 pair sums (at most
// 2·128·127 = 32512: no saturation, the activations being within ±127),
// VPMADDWD by ones widens to int32. Integer block sums are exact; only the
// float32 accumulation order differs from the references.

// avx2Dots is the AVX2 kernel of each weight type: those of this file, and
// the 256-bit K-quant kernels shared with the AVX-512 build.
var avx2Dots = map[gguf.Type]func(n int, w, a []byte) float32{
	gguf.TypeF32:    dotF32AVX2,
	gguf.TypeF16:    dotF16AVX2,
	gguf.TypeBF16:   dotBF16AVX2,
	gguf.TypeQ4_0:   dotQ4_0AVX2,
	gguf.TypeQ8_0:   dotQ8_0AVX2,
	gguf.TypeQ4_1:   dotQ4_1AVX2,
	gguf.TypeQ5_0:   dotQ5_0AVX2,
	gguf.TypeQ5_1:   dotQ5_1AVX2,
	gguf.TypeIQ4_NL: dotIQ4_NLAVX2,
	gguf.TypeIQ4_XS: dotIQ4_XSAVX2,
	gguf.TypeQ4_K:   dotQ4_KAVX512,
	gguf.TypeQ6_K:   dotQ6_KAVX512,
	gguf.TypeQ2_K:   dotQ2_KAVX512,
	gguf.TypeQ3_K:   dotQ3_KAVX512,
	gguf.TypeQ5_K:   dotQ5_KAVX512,
}

func useFastDotsAVX2() {
	for t, f := range avx2Dots {
		dotTable[t].fast, dotTable[t].fastImpl = f, "avx2"
	}
	useFastDotRows()
	useFastDotRowsAVX2()
}

// mulSumI8 is Σ x·y over each group of four int8 lanes (ggml's
// mul_sum_i8_pairs_int32x8), for |x| <= 128 and |y| <= 127.
func mulSumI8(x, y archsimd.Int8x32, ones archsimd.Int16x16) archsimd.Int32x8 {
	return x.Abs().AsUint8x32().DotProductPairsSaturated(y.CopySign(x)).DotProductPairs(ones)
}

// mulSumU8 is Σ x·y over each group of four lanes for unsigned x <= 127.
func mulSumU8(x archsimd.Uint8x32, y archsimd.Int8x32, ones archsimd.Int16x16) archsimd.Int32x8 {
	return x.DotProductPairsSaturated(y).DotProductPairs(ones)
}

func loadI8x32(b []byte) archsimd.Int8x32 { return archsimd.LoadUint8x32Slice(b).AsInt8x32() }

// f16b8 is the half h (finite) as float32 in all 8 lanes, made without
// scalar float instructions (see shl32x8): the half sign-extended to 32
// bits and shifted 13 up holds its sign in bit 31 and exponent and
// mantissa in bits 27..13 (the rest, copies of the sign, masked off), a
// float32 of the half's value times 2^-112, fixed by one exact multiply.
func f16b8(h uint16) archsimd.Float32x8 {
	bits := uint32(int32(int16(h))<<13) & 0x8fffe000
	return archsimd.BroadcastUint32x8(bits).AsFloat32x8().Mul(archsimd.BroadcastFloat32x8(0x1p112))
}

// f32b8 is the little-endian float32 at p in all 8 lanes.
func f32b8(p unsafe.Pointer) archsimd.Float32x8 {
	return archsimd.BroadcastUint32x8(*(*uint32)(p)).AsFloat32x8()
}

func h16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

// scale2 is half(x)·half(y) in all lanes, rounded once as the scalar product.
func scale2(x, y []byte) archsimd.Float32x8 { return f16b8(h16(x)).Mul(f16b8(h16(y))) }

// nibbles32AVX2 is nibbles32 with the high nibbles shifted by a multiply.
func nibbles32AVX2(qs []byte) archsimd.Uint8x32 {
	m := archsimd.BroadcastUint8x16(0x0f)
	v := archsimd.LoadUint8x16Slice(qs[:16])
	var q archsimd.Uint8x32
	return q.SetLo(v.And(m)).SetHi(v.AsUint16x8().MulHigh(archsimd.BroadcastUint16x8(1 << 12)).AsUint8x16().And(m))
}

// highBits32AVX2 is highBits32 with the final shift by a multiply.
func highBits32AVX2(qh []byte) archsimd.Uint8x32 {
	w := archsimd.BroadcastUint32x8(uint32(qh[0]) | uint32(qh[1])<<8 | uint32(qh[2])<<16 | uint32(qh[3])<<24)
	b := w.AsUint8x32().AsInt8x32().PermuteOrZeroGrouped(archsimd.LoadInt8x32(&bitSpread)).AsUint8x32()
	b = b.And(archsimd.LoadUint8x32(&bitSelect)).Min(archsimd.BroadcastUint8x32(1))
	return shl16x16(b.AsUint16x16(), 4).AsUint8x32()
}

func dotF32AVX2(n int, w, a []byte) float32 {
	w, a = w[:4*n], a[:4*n]
	var acc0, acc1 archsimd.Float32x8
	i := 0
	for ; i+16 <= n; i += 16 {
		acc0 = archsimd.LoadUint8x32Slice(w[4*i:]).AsFloat32x8().MulAdd(archsimd.LoadUint8x32Slice(a[4*i:]).AsFloat32x8(), acc0)
		acc1 = archsimd.LoadUint8x32Slice(w[4*i+32:]).AsFloat32x8().MulAdd(archsimd.LoadUint8x32Slice(a[4*i+32:]).AsFloat32x8(), acc1)
	}
	sum := hsum8(acc0.Add(acc1))
	for ; i < n; i++ {
		sum += f32At(w[4*i:]) * f32At(a[4*i:])
	}
	return sum
}

// f16ToF32x8 is f16ToF32x16 on 8 lanes (no F16C instruction in archsimd):
// the half's exponent and mantissa 13 bits up are its value times 2^-112,
// fixed by one exact multiply; infinities and NaNs get the all-ones exponent.
func f16ToF32x8(h archsimd.Uint16x8) archsimd.Float32x8 {
	u := h.ExtendToUint32()
	em := shl32x8(u.And(archsimd.BroadcastUint32x8(0x7fff)), 13)
	f := em.AsFloat32x8().Mul(archsimd.BroadcastFloat32x8(0x1p112))
	special := u.And(archsimd.BroadcastUint32x8(0x7c00)).Equal(archsimd.BroadcastUint32x8(0x7c00))
	f = em.Or(archsimd.BroadcastUint32x8(0x7f800000)).AsFloat32x8().Merge(f, special)
	sign := shl32x8(u.And(archsimd.BroadcastUint32x8(0x8000)), 16)
	return f.AsUint32x8().Or(sign).AsFloat32x8()
}

// hasF16C: VCVTPH2PS is there (every AVX2 CPU has it, but it is its own
// CPUID bit).
var hasF16C = cpu.X86.HasF16C

// dotF16AVX2 widens the halves with F16C (assembly: archsimd has no
// VCVTPH2PS) where present, else with f16ToF32x8.
func dotF16AVX2(n int, w, a []byte) float32 {
	if hasF16C {
		return dotF16F16CRow(n, w, a)
	}
	return dotF16AVX2Bits(n, w, a)
}

// dotF16F16CRow: the assembly over whole groups of 16, then the tail.
func dotF16F16CRow(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	m := n &^ 15
	var t [8]float32
	if m > 0 {
		dotF16F16C(&w[0], &a[0], m, &t)
	}
	sum := ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7])) // as dotHsum8
	for i := m; i < n; i++ {
		sum += half(w[2*i:]) * half(a[2*i:])
	}
	return sum
}

//go:noescape
func dotF16F16C(w, a *byte, n int, acc *[8]float32)

// dotF16AVX2Bits widens the halves with integer instructions.
func dotF16AVX2Bits(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	var acc0, acc1 archsimd.Float32x8
	i := 0
	for ; i+16 <= n; i += 16 {
		x0 := f16ToF32x8(archsimd.LoadUint8x16Slice(w[2*i:]).AsUint16x8())
		y0 := f16ToF32x8(archsimd.LoadUint8x16Slice(a[2*i:]).AsUint16x8())
		x1 := f16ToF32x8(archsimd.LoadUint8x16Slice(w[2*i+16:]).AsUint16x8())
		y1 := f16ToF32x8(archsimd.LoadUint8x16Slice(a[2*i+16:]).AsUint16x8())
		acc0 = x0.MulAdd(y0, acc0)
		acc1 = x1.MulAdd(y1, acc1)
	}
	sum := hsum8(acc0.Add(acc1))
	for ; i < n; i++ {
		sum += half(w[2*i:]) * half(a[2*i:])
	}
	return sum
}

func bf16ToF32x8(b []byte) archsimd.Float32x8 {
	return shl32x8(archsimd.LoadUint8x16Slice(b).AsUint16x8().ExtendToUint32(), 16).AsFloat32x8()
}

// dotBF16AVX2: the assembly (dotBF16Asm) over whole groups of 16, then the
// tail. The archsimd loop it replaces (dotBF16Vec, kept as its twin) made
// its shift count vector afresh on every step.
func dotBF16AVX2(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	m := n &^ 15
	var t [8]float32
	if m > 0 {
		dotBF16Asm(&w[0], &a[0], m, &t)
	}
	sum := ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7])) // as hsum8
	for i := m; i < n; i++ {
		sum += gguf.BF16ToF32(uint16(w[2*i])|uint16(w[2*i+1])<<8) * gguf.BF16ToF32(uint16(a[2*i])|uint16(a[2*i+1])<<8)
	}
	return sum
}

//go:noescape
func dotBF16Asm(w, a *byte, n int, acc *[8]float32)

// dotBF16Vec is dotBF16AVX2 in archsimd: the assembly's twin.
func dotBF16Vec(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	var acc0, acc1 archsimd.Float32x8
	i := 0
	for ; i+16 <= n; i += 16 {
		acc0 = bf16ToF32x8(w[2*i:]).MulAdd(bf16ToF32x8(a[2*i:]), acc0)
		acc1 = bf16ToF32x8(w[2*i+16:]).MulAdd(bf16ToF32x8(a[2*i+16:]), acc1)
	}
	sum := hsum8(acc0.Add(acc1))
	for ; i < n; i++ {
		sum += gguf.BF16ToF32(uint16(w[2*i])|uint16(w[2*i+1])<<8) * gguf.BF16ToF32(uint16(a[2*i])|uint16(a[2*i+1])<<8)
	}
	return sum
}

// dotQ8_0AVX2: two blocks per step, each one mulSumI8 and one FMA by dw·da.
func dotQ8_0AVX2(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:34*nb], a[:34*nb]
	ones := archsimd.BroadcastInt16x16(1)
	var acc0, acc1 archsimd.Float32x8
	ib := 0
	for ; ib+2 <= nb; ib += 2 {
		x0, y0 := w[34*ib:34*ib+34], a[34*ib:34*ib+34]
		x1, y1 := w[34*ib+34:34*ib+68], a[34*ib+34:34*ib+68]
		p0 := mulSumI8(loadI8x32(x0[2:]), loadI8x32(y0[2:]), ones)
		p1 := mulSumI8(loadI8x32(x1[2:]), loadI8x32(y1[2:]), ones)
		acc0 = p0.ConvertToFloat32().MulAdd(scale2(x0, y0), acc0)
		acc1 = p1.ConvertToFloat32().MulAdd(scale2(x1, y1), acc1)
	}
	sum := hsum8(acc0.Add(acc1))
	if ib < nb {
		sum += dotQ8_0Ref(32, w[34*ib:], a[34*ib:])
	}
	return sum
}

// dotQ4_0AVX2: nibbles − 8 as signed bytes, then as Q8_0.
func dotQ4_0AVX2(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:18*nb], a[:34*nb]
	ones := archsimd.BroadcastInt16x16(1)
	eight := archsimd.BroadcastInt8x32(8)
	var acc0, acc1 archsimd.Float32x8
	ib := 0
	for ; ib+2 <= nb; ib += 2 {
		x0, y0 := w[18*ib:18*ib+18], a[34*ib:34*ib+34]
		x1, y1 := w[18*ib+18:18*ib+36], a[34*ib+34:34*ib+68]
		p0 := mulSumI8(nibbles32AVX2(x0[2:18]).AsInt8x32().Sub(eight), loadI8x32(y0[2:]), ones)
		p1 := mulSumI8(nibbles32AVX2(x1[2:18]).AsInt8x32().Sub(eight), loadI8x32(y1[2:]), ones)
		acc0 = p0.ConvertToFloat32().MulAdd(scale2(x0, y0), acc0)
		acc1 = p1.ConvertToFloat32().MulAdd(scale2(x1, y1), acc1)
	}
	sum := hsum8(acc0.Add(acc1))
	if ib < nb {
		sum += dotQ4_0Ref(32, w[18*ib:], a[34*ib:])
	}
	return sum
}

// dotQ4_1AVX2: unsigned nibbles straight into VPMADDUBSW, plus the weight
// min times the Q8_1 block sum s.
func dotQ4_1AVX2(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:20*nb], a[:36*nb]
	ones := archsimd.BroadcastInt16x16(1)
	var acc archsimd.Float32x8
	var mins archsimd.Float32x8 // all lanes alike
	for ib := 0; ib < nb; ib++ {
		x, y := w[20*ib:20*ib+20], a[36*ib:36*ib+36]
		p := mulSumU8(nibbles32AVX2(x[4:20]), loadI8x32(y[4:]), ones)
		acc = p.ConvertToFloat32().MulAdd(scale2(x, y), acc)
		mins = mins.Add(scale2(x[2:], y[2:]))
	}
	m := mins.GetLo().GetElem(0)
	return hsum8(acc) + m
}

func dotQ5_0AVX2(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:22*nb], a[:34*nb]
	ones := archsimd.BroadcastInt16x16(1)
	sixteen := archsimd.BroadcastInt8x32(16)
	var acc archsimd.Float32x8
	for ib := 0; ib < nb; ib++ {
		x, y := w[22*ib:22*ib+22], a[34*ib:34*ib+34]
		q := nibbles32AVX2(x[6:22]).Or(highBits32AVX2(x[2:6])).AsInt8x32().Sub(sixteen)
		p := mulSumI8(q, loadI8x32(y[2:]), ones)
		acc = p.ConvertToFloat32().MulAdd(scale2(x, y), acc)
	}
	return hsum8(acc)
}

func dotQ5_1AVX2(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:24*nb], a[:36*nb]
	ones := archsimd.BroadcastInt16x16(1)
	var acc archsimd.Float32x8
	var mins archsimd.Float32x8 // all lanes alike
	for ib := 0; ib < nb; ib++ {
		x, y := w[24*ib:24*ib+24], a[36*ib:36*ib+36]
		p := mulSumU8(nibbles32AVX2(x[8:24]).Or(highBits32AVX2(x[4:8])), loadI8x32(y[4:]), ones)
		acc = p.ConvertToFloat32().MulAdd(scale2(x, y), acc)
		mins = mins.Add(scale2(x[2:], y[2:]))
	}
	m := mins.GetLo().GetElem(0)
	return hsum8(acc) + m
}

func dotIQ4_NLAVX2(n int, w, a []byte) float32 {
	nb := n / 32
	w, a = w[:18*nb], a[:34*nb]
	kv := archsimd.LoadInt8x32(&kvalues32)
	ones := archsimd.BroadcastInt16x16(1)
	var acc archsimd.Float32x8
	for ib := 0; ib < nb; ib++ {
		x, y := w[18*ib:18*ib+18], a[34*ib:34*ib+34]
		q := kv.PermuteOrZeroGrouped(nibbles32AVX2(x[2:18]).AsInt8x32())
		p := mulSumI8(q, loadI8x32(y[2:]), ones)
		acc = p.ConvertToFloat32().MulAdd(scale2(x, y), acc)
	}
	return hsum8(acc)
}

func dotIQ4_XSAVX2(n int, w, a []byte) float32 {
	nb := n / 256
	w, a = w[:136*nb], a[:q8KBlock*nb]
	kv := archsimd.LoadInt8x32(&kvalues32)
	ones := archsimd.BroadcastInt16x16(1)
	var acc archsimd.Float32x8
	for i := 0; i < nb; i++ {
		x, y := w[136*i:136*i+136], a[q8KBlock*i:q8KBlock*(i+1)]
		var isum archsimd.Int32x8
		for ib := 0; ib < 8; ib++ {
			q := kv.PermuteOrZeroGrouped(nibbles32AVX2(x[8+16*ib:]).AsInt8x32())
			p := mulSumI8(q, loadI8x32(y[4+32*ib:]), ones)
			isum = isum.Add(p.Mul(archsimd.BroadcastInt32x8(int32(gguf.IQ4XSScale(x, ib) - 32))))
		}
		acc = isum.ConvertToFloat32().MulAdd(f16b8(h16(x)).Mul(f32b8(unsafe.Pointer(&y[0]))), acc)
	}
	return hsum8(acc)
}
