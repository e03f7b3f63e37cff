package engine

import (
	"fmt"

	"ladder-engine/ops"
)

// KVCache holds a sequence's keys and values for every layer, on the
// model's backend (ops.KVCache, llama.cpp's f16 numerics by default).
type KVCache = ops.KVCache

// NewKVCache allocates a cache for nCtx tokens (nCtx <= 0: the training
// context length), counted in the ops.KVMem class of the model's backend.
func (m *Model) NewKVCache(nCtx int) *KVCache {
	if nCtx <= 0 {
		nCtx = m.NCtxTrain
	}
	return m.Backend.NewKVCache(m.NLayer, nCtx, m.NHeadKV, m.HeadDim, true)
}

// Forward runs tokens at positions kv.Len().. through the frozen backbone
// (no tape) and appends their keys and values to kv. After each layer it
// calls onLayer (may be nil) with that layer's output hidden states
// (n, NEmbd) — the residual stream, valid only during the callback and not
// to be modified. The final hidden states after output_norm go to the first
// n rows of hidden (at least n × NEmbd values, on the model's backend).
//
// All n tokens go through each layer together (batched prompt processing;
// n = 1 is single-token decoding). Each layer is BlockForward on a no-grad
// tape that is reset after the layer, so its scratch is reused layer after
// layer.
func (m *Model) Forward(tokens []int32, kv *KVCache, hidden *ops.Tensor, onLayer func(layer int, h *ops.Tensor)) error {
	n := len(tokens)
	if n == 0 {
		return nil
	}
	if err := kv.CheckRoom(n); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	nEmbd := m.NEmbd
	if hidden.Len() < n*nEmbd {
		return fmt.Errorf("engine: hidden has %d values, want %d tokens × %d", hidden.Len(), n, nEmbd)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= m.NVocab {
			return fmt.Errorf("engine: token %d (at %d) is out of the vocabulary [0,%d)", t, i, m.NVocab)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	pos0 := kv.Len()
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(pos0 + i)
	}
	tp := m.tape
	x := m.residual(n)
	m.Backend.Copy(x.Buf(), m.EmbedTokens(tp, tokens).Buf())
	tp.Reset()
	for l := range m.blocks {
		y := BlockForward(tp, &m.blockHP, &m.blocks[l], x, pos, 1, kv, l)
		m.Backend.Copy(x.Buf(), y.Buf())
		tp.Reset()
		if onLayer != nil {
			onLayer(l, x)
		}
	}
	kv.Advance(n)
	out := tp.RMSNorm(x, m.outputNorm, m.NormEps)
	m.Backend.Copy(hidden.Buf().Slice(0, n*nEmbd), out.Buf())
	tp.Reset()
	return nil
}

// residual returns the model's residual-stream tensor (n, NEmbd), grown as
// needed (Scratch).
func (m *Model) residual(n int) *ops.Tensor {
	if m.resid == nil || m.resid.Rows() < n {
		if m.resid != nil {
			m.resid.FreeTensor()
		}
		m.resid = ops.TensorOn(m.Backend, ops.Scratch, ops.F32, n, m.NEmbd)
	}
	return m.resid.RowsView(0, n)
}

// EmbedTokens returns the input of the first block (n, NEmbd) for tokens
// on tp: their rows of token_embd (decoded from whatever type the file
// stores), times sqrt(n_embd) for gemma2 (build_gemma2's ggml_scale).
// Token ids must be in [0, NVocab).
func (m *Model) EmbedTokens(tp *ops.Tape, tokens []int32) *ops.Tensor {
	e := tp.EmbeddingMatrix(m.TokenEmbd, tokens)
	if m.EmbdScale != 0 {
		e = tp.Scale(e, m.EmbdScale)
	}
	return e
}

// Logits applies the frozen LM head to n rows of hidden (n, NEmbd) and
// copies the logits (n, NVocab) out to the host: a sync point. gemma2's
// logits are soft-capped (final_logit_softcapping), as llama.cpp's are.
func (m *Model) Logits(hidden *ops.Tensor, n int, logits []float32) {
	tp := ops.NewNoGradTape(m.Backend)
	defer tp.Close()
	out := tp.LinearMatrix(hidden.RowsView(0, n), m.Output)
	if m.FinalSoftCap > 0 {
		out = tp.SoftCap(out, m.FinalSoftCap)
	}
	out.ReadInto(logits[:n*m.NVocab])
}
