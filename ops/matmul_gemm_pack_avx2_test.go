//go:build goexperiment.simd && amd64

package ops

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// packTestMatrix is a (rows, cols) matrix of type typ with random values
// and, spread over it, the edge encodings of the type: zeros of both
// signs, the largest finite value, the smallest normal, subnormals,
// infinities.
func packTestMatrix(t *testing.T, rng *rand.Rand, typ gguf.Type, rows, cols int) *Matrix {
	t.Helper()
	if typ == gguf.TypeF32 {
		v := randVec(rng, rows*cols)
		edges := []float32{0, float32(math.Copysign(0, -1)), math.MaxFloat32, -math.MaxFloat32,
			0x1p-126, 0x1p-149, -0x1p-140, float32(math.Inf(1)), float32(math.Inf(-1))}
		for i := range v {
			if rng.IntN(4) == 0 {
				v[i] = edges[rng.IntN(len(edges))]
			}
		}
		return NewMatrixF32("w", rows, cols, v)
	}
	// Half bit patterns: random ones (any, NaNs included) and edges.
	var edges []uint16
	switch typ {
	case gguf.TypeF16: // ±0, max finite, min normal, subnormals (min, max, negative), ±inf
		edges = []uint16{0x0000, 0x8000, 0x7bff, 0xfbff, 0x0400, 0x8400, 0x0001, 0x03ff, 0x8001, 0x7c00, 0xfc00}
	case gguf.TypeBF16:
		edges = []uint16{0x0000, 0x8000, 0x7f7f, 0xff7f, 0x0080, 0x8080, 0x0001, 0x007f, 0x8001, 0x7f80, 0xff80}
	}
	raw := make([]byte, 2*rows*cols)
	for i := 0; i < rows*cols; i++ {
		h := uint16(rng.Uint32())
		if rng.IntN(4) == 0 {
			h = edges[rng.IntN(len(edges))]
		}
		binary.LittleEndian.PutUint16(raw[2*i:], h)
	}
	w, err := NewMatrix("w", typ, rows, cols, raw)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// samePanelValue: equal bits, or both NaN (F16C quiets a signalling NaN).
func samePanelValue(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// TestPackPanelAVX2: the assembly packers write the panel packPanelGo
// writes, bit for bit, and nothing past it, for F16, BF16 and F32 weights:
// depths that are and are not multiples of 8 (the Go tail) and of 256,
// column offsets, row offsets not multiples of 32, odd row strides. Partial
// panels (nr < 32) are declined and left to packPanelGo.
func TestPackPanelAVX2(t *testing.T) {
	needAVX2(t)
	if !hasF16C {
		t.Skip("CPU has no F16C")
	}
	rng := rand.New(rand.NewPCG(31, 32))
	const sentinel = float32(-12345.5)
	for _, typ := range []gguf.Type{gguf.TypeF16, gguf.TypeBF16, gguf.TypeF32} {
		for _, shape := range [][2]int{{32, 8}, {33, 7}, {64, 256}, {70, 300}, {96, 517}, {40, 1024}} {
			rows, cols := shape[0], shape[1]
			w := packTestMatrix(t, rng, typ, rows, cols)
			for _, j0 := range []int{0, 1, rows - gemmNR} {
				if j0+gemmNR > rows {
					continue
				}
				for _, kr := range [][2]int{{0, cols}, {0, min(cols, 256)}, {min(cols, 256), cols}, {cols / 3, cols - 1}, {3, 5}} {
					k0, k1 := kr[0], min(kr[1], cols)
					if k0 > k1 {
						continue
					}
					depth := k1 - k0
					got := make([]float32, depth*gemmNR+gemmNR)
					want := make([]float32, depth*gemmNR+gemmNR)
					for i := range got {
						got[i], want[i] = sentinel, sentinel
					}
					if !packPanelFast(got[:depth*gemmNR], w, j0, gemmNR, k0, k1) {
						t.Fatalf("%s: packPanelFast declined a full panel", typ)
					}
					packPanelGo(want[:depth*gemmNR], make([]float32, depth), w, j0, gemmNR, k0, k1)
					for i := range got {
						if !samePanelValue(got[i], want[i]) {
							t.Fatalf("%s %dx%d rows %d.. cols %d..%d: panel[%d] (k %d, j %d) = %g (%#x), want %g (%#x)",
								typ, rows, cols, j0, k0, k1, i, i/gemmNR, i%gemmNR,
								got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
						}
					}
					if packPanelFast(got[:depth*gemmNR], w, j0, gemmNR-1, k0, k1) {
						t.Fatalf("%s: packPanelFast took a partial panel", typ)
					}
				}
			}
		}
	}
}

// TestPackF16PanelExhaustive: every half, through VCVTPH2PS and the
// transpose, equals gguf.F16ToF32 (NaNs: NaN).
func TestPackF16PanelExhaustive(t *testing.T) {
	needAVX2(t)
	if !hasF16C {
		t.Skip("CPU has no F16C")
	}
	const cols = 1 << 16 / gemmNR
	raw := make([]byte, 2*gemmNR*cols)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(i))
	}
	panel := make([]float32, cols*gemmNR)
	packF16PanelAVX2(&panel[0], &raw[0], 2*cols, cols)
	for j := range gemmNR {
		for k := range cols {
			h := uint16(j*cols + k)
			if got, want := panel[k*gemmNR+j], gguf.F16ToF32(h); !samePanelValue(got, want) {
				t.Fatalf("half %#04x: %g (%#x), want %g (%#x)", h, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

// TestRoundF16F16C: F16C's round trip equals roundF16Go (gguf.F32ToF16
// and back) bit for bit, NaNs as NaNs: every exponent and sign with the
// mantissa bits that decide the rounding (ties, just below and above,
// odd and even kept bits, the subnormal and overflow ranges), and random
// patterns; lengths not multiples of 8 or 16.
func TestRoundF16F16C(t *testing.T) {
	needAVX2(t)
	if !hasF16C {
		t.Skip("CPU has no F16C")
	}
	var xs []float32
	for e := uint32(0); e < 256; e++ {
		for _, m := range []uint32{0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x2fff, 0x3000, 0x3001, 0x7fe000, 0x7fefff, 0x7ff000, 0x7fffff, 0x400000} {
			for _, s := range []uint32{0, 1 << 31} {
				xs = append(xs, math.Float32frombits(s|e<<23|m))
			}
		}
	}
	rng := rand.New(rand.NewPCG(51, 52))
	for range 1 << 20 {
		xs = append(xs, math.Float32frombits(rng.Uint32()))
	}
	for _, n := range []int{len(xs), len(xs) - 3, 13, 8, 7} {
		got := make([]float32, n)
		want := make([]float32, n)
		roundF16AVX2(xs[:n], got)
		roundF16Go(xs[:n], want)
		for i := range got {
			if !samePanelValue(got[i], want[i]) {
				t.Fatalf("n %d: round(%g = %#x) = %g (%#x), want %g (%#x)", n, xs[i], math.Float32bits(xs[i]),
					got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
}
