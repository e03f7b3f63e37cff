package ops

import (
	"math"

	"ladder-engine/gguf"
)

// roundActs writes into a (n, cols) the activations in (n, cols) as the
// weight's dot kernel sees them: encoded to its activation type (Q8_0,
// Q8_K, F16, ...) and decoded back to float32, exactly (a half, or an 8-bit
// value times its block scale, is a float32). The common types take a fused
// path (roundActsFast: SIMD where available); the others encode with the
// kernel's own Quantize into enc (scratch of actBytes per row) and decode.
func roundActs(p *Pool, a, in []float32, n, cols int, k *DotKernel, enc []byte, actBytes int) {
	p.For(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			roundActRow(k, in[i*cols:(i+1)*cols], a[i*cols:(i+1)*cols], enc[i*actBytes:(i+1)*actBytes])
		}
	})
}

// roundActRow is roundActs for one row x into y, enc its scratch
// encoding (actBytes).
func roundActRow(k *DotKernel, x, y []float32, enc []byte) {
	if roundActsFast(k.ActType, x, y) {
		return
	}
	k.Quantize(x, enc)
	if err := gguf.Dequantize(k.ActType, enc, y); err != nil {
		panic(err)
	}
}

// fakeQ8_0Go is QuantizeActQ8_0 then Q8_0 decoding: per 32 values
// d = f16(amax/127), q = roundToEven(x·127/amax), y = q·d.
func fakeQ8_0Go(x, y []float32) {
	for b := 0; b < len(x)/32; b++ {
		xb, yb := x[32*b:32*b+32], y[32*b:32*b+32]
		var amax float32
		for _, v := range xb {
			amax = max(amax, abs32(v))
		}
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		d := gguf.F16ToF32(gguf.F32ToF16(amax / 127))
		for j, v := range xb {
			yb[j] = float32(int8(math.RoundToEven(float64(v*id)))) * d
		}
	}
}

// fakeQ8_KGo is quantize_row_q8_K_ref then decoding: per 256 values the
// first value of largest magnitude max, iscale = −127/max,
// q = min(127, roundToEven(x·iscale)), y = (1/iscale)·q.
func fakeQ8_KGo(x, y []float32) {
	for b := 0; b < len(x)/256; b++ {
		xb, yb := x[256*b:256*b+256], y[256*b:256*b+256]
		var mx, amax float32
		for _, v := range xb {
			if av := abs32(v); av > amax {
				amax, mx = av, v
			}
		}
		if amax == 0 {
			clear(yb)
			continue
		}
		iscale := -127 / mx
		d := 1 / iscale
		for j, v := range xb {
			yb[j] = d * float32(min(127, int(math.RoundToEven(float64(iscale*v)))))
		}
	}
}

// roundBF16Go is gguf.F32ToBF16 then back (round to nearest even,
// subnormals flushed to zero, NaNs quieted).
func roundBF16Go(x, y []float32) {
	for i, v := range x {
		y[i] = gguf.BF16ToF32(gguf.F32ToBF16(v))
	}
}

func roundF16Go(x, y []float32) {
	for i, v := range x {
		y[i] = gguf.F16ToF32(gguf.F32ToF16(v))
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// roundActsGo rounds x into y as the dot kernel's activation encoding would
// (plain Go); false when t is not one of the common activation types.
func roundActsGo(t gguf.Type, x, y []float32) bool {
	switch t {
	case gguf.TypeQ8_0:
		fakeQ8_0Go(x, y)
	case gguf.TypeQ8_K:
		fakeQ8_KGo(x, y)
	case gguf.TypeF16:
		roundF16Go(x, y)
	case gguf.TypeBF16:
		roundBF16Go(x, y)
	default:
		return false
	}
	return true
}
