// Package ops holds tensors, the backends they live on, the differentiable
// ops with their forward and backward kernels side by side, the small tape
// autodiff, the quantized matrix kernels and the memory meter.
//
// # Backends and synchronisation
//
// A Backend owns memory (Buffers) and runs the kernels of every op on it.
// Tensors name their buffer; ops take the backend of their inputs (or of
// the tape) and refuse inputs from another device. Two implementations live
// here: the CPU backend (the kernels of this package over Go slices) and a
// strict test backend that wraps the CPU kernels but keeps its buffers out
// of reach, so a test proves no code reads device memory behind the
// backend's back. The CUDA backend (ops/cuda) implements the same interface.
//
// Synchronisation: an op enqueues its kernels and returns; on an
// asynchronous backend nothing waits. The only places that wait are host
// reads: Tensor.Read, Tensor.Scalar, Backend.Download — a loss value, a
// gradient norm, the logits a sampler needs. A training step reads a handful
// of scalars (the loss, the gradient norm), never whole tensors, except
// where an optimizer without a kernel on that backend copies parameters out
// and back (optimizer steps on the CPU backend work in place).
//
// Host data passed as plain Go slices (token ids, positions, RoPE frequency
// factors) is small and read by the kernels directly on the CPU; a device
// backend copies it in per call.
package ops

import (
	"fmt"
)

// DType is the element type of a buffer.
type DType uint8

const (
	F32 DType = iota
	F16
	BF16
	I32
)

func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	case I32:
		return "i32"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Size is the bytes per element.
func (d DType) Size() int {
	if d == F16 || d == BF16 {
		return 2
	}
	return 4
}

// Buffer is memory owned by one backend; only that backend reads or writes
// it. Slice views share the memory of their parent.
type Buffer interface {
	Backend() Backend
	DType() DType
	Len() int                     // elements
	Slice(off, n int) Buffer      // elements off..off+n-1, sharing memory
	SameMemory(other Buffer) bool // whether other views the same memory (aliasing checks)
}

// Backend is a place where tensors live and ops run. Kernel methods take
// buffers of this backend; shapes are given explicitly, as in llm.c
// (inp (n, c) means n rows of c values, row-major). Outputs named out are
// overwritten; gradients named d* are accumulated (+=), nil when not wanted.
type Backend interface {
	Name() string   // "cpu", "strict", "cuda:0"
	Device() string // backends with the same Device share memory
	Meter() *Meter  // memory by class on this backend, with peaks

	// Memory. Alloc returns zeroed memory counted in class c (c < 0: not
	// counted); Free returns the count.
	Alloc(c MemClass, dt DType, n int) Buffer
	Free(c MemClass, b Buffer)
	Upload(dst Buffer, src []float32)   // copy in (dst F32, F16 or BF16: rounded)
	Download(dst []float32, src Buffer) // copy out; waits for queued work
	Zero(b Buffer)
	Copy(dst, src Buffer) // same length; f32 ↔ f16/bf16 convert (rounding to nearest even)
	// PlaceMatrix makes a frozen weight usable by this backend's kernels
	// (once per weight: an upload on a device; nothing on the CPU).
	PlaceMatrix(w *Matrix) error

	// Matrix products.
	MatMul(out, x Buffer, n int, w *Matrix)                // out (n, w.Rows) = x (n, w.Cols) · wᵀ
	MatMulBackwardInput(dx, dout Buffer, n int, w *Matrix) // dx (n, w.Cols) += dout (n, w.Rows) · w
	MatMulExact(out, x Buffer, n int, w *Matrix)           // MatMul without the activations' 8-bit rounding (training)
	LinearBackwardWeight(dw, dout, x Buffer, n, c, oc int) // dw (oc, c) += doutᵀ (oc, n) · x (n, c); x any float type
	LinearF32(out, x, w Buffer, n, c, oc int)              // out (n, oc) = x (n, c) · wᵀ, w (oc, c) f32; x any float type
	LinearBackwardInput(dx, dout, w Buffer, n, c, oc int)  // dx (n, c) += dout (n, oc) · w (oc, c)

	// Elementwise. a, b, out have n·c values; b may instead hold one row (c)
	// broadcast over the n rows (bcast).
	Add(out, a, b Buffer, n, c int, bcast bool)
	Accumulate(dst, src Buffer)                      // dst += src
	AccumulateRows(dst, src Buffer, n, c int)        // dst (c) += Σ_rows src (n, c)
	Mul(out, a, b Buffer, n, c int)                  // out (n, c) = a ⊙ b, b one row (c) repeated over the n rows
	MulBackward(da, db, dout, a, b Buffer, n, c int) // da += dout⊙b; db += Σ dout⊙a
	Scale(out, a Buffer, s float32)                  // out = s·a
	ScaleAccumulate(dst, src Buffer, s float32)      // dst += s·src
	Sum(out, a Buffer)                               // out (1) = Σ a, in double
	SumBackward(da, dout Buffer)                     // da += dout[0]
	Fill(dst Buffer, v float32)                      // every value = v
	GatedMix(out, a, b, alpha Buffer, n, c int, temp float32)
	GatedMixBackward(dalpha, da, db, dout, a, b, alpha Buffer, n, c int, temp float32)
	RoundF16(x Buffer) // round in place to f16 precision (llama.cpp's f16 KV cache)

	// Layers.
	RMSNorm(out, rstd, inp, weight Buffer, n, c int, eps float32) // rstd (n) may be nil; weight (c) may be nil
	RMSNormBackward(dinp, dweight, dout, inp, weight, rstd Buffer, n, c int)
	// RoPE rotates x (n, nHead·headDim) by the angles of rc at positions pos
	// (n) into out (may alias x); inverse applies the transpose (backward).
	RoPE(out, x Buffer, n, nHead, headDim int, pos []int32, rc *RoPEConfig, inverse bool)
	SwiGLU(out, gate, up Buffer, n int)
	SwiGLUBackward(dgate, dup, dout, gate, up Buffer, n int)
	SiLU(out, x Buffer, n int)
	// GeGLU: out (n) = gelu_tanh(gate)·up; f16Table: through ggml's f16 GELU
	// lookup (inference), else the exact function (training).
	GeGLU(out, gate, up Buffer, n int, f16Table bool)
	GeGLUBackward(dgate, dup, dout, gate, up Buffer, n int) // exact derivative
	SoftCap(out, x Buffer, n int, c float32)                // out (n) = c·tanh(x/c)
	SoftCapBackward(dx, dout, out Buffer, n int, c float32) // dx += dout·(1 − (out/c)²)
	SiLUBackward(dx, dout, x Buffer, n int)
	Embedding(out, table Buffer, ids []int32, vocab, c int)
	EmbeddingBackward(dtable, dout Buffer, ids []int32, c int)
	EmbeddingMatrix(out Buffer, table *Matrix, ids []int32)

	// Attention over nSeq sequences, see Tape.Attention; att (nSeq, nHead, n, nKV)
	// receives the probabilities the backward reads, or is nil when no
	// backward follows.
	// o (may be nil): scale, soft-cap, sliding window (AttnOptions).
	Attention(out, q, k, v, att Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions)
	AttentionBackward(dq, dk, dv, dout, q, k, v, att Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions)
	// NewKVCache allocates the keys and values of nLayer layers for nCtx
	// positions, laid out for AttentionKV.
	NewKVCache(nLayer, nCtx, nHeadKV, headDim int, roundF16 bool) *KVCache
	// AttentionKV appends k, v (n, nHeadKV·headDim) of layer l at positions
	// kv.Len().. (not yet counted in Len) and writes out (n, nHead·headDim)
	// for queries q over every cached position (inference, no gradient).
	AttentionKV(out, q, k, v Buffer, kv *KVCache, l, n, nHead int, o *AttnOptions)

	// Losses. CrossEntropy writes lossScale·Σ −log p[target] over targets
	// >= 0 (summed in double) into loss (1) and, when dlogits is not nil,
	// accumulates scale·(softmax − onehot) into it.
	CrossEntropy(loss, dlogits, logits Buffer, targets []int32, vocab int, scale float32, lossScale float64)
	// LMHeadCE is CrossEntropy(hidden·headᵀ) in chunks: loss (1) = lossScale·Σ nll;
	// nll (n), when not nil, each row's loss (0 when ignored); dhidden,
	// when not nil, accumulates (callers pass it zeroed) dlogits·head with
	// dlogits = scale·(softmax − onehot).
	// softCap > 0 caps the logits to softCap·tanh(logits/softCap) first
	// (gemma2), dlogits then taken through the cap.
	LMHeadCE(loss, nll, dhidden, hidden Buffer, n int, head *Matrix, softCap float32, targets []int32, scale float32, lossScale float64)
	// SumSquares writes Σ x² (in double) into out (1), for gradient norms.
	SumSquares(out, x Buffer)
}

// mustSameDevice panics with a clear message when a tensor of another
// device reaches an op: no op reads another backend's memory.
func mustSameDevice(op string, be Backend, ts ...*Tensor) {
	for _, t := range ts {
		if t == nil || t.buf == nil {
			continue
		}
		if d := t.buf.Backend().Device(); d != be.Device() {
			panic(fmt.Sprintf("ops.%s: %v lives on %s, the op runs on %s: copy it across explicitly (Tensor.Read / Upload)", op, t, d, be.Device()))
		}
	}
}

// backendFor returns the backend an op runs on: the tape's, or else the
// first input's; every input must live on the same device.
func (tp *Tape) backendFor(op string, ts ...*Tensor) Backend {
	var be Backend
	if tp != nil && tp.be != nil {
		be = tp.be
	}
	if be == nil {
		for _, t := range ts {
			if t != nil && t.buf != nil {
				be = t.buf.Backend()
				break
			}
		}
	}
	if be == nil {
		be = DefaultCPU()
	}
	mustSameDevice(op, be, ts...)
	return be
}
