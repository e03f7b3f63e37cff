package ladder

import (
	"ladder-engine/ops"
)

// The side network's forward pass, written once for training (a recording
// tape; the trainer recomputes block by block, see sideForwardBackward) and
// inference (a no-grad tape plus per-block KV caches), as DESIGN.md asks of
// the decoder block.

// blockCache holds one side block's keys and values for incremental
// decoding: (nCtx, KVDim) each, rows 0..n-1 filled.
type blockCache struct {
	k, v []float32
	n    int
}

// forwardNoGrad runs the side network on a tape that does not record
// (evaluation, inference) over a batch of nSeq sequences of equal length
// (rows = nSeq·n). start (rows, d_s) is Down_0 of the start input;
// ladder[i] (rows, d_s) is Down_i of backbone layer LayerMap[i]'s output,
// nil for free blocks; pos holds each row's position. With caches
// (inference, nSeq = 1) each block appends its keys and values to its cache
// and attends over all of them. After each block its output is copied into
// ping or pong (rows·d_s values each, alternating) and the tape is reset, so
// only one block's intermediates exist at a time. It returns a view of the
// last block's output (rows, d_s); tp is empty afterwards.
func (s *Side) forwardNoGrad(tp *ops.Tape, start *ops.Tensor, ladder []*ops.Tensor, pos []int32, nSeq int, caches []blockCache, ping, pong []float32) *ops.Tensor {
	h := start
	rows, ds := start.Rows(), s.H.NEmbd
	for i := range s.Blocks {
		var c *blockCache
		if caches != nil {
			c = &caches[i]
		}
		out := s.segmentForward(tp, i, h, ladder[i], pos, nSeq, c)
		copy(ping[:rows*ds], out.Data)
		tp.Reset()
		h = ops.NewTensor(ping[:rows*ds], rows, ds)
		ping, pong = pong, ping
	}
	return h
}

// segmentForward is side block i with the ladder mixed in before it: the
// unit the trainer recomputes in its backward (activation checkpointing).
func (s *Side) segmentForward(tp *ops.Tape, i int, h, ladder *ops.Tensor, pos []int32, nSeq int, c *blockCache) *ops.Tensor {
	b := &s.Blocks[i]
	if b.Gate != nil {
		// LST: h_s = μ_i ⊙ h_s + (1-μ_i) ⊙ Down_i(h_b), μ_i = sigmoid(α_i/T)
		h = tp.GatedMix(b.Gate, h, ladder, s.H.GateTemp)
	}
	return s.blockForward(tp, b, h, pos, nSeq, c)
}

// blockForward is one pre-norm llama block on the side stream h (rows, d_s):
// h += Wo·Attention(RoPE(Wq x), RoPE(Wk x), Wv x) with x = RMSNorm(h);
// h += Wdown·(silu(Wgate x) ⊙ Wup x) with x = RMSNorm(h).
func (s *Side) blockForward(tp *ops.Tape, b *Block, h *ops.Tensor, pos []int32, nSeq int, c *blockCache) *ops.Tensor {
	hp := &s.H
	x := tp.RMSNorm(h, b.AttnNorm, hp.NormEps)
	q := tp.RoPE(tp.Linear(x, b.Wq), hp.NHead, pos, hp.RopeBase, hp.RopeNeox, nil)
	k := tp.RoPE(tp.Linear(x, b.Wk), hp.NHeadKV, pos, hp.RopeBase, hp.RopeNeox, nil)
	v := tp.Linear(x, b.Wv)
	pos0 := 0
	if c != nil {
		// Inference: append to the cache, attend over everything cached.
		kvDim, n := hp.KVDim(), k.Rows()
		pos0 = c.n
		copy(c.k[pos0*kvDim:], k.Data)
		copy(c.v[pos0*kvDim:], v.Data)
		c.n += n
		k = ops.NewTensor(c.k[:c.n*kvDim], c.n, kvDim)
		v = ops.NewTensor(c.v[:c.n*kvDim], c.n, kvDim)
	}
	a := tp.Attention(q, k, v, nSeq, hp.NHead, hp.NHeadKV, pos0)
	h = tp.Add(h, tp.Linear(a, b.Wo))
	x = tp.RMSNorm(h, b.FFNNorm, hp.NormEps)
	f := tp.SwiGLU(tp.Linear(x, b.WGate), tp.Linear(x, b.WUp))
	return tp.Add(h, tp.Linear(f, b.WDown))
}

// headForward maps the side stream h (rows, d_s) to the hidden state the
// frozen LM head reads (rows, d):
//
//	residual: base + Up(RMSNorm_s(h))      (Up starts at 0: the base model)
//	gated:    μ ⊙ base + (1-μ) ⊙ Up(RMSNorm_s(h)),  μ = sigmoid(α/T) per dimension
//	side:     Up(RMSNorm_s(h))             (the original LST)
func (s *Side) headForward(tp *ops.Tape, h, base *ops.Tensor) *ops.Tensor {
	out := tp.Linear(tp.RMSNorm(h, s.OutNorm, s.H.NormEps), s.Up)
	switch s.H.Head {
	case "residual":
		return tp.Add(base, out)
	case "gated":
		return tp.GatedMix(s.HeadGate, base, out, s.H.GateTemp)
	}
	return out
}
