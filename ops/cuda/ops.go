package cuda

import (
	"fmt"

	"ladder-engine/gguf"
	"ladder-engine/kernels"
	"ladder-engine/ops"
)

// The kernel methods of ops.Backend, in the interface's order. Shapes and
// semantics are ops.CPU's (ops/cpu.go); the comments say where the device
// computes something differently.

// MatMul multiplies by the weight in its GGUF encoding with f32
// activations: where the CPU first rounds the activations to the weight's
// dot type as llama.cpp does (8-bit for quantized weights, f16 for F16),
// the device does not, so quantized products differ by about 1e-3
// relative (kernels/README.md). F32 weights give the same products up to
// summation order.
func (b *Backend) MatMul(out, x ops.Buffer, n int, w *ops.Matrix) {
	must("MatMul "+w.Name, b.dev.k.MatMul(b.m(out), b.m(x), n, b.weight(w), false))
}

func (b *Backend) MatMulExact(out, x ops.Buffer, n int, w *ops.Matrix) {
	must("MatMulExact "+w.Name, b.dev.k.MatMul(b.m(out), b.m(x), n, b.weight(w), false))
}

func (b *Backend) MatMulBackwardInput(dx, dout ops.Buffer, n int, w *ops.Matrix) {
	must("MatMulBackwardInput "+w.Name, b.dev.k.MatMulBackwardInput(b.m(dx), b.m(dout), n, b.weight(w), true))
}

// gemmType is the kernels' name of an operand type.
func gemmType(dt ops.DType) kernels.DType {
	switch dt {
	case ops.F16:
		return kernels.F16
	case ops.BF16:
		return kernels.BF16
	case ops.F32:
		return kernels.F32
	}
	panic(fmt.Sprintf("cuda: a %s GEMM operand", dt))
}

// LinearF32: out (n, oc) = x (n, c) · wᵀ; x f32, f16 or bf16 (ladder inputs
// kept in half precision widen exactly in the kernel).
func (b *Backend) LinearF32(out, x, w ops.Buffer, n, c, oc int) {
	xt := gemmType(b.buf(x).dt)
	must("LinearF32", b.dev.k.GemmMixed(b.m(out), b.m(x), xt, b.m(w), kernels.F32, n, oc, c, int64(c), 1, 1, int64(c), false))
}

func (b *Backend) LinearBackwardInput(dx, dout, w ops.Buffer, n, c, oc int) {
	must("LinearBackwardInput", b.dev.k.LinearBackwardInput(b.m(dx), b.m(dout), b.m(w), n, oc, c, true))
}

// LinearBackwardWeight: dw (oc, c) += doutᵀ (oc, n) · x (n, c).
func (b *Backend) LinearBackwardWeight(dw, dout, x ops.Buffer, n, c, oc int) {
	xt := gemmType(b.buf(x).dt)
	must("LinearBackwardWeight", b.dev.k.GemmMixed(b.m(dw), b.m(dout), kernels.F32, b.m(x), xt, oc, c, n, 1, int64(oc), int64(c), 1, true))
}

func (b *Backend) Add(out, a, bb ops.Buffer, n, c int, bcast bool) {
	bn := n * c
	if bcast {
		bn = c
	}
	must("Add", b.dev.k.Add(b.m(out), b.m(a), b.m(bb), n*c, bn))
}

func (b *Backend) Accumulate(dst, src ops.Buffer) {
	must("Accumulate", b.dev.k.Axpy(b.m(dst), b.m(src), 1, dst.Len()))
}

// AccumulateRows: dst (c) += Σ_rows src (n, c), as a (1, n)·(n, c) product
// with a row of ones (the column sum in f32, added to dst once: the CPU
// adds row by row, so the last bits may differ).
func (b *Backend) AccumulateRows(dst, src ops.Buffer, n, c int) {
	ones := b.dev.onesF32(n)
	must("AccumulateRows", b.dev.k.Gemm(b.m(dst), ones, b.m(src), 1, c, n, int64(n), 1, int64(c), 1, true))
}

// Mul and MulBackward: b is one row (c) broadcast over the n rows, as the
// CPU kernels read it.
func (b *Backend) Mul(out, a, bb ops.Buffer, n, c int) {
	must("Mul", b.dev.k.Mul(b.m(out), b.m(a), b.m(bb), n*c, c))
}

func (b *Backend) MulBackward(da, db, dout, a, bb ops.Buffer, n, c int) {
	must("MulBackward", b.dev.k.MulBackward(b.m(da), b.m(db), b.m(dout), b.m(a), b.m(bb), n*c, c))
}

func (b *Backend) Scale(out, a ops.Buffer, s float32) {
	must("Scale", b.dev.k.Scale(b.m(out), b.m(a), s, a.Len()))
}

func (b *Backend) ScaleAccumulate(dst, src ops.Buffer, s float32) {
	must("ScaleAccumulate", b.dev.k.Axpy(b.m(dst), b.m(src), s, dst.Len()))
}

// sumTo writes Σ x (or Σ x²) over an f32 buffer into out (1 f32), summed
// in double, without a host read.
func (b *Backend) sumTo(out, x ops.Buffer, squares bool) {
	t := b.tmp(8)
	defer t.done()
	must("Sum", b.dev.k.Sum(t.mem(), b.m(x), int64(x.Len()), squares, false))
	must("Sum", b.dev.k.SumF64(b.m(out), t.mem(), 1, 1))
}

func (b *Backend) Sum(out, a ops.Buffer)        { b.sumTo(out, a, false) }
func (b *Backend) SumSquares(out, x ops.Buffer) { b.sumTo(out, x, true) }

// SumBackward: da += dout[0], the scalar read on the device.
func (b *Backend) SumBackward(da, dout ops.Buffer) {
	must("SumBackward", b.dev.k.AxpyDevice(b.m(da), kernels.Buffer{}, b.m(dout), da.Len()))
}

func (b *Backend) GatedMix(out, a, bb, alpha ops.Buffer, n, c int, temp float32) {
	must("GatedMix", b.dev.k.GatedMixForward(b.m(out), b.m(a), b.m(bb), b.m(alpha), n, c, alpha.Len(), temp))
}

func (b *Backend) GatedMixBackward(dalpha, da, db, dout, a, bb, alpha ops.Buffer, n, c int, temp float32) {
	must("GatedMixBackward", b.dev.k.GatedMixBackward(b.m(dalpha), b.m(da), b.m(db), b.m(dout), b.m(a), b.m(bb), b.m(alpha), n, c, alpha.Len(), temp))
}

// RoundF16 rounds in place to f16 precision through a half copy (the two
// casts round to nearest even and widen exactly, as ops' roundF16).
func (b *Backend) RoundF16(x ops.Buffer) {
	n := x.Len()
	if n == 0 {
		return
	}
	t := b.tmp(2 * int64(n))
	defer t.done()
	must("RoundF16", b.dev.k.CastF32ToF16(t.mem(), b.m(x), n))
	must("RoundF16", b.dev.k.CastF16ToF32(b.m(x), t.mem(), n))
}

func (b *Backend) RMSNorm(out, rstd, inp, weight ops.Buffer, n, c int, eps float32) {
	must("RMSNorm", b.dev.k.RMSNormForward(b.m(out), b.m(rstd), b.m(inp), b.m(weight), n, c, eps))
}

func (b *Backend) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd ops.Buffer, n, c int) {
	must("RMSNormBackward", b.dev.k.RMSNormBackward(b.m(dinp), b.m(dweight), b.m(dout), b.m(inp), b.m(weight), b.m(rstd), n, c))
}

// RoPE rotates in place on the device (after copying x to out when they
// differ); positions and frequency factors go up per call.
func (b *Backend) rope(out, x ops.Buffer, n, nHead, headDim int, pos []int32, base float32, neox bool, freqFactors []float32, inverse bool) {
	if n == 0 {
		return
	}
	o := b.m(out)
	if !out.SameMemory(x) {
		must("RoPE", b.dev.k.Copy(o, b.m(x), 4*int64(n*nHead*headDim)))
	}
	p := b.int32s(pos[:n])
	defer p.done()
	var ff kernels.Buffer
	if freqFactors != nil {
		t := b.float32s(freqFactors)
		defer t.done()
		ff = t.mem()
	}
	must("RoPE", b.dev.k.RoPE(o, p.mem(), ff, n, nHead, headDim, base, neox, inverse))
}

func (b *Backend) SwiGLU(out, gate, up ops.Buffer, n int) {
	must("SwiGLU", b.dev.k.SwiGLUForward(b.m(out), b.m(gate), b.m(up), n))
}

func (b *Backend) SwiGLUBackward(dgate, dup, dout, gate, up ops.Buffer, n int) {
	must("SwiGLUBackward", b.dev.k.SwiGLUBackward(b.m(dgate), b.m(dup), b.m(dout), b.m(gate), b.m(up), n))
}

func (b *Backend) SiLU(out, x ops.Buffer, n int) {
	must("SiLU", b.dev.k.SiLUForward(b.m(out), b.m(x), n))
}

func (b *Backend) SiLUBackward(dx, dout, x ops.Buffer, n int) {
	must("SiLUBackward", b.dev.k.SiLUBackward(b.m(dx), b.m(dout), b.m(x), n))
}

// Embedding gathers rows of a trainable f32 table: the F32 get_rows kernel.
func (b *Backend) Embedding(out, table ops.Buffer, ids []int32, vocab, c int) {
	if len(ids) == 0 {
		return
	}
	checkIDs("Embedding", ids, vocab)
	t := b.int32s(ids)
	defer t.done()
	w := kernels.Weight{Data: b.m(table), Type: gguf.TypeF32, Rows: vocab, Cols: c}
	must("Embedding", b.dev.k.GetRows(b.m(out), w, t.mem(), len(ids)))
}

func (b *Backend) EmbeddingBackward(dtable, dout ops.Buffer, ids []int32, c int) {
	if len(ids) == 0 {
		return
	}
	vocab := dtable.Len() / c
	checkIDs("EmbeddingBackward", ids, vocab)
	t := b.int32s(ids)
	defer t.done()
	must("EmbeddingBackward", b.dev.k.EmbeddingBackward(b.m(dtable), b.m(dout), t.mem(), len(ids), vocab, c))
}

// EmbeddingMatrix dequantizes rows of a frozen table (token_embd) on the
// device: bit for bit the CPU's values.
func (b *Backend) EmbeddingMatrix(out ops.Buffer, table *ops.Matrix, ids []int32) {
	if len(ids) == 0 {
		return
	}
	checkIDs("EmbeddingMatrix", ids, table.Rows)
	t := b.int32s(ids)
	defer t.done()
	must("EmbeddingMatrix", b.dev.k.GetRows(b.m(out), b.weight(table), t.mem(), len(ids)))
}

// CrossEntropy: the per-row kernel overwrites its input with dlogits, so
// it works on a scratch copy of the logits and adds that copy to dlogits.
func (b *Backend) CrossEntropy(loss, dlogits, logits ops.Buffer, targets []int32, vocab int, scale float32, lossScale float64) {
	m := len(targets)
	if m == 0 {
		b.Fill(loss, 0)
		return
	}
	for i, t := range targets {
		if int(t) >= vocab {
			panic(fmt.Sprintf("cuda: CrossEntropy: target %d at %d outside the vocabulary (%d)", t, i, vocab))
		}
	}
	tg := b.int32s(targets)
	defer tg.done()
	rows := b.tmp(8 * int64(m))
	defer rows.done()
	work := b.m(logits)
	if dlogits != nil {
		w := b.tmp(4 * int64(m) * int64(vocab))
		defer w.done()
		work = w.mem()
		must("CrossEntropy", b.dev.k.Copy(work, b.m(logits), 4*int64(m)*int64(vocab)))
	}
	must("CrossEntropy", b.dev.k.CrossEntropyRows(work, rows.mem(), tg.mem(), m, vocab, scale, dlogits != nil))
	if dlogits != nil {
		must("CrossEntropy", b.dev.k.Axpy(b.m(dlogits), work, 1, m*vocab))
	}
	must("CrossEntropy", b.dev.k.SumF64(b.m(loss), rows.mem(), m, lossScale))
}

// lmHeadChunkBytes bounds the logits LMHeadCE holds at once.
const lmHeadChunkBytes = 64 << 20

// LMHeadCE runs the fused chunked head + cross-entropy kernel; the per-row
// losses (double) become nll and the scaled sum on the device.
func (b *Backend) lmHeadCE(loss, nll, dhidden, hidden ops.Buffer, n int, head *ops.Matrix, targets []int32, scale float32, lossScale float64) {
	if n == 0 {
		b.Fill(loss, 0)
		return
	}
	for i, t := range targets[:n] {
		if int(t) >= head.Rows {
			panic(fmt.Sprintf("cuda: LMHeadCE: target %d at %d outside the vocabulary (%d)", t, i, head.Rows))
		}
	}
	var rowIDs, tgs []int32
	for i, t := range targets[:n] {
		if t >= 0 {
			rowIDs, tgs = append(rowIDs, int32(i)), append(tgs, t)
		}
	}
	if len(rowIDs) < n {
		b.lmHeadCETargets(loss, nll, dhidden, hidden, n, head, rowIDs, tgs, scale, lossScale)
		return
	}
	vocab := head.Rows
	chunk := max(1, min(n, lmHeadChunkBytes/(4*vocab)))
	tg := b.int32s(targets[:n])
	defer tg.done()
	rows := b.tmp(8 * int64(n))
	defer rows.done()
	logits := b.tmp(4 * int64(chunk) * int64(vocab))
	defer logits.done()
	// dhidden accumulates, as on the CPU (whose callers hand it zeroed).
	must("LMHeadCE", b.dev.k.LMHeadCrossEntropy(rows.mem(), b.m(dhidden), b.m(hidden), n, b.weight(head), tg.mem(), scale, logits.mem(), chunk))
	if nll != nil {
		must("LMHeadCE", b.dev.k.CastF64ToF32(b.m(nll), rows.mem(), n))
	}
	must("LMHeadCE", b.dev.k.SumF64(b.m(loss), rows.mem(), n, lossScale))
}

// lmHeadCETargets is lmHeadCE where only the rows rowIDs have a target
// (tgs): as on the CPU, those rows of hidden are gathered and run alone
// (prompts, padding and the first half of a perplexity window need no
// logits), and their losses and gradients go back to their places (nll 0
// and dhidden unchanged elsewhere).
func (b *Backend) lmHeadCETargets(loss, nll, dhidden, hidden ops.Buffer, n int, head *ops.Matrix, rowIDs, tgs []int32, scale float32, lossScale float64) {
	m, d := len(rowIDs), head.Cols
	if nll != nil {
		b.Zero(nll)
	}
	if m == 0 {
		b.Fill(loss, 0)
		return
	}
	ids := b.int32s(rowIDs)
	defer ids.done()
	hb := b.Alloc(ops.Scratch, ops.F32, m*d)
	defer b.Free(ops.Scratch, hb)
	all := kernels.Weight{Data: b.m(hidden), Type: gguf.TypeF32, Rows: n, Cols: d}
	must("LMHeadCE", b.dev.k.GetRows(b.m(hb), all, ids.mem(), m))
	var dh, nl ops.Buffer // zeroed by Alloc
	if dhidden != nil {
		dh = b.Alloc(ops.Scratch, ops.F32, m*d)
		defer b.Free(ops.Scratch, dh)
	}
	if nll != nil {
		nl = b.Alloc(ops.Scratch, ops.F32, m)
		defer b.Free(ops.Scratch, nl)
	}
	b.lmHeadCE(loss, nl, dh, hb, m, head, tgs, scale, lossScale)
	if dhidden != nil {
		must("LMHeadCE", b.dev.k.EmbeddingBackward(b.m(dhidden), b.m(dh), ids.mem(), m, n, d))
	}
	if nll != nil {
		must("LMHeadCE", b.dev.k.EmbeddingBackward(b.m(nll), b.m(nl), ids.mem(), m, n, 1))
	}
}
