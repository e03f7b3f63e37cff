//go:build goexperiment.simd && amd64

package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"simd/archsimd"
	"testing"
)

// The AVX2 decoders, called directly (the AVX-512 ones take precedence
// where present), equal the scalar ones bit for bit: on quantized data, on
// random bytes with finite scales, on all-zero blocks, and for F16 on
// every half including infinities and NaNs, with a length that leaves a
// scalar tail.
func TestAVX2DecodersBitExact(t *testing.T) {
	if !archsimd.X86.AVX2() {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 8 * QK_K
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.02)
	}
	for typ, fast := range avx2Decoders {
		slow := scalarDecoders[typ]
		rs, _ := RowSize(typ, n)
		inputs := [][]byte{make([]byte, rs), make([]byte, rs), make([]byte, rs)} // quantized, random, zero
		if err := Quantize(typ, x, inputs[0]); err != nil {
			t.Fatal(err)
		}
		for i := range inputs[1] {
			inputs[1][i] = byte(rng.Uint32())
		}
		if typ == TypeF16 {
			inputs[1] = make([]byte, 2*(1<<16)+6) // every half, then a 3-value tail
			for h := 0; h < 1<<16; h++ {
				binary.LittleEndian.PutUint16(inputs[1][2*h:], uint16(h))
			}
			inputs = append(inputs, inputs[1][:2*1003])
		} else {
			bs := typ.TypeSize()
			for o := 0; o < rs; o += bs { // finite block scales
				off := 0
				if typ == TypeQ6_K {
					off = 208
				}
				inputs[1][o+off+1] &= 0x7b
				if typ == TypeQ4_K {
					inputs[1][o+3] &= 0x7b
				}
			}
		}
		for k, in := range inputs {
			m := n
			if typ == TypeF16 {
				m = len(in) / 2
			}
			want := make([]float32, m)
			got := make([]float32, m)
			slow(in, want)
			fast(in, got)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s input %d element %d: avx2 %g (%#08x), scalar %g (%#08x)", typ, k, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	}
}
