package ops

import (
	"math"
	"testing"
)

// expf against math.Exp rounded to float32: within one float32 ulp over
// the whole range the kernels use, and exact at the edges.
func TestExpf(t *testing.T) {
	for x := float32(-100); x < 100; x += 0.001371 {
		want := float32(math.Exp(float64(x)))
		got := expf(x)
		if got != want && math.Abs(float64(got-want)) > float64(math.Nextafter32(want, float32(math.Inf(1)))-want) {
			t.Fatalf("expf(%g) = %g, want %g", x, got, want)
		}
	}
	for _, x := range []float32{0, -87, 88, 89, -104, float32(math.Inf(1)), float32(math.Inf(-1))} {
		if got, want := expf(x), float32(math.Exp(float64(x))); got != want {
			t.Errorf("expf(%g) = %g, want %g", x, got, want)
		}
	}
	if !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Error("expf(NaN) is not NaN")
	}
}

func BenchmarkExpf(b *testing.B) {
	var s float32
	for i := 0; i < b.N; i++ {
		s += expf(float32(i%200-100) * 0.1)
	}
	_ = s
}
