package gguf

import (
	"math"
	"strings"
	"testing"
)

// Block layouts from ggml-common.h (static_asserts there) and ggml.c's
// type_traits table.
func TestTypeTable(t *testing.T) {
	tests := []struct {
		t          Type
		name       string
		block, siz int
	}{
		{TypeF32, "f32", 1, 4}, {TypeF16, "f16", 1, 2}, {TypeBF16, "bf16", 1, 2},
		{TypeQ4_0, "q4_0", 32, 18}, {TypeQ4_1, "q4_1", 32, 20},
		{TypeQ5_0, "q5_0", 32, 22}, {TypeQ5_1, "q5_1", 32, 24},
		{TypeQ8_0, "q8_0", 32, 34}, {TypeQ8_1, "q8_1", 32, 36},
		{TypeQ2_K, "q2_K", 256, 84}, {TypeQ3_K, "q3_K", 256, 110}, {TypeQ4_K, "q4_K", 256, 144},
		{TypeQ5_K, "q5_K", 256, 176}, {TypeQ6_K, "q6_K", 256, 210}, {TypeQ8_K, "q8_K", 256, 292},
		{TypeIQ4_NL, "iq4_nl", 32, 18}, {TypeIQ4_XS, "iq4_xs", 256, 136},
		{TypeIQ2_XXS, "iq2_xxs", 256, 66}, {TypeI32, "i32", 1, 4}, {TypeTQ2_0, "tq2_0", 256, 66},
	}
	for _, tc := range tests {
		if got := tc.t.String(); got != tc.name {
			t.Errorf("%d.String() = %q, want %q", tc.t, got, tc.name)
		}
		if tc.t.BlockSize() != tc.block || tc.t.TypeSize() != tc.siz {
			t.Errorf("%s: block %d size %d, want %d %d", tc.name, tc.t.BlockSize(), tc.t.TypeSize(), tc.block, tc.siz)
		}
		for _, s := range []string{tc.name, strings.ToUpper(tc.name), strings.ToLower(tc.name)} {
			if p, err := ParseType(s); err != nil || p != tc.t {
				t.Errorf("ParseType(%q) = %v, %v; want %v", s, p, err, tc.t)
			}
		}
		if n, err := RowSize(tc.t, 4*tc.block); err != nil || n != 4*tc.siz {
			t.Errorf("RowSize(%s, %d) = %d, %v", tc.name, 4*tc.block, n, err)
		}
	}
	if _, err := ParseType("q4_3"); err == nil {
		t.Error("ParseType(q4_3) succeeded")
	}
	for _, bad := range []Type{4, 31, 36, 39, 1000} {
		if bad.BlockSize() != 0 || bad.TypeSize() != 0 {
			t.Errorf("type %d: nonzero block/type size", bad)
		}
		if _, err := RowSize(bad, 32); err == nil || !strings.Contains(err.Error(), bad.String()) {
			t.Errorf("RowSize(type %d): error %v should name the type", bad, err)
		}
		if err := Dequantize(bad, nil, nil); err == nil || !strings.Contains(err.Error(), "type(") {
			t.Errorf("Dequantize(type %d): error %v should name the type", bad, err)
		}
	}
	if _, err := RowSize(TypeQ4_K, 100); err == nil {
		t.Error("RowSize(q4_K, 100) accepted a partial block")
	}
	// Known but without a codec: errors name the type.
	if err := Dequantize(TypeIQ2_XXS, make([]byte, 66), make([]float32, 256)); err == nil || !strings.Contains(err.Error(), "iq2_xxs") {
		t.Errorf("Dequantize(iq2_xxs) error = %v", err)
	}
	if err := Quantize(TypeIQ2_XXS, make([]float32, 256), make([]byte, 66)); err == nil || !strings.Contains(err.Error(), "iq2_xxs") {
		t.Errorf("Quantize(iq2_xxs) error = %v", err)
	}
	if CanQuantize(TypeIQ2_XXS) || !CanQuantize(TypeQ4_K) || !CanDequantize(TypeIQ4_XS) {
		t.Error("CanQuantize/CanDequantize disagree with the registry")
	}
	// Size mismatches are errors, not panics.
	if err := Dequantize(TypeQ4_0, make([]byte, 17), make([]float32, 32)); err == nil {
		t.Error("Dequantize accepted a short block")
	}
	if err := Quantize(TypeQ8_0, make([]float32, 32), make([]byte, 35)); err == nil {
		t.Error("Quantize accepted a wrong output size")
	}
}

// F16: every half survives half->float->half, and float32 midpoints between
// neighbouring halves round to the even one (IEEE round-to-nearest-even, what
// F16C does).
func TestF16Conversions(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if f != f {
			if back := F32ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x", h, back)
			}
			continue
		}
		if f != f16ToF32Slow(uint16(h)) {
			t.Fatalf("table mismatch at %#04x", h)
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)=%g) = %#04x", h, f, back)
		}
		if h&0x7fff >= 0x7bff { // largest finite and beyond: no upper neighbour
			continue
		}
		next := F16ToF32(uint16(h + 1))
		mid := float32((float64(f) + float64(next)) / 2) // exact in float32
		want := uint16(h)
		if h&1 == 1 {
			want = uint16(h + 1)
		}
		if got := F32ToF16(mid); got != want {
			t.Fatalf("F32ToF16(mid %g of %#04x) = %#04x, want %#04x", mid, h, got, want)
		}
	}
	if F32ToF16(70000) != 0x7c00 || F32ToF16(-70000) != 0xfc00 {
		t.Error("overflow must give infinity")
	}
	if F32ToF16(float32(math.Pow(2, -26))) != 0 || F32ToF16(float32(math.Pow(2, -25))*1.0001) != 1 {
		t.Error("subnormal rounding near zero")
	}
}

// BF16: ggml's conversion rounds to nearest even, flushes float32 subnormals
// and quiets NaNs.
func TestBF16Conversions(t *testing.T) {
	tests := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above tie
		{0x00400000, 0x0000}, // subnormal flushed
		{0x80400000, 0x8000}, // negative subnormal flushed to -0
		{0x7f800001, 0x7fc0}, // signalling NaN quieted
		{0x7f7fffff, 0x7f80}, // max float rounds to inf
	}
	for _, tc := range tests {
		if got := F32ToBF16(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
	for h := 0; h < 1<<16; h++ {
		f := BF16ToF32(uint16(h))
		if f != f || (h&0x7f80 == 0 && h&0x7f != 0) {
			continue // NaNs and subnormals do not round-trip by design
		}
		if back := F32ToBF16(f); back != uint16(h) {
			t.Fatalf("bf16 %#04x round trip gave %#04x", h, back)
		}
	}
}
