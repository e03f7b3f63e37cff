package optim

import (
	"math"
	"sort"
)

// Block-wise 8-bit storage of optimizer moments, following the design of
// bitsandbytes (Dettmers et al. 2022, "8-bit Optimizers via Block-wise
// Quantization"): each block of consecutive values keeps one float32 scale
// (its absolute maximum) and one byte per value, the index of the nearest
// entry of a fixed 256-entry code book on [-1, 1] ("dynamic" map: a decimal
// exponent and a linear fraction, dense near zero).

// DynamicMap builds the 256 sorted code values of the dynamic data type.
// For exponent e = 0..6 it adds the midpoints of an even split of [0.1, 1]
// into 2^e (signed, each sign) or 2^(e+1) (unsigned) intervals, scaled by
// 10^(e-6); then 0 and 1. Signed: 127 negatives, 0, 128 positives (index 127
// is 0). Unsigned: 0, 254 positives, 1.
func DynamicMap(signed bool) [256]float32 {
	var vals []float64
	for e := 0; e < 7; e++ {
		n := 1 << e // fraction intervals at this exponent
		if !signed {
			n <<= 1
		}
		scale := math.Pow(10, float64(e-6))
		for i := 0; i < n; i++ {
			// midpoint of [0.1 + 0.9*i/n, 0.1 + 0.9*(i+1)/n]
			mid := 0.1 + 0.9*(float64(i)+0.5)/float64(n)
			vals = append(vals, scale*mid)
			if signed {
				vals = append(vals, -scale*mid)
			}
		}
	}
	vals = append(vals, 0, 1)
	sort.Float64s(vals)
	var out [256]float32
	for i, v := range vals {
		out[i] = float32(v)
	}
	return out
}

var (
	signedMap   = DynamicMap(true)  // first moments (any sign)
	unsignedMap = DynamicMap(false) // second moments (>= 0)
)

const signedZero = 127 // index of 0 in signedMap

// bucketTable finds nearest codes without a binary search: start[k] is the
// largest code index whose value is <= the smallest float32 whose bits>>16
// equal k (k covers [0, 1]). A bucket spans 1/128 of an octave and holds at
// most two code boundaries, so a short forward walk finishes the search.
type bucketTable struct {
	code  *[256]float32
	start []uint8
}

func newBucketTable(code *[256]float32) *bucketTable {
	n := math.Float32bits(1)>>16 + 1
	t := &bucketTable{code: code, start: make([]uint8, n)}
	i := 0
	for k := range n {
		lo := math.Float32frombits(k << 16)
		for i < 255 && code[i+1] <= lo {
			i++
		}
		t.start[k] = uint8(i)
	}
	return t
}

// nearestNonNeg returns the index of the code nearest to x in [0, 1]
// (values a rounding above 1, or NaN, give 255).
func (t *bucketTable) nearestNonNeg(x float32) int {
	k := math.Float32bits(x) >> 16
	if int(k) >= len(t.start) {
		return 255
	}
	c := t.code
	i := int(t.start[k])
	for i < 255 && c[i+1] <= x {
		i++
	}
	if i < 255 && !(x-c[i] < c[i+1]-x) {
		i++
	}
	return i
}

var (
	signedTable   = newBucketTable(&signedMap)
	unsignedTable = newBucketTable(&unsignedMap)
)

// quantizeNearestSigned returns the index of the signed code nearest to x
// in [-1, 1]. The negative codes mirror the positive ones
// (code[127-k] = -code[127+k]), except that 1 has no negative twin.
func quantizeNearestSigned(x float32) uint8 {
	if x >= 0 {
		return uint8(signedTable.nearestNonNeg(x))
	}
	i := signedTable.nearestNonNeg(-x)
	if i == 255 {
		return 0
	}
	return uint8(254 - i)
}

// quantizeSigned stores a first-moment block: codes[i] ≈ vals[i]/absmax.
// Like bitsandbytes it keeps the sign: a value that rounds to a code of the
// other sign moves one code towards it.
func quantizeSigned(vals []float32, absmax float32, codes []uint8) {
	if absmax == 0 {
		for i := range codes {
			codes[i] = signedZero
		}
		return
	}
	inv := 1 / absmax
	for i, v := range vals {
		c := quantizeNearestSigned(v * inv)
		if q := signedMap[c]; v > 0 && q < 0 {
			c++
		} else if v < 0 && q > 0 {
			c--
		}
		codes[i] = c
	}
}

// quantizeUnsigned stores a second-moment block. Unlike bitsandbytes, a
// positive value never rounds to 0: the update divides by sqrt(v)+eps, and a
// zero v under a non-zero first moment would make that step explode (the
// "zero-point problem" of low-bit second moments, Li et al. 2023). Rounding
// up to the smallest code only makes such a step smaller.
func quantizeUnsigned(vals []float32, absmax float32, codes []uint8) {
	if absmax == 0 {
		clear(codes)
		return
	}
	inv := 1 / absmax
	for i, v := range vals {
		c := uint8(unsignedTable.nearestNonNeg(v * inv))
		if c == 0 && v > 0 {
			c = 1
		}
		codes[i] = c
	}
}

// dequantize8 expands a block: vals[i] = code[codes[i]] * absmax.
func dequantize8(code *[256]float32, codes []uint8, absmax float32, vals []float32) {
	for i, c := range codes {
		vals[i] = code[c] * absmax
	}
}
