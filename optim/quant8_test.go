package optim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDynamicMap checks the code book against values worked out from its
// definition: sorted, 0 and 1 present, the largest fraction midpoint of the
// top decade 0.1+0.9·63.5/64, the smallest unsigned step 1e-6·(0.1+0.9/4).
func TestDynamicMap(t *testing.T) {
	for _, tc := range []struct {
		name             string
		code             *[256]float32
		zeroAt           int
		first, secondTop float64
		positives        int
	}{
		{"signed", &signedMap, 127, -(0.1 + 0.9*63.5/64), 0.1 + 0.9*63.5/64, 128},
		{"unsigned", &unsignedMap, 0, 0, 0.1 + 0.9*127.5/128, 255},
	} {
		c := tc.code
		for i := 1; i < 256; i++ {
			if !(c[i] > c[i-1]) {
				t.Fatalf("%s map not strictly increasing at %d: %v, %v", tc.name, i, c[i-1], c[i])
			}
		}
		if c[tc.zeroAt] != 0 || c[255] != 1 {
			t.Errorf("%s map: code[%d] = %v (want 0), code[255] = %v (want 1)", tc.name, tc.zeroAt, c[tc.zeroAt], c[255])
		}
		if math.Abs(float64(c[0])-tc.first) > 1e-7 || math.Abs(float64(c[254])-tc.secondTop) > 1e-7 {
			t.Errorf("%s map: code[0] = %v (want %v), code[254] = %v (want %v)", tc.name, c[0], tc.first, c[254], tc.secondTop)
		}
		pos := 0
		for _, v := range c {
			if v > 0 {
				pos++
			}
		}
		if pos != tc.positives {
			t.Errorf("%s map: %d positive codes, want %d", tc.name, pos, tc.positives)
		}
	}
	if got, want := float64(unsignedMap[1]), 1e-6*(0.1+0.9*0.5/2); math.Abs(got-want) > 1e-12 {
		t.Errorf("smallest unsigned code %g, want %g", got, want)
	}
}

// TestQuantizeNearest compares the bucket-table search with a linear scan
// over the code book, on random values at all magnitudes and on every code
// value and midpoint between codes.
func TestQuantizeNearest(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	xs := []float32{0, 1, -1, 1e-30, -1e-30}
	for range 50000 {
		x := float32(rng.Float64()*2 - 1)
		if rng.IntN(2) == 0 {
			x *= float32(math.Pow(10, -8*rng.Float64())) // small magnitudes too
		}
		xs = append(xs, x)
	}
	for _, code := range []*[256]float32{&signedMap, &unsignedMap} {
		for i := range 255 {
			xs = append(xs, code[i], (code[i]+code[i+1])/2, math.Nextafter32(code[i], 2), math.Nextafter32(code[i], -2))
		}
	}
	for _, x := range xs {
		for _, c := range []struct {
			name string
			code *[256]float32
			got  func(float32) uint8
		}{
			{"signed", &signedMap, quantizeNearestSigned},
			{"unsigned", &unsignedMap, func(x float32) uint8 { return uint8(unsignedTable.nearestNonNeg(x)) }},
		} {
			if c.name == "unsigned" && x < 0 {
				continue
			}
			got := c.got(x)
			best := 0
			for i := range c.code {
				if math.Abs(float64(c.code[i]-x)) < math.Abs(float64(c.code[best]-x)) {
					best = i
				}
			}
			if math.Abs(float64(c.code[got]-x)) > math.Abs(float64(c.code[best]-x)) {
				t.Fatalf("%s x=%g: got code %d (%g), nearest is %d (%g)", c.name, x, got, c.code[got], best, c.code[best])
			}
		}
	}
	// Out of range (a rounding above 1, NaN) must not panic.
	for _, x := range []float32{1.0000001, float32(math.NaN()), float32(math.Inf(1)), -1.0000001} {
		quantizeNearestSigned(x)
		if x >= 0 || x != x {
			unsignedTable.nearestNonNeg(x)
		}
	}
}

// TestBlockRoundTrip quantizes Gaussian blocks: every value must come back
// within half the local code spacing (≤ 0.9/128/2 of absmax at the top
// decade), keep its sign, and positive second moments must stay positive.
func TestBlockRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 0))
	const n = 256
	vals, back := make([]float32, n), make([]float32, n)
	codes := make([]uint8, n)
	var worst float64
	for range 50 {
		var absmax float32
		for i := range vals {
			vals[i] = float32(rng.NormFloat64() * math.Exp(3*rng.NormFloat64()))
			absmax = max(absmax, abs32(vals[i]))
		}
		quantizeSigned(vals, absmax, codes)
		dequantize8(&signedMap, codes, absmax, back)
		for i := range vals {
			err := math.Abs(float64(back[i]-vals[i])) / float64(absmax)
			worst = max(worst, err)
			if err > 0.9/64/2+1e-6 {
				t.Fatalf("signed: %g came back as %g (absmax %g)", vals[i], back[i], absmax)
			}
			if vals[i] > 0 && back[i] < 0 || vals[i] < 0 && back[i] > 0 {
				t.Fatalf("signed: %g changed sign to %g", vals[i], back[i])
			}
		}
		for i := range vals {
			vals[i] *= vals[i]
		}
		absmax *= absmax
		quantizeUnsigned(vals, absmax, codes)
		dequantize8(&unsignedMap, codes, absmax, back)
		for i := range vals {
			if err := math.Abs(float64(back[i]-vals[i])) / float64(absmax); err > 0.9/128/2+1e-6 && vals[i] > 1e-6*absmax {
				t.Fatalf("unsigned: %g came back as %g (absmax %g)", vals[i], back[i], absmax)
			}
			if vals[i] > 0 && back[i] <= 0 {
				t.Fatalf("unsigned: positive %g (absmax %g) rounded to %g", vals[i], absmax, back[i])
			}
		}
	}
	t.Logf("worst signed round-trip error %.5f of absmax", worst)
	// A zero block stays zero.
	clear(vals)
	quantizeSigned(vals, 0, codes)
	dequantize8(&signedMap, codes, 0, back)
	for i := range back {
		if back[i] != 0 {
			t.Fatal("zero block did not come back as zeros")
		}
	}
}
