//go:build goexperiment.simd && amd64

package gguf

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The AVX-512 decoders equal the scalar ones bit for bit, on quantized
// random data and on random bytes with finite scales (all quant patterns).
func TestFastDecodersBitExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const n = 8 * QK_K
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.02)
	}
	for typ, slow := range scalarDecoders {
		rs, _ := RowSize(typ, n)
		inputs := [][]byte{make([]byte, rs), make([]byte, rs)}
		if err := Quantize(typ, x, inputs[0]); err != nil {
			t.Fatal(err)
		}
		for i := range inputs[1] {
			inputs[1][i] = byte(rng.Uint32())
		}
		if typ == TypeF16 { // keep NaN payload propagation out of it
			for i := 0; i < rs; i += 2 {
				inputs[1][i+1] &= 0x7b
			}
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
			want := make([]float32, n)
			got := make([]float32, n)
			slow(in, want)
			if err := Dequantize(typ, in, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s input %d element %d: fast %g (%#08x), scalar %g (%#08x)", typ, k, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	}
}
