package eval

import (
	"math"
	"testing"
)

// The expected intervals are computed by hand from the closed forms
// (z = 1.959964, z² = 3.841459):
//   - k = 0: [0, z²/(n+z²)]; k = n: [n/(n+z²), 1];
//   - k = n/2: centre 1/2, half-width z/(2·√(n+z²)).
//
// and one general case from the formula
// (p + z²/2n ± z·√(p(1-p)/n + z²/4n²)) / (1 + z²/n).
func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{
		{5, 10, 0.5 - 1.959964/(2*math.Sqrt(13.841459)), 0.5 + 1.959964/(2*math.Sqrt(13.841459))}, // 0.23659, 0.76341
		{0, 10, 0, 3.841459 / 13.841459}, // 0.27753
		{10, 10, 10 / 13.841459, 1},      // 0.72247
		{436, 872, 0.466886, 0.533114},   // half-width 1.959964/(2·√875.841459) = 0.033114
		{1, 1, 1 / 4.841459, 1},          // 0.20655
		{81, 263, 0.2552885, 0.3662096},  // p = 0.30798: (0.30798+0.0073032 ± 0.0552806)/1.0146063
		{0, 0, 0, 1},                     // nothing known
	} {
		lo, hi := Wilson(tc.k, tc.n)
		// 1e-5: the hand values carry 6-7 digits.
		if math.Abs(lo-tc.lo) > 1e-5 || math.Abs(hi-tc.hi) > 1e-5 {
			t.Errorf("Wilson(%d, %d) = [%.6f, %.6f], want [%.6f, %.6f]", tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
}
