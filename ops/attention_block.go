package ops

// Attention's products over a block of attnBlock query rows at once, along
// the keys: the head's keys and values are transposed (mT: (headDim,
// stride), one dimension per row), so each product is a short sum over
// the head dimensions (scores) or a long one over the keys (outputs), and
// a block shares every load of mT among its rows. Rows are full rows of
// the attention matrix, indexed by key; [lo, hi) is the union of the
// block's visible keys. Coefficients c are (attnBlock, headDim), row-major.
//
//	scoresT:  out[r][j] = Σ_d c[r,d]·mT[d,j]          (q·kᵀ, dout·vᵀ)
//	dotsT4:   out[r,d]  = Σ_j x[r][j]·mT[d,j]          (P·v, dS·k)
//	rankT:    mT[d,j]  += Σ_r c[r,d]·x[r][j]           (dv += Pᵀ·dout, dk += dSᵀ·q)
//
// The sums over d and over r run in index order with one multiply-add
// each, as the per-row axpy loops they replace did.
const attnBlock = 4

func scoresTGo(out *[attnBlock][]float32, c, mT []float32, stride, hd, lo, hi int) {
	for r := range attnBlock {
		o := out[r]
		for j := lo; j < hi; j++ {
			var s float32
			for d := 0; d < hd; d++ {
				s += c[r*hd+d] * mT[d*stride+j]
			}
			o[j] = s
		}
	}
}

func dotsT4Go(out []float32, x *[attnBlock][]float32, mT []float32, stride, hd, lo, hi int) {
	for r := range attnBlock {
		xr := x[r][lo:hi]
		for d := 0; d < hd; d++ {
			out[r*hd+d] = dotF32Go(xr, mT[d*stride+lo:d*stride+hi])
		}
	}
}

func rankTGo(mT []float32, stride, hd int, c []float32, x *[attnBlock][]float32, lo, hi int) {
	for d := 0; d < hd; d++ {
		m := mT[d*stride+lo : d*stride+hi]
		for r := range attnBlock {
			a, xr := c[r*hd+d], x[r][lo:hi]
			for j := range m {
				m[j] += a * xr[j]
			}
		}
	}
}

// softmaxGradRowGo writes ds[j] = p[j]·(dp[j] − rowsum)·scale: one row of
// the softmax's backward, dS = P ⊙ (dP − rowsum(dP ⊙ P)), scaled.
func softmaxGradRowGo(ds, p, dp []float32, rowsum, scale float32) {
	dp = dp[:len(p)]
	ds = ds[:len(p)]
	for j, pj := range p {
		ds[j] = pj * (dp[j] - rowsum) * scale
	}
}
