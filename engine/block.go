package engine

import (
	"ladder-engine/ops"
)

// The one decoder block (DESIGN.md: "one transformer block, three uses").
// BlockForward runs it for
//   - the frozen backbone in inference: a no-grad tape reset after each
//     layer (scratch reused), a KV cache with llama.cpp's f16 numerics
//     (Model.Forward);
//   - the side network's blocks: trainable weights on a recording tape, or a
//     no-grad tape with a cache of their own when decoding (ladder);
//   - backbone blocks in training mode: frozen GGUF weights, optionally
//     with LoRA pairs (ops.LoRA), on a recording tape: gradients reach the
//     block input and the LoRA pairs, never the frozen weights.
// What differs between the uses is only what the weights are (ops.Weight)
// and whether a tape records. What differs between architectures (llama,
// qwen2, qwen3, gemma2, phi3) is options of BlockHparams and optional
// tensors of BlockWeights, never a second block.

// BlockHparams is the shape of a block and its per-architecture options.
// The zero value of every option is llama's block.
type BlockHparams struct {
	NEmbd, NHead, NHeadKV, HeadDim, NFF int
	NormEps                             float32

	// Rope turns positions into angles: base, NEOX or NORM pairs, partial
	// rotary (NRot), frequency factors (Llama 3.1 rope_freqs, or LongRoPE's
	// long factors), linear/YaRN scaling and the magnitude factor.
	Rope ops.RoPEConfig
	// RopeShortFactors are LongRoPE's factors for short contexts (Phi-3
	// rope_factors_short), or nil. llama.cpp picks them, for every layer and
	// position, when the context size is at most Rope.NCtxOrig.
	RopeShortFactors []float32

	// QueryScale, when not 0, multiplies q after RoPE and the scores are not
	// scaled again (gemma2 1/sqrt(query_pre_attn_scalar), phi3 1/sqrt(head_dim):
	// llama.cpp scales Qcur and passes kq_scale 1).
	QueryScale float32
	// AttnSoftCap > 0 soft-caps the scores: c·tanh(kq/c) (gemma2).
	AttnSoftCap float32
	// SlidingWindow > 0 limits the layers marked in SWALayers to the last
	// SlidingWindow positions (gemma2's even layers, phi3's all).
	SlidingWindow int
	SWALayers     []bool // indexed by the layer argument of BlockForward; nil: none
	// GeGLU makes the feed-forward gelu_tanh(gate)·up (gemma2) instead of
	// silu(gate)·up.
	GeGLU bool
}

// QDim is the width of the queries (NHead × HeadDim).
func (h *BlockHparams) QDim() int { return h.NHead * h.HeadDim }

// KVDim is the width of the keys and values (NHeadKV × HeadDim).
func (h *BlockHparams) KVDim() int { return h.NHeadKV * h.HeadDim }

// ropeFor returns the RoPE of a context of nCtx positions: LongRoPE's short
// factors when the (32-padded, as llama.cpp's KV cache) context is at most
// the original one, else Rope as it is (llama.cpp build_rope_factors).
func (h *BlockHparams) ropeFor(nCtx int) *ops.RoPEConfig {
	if h.RopeShortFactors == nil || (nCtx+31)/32*32 > h.Rope.NCtxOrig {
		return &h.Rope
	}
	r := h.Rope
	r.FreqFactors = h.RopeShortFactors
	return &r
}

// attnOptions are layer's attention options (nil for plain llama attention).
func (h *BlockHparams) attnOptions(layer int) *ops.AttnOptions {
	swa := h.SlidingWindow > 0 && layer < len(h.SWALayers) && h.SWALayers[layer]
	if h.QueryScale == 0 && h.AttnSoftCap == 0 && !swa {
		return nil
	}
	o := &ops.AttnOptions{SoftCap: h.AttnSoftCap}
	if h.QueryScale != 0 {
		o.Scale = 1
	}
	if swa {
		o.Window = h.SlidingWindow
	}
	return o
}

// BlockWeights are one block's weights, named after llama.cpp's
// llama_layer. Optional tensors are nil.
type BlockWeights struct {
	AttnNorm       *ops.Tensor // (NEmbd)
	Wq, Wk, Wv, Wo ops.Weight  // phi3's fused attn_qkv arrives as three row views (Model.Block)
	Bq, Bk, Bv, Bo *ops.Tensor // biases (qwen2 has q, k, v)
	QNorm, KNorm   *ops.Tensor // (HeadDim) per-head RMSNorm weights (qwen3)
	PostAttnNorm   *ops.Tensor // (NEmbd) RMSNorm of the attention output before the residual add (gemma2 post_attention_norm)
	FFNNorm        *ops.Tensor // (NEmbd)
	WGate, WUp     ops.Weight  // phi3's fused ffn_up (gate | up) arrives as two row views
	WDown          ops.Weight
	PostFFNNorm    *ops.Tensor // (NEmbd) RMSNorm of the feed-forward output (gemma2 post_ffw_norm)
}

// BlockForward runs one pre-norm block on the residual stream h
// (nSeq·n, NEmbd), rows at positions pos:
//
//	h += PostNorm(Wo·Attention(RoPE(Wq x + bq), RoPE(Wk x + bk), Wv x + bv)),  x = RMSNorm(h)
//	h += PostNorm(Wdown·(act(Wgate x) ⊙ Wup x)),                              x = RMSNorm(h)
//
// as llama.cpp's build_llama / build_qwen2 / build_qwen3 / build_gemma2 /
// build_phi3 (PostNorm only where the weights have one, act silu or tanh
// GELU). With kv (nSeq = 1) the keys and values are appended to layer's
// cache at positions kv.Len().. and the queries attend over everything
// cached; when the cache rounds to f16, so do the queries, as llama.cpp's
// K·q dot sees them, and GELU goes through ggml's f16 table. The caller
// advances the cache after its last layer. Without kv each of the nSeq
// sequences attends causally over itself (training), and the context
// (for LongRoPE's choice of factors) is the sequence length.
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
	nCtx := h.Rows() / nSeq
	if kv != nil {
		nCtx = kv.NCtx
	}
	rope := hp.ropeFor(nCtx)
	q = tp.RoPE(q, hp.NHead, pos, rope)
	k = tp.RoPE(k, hp.NHeadKV, pos, rope)
	if hp.QueryScale != 0 {
		q = tp.Scale(q, hp.QueryScale)
	}
	o := hp.attnOptions(layer)
	var a *ops.Tensor
	if kv != nil {
		if kv.RoundF16 {
			q = tp.RoundF16(q)
		}
		a = tp.AttentionKV(q, k, v, kv, layer, hp.NHead, o)
	} else {
		a = tp.Attention(q, k, v, nSeq, hp.NHead, hp.NHeadKV, 0, o)
	}
	a = addBias(tp, w.Wo.Apply(tp, a), w.Bo)
	if w.PostAttnNorm != nil {
		a = tp.RMSNorm(a, w.PostAttnNorm, eps)
	}
	h = tp.Add(h, a)

	x = tp.RMSNorm(h, w.FFNNorm, eps)
	var f *ops.Tensor
	if hp.GeGLU {
		f = tp.GeGLU(w.WGate.Apply(tp, x), w.WUp.Apply(tp, x), kv != nil && kv.RoundF16)
	} else {
		f = tp.SwiGLU(w.WGate.Apply(tp, x), w.WUp.Apply(tp, x))
	}
	f = w.WDown.Apply(tp, f)
	if w.PostFFNNorm != nil {
		f = tp.RMSNorm(f, w.PostFFNNorm, eps)
	}
	return tp.Add(h, f)
}

// addBias adds a bias row to every row of x; b may be nil.
func addBias(tp *ops.Tape, x, b *ops.Tensor) *ops.Tensor {
	if b == nil {
		return x
	}
	return tp.Add(x, b)
}
