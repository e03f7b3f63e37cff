package ops

import (
	"encoding/binary"
	"fmt"
	"math"

	"ladder-engine/gguf"
)

// DotKernel is how matmul multiplies one weight row of a given GGUF type by
// one activation row, the way ggml's CPU backend does it: the activation row
// is first encoded in the weight type's vec_dot_type (ggml-cpu.c
// type_traits_cpu: Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1, Q8_K
// for the K-quants and IQ4_XS, F16/BF16/F32 for those types), then the dot
// runs block by block on integers. Quantizing activations to 8 bits is what
// llama.cpp does, so matching it is also the closest match to its outputs.
type DotKernel struct {
	ActType  gguf.Type                        // activation encoding the dot wants
	Quantize func(x []float32, dst []byte)    // encode one activation row (len(x) = cols, whole blocks) into ActType
	Dot      func(n int, w, a []byte) float32 // dot of one weight row (n elements) with one encoded activation row
	Impl     string                           // "avx512", "avx2" or "go": which implementation Dot is, for reports

	// DotRows is Dot for len(out) consecutive weight rows, rowBytes apart in
	// w, against one activation row as PrepareRows left it: out[r] =
	// Dot(n, w[r*rowBytes:], enc) up to float32 summation order. Decoding
	// uses it, so that a kernel can lay the activation row out for its inner
	// loop once per matmul and stream the weight rows.
	DotRows func(n int, w []byte, rowBytes int, a []byte, out []float32)
	// PrepareRows lays the encoded activation row enc (ActType) out for
	// DotRows in prep, RowsActBytes(n) bytes, 4-byte aligned. Both are nil
	// when DotRows takes the encoded row itself.
	PrepareRows  func(n int, enc, prep []byte)
	RowsActBytes func(n int) int
}

// dotEntry is one row of the dot registry: the plain Go reference kernel
// and, when the SIMD build has one for this machine, the fast kernel.
type dotEntry struct {
	act      gguf.Type
	quantize func(x []float32, dst []byte)
	ref      func(n int, w, a []byte) float32
	fast     func(n int, w, a []byte) float32
	fastImpl string // "avx512" or "avx2": which instructions fast needs
	// SIMD row kernel for decoding, if any, and its activation layout
	fastRows     func(n int, w []byte, rowBytes int, a []byte, out []float32)
	prepRows     func(n int, enc, prep []byte)
	rowsActBytes func(n int) int
	kernel       DotKernel
}

// dotTable lists the weight types matmul can multiply by; the SIMD build
// fills in fast kernels in its init (quant_dot_simd.go).
var dotTable = map[gguf.Type]*dotEntry{
	gguf.TypeF32:    {act: gguf.TypeF32, quantize: encodeActF32, ref: dotF32Ref},
	gguf.TypeF16:    {act: gguf.TypeF16, quantize: encodeActF16, ref: dotF16Ref},
	gguf.TypeBF16:   {act: gguf.TypeBF16, quantize: encodeActBF16, ref: dotBF16Ref},
	gguf.TypeQ4_0:   {act: gguf.TypeQ8_0, quantize: QuantizeActQ8_0, ref: dotQ4_0Ref},
	gguf.TypeQ4_1:   {act: gguf.TypeQ8_1, quantize: QuantizeActQ8_1, ref: dotQ4_1Ref},
	gguf.TypeQ5_0:   {act: gguf.TypeQ8_0, quantize: QuantizeActQ8_0, ref: dotQ5_0Ref},
	gguf.TypeQ5_1:   {act: gguf.TypeQ8_1, quantize: QuantizeActQ8_1, ref: dotQ5_1Ref},
	gguf.TypeQ8_0:   {act: gguf.TypeQ8_0, quantize: QuantizeActQ8_0, ref: dotQ8_0Ref},
	gguf.TypeQ2_K:   {act: gguf.TypeQ8_K, quantize: QuantizeActQ8_K, ref: dotQ2_KRef},
	gguf.TypeQ3_K:   {act: gguf.TypeQ8_K, quantize: QuantizeActQ8_K, ref: dotQ3_KRef},
	gguf.TypeQ4_K:   {act: gguf.TypeQ8_K, quantize: QuantizeActQ8_K, ref: dotQ4_KRef},
	gguf.TypeQ5_K:   {act: gguf.TypeQ8_K, quantize: QuantizeActQ8_K, ref: dotQ5_KRef},
	gguf.TypeQ6_K:   {act: gguf.TypeQ8_K, quantize: QuantizeActQ8_K, ref: dotQ6_KRef},
	gguf.TypeIQ4_NL: {act: gguf.TypeQ8_0, quantize: QuantizeActQ8_0, ref: dotIQ4_NLRef},
	gguf.TypeIQ4_XS: {act: gguf.TypeQ8_K, quantize: QuantizeActQ8_K, ref: dotIQ4_XSRef},
}

func init() {
	useFastDots()
	for _, e := range dotTable {
		e.kernel = DotKernel{ActType: e.act, Quantize: e.quantize, Dot: e.ref, Impl: "go"}
		if e.fast != nil {
			e.kernel.Dot, e.kernel.Impl = e.fast, e.fastImpl
		}
		e.kernel.DotRows = dotRowsLoop(e.kernel.Dot)
		if e.fast != nil && e.fastRows != nil {
			e.kernel.DotRows, e.kernel.PrepareRows, e.kernel.RowsActBytes = e.fastRows, e.prepRows, e.rowsActBytes
		}
	}
}

// dotRowsLoop makes a DotRows out of a one-row Dot.
func dotRowsLoop(dot func(n int, w, a []byte) float32) func(int, []byte, int, []byte, []float32) {
	return func(n int, w []byte, rowBytes int, a []byte, out []float32) {
		for r := range out {
			out[r] = dot(n, w[r*rowBytes:], a)
		}
	}
}

// DotKernelFor returns the dot kernel for weights of type t. The kernel is
// shared and read-only.
func DotKernelFor(t gguf.Type) (*DotKernel, error) {
	e, ok := dotTable[t]
	if !ok {
		return nil, fmt.Errorf("ops: no dot kernel for weight type %s", t)
	}
	return &e.kernel, nil
}

// QuantizeActQ8_0 encodes an activation row as Q8_0 the way ggml's x86
// from_float (quantize_row_q8_0, AVX2 path) does: d = amax/127, scale by
// 127/amax and round half to even (_mm256_round_ps). This differs from
// the reference quantizer (x*(1/d), roundf) only on rare ties.
func QuantizeActQ8_0(x []float32, dst []byte) {
	for i := 0; i < len(x)/32; i++ {
		xb := x[32*i : 32*i+32]
		b := dst[34*i : 34*i+34]
		amax := absMax(xb)
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		binary.LittleEndian.PutUint16(b, gguf.F32ToF16(d))
		for j, v := range xb {
			b[2+j] = byte(int8(math.RoundToEven(float64(v * id))))
		}
	}
}

// QuantizeActQ8_1 is ggml's x86 quantize_row_q8_1: as QuantizeActQ8_0, plus
// s = d * sum(q) stored as f16 so that dots fold the weight mins in.
func QuantizeActQ8_1(x []float32, dst []byte) {
	for i := 0; i < len(x)/32; i++ {
		xb := x[32*i : 32*i+32]
		b := dst[36*i : 36*i+36]
		amax := absMax(xb)
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		binary.LittleEndian.PutUint16(b, gguf.F32ToF16(d))
		sum := 0
		for j, v := range xb {
			q := int8(math.RoundToEven(float64(v * id)))
			b[4+j] = byte(q)
			sum += int(q)
		}
		binary.LittleEndian.PutUint16(b[2:], gguf.F32ToF16(d*float32(sum)))
	}
}

// QuantizeActQ8_K is quantize_row_q8_K_ref, which ggml also uses for
// activations on x86.
func QuantizeActQ8_K(x []float32, dst []byte) {
	if err := gguf.Quantize(gguf.TypeQ8_K, x, dst); err != nil {
		panic("ops: " + err.Error()) // callers size dst from RowSize
	}
}

func encodeActF32(x []float32, dst []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

func encodeActF16(x []float32, dst []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint16(dst[2*i:], gguf.F32ToF16(v))
	}
}

func encodeActBF16(x []float32, dst []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint16(dst[2*i:], gguf.F32ToBF16(v))
	}
}

func absMax(x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, float32(math.Abs(float64(v))))
	}
	return m
}
