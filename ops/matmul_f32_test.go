package ops

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// The float32 kernels (SIMD when built with GOEXPERIMENT=simd) agree with a
// float64 sum to float32 rounding, for lengths around the vector widths.
func TestF32Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 15, 16, 17, 31, 32, 33, 64, 100, 172, 1000} {
		x := randVec(rng, n)
		w := [4][]float32{randVec(rng, n), randVec(rng, n), randVec(rng, n), randVec(rng, n)}
		ref := func(a, b []float32) float64 {
			var s float64
			for i := range a {
				s += float64(a[i]) * float64(b[i])
			}
			return s
		}
		// float32 accumulation over n terms of size ~1: error ~ sqrt(n)·eps·|terms|
		tol := 1e-5 * float64(n+1)
		if d := math.Abs(float64(dotF32(x, w[0])) - ref(x, w[0])); d > tol {
			t.Errorf("n %d: dotF32 off by %g", n, d)
		}
		s0, s1, s2, s3 := dot4F32(w[0], w[1], w[2], w[3], x)
		for i, s := range []float32{s0, s1, s2, s3} {
			if d := math.Abs(float64(s) - ref(w[i], x)); d > tol {
				t.Errorf("n %d: dot4F32[%d] off by %g", n, i, d)
			}
		}
		y := randVec(rng, n)
		y0 := append([]float32(nil), y...)
		axpyF32(y, 0.5, x)
		for i := range y {
			if want := y0[i] + 0.5*x[i]; math.Abs(float64(y[i]-want)) > 1e-6 {
				t.Fatalf("n %d: axpy[%d] = %g, want %g", n, i, y[i], want)
			}
		}
	}
}
