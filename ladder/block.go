package ladder

import (
	"ladder-engine/engine"
	"ladder-engine/ops"
)

// The side network's forward pass, written once for training (a recording
// tape; the trainer recomputes block by block, see sideForwardBackward) and
// inference (a no-grad tape plus a KV cache of the side blocks). Each side
// block is the backbone's own decoder block (engine.BlockForward) with
// trainable weights, as DESIGN.md asks.

// forwardNoGrad runs the side network on a tape that does not record
// (evaluation, inference) over a batch of nSeq sequences of equal length
// (rows = nSeq·n). start (rows, d_s) is Down_0 of the start input;
// ladder[i] (rows, d_s) is Down_i of backbone layer LayerMap[i]'s output,
// nil for free blocks; pos holds each row's position. With a cache
// (inference, nSeq = 1) each block appends its keys and values to its layer
// of kv and attends over all of them; the caller advances kv afterwards.
// After each block its output is copied into ping or pong (alternating,
// tensors of at least rows × d_s) and the tape is reset, so only one
// block's intermediates exist at a time. It returns a view of the last
// block's output (rows, d_s); tp is empty afterwards.
func (s *Side) forwardNoGrad(tp *ops.Tape, start *ops.Tensor, ladder []*ops.Tensor, pos []int32, nSeq int, kv *ops.KVCache, ping, pong *ops.Tensor) *ops.Tensor {
	h := start
	rows := start.Rows()
	be := tp.Backend()
	for i := range s.Blocks {
		out := s.segmentForward(tp, i, h, ladder[i], pos, nSeq, kv)
		dst := ping.RowsView(0, rows)
		be.Copy(dst.Buf(), out.Buf())
		tp.Reset()
		h = dst
		ping, pong = pong, ping
	}
	return h
}

// segmentForward is side block i with the ladder mixed in before it: the
// unit the trainer recomputes in its backward (activation checkpointing).
func (s *Side) segmentForward(tp *ops.Tape, i int, h, ladder *ops.Tensor, pos []int32, nSeq int, kv *ops.KVCache) *ops.Tensor {
	b := &s.Blocks[i]
	if b.Gate != nil {
		// LST: h_s = μ_i ⊙ h_s + (1-μ_i) ⊙ Down_i(h_b), μ_i = sigmoid(α_i/T)
		h = tp.GatedMix(b.Gate, h, ladder, s.H.GateTemp)
	}
	hp := s.blockHparams()
	w := b.weights()
	return engine.BlockForward(tp, &hp, &w, h, pos, nSeq, kv, i)
}

// blockHparams is the side blocks' shape for engine.BlockForward.
func (s *Side) blockHparams() engine.BlockHparams {
	h := &s.H
	return engine.BlockHparams{NEmbd: h.NEmbd, NHead: h.NHead, NHeadKV: h.NHeadKV, HeadDim: h.HeadDim, NFF: h.NFF,
		NormEps: h.NormEps, Rope: ops.RoPEConfig{Base: h.RopeBase, Neox: h.RopeNeox}}
}

// weights is the block as engine.BlockForward takes it: trainable f32
// matrices, no biases.
func (b *Block) weights() engine.BlockWeights {
	return engine.BlockWeights{
		AttnNorm: b.AttnNorm,
		Wq:       ops.Trainable{T: b.Wq}, Wk: ops.Trainable{T: b.Wk}, Wv: ops.Trainable{T: b.Wv}, Wo: ops.Trainable{T: b.Wo},
		FFNNorm: b.FFNNorm,
		WGate:   ops.Trainable{T: b.WGate}, WUp: ops.Trainable{T: b.WUp}, WDown: ops.Trainable{T: b.WDown},
	}
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
