package ops

import (
	"fmt"
	"math"
)

// Cross-entropy losses. Targets below zero (for example -100) are ignored:
// they contribute neither loss nor gradient, and the loss is the mean over
// the remaining tokens (0 when none remain).

// ceChunkFloats bounds the logits LMHeadCrossEntropy holds at once
// (16 MiB) when no gradient is wanted (evaluation): with vocabularies of
// 32k–150k that is 28–128 rows per chunk, enough rows that the head's
// weights stream from memory a few times per batch, not once per token.
// Training takes chunks of up to ceTrainChunkFloats (64 MiB, a 512-token
// sequence of a 32k vocabulary in one chunk): each chunk dequantizes the
// head twice (logits, then dhidden), which at 128 rows cost about a third
// of the products themselves.
var (
	ceChunkFloats      = 1 << 22 // variables so tests can force many chunks
	ceTrainChunkFloats = 1 << 24
)

// LMHeadChunkRows is the rows of logits lmHeadCE holds at once for n rows
// of a vocab-sized head, with a gradient (train) or without; the memory
// planner counts 4·vocab bytes per row.
func LMHeadChunkRows(vocab, n int, train bool) int {
	f := ceChunkFloats
	if train {
		f = ceTrainChunkFloats
	}
	return max(1, min(n, f/vocab))
}

// logSoftmaxRow returns the row's maximum and log Σ exp(x−max) (the sum in
// double, as ggml's softmax), so that log p_j = x_j − max − lse.
func logSoftmaxRow(x []float32) (maxv, lse float32) {
	if maxv, lse, ok := logSoftmaxFast(x); ok {
		return maxv, lse
	}
	return logSoftmaxRowGo(x)
}

func logSoftmaxRowGo(x []float32) (maxv, lse float32) {
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
// nil, writes dx = scale·(softmax(x) − onehot(target)) (dx may be x).
// capGrad: x are soft-capped logits c·tanh(z/c) (c = capGrad > 0) and dx is
// taken back to z, times 1 − (x/c)².
func crossentropyRow(dx, x []float32, target int32, scale, capGrad float32) float64 {
	if loss, ok := crossentropyFast(dx, x, target, scale, capGrad); ok {
		return loss
	}
	return crossentropyRowGo(dx, x, target, scale, capGrad)
}

func crossentropyRowGo(dx, x []float32, target int32, scale, capGrad float32) float64 {
	maxv, lse := logSoftmaxRowGo(x)
	loss := float64(maxv) + float64(lse) - float64(x[target])
	if dx != nil {
		tFactor := float32(1)
		if capGrad > 0 {
			t := x[target] / capGrad
			tFactor = 1 - t*t
		}
		for j, v := range x {
			d := scale * expf(v-maxv-lse)
			if capGrad > 0 {
				t := v / capGrad
				d *= 1 - t*t
			}
			dx[j] = d
		}
		dx[target] -= scale * tFactor
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
	be := tp.backendFor("CrossEntropy", logits)
	n, vocab := logits.Rows(), logits.Cols()
	if len(targets) != n {
		panic(fmt.Sprintf("ops.CrossEntropy: logits %v, %d targets", logits, len(targets)))
	}
	count := countTargets(targets, vocab)
	out := tp.newTensor(be, 1)
	if count == 0 {
		return out
	}
	be.CrossEntropy(out.buf, nil, logits.buf, targets, vocab, 0, 1/float64(count))
	if tp.needsGrad(logits) {
		tp.record(out, func() {
			// d(mean)/dlogits = d(out)·(softmax − onehot)/count, with d(out)
			// applied by a second pass over the one-value gradient.
			tmp := be.Alloc(Scratch, F32, n*vocab)
			defer be.Free(Scratch, tmp)
			loss := be.Alloc(Scratch, F32, 1)
			defer be.Free(Scratch, loss)
			be.CrossEntropy(loss, tmp, logits.buf, targets, vocab, 1/float32(count), 0)
			scaleByScalar(be, tp.grad(logits), tmp, out.grad)
		})
	}
	return out
}

// scaleByScalar accumulates dst += g[0]·src where g is a one-value
// gradient on the backend: one host read of a scalar (a sync point on a
// device, once per loss).
func scaleByScalar(be Backend, dst, src, g Buffer) {
	var v [1]float32
	be.Download(v[:], g)
	be.ScaleAccumulate(dst, src, v[0])
}

// crossEntropyCPU is the CPU kernel of Backend.CrossEntropy.
func crossEntropyCPU(loss, dlogits, logits []float32, targets []int32, vocab int, scale float32, lossScale float64) {
	var sum float64
	var row []float32
	if dlogits != nil {
		row = scratch(vocab)
		defer freeScratch(row)
	}
	for i, t := range targets {
		if t < 0 {
			continue
		}
		x := logits[i*vocab : i*vocab+vocab]
		if dlogits == nil {
			sum += crossentropyRow(nil, x, t, 0, 0)
			continue
		}
		sum += crossentropyRow(row, x, t, scale, 0)
		accumulate(dlogits[i*vocab:i*vocab+vocab], row)
	}
	loss[0] = float32(sum * lossScale)
}

// LMHeadCrossEntropy is CrossEntropy(LinearMatrix(hidden, head), targets)
// fused so the logits (n, vocab) never exist at once: rows go in chunks of
// about ceChunkFloats logits. hidden is (n, d), head a frozen (vocab, d)
// matrix in any encoding. When hidden needs a gradient, each chunk's
// dlogits = (softmax − onehot)/count goes straight back through the head
// (matmulTrainingHeadBackward) while the chunk is at hand, and only
// dhidden (n, d) is kept for the backward, which scales it by d(loss).
// softCap > 0 caps the logits first: softCap·tanh(logits/softCap) (gemma2's
// final_logit_softcapping); 0 leaves them as they are.
func (tp *Tape) LMHeadCrossEntropy(hidden *Tensor, head *Matrix, softCap float32, targets []int32) *Tensor {
	be := tp.backendFor("LMHeadCrossEntropy", hidden)
	n, d := hidden.Rows(), hidden.Cols()
	if d != head.Cols || len(targets) != n {
		panic(fmt.Sprintf("ops.LMHeadCrossEntropy: hidden %v, head %q (%d×%d), %d targets", hidden, head.Name, head.Rows, head.Cols, len(targets)))
	}
	count := countTargets(targets, head.Rows)
	out := tp.newTensor(be, 1)
	if count == 0 {
		return out
	}
	rec := tp.needsGrad(hidden)
	var dh Buffer
	if rec {
		dh = tp.saveZeroed(be, n*d) // the chunks' gradients add into it
	}
	be.LMHeadCE(out.buf, nil, dh, hidden.buf, n, head, softCap, targets, 1/float32(count), 1/float64(count))
	if rec {
		tp.record(out, func() { scaleByScalar(be, tp.grad(hidden), dh, out.grad) })
	}
	return out
}

// LMHeadNLL writes nll (n) = −log softmax(hidden[i]·headᵀ)[targets[i]] for
// each of the n rows of hidden (0 where the target is ignored), chunked
// like LMHeadCrossEntropy, on hidden's backend. For evaluation: perplexity,
// label-word scoring. The values are copied out to the host (one read).
// softCap as in LMHeadCrossEntropy.
func LMHeadNLL(nll []float32, hidden *Tensor, n int, head *Matrix, softCap float32, targets []int32) {
	be := hidden.Backend()
	countTargets(targets[:n], head.Rows)
	loss := be.Alloc(Scratch, F32, 1)
	defer be.Free(Scratch, loss)
	out := be.Alloc(Scratch, F32, n)
	defer be.Free(Scratch, out)
	be.LMHeadCE(loss, out, nil, hidden.buf.Slice(0, n*head.Cols), n, head, softCap, targets[:n], 0, 0)
	be.Download(nll[:n], out)
}

// lmHeadCE runs the chunked head + softmax cross-entropy over hidden (n, d)
// and returns the summed loss of non-ignored rows. nll (n), when not nil,
// receives each row's loss; dhidden (n, d), when not nil, receives
// dlogits·head with dlogits = scale·(softmax − onehot). softCap > 0 caps
// the logits first (and dlogits goes back through the cap).
func lmHeadCE(p *Pool, nll, dhidden, hidden []float32, n int, head *Matrix, softCap float32, targets []int32, scale float32) float64 {
	if m := countTargets(targets[:n], head.Rows); m < n {
		return lmHeadCETargets(p, nll, dhidden, hidden, n, m, head, softCap, targets, scale)
	}
	vocab, d := head.Rows, head.Cols
	chunk := LMHeadChunkRows(vocab, n, dhidden != nil)
	logits := scratch(chunk * vocab)
	defer freeScratch(logits)
	rowLoss := make([]float64, chunk)
	var sum float64
	for r0 := 0; r0 < n; r0 += chunk {
		m := min(chunk, n-r0)
		if dhidden != nil {
			matmulTrainingHead(p, logits, hidden[r0*d:(r0+m)*d], m, head)
		} else {
			MatMul(p, logits, hidden[r0*d:(r0+m)*d], m, head)
		}
		if softCap > 0 {
			lg := logits[:m*vocab]
			p.For(len(lg), func(lo, hi int) { softCapForward(lg[lo:hi], lg[lo:hi], hi-lo, softCap) })
		}
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
				rowLoss[i] = crossentropyRow(dx, row, t, scale, softCap)
			}
		})
		for i := 0; i < m; i++ {
			sum += rowLoss[i]
			if nll != nil {
				nll[r0+i] = float32(rowLoss[i])
			}
		}
		if dhidden != nil {
			matmulTrainingHeadBackward(p, dhidden[r0*d:(r0+m)*d], logits, m, head)
		}
	}
	return sum
}

// lmHeadCETargets is lmHeadCE where only m of the n rows have a target:
// the others (a prompt, padding, the first half of a perplexity window)
// need no logits, so the m rows are gathered, run through lmHeadCE, and
// their loss and gradient put back (0 and nothing for the others). Each
// row's logits and gradient are the same sums as in the full run, up to
// the grouping of rows into kernel tiles.
func lmHeadCETargets(p *Pool, nll, dhidden, hidden []float32, n, m int, head *Matrix, softCap float32, targets []int32, scale float32) float64 {
	d := head.Cols
	rows := make([]int, 0, m)
	tg := make([]int32, 0, m)
	for i, t := range targets[:n] {
		if t >= 0 {
			rows = append(rows, i)
			tg = append(tg, t)
		}
	}
	if nll != nil {
		clear(nll[:n])
	}
	if m == 0 {
		return 0
	}
	h := scratch(m * d)
	defer freeScratch(h)
	for j, i := range rows {
		copy(h[j*d:(j+1)*d], hidden[i*d:(i+1)*d])
	}
	var dh []float32
	if dhidden != nil {
		dh = scratch(m * d)
		defer freeScratch(dh)
		clear(dh)
	}
	var nl []float32
	if nll != nil {
		nl = make([]float32, m)
	}
	sum := lmHeadCE(p, nl, dh, h, m, head, softCap, tg, scale)
	for j, i := range rows {
		if nll != nil {
			nll[i] = nl[j]
		}
		if dhidden != nil {
			accumulate(dhidden[i*d:(i+1)*d], dh[j*d:(j+1)*d])
		}
	}
	return sum
}
