//go:build goexperiment.simd && amd64

package ops

import (
	"encoding/binary"
	"math"
	"unsafe"

	"ladder-engine/gguf"
)

// Assembly row kernels for decoding on AVX2 CPUs without AVX-512
// (quant_dot_rows_avx2_amd64.s): Q8_0, Q4_0 and F16 weights, every row of
// a DotRows call in one assembly loop. Their twins are the kernels they
// replace: dotRowsLoop(dotQ8_0AVX2), dotRowsQ4_0AVX512 (archsimd, also run
// on AVX2) and dotRowsLoop(dotF16F16CRow). The activation side is
// prepared once per matmul: Q8_0 blocks with the scale widened into eight
// lanes (prepRowsQ8_0Dup), the q8_0Prep layout for Q4_0, F16 widened to
// float32 (prepRowsF16). Activations are also encoded in assembly
// (quantizeActAVX2) instead of the scalar Go encoders.

// useFastDotRowsAVX2 installs the assembly row kernels; useFastDotsAVX2
// calls it after useFastDotRows. The Q8_0 and F16 kernels widen halves
// with F16C.
func useFastDotRowsAVX2() {
	dotTable[gguf.TypeQ4_0].fastRows = dotRowsQ4_0AVX2
	if !hasF16C {
		return
	}
	e := dotTable[gguf.TypeQ8_0]
	e.fastRows, e.prepRows, e.rowsActBytes = dotRowsQ8_0AVX2, prepRowsQ8_0Dup, rowsActBytesQ8_0Dup
	e = dotTable[gguf.TypeF16]
	e.fastRows, e.prepRows, e.rowsActBytes = dotRowsF16AVX2, prepRowsF16, rowsActBytesF16
	e = dotTable[gguf.TypeBF16]
	e.fastRows, e.prepRows, e.rowsActBytes = dotRowsBF16AVX2, prepRowsBF16, rowsActBytesF16
}

// rowsActBytesQ8_0Dup: 64 bytes a block, the 32 quants then the scale as
// float32 in eight lanes.
func rowsActBytesQ8_0Dup(n int) int { return n / 32 * 64 }

// prepRowsQ8_0Dup lays a Q8_0 row of n elements (enc) out for
// dotRowsQ8_0AVX2.
func prepRowsQ8_0Dup(n int, enc, prep []byte) {
	nb := n / 32
	if len(enc) < 34*nb || len(prep) < 64*nb {
		panic("ops: PrepareRows: activation slice too short")
	}
	if nb > 0 {
		prepQ8_0DupAsm(&enc[0], nb, &prep[0])
	}
}

// prepRowsQ8_0DupGo is prepRowsQ8_0Dup in Go: the assembly's twin.
func prepRowsQ8_0DupGo(n int, enc, prep []byte) {
	for b := 0; b < n/32; b++ {
		copy(prep[64*b:64*b+32], enc[34*b+2:34*b+34])
		d := math.Float32bits(half(enc[34*b:]))
		for j := 0; j < 8; j++ {
			binary.LittleEndian.PutUint32(prep[64*b+32+4*j:], d)
		}
	}
}

// dotRowsQ8_0AVX2: Q8_0 × Q8_0 (prepared by prepRowsQ8_0Dup), in assembly.
func dotRowsQ8_0AVX2(n int, w []byte, rb int, a []byte, out []float32) {
	nb := n / 32
	rows := len(out)
	dotRowsCheck(w, rows, rb, 34*nb, a, rowsActBytesQ8_0Dup(n))
	if rows == 0 {
		return
	}
	if nb == 0 {
		clear(out)
		return
	}
	dotRowsQ8_0Asm(&w[0], rb, rows, nb, &a[0], &out[0])
}

// dotRowsQ4_0AVX2: dotRowsQ4_0AVX512's whole groups of eight blocks in
// assembly (same q8_0Prep layout), then the leftover blocks as there.
func dotRowsQ4_0AVX2(n int, w []byte, rb int, a []byte, out []float32) {
	nb := n / 32
	rows := len(out)
	dotRowsCheck(w, rows, rb, 18*nb, a, rowsActBytesQ8_0(n))
	if rows == 0 {
		return
	}
	groups, tail := nb/8, nb%8
	if groups > 0 {
		dotRowsQ4_0Asm(&w[0], rb, rows, groups, &a[0], &out[0])
	} else {
		clear(out)
	}
	if tail != 0 {
		for r := 0; r < rows; r++ {
			out[r] += dotQ4_0AVX2(32*tail, w[r*rb+18*8*groups:], a[groups*q8_0PrepBytes:])
		}
	}
}

// rowsActBytesF16: the activation row widened to float32.
func rowsActBytesF16(n int) int { return 4 * n }

// prepRowsF16 widens an F16 activation row (enc) to float32 for
// dotRowsF16AVX2 (exact).
func prepRowsF16(n int, enc, prep []byte) {
	if len(enc) < 2*n || len(prep) < 4*n {
		panic("ops: PrepareRows: activation slice too short")
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(prep)))%4 != 0 {
		panic("ops: PrepareRows: prep not 4-byte aligned")
	}
	m := n &^ 7
	if m > 0 {
		widenF16Asm(&enc[0], m/8, (*float32)(unsafe.Pointer(&prep[0])))
	}
	for i := m; i < n; i++ {
		binary.LittleEndian.PutUint32(prep[4*i:], math.Float32bits(half(enc[2*i:])))
	}
}

// dotRowsF16AVX2: F16 weights × float32 activations (prepRowsF16), whole
// groups of 16 in assembly, equal to dotF16F16CRow bit for bit; the last
// n mod 16 products are added after, as there.
func dotRowsF16AVX2(n int, w []byte, rb int, a []byte, out []float32) {
	dotRows16Bit(n, w, rb, a, out, dotRowsF16Asm, half)
}

// prepRowsBF16 widens a BF16 activation row (enc) to float32 for
// dotRowsBF16AVX2 (exact: the bits 16 up), in integer registers.
func prepRowsBF16(n int, enc, prep []byte) {
	if len(enc) < 2*n || len(prep) < 4*n {
		panic("ops: PrepareRows: activation slice too short")
	}
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(prep[4*i:], uint32(binary.LittleEndian.Uint16(enc[2*i:]))<<16)
	}
}

// dotRowsBF16AVX2: BF16 weights × float32 activations (prepRowsBF16),
// equal to dotBF16AVX2 bit for bit, as dotRowsF16AVX2.
func dotRowsBF16AVX2(n int, w []byte, rb int, a []byte, out []float32) {
	dotRows16Bit(n, w, rb, a, out, dotRowsBF16Asm, func(b []byte) float32 { return gguf.BF16ToF32(binary.LittleEndian.Uint16(b)) })
}

// dotRows16Bit runs a 16-bit float row kernel (asm) over whole groups of
// 16 and adds the last n mod 16 products with widen.
func dotRows16Bit(n int, w []byte, rb int, a []byte, out []float32,
	asm func(w *byte, rowBytes, rows, n16 int, a *float32, out *float32), widen func([]byte) float32) {
	rows := len(out)
	dotRowsCheck(w, rows, rb, 2*n, a, 4*n)
	if rows == 0 {
		return
	}
	m := n &^ 15
	if m > 0 {
		asm(&w[0], rb, rows, m/16, (*float32)(unsafe.Pointer(&a[0])), &out[0])
	} else {
		clear(out)
	}
	for i := m; i < n; i++ {
		y := f32At(a[4*i:])
		for r := 0; r < rows; r++ {
			out[r] += widen(w[r*rb+2*i:]) * y
		}
	}
}

// quantizeActAVX2 is quantizeActFast on AVX2 with F16C: Q8_0 and F16
// activations encoded in assembly, equal to QuantizeActQ8_0 and
// encodeActF16 byte for byte.
func quantizeActAVX2(t gguf.Type, x []float32, dst []byte) bool {
	if !hasF16C {
		return false
	}
	switch t {
	case gguf.TypeQ8_0:
		nb := len(x) / 32
		if len(dst) < 34*nb {
			panic("ops: quantize Q8_0: destination too short")
		}
		if nb > 0 {
			quantizeQ8_0Asm(&x[0], nb, &dst[0])
		}
	case gguf.TypeF16:
		n := len(x)
		if len(dst) < 2*n {
			panic("ops: encode F16: destination too short")
		}
		m := n &^ 7
		if m > 0 {
			narrowF16Asm(&x[0], m/8, &dst[0])
		}
		encodeActF16(x[m:], dst[2*m:])
	default:
		return false
	}
	return true
}

//go:noescape
func dotRowsQ8_0Asm(w *byte, rowBytes, rows, nb int, a *byte, out *float32)

//go:noescape
func dotRowsQ4_0Asm(w *byte, rowBytes, rows, groups int, a *byte, out *float32)

//go:noescape
func dotRowsF16Asm(w *byte, rowBytes, rows, n16 int, a *float32, out *float32)

//go:noescape
func dotRowsBF16Asm(w *byte, rowBytes, rows, n16 int, a *float32, out *float32)

//go:noescape
func prepQ8_0DupAsm(enc *byte, nb int, prep *byte)

//go:noescape
func widenF16Asm(h *byte, n8 int, f *float32)

//go:noescape
func narrowF16Asm(f *float32, n8 int, h *byte)

//go:noescape
func quantizeQ8_0Asm(x *float32, nb int, dst *byte)
