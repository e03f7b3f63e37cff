package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// The engine's elementwise kernels (AVX-512 in the GOEXPERIMENT=simd
// build) agree with plain Go: f16 rounding exactly (ggml's conversion),
// softmax and SiLU to a few float32 ulps (ggml's vector exp is within
// 1-2 ulps of libm's).
func TestElementwiseKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	x := make([]float32, 1000)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-8)))
	}
	x[0], x[1], x[2], x[3] = 0, 65504, 65519, 65520 // max half, last value rounding down, first to Inf
	x[4], x[5] = 0x1p-24, 0x1p-25*1.5               // smallest subnormal; rounds up to it
	got := append([]float32(nil), x...)
	roundF16(got)
	for i, v := range x {
		if want := gguf.F16ToF32(gguf.F32ToF16(v)); math.Float32bits(got[i]) != math.Float32bits(want) {
			t.Fatalf("roundF16(%g) = %g, want %g", v, got[i], want)
		}
		if r := roundF16One(v); math.Float32bits(r) != math.Float32bits(gguf.F16ToF32(gguf.F32ToF16(v))) {
			t.Fatalf("roundF16One(%g) = %g", v, r)
		}
	}
	for _, n := range []int{1, 15, 16, 17, 100, 333} {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64() * 5)
		}
		a, b := append([]float32(nil), s...), append([]float32(nil), s...)
		softmaxRow(a, 0.125, false)
		softmaxRowGo(b, 0.125, false)
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-6*float64(b[i])+1e-12 {
				t.Fatalf("n %d: softmax[%d] = %g, want %g", n, i, a[i], b[i])
			}
		}
		up := make([]float32, n)
		for i := range up {
			up[i] = float32(rng.NormFloat64())
		}
		a, b = append([]float32(nil), s...), append([]float32(nil), s...)
		siluMul(a, up)
		siluMulGo(b, up)
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-6*math.Abs(float64(b[i]))+1e-7 {
				t.Fatalf("n %d: silu·up[%d] = %g, want %g", n, i, a[i], b[i])
			}
		}
	}
}

// The vector SwiGLU backward agrees with the Go loop to a few ulps (its
// exp), on tails of every length, with either gradient absent, and where
// the exp overflows or vanishes.
func TestSwiGLUBackwardKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{1, 7, 8, 9, 16, 31, 100} {
		g, u, d := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range g {
			g[i] = float32(rng.NormFloat64() * 4)
			u[i] = float32(rng.NormFloat64())
			d[i] = float32(rng.NormFloat64())
		}
		g[0] = -100 // e^100 overflows: σ = 0
		if n > 2 {
			g[1], g[2] = 100, 0
		}
		for _, want := range [][2]bool{{true, true}, {true, false}, {false, true}} {
			var dg, du, dg0, du0 []float32
			if want[0] {
				dg, dg0 = make([]float32, n), make([]float32, n)
				for i := range dg {
					dg[i] = float32(i) * 0.25 // accumulated into
					dg0[i] = dg[i]
				}
			}
			if want[1] {
				du, du0 = make([]float32, n), make([]float32, n)
				for i := range du {
					du[i] = -float32(i) * 0.5
					du0[i] = du[i]
				}
			}
			swigluBackward(dg, du, d, g, u, n)
			swigluBackwardGo(dg0, du0, d, g, u, n)
			for _, p := range []struct {
				name      string
				got, want []float32
			}{{"dgate", dg, dg0}, {"dup", du, du0}} {
				for i := range p.got {
					if math.Abs(float64(p.got[i]-p.want[i])) > 2e-6*math.Abs(float64(p.want[i]))+1e-6 || math.IsNaN(float64(p.got[i])) {
						t.Fatalf("n %d: %s[%d] = %g, want %g (gate %g)", n, p.name, i, p.got[i], p.want[i], g[i])
					}
				}
			}
		}
	}
}
