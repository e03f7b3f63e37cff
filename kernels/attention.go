package kernels

import (
	"fmt"
	"math"
)

// AttentionShape describes causal grouped-query attention over NSeq
// sequences: q and out are (NSeq·N, NHead·HeadDim), k and v
// (NSeq·NKV, NHeadKV·HeadDim); query i of a sequence sits at position
// Pos0+i and sees keys 0..Pos0+i (training: Pos0 = 0, NKV = N; decoding
// from a cache: N = 1, Pos0 = the cached length).
type AttentionShape struct {
	NSeq, N, NKV, NHead, NHeadKV, HeadDim, Pos0 int
}

// MaxHeadDim is the largest head size the attention kernels take.
const MaxHeadDim = 128

func (s AttentionShape) check(kernel string) error {
	if s.NSeq <= 0 || s.N <= 0 || s.NKV <= 0 || s.NHead <= 0 || s.NHeadKV <= 0 || s.NHead%s.NHeadKV != 0 ||
		s.HeadDim <= 0 || s.HeadDim > MaxHeadDim || s.Pos0 < 0 || s.Pos0+s.N > s.NKV {
		return fmt.Errorf("kernels: %s: %d sequences of %d queries at %d.. over %d keys, %d heads (%d kv) of %d (at most %d)",
			kernel, s.NSeq, s.N, s.Pos0, s.NKV, s.NHead, s.NHeadKV, s.HeadDim, MaxHeadDim)
	}
	return nil
}

func (s AttentionShape) qBytes() int64 {
	return 4 * int64(s.NSeq) * int64(s.N) * int64(s.NHead) * int64(s.HeadDim)
}
func (s AttentionShape) kvBytes() int64 {
	return 4 * int64(s.NSeq) * int64(s.NKV) * int64(s.NHeadKV) * int64(s.HeadDim)
}
func (s AttentionShape) lseBytes() int64 { return 4 * int64(s.NSeq) * int64(s.NHead) * int64(s.N) }

// scale is ops' 1/sqrt(headDim).
func (s AttentionShape) scale() float32 { return float32(1 / math.Sqrt(float64(s.HeadDim))) }

// AttentionForward computes out = softmax(q·kᵀ·scale, causal)·v with an
// online softmax (the scores never exist as a matrix). lse (NSeq, NHead, N)
// receives max + log Σ exp of each query's scores for the backward, or is
// the zero Buffer for inference.
func (d *Device) AttentionForward(out, lse, q, k, v Buffer, s AttentionShape) error {
	if err := s.check("AttentionForward"); err != nil {
		return err
	}
	if err := needAll("AttentionForward", s.qBytes(), map[string]Buffer{"out": out, "q": q}); err != nil {
		return err
	}
	if err := needAll("AttentionForward", s.kvBytes(), map[string]Buffer{"k": k, "v": v}); err != nil {
		return err
	}
	if lse.ptr != 0 {
		if err := need("AttentionForward", "lse", lse, s.lseBytes()); err != nil {
			return err
		}
	}
	hd := s.HeadDim
	shared := 4 * (32*(hd+1) + 32*hd + 4*hd)
	return d.launch("attn_fwd", dim3{ceilDiv(s.N, 4), s.NHead, s.NSeq}, dim3{128, 1, 1}, shared,
		out, lse, q, k, v, s.N, s.NKV, s.NHead, s.NHeadKV, hd, s.Pos0, s.scale())
}

// AttentionBackward accumulates dq, dk, dv (shaped like q, k, v; dq or both
// of dk and dv may be the zero Buffer) from dout, the forward's out and
// lse. scratch holds NSeq·NHead·N floats (D = rowsum(dout⊙out)).
func (d *Device) AttentionBackward(dq, dk, dv, dout, out, q, k, v, lse, scratch Buffer, s AttentionShape) error {
	if err := s.check("AttentionBackward"); err != nil {
		return err
	}
	bufs := map[string]Buffer{"dout": dout, "out": out, "q": q}
	if dq.ptr != 0 {
		bufs["dq"] = dq
	}
	if err := needAll("AttentionBackward", s.qBytes(), bufs); err != nil {
		return err
	}
	bufs = map[string]Buffer{"k": k, "v": v}
	if dk.ptr != 0 {
		bufs["dk"] = dk
	}
	if dv.ptr != 0 {
		bufs["dv"] = dv
	}
	if err := needAll("AttentionBackward", s.kvBytes(), bufs); err != nil {
		return err
	}
	if err := needAll("AttentionBackward", s.lseBytes(), map[string]Buffer{"lse": lse, "scratch": scratch}); err != nil {
		return err
	}
	hd := s.HeadDim
	if err := d.launch("attn_bwd_prep", dim3{ceilDiv(s.N, 64), s.NHead, s.NSeq}, dim3{64, 1, 1}, 0,
		scratch, out, dout, s.N, s.NHead, hd); err != nil {
		return err
	}
	if dq.ptr != 0 {
		shared := 4 * (2*32*(hd+1) + 2*4*hd)
		if err := d.launch("attn_bwd_dq", dim3{ceilDiv(s.N, 4), s.NHead, s.NSeq}, dim3{128, 1, 1}, shared,
			dq, q, k, v, dout, lse, scratch, s.N, s.NKV, s.NHead, s.NHeadKV, hd, s.Pos0, s.scale()); err != nil {
			return err
		}
	}
	if dk.ptr == 0 && dv.ptr == 0 {
		return nil
	}
	shared := 4 * (2*32*(hd+1) + 2*4*hd + 2*32)
	return d.launch("attn_bwd_dkdv", dim3{ceilDiv(s.NKV, 4), s.NHeadKV, s.NSeq}, dim3{128, 1, 1}, shared,
		dk, dv, q, k, v, dout, lse, scratch, s.N, s.NKV, s.NHead, s.NHeadKV, hd, s.Pos0, s.scale())
}
