//go:build !(goexperiment.simd && amd64)

package ops

func scoresT(out *[attnBlock][]float32, c, mT []float32, stride, hd, lo, hi int, _ []float32) {
	scoresTGo(out, c, mT, stride, hd, lo, hi)
}

func dotsT4(out []float32, x *[attnBlock][]float32, mT []float32, stride, hd, lo, hi int) {
	dotsT4Go(out, x, mT, stride, hd, lo, hi)
}

func rankT(mT []float32, stride, hd int, c []float32, x *[attnBlock][]float32, lo, hi int, _ []float32) {
	rankTGo(mT, stride, hd, c, x, lo, hi)
}

// attnBcastLen is the scratch scoresT and rankT take for their broadcast
// coefficients (none in this build).
func attnBcastLen(hd int) int { return 0 }

func softmaxRowBlock(x []float32, scale float32) { softmaxRow(x, scale, false) }

func softmaxGradRow(ds, p, dp []float32, rowsum, scale float32) {
	softmaxGradRowGo(ds, p, dp, rowsum, scale)
}
