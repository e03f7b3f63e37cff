package engine

import (
	"fmt"

	"ladder-engine/ops"
)

// Forward runs tokens at positions kv.Len().. through the frozen backbone
// (no tape) and appends their keys and values to kv. After each layer it
// calls onLayer (may be nil) with that layer's output hidden states
// (n, NEmbd) — the residual stream, valid only during the callback and not
// to be modified. The final hidden states after output_norm go to hidden
// (n, NEmbd).
//
// All n tokens go through each layer together (batched prompt processing;
// n = 1 is single-token decoding). Scratch is allocated once for the largest
// batch seen and reused layer after layer.
func (m *Model) Forward(tokens []int32, kv *KVCache, hidden []float32, onLayer func(layer int, h []float32)) error {
	n := len(tokens)
	if n == 0 {
		return nil
	}
	if err := kv.checkRoom(n); err != nil {
		return err
	}
	nEmbd := m.NEmbd
	if len(hidden) < n*nEmbd {
		return fmt.Errorf("engine: hidden has %d values, want %d tokens × %d", len(hidden), n, nEmbd)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= m.NVocab {
			return fmt.Errorf("engine: token %d (at %d) is out of the vocabulary [0,%d)", t, i, m.NVocab)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	pos0 := kv.Len()
	s := m.ensureScratch(n, kv.NCtx)
	x := s.x[:n*nEmbd]
	m.EmbedTokens(tokens, x)
	for i := range n {
		s.pos[i] = int32(pos0 + i)
	}
	for l := range m.Layers {
		m.block(l, x, n, kv, pos0, s)
		if onLayer != nil {
			onLayer(l, x)
		}
	}
	kv.n += n
	m.rmsNorm(hidden[:n*nEmbd], x, m.OutputNorm, n, nEmbd)
	return nil
}

// block runs decoder block l on the residual stream x (n, NEmbd) in place:
// x += Attention(RMSNorm(x)); x += FFN(RMSNorm(x)), as llama.cpp's
// build_llama / build_qwen2.
func (m *Model) block(l int, x []float32, n int, kv *KVCache, pos0 int, s *scratch) {
	ly := &m.Layers[l]
	p := m.Pool
	nEmbd, qDim, kvDim, hd := m.NEmbd, m.QDim(), m.KVDim(), m.HeadDim
	cur := s.cur[:n*nEmbd]
	q, k, v := s.q[:n*qDim], s.k[:n*kvDim], s.v[:n*kvDim]

	// attention
	m.rmsNorm(cur, x, ly.AttnNorm, n, nEmbd)
	ops.MatMul(p, q, cur, n, ly.Wq)
	ops.MatMul(p, k, cur, n, ly.Wk)
	ops.MatMul(p, v, cur, n, ly.Wv)
	addBias(q, ly.Bq, n)
	addBias(k, ly.Bk, n)
	addBias(v, ly.Bv, n)
	if ly.QNorm != nil { // qwen3: RMSNorm over each head's vector
		m.rmsNorm(q, q, ly.QNorm, n*m.NHead, hd)
		m.rmsNorm(k, k, ly.KNorm, n*m.NHeadKV, hd)
	}
	pos := s.pos[:n]
	p.For(n, func(lo, hi int) {
		ops.RoPEForward(q[lo*qDim:hi*qDim], hi-lo, m.NHead, hd, pos[lo:hi], m.RopeFreqBase, m.RopeNeox, m.RopeFreqs)
		ops.RoPEForward(k[lo*kvDim:hi*kvDim], hi-lo, m.NHeadKV, hd, pos[lo:hi], m.RopeFreqBase, m.RopeNeox, m.RopeFreqs)
	})
	kv.store(l, k, v, n)
	if kv.RoundF16 { // llama.cpp's K·q dot sees q in f16 (see attention)
		p.For(n, func(lo, hi int) { roundF16(q[lo*qDim : hi*qDim]) })
	}
	attn := s.attn[:n*qDim]
	m.attention(attn, q, kv, l, n, pos0, s.probs, kv.ctxPad)
	proj := s.proj[:n*nEmbd]
	ops.MatMul(p, proj, attn, n, ly.Wo)
	addBias(proj, ly.Bo, n)
	m.add(x, proj)

	// feed-forward: down(silu(gate(x)) * up(x))
	nFF := m.NFF
	gate, up := s.gate[:n*nFF], s.up[:n*nFF]
	m.rmsNorm(cur, x, ly.FFNNorm, n, nEmbd)
	ops.MatMul(p, gate, cur, n, ly.WGate)
	ops.MatMul(p, up, cur, n, ly.WUp)
	p.For(n, func(lo, hi int) { siluMul(gate[lo*nFF:hi*nFF], up[lo*nFF:hi*nFF]) })
	ops.MatMul(p, proj, gate, n, ly.WDown)
	m.add(x, proj)
}

// rmsNorm normalizes n rows of c values over the pool (out may be inp).
func (m *Model) rmsNorm(out, inp, weight []float32, n, c int) {
	m.Pool.For(n, func(lo, hi int) {
		ops.RMSNormForward(out[lo*c:hi*c], inp[lo*c:hi*c], weight, hi-lo, c, m.NormEps)
	})
}

// add does x += y over the pool.
func (m *Model) add(x, y []float32) {
	m.Pool.For(len(x), func(lo, hi int) {
		ops.AddForward(x[lo:hi], x[lo:hi], y[lo:hi])
	})
}

// addBias adds b (c) to each of the n rows of x (n, c); b may be nil.
func addBias(x, b []float32, n int) {
	if b == nil {
		return
	}
	c := len(b)
	for i := range n {
		row := x[i*c : (i+1)*c]
		for j, v := range b {
			row[j] += v
		}
	}
}

// EmbedTokens writes the token embeddings (n, NEmbd) of tokens into out,
// decoding rows of token_embd in whatever type the file stores. Token ids
// must be in [0, NVocab) (Forward checks them).
func (m *Model) EmbedTokens(tokens []int32, out []float32) {
	e := m.NEmbd
	for i, t := range tokens {
		m.TokenEmbd.DequantizeRow(int(t), out[i*e:(i+1)*e])
	}
}

// Logits applies the frozen LM head: logits (n, NVocab) = hidden (n, NEmbd) · outputᵀ.
func (m *Model) Logits(hidden []float32, n int, logits []float32) {
	ops.MatMul(m.Pool, logits, hidden, n, m.Output)
}

// scratch holds the per-batch buffers of Forward, sized for the largest
// batch (and context, for the attention probabilities) seen so far. All are
// counted as ops.Scratch.
type scratch struct {
	nTok, probsLen int
	x, cur, q      []float32
	k, v, attn     []float32
	proj           []float32
	gate, up       []float32
	probs          []float32 // (threads, nCtx) attention probabilities
	pos            []int32
}

func (m *Model) ensureScratch(n, nCtx int) *scratch {
	s := m.scratch
	if s == nil {
		s = &scratch{}
		m.scratch = s
	}
	if n > s.nTok {
		s.freeTokens()
		s.nTok = n
		a := func(w int) []float32 { return ops.Alloc(ops.Scratch, n*w) }
		s.x, s.cur, s.proj = a(m.NEmbd), a(m.NEmbd), a(m.NEmbd)
		s.q, s.attn = a(m.QDim()), a(m.QDim())
		s.k, s.v = a(m.KVDim()), a(m.KVDim())
		s.gate, s.up = a(m.NFF), a(m.NFF)
		s.pos = make([]int32, n)
	}
	if need := m.Pool.Threads() * ops.GemmMR * roundUp(nCtx, 32); need > s.probsLen {
		ops.Free(ops.Scratch, s.probs)
		s.probs = ops.Alloc(ops.Scratch, need)
		s.probsLen = need
	}
	return s
}

func (s *scratch) freeTokens() {
	for _, b := range [][]float32{s.x, s.cur, s.proj, s.q, s.attn, s.k, s.v, s.gate, s.up} {
		ops.Free(ops.Scratch, b)
	}
}

func (s *scratch) free() {
	s.freeTokens()
	ops.Free(ops.Scratch, s.probs)
	*s = scratch{}
}
