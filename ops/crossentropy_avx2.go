//go:build goexperiment.simd && amd64

package ops

import "math"

// logSoftmaxFast is logSoftmaxRow with the AVX2 max and exp (ggml's vector
// exp; 8 values summed in float, those sums in double); ok is false on CPUs
// without AVX2.
func logSoftmaxFast(x []float32) (maxv, lse float32, ok bool) {
	if !hasAVX2 || len(x) < 8 {
		return 0, 0, false
	}
	maxv = maxAVX2(x)
	return maxv, float32(math.Log(expSumAVX2(nil, x, maxv))), true
}

// crossentropyFast is crossentropyRow without a soft-cap, vectorised:
// dx = scale·e_j/Σe with e_j = exp(x_j − max) written straight into dx
// (which may be x). ok is false where it does not apply.
func crossentropyFast(dx, x []float32, target int32, scale, capGrad float32) (loss float64, ok bool) {
	if !hasAVX2 || capGrad > 0 || len(x) < 8 {
		return 0, false
	}
	maxv := maxAVX2(x)
	xt := x[target] // before dx (maybe x) is overwritten
	sum := expSumAVX2(dx, x, maxv)
	loss = float64(maxv) + float64(float32(math.Log(sum))) - float64(xt)
	if dx != nil {
		scaleAVX2(dx, scale*float32(1/sum))
		dx[target] -= scale
	}
	return loss, true
}
