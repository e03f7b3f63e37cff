package ops

import (
	"fmt"
	"math"
)

// Cross-entropy losses. Targets below zero (for example -100) are ignored:
// they contribute neither loss nor gradient, and the loss is the mean over
// the remaining tokens (0 when none remain).

// ceChunkFloats bounds the logits LMHeadCrossEntropy holds at once
// (16 MiB): with vocabularies of 32k–150k that is 28–128 rows per chunk,
// enough rows that the head's weights stream from memory a few times per
// batch, not once per token.
var ceChunkFloats = 1 << 22 // a variable so tests can force many chunks

// logSoftmaxRow returns the row's maximum and log Σ exp(x−max) (the sum in
// double, as ggml's softmax), so that log p_j = x_j − max − lse.
func logSoftmaxRow(x []float32) (maxv, lse float32) {
	maxv = float32(math.Inf(-1))
	for _, v := range x {
		if v > maxv {
			maxv = v
		}
	}
	var sum float64
	for _, v := range x {
		sum += float64(expf(v - maxv))
	}
	return maxv, float32(math.Log(sum))
}

// crossentropyRow returns −log softmax(x)[target] and, when dx is not
// nil, writes dx = scale·(softmax(x) − onehot(target)).
func crossentropyRow(dx, x []float32, target int32, scale float32) float64 {
	maxv, lse := logSoftmaxRow(x)
	loss := float64(maxv) + float64(lse) - float64(x[target])
	if dx != nil {
		for j, v := range x {
			dx[j] = scale * expf(v-maxv-lse)
		}
		dx[target] -= scale
	}
	return loss
}

// countTargets returns how many targets are not ignored, checking the rest
// fall inside the vocabulary.
func countTargets(targets []int32, vocab int) int {
	count := 0
	for _, t := range targets {
		if t >= 0 {
			checkID(t, vocab)
			count++
		}
	}
	return count
}

// CrossEntropy returns the mean over non-ignored rows of
// −log softmax(logits[i])[targets[i]]; logits is (n, vocab).
func (tp *Tape) CrossEntropy(logits *Tensor, targets []int32) *Tensor {
	n, vocab := logits.Rows(), logits.Cols()
	if len(targets) != n {
		panic(fmt.Sprintf("ops.CrossEntropy: logits %v, %d targets", logits, len(targets)))
	}
	count := countTargets(targets, vocab)
	out := tp.newTensor(1)
	var sum float64
	for i, t := range targets {
		if t >= 0 {
			sum += crossentropyRow(nil, logits.Data[i*vocab:i*vocab+vocab], t, 0)
		}
	}
	if count > 0 {
		out.Data[0] = float32(sum / float64(count))
	}
	if count > 0 && tp.needsGrad(logits) {
		tp.record(out, func() {
			dl := tp.grad(logits)
			scale := out.Grad[0] / float32(count)
			row := scratch(vocab)
			defer freeScratch(row)
			for i, t := range targets {
				if t >= 0 {
					crossentropyRow(row, logits.Data[i*vocab:i*vocab+vocab], t, scale)
					accumulate(dl[i*vocab:i*vocab+vocab], row)
				}
			}
		})
	}
	return out
}

// LMHeadCrossEntropy is CrossEntropy(LinearMatrix(hidden, head), targets)
// fused so the logits (n, vocab) never exist at once: rows go in chunks of
// about ceChunkFloats logits. hidden is (n, d), head a frozen (vocab, d)
// matrix in any encoding. When hidden needs a gradient, each chunk's
// dlogits = (softmax − onehot)/count goes straight back through the head
// (MatMulBackwardInput) while the chunk is at hand, and only
// dhidden (n, d) is kept for the backward, which scales it by d(loss).
func (tp *Tape) LMHeadCrossEntropy(hidden *Tensor, head *Matrix, targets []int32) *Tensor {
	n, d := hidden.Rows(), hidden.Cols()
	if d != head.Cols || len(targets) != n {
		panic(fmt.Sprintf("ops.LMHeadCrossEntropy: hidden %v, head %q (%d×%d), %d targets", hidden, head.Name, head.Rows, head.Cols, len(targets)))
	}
	count := countTargets(targets, head.Rows)
	out := tp.newTensor(1)
	if count == 0 {
		return out
	}
	rec := tp.needsGrad(hidden)
	var dh []float32
	if rec {
		dh = tp.save(n * d)
	}
	sum := lmHeadCE(tp.pool(), nil, dh, hidden.Data, n, head, targets, 1/float32(count))
	out.Data[0] = float32(sum / float64(count))
	if rec {
		tp.record(out, func() {
			g := out.Grad[0]
			dx := tp.grad(hidden)
			for i, v := range dh {
				dx[i] += g * v
			}
		})
	}
	return out
}

// LMHeadNLL writes nll[i] = −log softmax(hidden[i]·headᵀ)[targets[i]] for
// each of the n rows (0 where the target is ignored), chunked like
// LMHeadCrossEntropy. For evaluation: perplexity, label-word scoring.
func LMHeadNLL(p *Pool, nll, hidden []float32, n int, head *Matrix, targets []int32) {
	if p == nil {
		p = serialPool()
	}
	countTargets(targets[:n], head.Rows)
	lmHeadCE(p, nll, nil, hidden, n, head, targets, 0)
}

// lmHeadCE runs the chunked head + softmax cross-entropy over hidden (n, d)
// and returns the summed loss of non-ignored rows. nll (n), when not nil,
// receives each row's loss; dhidden (n, d), when not nil, receives
// dlogits·head with dlogits = scale·(softmax − onehot).
func lmHeadCE(p *Pool, nll, dhidden, hidden []float32, n int, head *Matrix, targets []int32, scale float32) float64 {
	vocab, d := head.Rows, head.Cols
	chunk := max(1, min(n, ceChunkFloats/vocab))
	logits := scratch(chunk * vocab)
	defer freeScratch(logits)
	rowLoss := make([]float64, chunk)
	var sum float64
	for r0 := 0; r0 < n; r0 += chunk {
		m := min(chunk, n-r0)
		MatMul(p, logits, hidden[r0*d:(r0+m)*d], m, head)
		p.For(m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := logits[i*vocab : i*vocab+vocab]
				t := targets[r0+i]
				if t < 0 {
					rowLoss[i] = 0
					clear(row) // no gradient from an ignored row
					continue
				}
				var dx []float32
				if dhidden != nil {
					dx = row // the logits become their own gradient
				}
				rowLoss[i] = crossentropyRow(dx, row, t, scale)
			}
		})
		for i := 0; i < m; i++ {
			sum += rowLoss[i]
			if nll != nil {
				nll[r0+i] = float32(rowLoss[i])
			}
		}
		if dhidden != nil {
			MatMulBackwardInput(p, dhidden[r0*d:(r0+m)*d], logits, m, head)
		}
	}
	return sum
}
