package eval

import "math"

// z95 is the two-sided 95% normal quantile, Φ⁻¹(0.975).
const z95 = 1.959963984540054

// Wilson returns the 95% Wilson score interval for k successes in n trials.
// Unlike the normal approximation p ± z·√(p(1-p)/n) it stays inside [0,1]
// and is not degenerate at k = 0 or k = n, which matters for small eval sets
// (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it for n < 40 too).
// With n = 0 nothing is known: it returns [0, 1].
func Wilson(k, n int) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z95 * z95
	denom := 1 + z2/nf
	center := (p + z2/(2*nf)) / denom
	half := z95 / denom * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lo, hi = center-half, center+half
	// Rounding can push the ends a hair past [0,1] at k=0 or k=n.
	return math.Max(0, lo), math.Min(1, hi)
}
