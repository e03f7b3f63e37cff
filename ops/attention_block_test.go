package ops

import (
	"fmt"
	"math"
	"testing"
)

// closeF32 fails t where got and want differ by more than tol relative to
// want's largest magnitude (the block loops change only the float32
// summation order, along the keys, of the row loops).
func closeF32(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	var scale float64
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= tol*math.Max(scale, 1e-30)) {
			t.Fatalf("%s[%d] = %g, want %g (tolerance %g of %g)", what, i, got[i], want[i], tol, scale)
		}
	}
}

// The three block kernels against their Go twins, on block sizes and key
// ranges that leave every tail (odd head sizes, ranges not a multiple of 8,
// starting off the vector grid).
func TestAttnBlockKernels(t *testing.T) {
	for _, hd := range []int{1, 3, 6, 8, 9, 64} {
		for _, rg := range [][2]int{{0, 8}, {0, 37}, {5, 29}, {3, 64}, {16, 130}} {
			lo, hi := rg[0], rg[1]
			stride := hi + 3
			mT := gcRand(uint64(hd), hd*stride, 1)
			c := gcRand(uint64(hi), attnBlock*hd, 1)
			var x, got, want [attnBlock][]float32
			for r := range attnBlock {
				x[r] = gcRand(uint64(10+r), stride, 1)
				got[r], want[r] = make([]float32, stride), make([]float32, stride)
			}
			name := fmt.Sprintf("hd=%d/keys=%d..%d", hd, lo, hi)
			bc := make([]float32, attnBcastLen(hd))
			scoresT(&got, c, mT, stride, hd, lo, hi, bc)
			scoresTGo(&want, c, mT, stride, hd, lo, hi)
			for r := range attnBlock {
				closeF32(t, name+"/scoresT", got[r], want[r], 1e-6)
			}
			o1, o2 := make([]float32, attnBlock*hd), make([]float32, attnBlock*hd)
			dotsT4(o1, &x, mT, stride, hd, lo, hi)
			dotsT4Go(o2, &x, mT, stride, hd, lo, hi)
			closeF32(t, name+"/dotsT4", o1, o2, 1e-5)
			m1, m2 := append([]float32(nil), mT...), append([]float32(nil), mT...)
			rankT(m1, stride, hd, c, &x, lo, hi, bc)
			rankTGo(m2, stride, hd, c, &x, lo, hi)
			closeF32(t, name+"/rankT", m1, m2, 1e-6)
		}
	}
}

// Attention forward and backward with the block loops against the row
// loops: causal and windowed, soft-capped, grouped heads, a query offset.
func TestAttentionBlocksMatchRows(t *testing.T) {
	cases := []struct {
		n, nKV, nHead, nHeadKV, hd, pos0 int
		o                                *AttnOptions
	}{
		{37, 37, 4, 4, 8, 0, nil},
		{64, 64, 2, 1, 6, 0, &AttnOptions{SoftCap: 20, Window: 13}},
		{30, 45, 4, 2, 9, 15, nil},
		{19, 19, 2, 2, 64, 0, &AttnOptions{Window: 7}},
	}
	defer func() { attnBlocks = true }()
	p := NewPool(2)
	defer p.Close()
	for _, c := range cases {
		qw, kvw := c.nHead*c.hd, c.nHeadKV*c.hd
		q, k, v := gcRand(1, c.n*qw, 1), gcRand(2, c.nKV*kvw, 1), gcRand(3, c.nKV*kvw, 1)
		dout := gcRand(4, c.n*qw, 1)
		var res [2][5][]float32 // out, att, dq, dk, dv
		for i, blocks := range []bool{false, true} {
			attnBlocks = blocks
			out, att := make([]float32, c.n*qw), make([]float32, c.nHead*c.n*c.nKV)
			dq, dk, dv := make([]float32, c.n*qw), make([]float32, c.nKV*kvw), make([]float32, c.nKV*kvw)
			attentionForwardBatch(p, out, q, k, v, att, 1, c.n, c.nKV, c.nHead, c.nHeadKV, c.hd, c.pos0, c.o)
			attentionBackwardBatch(p, dq, dk, dv, dout, q, k, v, att, 1, c.n, c.nKV, c.nHead, c.nHeadKV, c.hd, c.pos0, c.o)
			res[i] = [5][]float32{out, att, dq, dk, dv}
		}
		name := fmt.Sprintf("n=%d,nKV=%d,heads=%d/%d,hd=%d,pos0=%d", c.n, c.nKV, c.nHead, c.nHeadKV, c.hd, c.pos0)
		for j, what := range []string{"out", "att", "dq", "dk", "dv"} {
			closeF32(t, name+"/"+what, res[1][j], res[0][j], 1e-5)
		}
	}
}

// softmaxRowBlock (lane-wise sums on AVX2) against the Go softmax, on rows
// that leave every tail, with a large spread of scores.
func TestSoftmaxRowBlock(t *testing.T) {
	for n := 1; n <= 70; n++ {
		x := gcRand(uint64(n), n, 30)
		got, want := append([]float32(nil), x...), append([]float32(nil), x...)
		softmaxRowBlock(got, 0.35)
		softmaxRowGo(want, 0.35, false)
		closeF32(t, fmt.Sprintf("n=%d", n), got, want, 1e-6)
	}
}

// softmaxGradRow's vector loop is its Go twin bit for bit (the same
// operations in the same order), on every tail length.
func TestSoftmaxGradRow(t *testing.T) {
	for n := 1; n <= 40; n++ {
		p, dp := gcRand(uint64(n), n, 1), gcRand(uint64(n+100), n, 3)
		got, want := make([]float32, n), make([]float32, n)
		softmaxGradRow(got, p, dp, 0.37, 0.125)
		softmaxGradRowGo(want, p, dp, 0.37, 0.125)
		for j := range got {
			if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
				t.Fatalf("n=%d: ds[%d] = %g, want %g", n, j, got[j], want[j])
			}
		}
	}
}

// Without a probabilities buffer (no backward follows) the forward keeps
// rows in a ring of attnBlock per worker and gives the same outputs, bit
// for bit: block and row loops (sizes around the block and the transpose
// threshold), grouped heads, two sequences, a query offset, window and
// soft-cap, 1 and 2 threads.
func TestAttentionWithoutProbabilities(t *testing.T) {
	for _, sh := range []struct{ nSeq, n, nKV, nHead, nHeadKV, hd, pos0 int }{
		{1, 3, 3, 2, 1, 8, 0}, {2, 9, 9, 4, 2, 8, 0}, {1, 37, 40, 12, 12, 8, 3}, {2, 64, 64, 6, 3, 16, 0},
	} {
		for _, o := range []*AttnOptions{nil, {SoftCap: 20, Window: 7}} {
			qw, kvw := sh.nHead*sh.hd, sh.nHeadKV*sh.hd
			q := gcRand(1, sh.nSeq*sh.n*qw, 1)
			k, v := gcRand(2, sh.nSeq*sh.nKV*kvw, 1), gcRand(3, sh.nSeq*sh.nKV*kvw, 1)
			for _, threads := range []int{1, 2} {
				p := NewPool(threads)
				want, got := make([]float32, len(q)), make([]float32, len(q))
				att := make([]float32, sh.nSeq*sh.nHead*sh.n*sh.nKV)
				attentionForwardBatch(p, want, q, k, v, att, sh.nSeq, sh.n, sh.nKV, sh.nHead, sh.nHeadKV, sh.hd, sh.pos0, o)
				attentionForwardBatch(p, got, q, k, v, nil, sh.nSeq, sh.n, sh.nKV, sh.nHead, sh.nHeadKV, sh.hd, sh.pos0, o)
				p.Close()
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%+v %+v threads %d: out[%d] = %g, with probabilities kept %g", sh, o, threads, i, got[i], want[i])
					}
				}
			}
		}
	}
}
