package engine

import (
	"ladder-engine/ops"
)

// The one llama-family decoder block (DESIGN.md: "one transformer block,
// three uses"). BlockForward runs it for
//   - the frozen backbone in inference: a no-grad tape reset after each
//     layer (scratch reused), a KV cache with llama.cpp's f16 numerics
//     (Model.Forward);
//   - the side network's blocks: trainable weights on a recording tape, or a
//     no-grad tape with a cache of their own when decoding (ladder);
//   - backbone blocks in training mode: frozen GGUF weights, optionally
//     with LoRA pairs (ops.LoRA), on a recording tape: gradients reach the
//     block input and the LoRA pairs, never the frozen weights.
// What differs between the uses is only what the weights are (ops.Weight)
// and whether a tape records.

// BlockHparams is the shape of a block and its per-architecture options.
type BlockHparams struct {
	NEmbd, NHead, NHeadKV, HeadDim, NFF int
	NormEps                             float32
	RopeBase                            float32
	RopeNeox                            bool      // NEOX rotation (qwen2, qwen3) rather than NORM (llama)
	RopeFreqs                           []float32 // frequency factors (Llama 3.1's rope_freqs), or nil
}

// QDim is the width of the queries (NHead × HeadDim).
func (h *BlockHparams) QDim() int { return h.NHead * h.HeadDim }

// KVDim is the width of the keys and values (NHeadKV × HeadDim).
func (h *BlockHparams) KVDim() int { return h.NHeadKV * h.HeadDim }

// BlockWeights are one block's weights, named after llama.cpp's
// llama_layer. Optional tensors are nil.
type BlockWeights struct {
	AttnNorm       *ops.Tensor // (NEmbd)
	Wq, Wk, Wv, Wo ops.Weight
	Bq, Bk, Bv, Bo *ops.Tensor // biases (qwen2 has q, k, v)
	QNorm, KNorm   *ops.Tensor // (HeadDim) per-head RMSNorm weights (qwen3)
	FFNNorm        *ops.Tensor // (NEmbd)
	WGate, WUp     ops.Weight
	WDown          ops.Weight
}

// BlockForward runs one pre-norm block on the residual stream h
// (nSeq·n, NEmbd), rows at positions pos:
//
//	h += Wo·Attention(RoPE(Wq x + bq), RoPE(Wk x + bk), Wv x + bv),  x = RMSNorm(h)
//	h += Wdown·(silu(Wgate x) ⊙ Wup x),                              x = RMSNorm(h)
//
// as llama.cpp's build_llama / build_qwen2 / build_qwen3. With kv (nSeq =
// 1) the keys and values are appended to layer's cache at positions
// kv.Len().. and the queries attend over everything cached; when the cache
// rounds to f16, so do the queries, as llama.cpp's K·q dot sees them. The
// caller advances the cache after its last layer. Without kv each of the
// nSeq sequences attends causally over itself (training).
func BlockForward(tp *ops.Tape, hp *BlockHparams, w *BlockWeights, h *ops.Tensor, pos []int32, nSeq int, kv *ops.KVCache, layer int) *ops.Tensor {
	eps := hp.NormEps
	x := tp.RMSNorm(h, w.AttnNorm, eps)
	q := addBias(tp, w.Wq.Apply(tp, x), w.Bq)
	k := addBias(tp, w.Wk.Apply(tp, x), w.Bk)
	v := addBias(tp, w.Wv.Apply(tp, x), w.Bv)
	if w.QNorm != nil {
		q = tp.RMSNormHeads(q, w.QNorm, hp.HeadDim, eps)
		k = tp.RMSNormHeads(k, w.KNorm, hp.HeadDim, eps)
	}
	q = tp.RoPE(q, hp.NHead, pos, &ops.RoPEConfig{Base: hp.RopeBase, Neox: hp.RopeNeox, FreqFactors: hp.RopeFreqs})
	k = tp.RoPE(k, hp.NHeadKV, pos, &ops.RoPEConfig{Base: hp.RopeBase, Neox: hp.RopeNeox, FreqFactors: hp.RopeFreqs})
	var a *ops.Tensor
	if kv != nil {
		if kv.RoundF16 {
			q = tp.RoundF16(q)
		}
		a = tp.AttentionKV(q, k, v, kv, layer, hp.NHead, nil)
	} else {
		a = tp.Attention(q, k, v, nSeq, hp.NHead, hp.NHeadKV, 0, nil)
	}
	h = tp.Add(h, addBias(tp, w.Wo.Apply(tp, a), w.Bo))

	x = tp.RMSNorm(h, w.FFNNorm, eps)
	f := tp.SwiGLU(w.WGate.Apply(tp, x), w.WUp.Apply(tp, x))
	return tp.Add(h, w.WDown.Apply(tp, f))
}

// addBias adds a bias row to every row of x; b may be nil.
func addBias(tp *ops.Tape, x, b *ops.Tensor) *ops.Tensor {
	if b == nil {
		return x
	}
	return tp.Add(x, b)
}
