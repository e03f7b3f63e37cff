package cuda

import (
	"fmt"

	"ladder-engine/kernels"
	"ladder-engine/ops"
)

// Attention runs the online-softmax kernel, which keeps no probabilities:
// att (nSeq, nHead, n, nKV), the buffer the tape saves for the backward,
// holds instead what the device's backward reads: the rows' log-sum-exp
// (nSeq·nHead·n floats) and, when it fits (nKV > headDim), a copy of the
// output (nSeq·n·nHead·headDim). When the output does not fit, the
// backward recomputes it (one more forward).
func (b *Backend) attention(out, q, k, v, att ops.Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int) {
	s := kernels.AttentionShape{NSeq: nSeq, N: n, NKV: nKV, NHead: nHead, NHeadKV: nHeadKV, HeadDim: headDim, Pos0: pos0}
	lse, saved := attSaved(b, att, s)
	o := b.m(out)
	must("Attention", b.dev.k.AttentionForward(o, lse, b.m(q), b.m(k), b.m(v), s))
	if saved.Size() > 0 {
		must("Attention", b.dev.k.Copy(saved, o, saved.Size()))
	}
}

// attSaved splits att into the log-sum-exp and the saved output (the zero
// Buffer when it does not fit).
func attSaved(b *Backend, att ops.Buffer, s kernels.AttentionShape) (lse, out kernels.Buffer) {
	nl := int64(s.NSeq) * int64(s.NHead) * int64(s.N)
	no := nl * int64(s.HeadDim)
	a := b.m(att)
	if a.Size() < 4*nl {
		panic(fmt.Sprintf("cuda: Attention: att of %d bytes, want at least %d", a.Size(), 4*nl))
	}
	lse, _ = a.Slice(0, 4*nl)
	if a.Size() >= 4*(nl+no) {
		out, _ = a.Slice(4*nl, 4*no)
	}
	return lse, out
}

func (b *Backend) attentionBackward(dq, dk, dv, dout, q, k, v, att ops.Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int) {
	s := kernels.AttentionShape{NSeq: nSeq, N: n, NKV: nKV, NHead: nHead, NHeadKV: nHeadKV, HeadDim: headDim, Pos0: pos0}
	lse, out := attSaved(b, att, s)
	if out.Size() == 0 {
		t := b.tmp(4 * int64(nSeq) * int64(n) * int64(nHead) * int64(headDim))
		defer t.done()
		out = t.mem()
		must("AttentionBackward", b.dev.k.AttentionForward(out, lse, b.m(q), b.m(k), b.m(v), s))
	}
	d := b.tmp(4 * int64(nSeq) * int64(nHead) * int64(n))
	defer d.done()
	must("AttentionBackward", b.dev.k.AttentionBackward(b.m(dq), b.m(dk), b.m(dv), b.m(dout), out, b.m(q), b.m(k), b.m(v), lse, d.mem(), s))
}

// kvCache is the device storage of an ops.KVCache: per layer, keys and
// values (nCtx, nHeadKV·headDim) row-major, the layout the attention
// kernel reads, so a new token's k and v are one copy each.
type kvCache struct {
	dev         *device
	all         kernels.Buffer // the one allocation behind k and v
	k, v        []kernels.Buffer
	nHeadKV, hd int
}

func (c *kvCache) Free() {
	if c.all.Size() > 0 {
		_ = c.dev.k.Free(c.all)
		c.all = kernels.Buffer{}
	}
}

// NewKVCache allocates every layer's keys and values (counted in KVMem).
// With roundF16 the values are stored rounded to f16 precision, as
// llama.cpp's default f16 cache holds them (kept as f32 here).
func (b *Backend) NewKVCache(nLayer, nCtx, nHeadKV, headDim int, roundF16 bool) *ops.KVCache {
	per := 4 * int64(nCtx) * int64(nHeadKV) * int64(headDim)
	total := 2 * per * int64(nLayer)
	c := &kvCache{dev: b.dev, nHeadKV: nHeadKV, hd: headDim}
	if total > 0 {
		var err error
		c.all, err = b.dev.k.Alloc(total)
		must(fmt.Sprintf("KV cache (%s)", ops.FormatBytes(total)), err)
		for l := 0; l < nLayer; l++ {
			k, _ := c.all.Slice(int64(2*l)*per, per)
			v, _ := c.all.Slice(int64(2*l+1)*per, per)
			c.k, c.v = append(c.k, k), append(c.v, v)
		}
	}
	return ops.NewDeviceKVCache(b, nLayer, nCtx, nHeadKV, headDim, roundF16, total, c)
}

// AttentionKV appends k and v at positions kv.Len().. (rounded to f16
// precision first when the cache rounds; in place, as on the CPU) and
// attends from q over every cached position. The CPU kernel also rounds
// the probabilities to f16 before the value product, as llama.cpp's CPU
// graph does; the online-softmax kernel keeps them in f32.
func (b *Backend) attentionKV(out, q, k, v ops.Buffer, kv *ops.KVCache, l, n, nHead int) {
	c, ok := kv.Impl.(*kvCache)
	if !ok || c.dev != b.dev {
		panic(fmt.Sprintf("cuda: %s handed a KV cache of %s", b.Name(), kv.Backend().Name()))
	}
	if kv.RoundF16 {
		b.RoundF16(k)
		b.RoundF16(v)
	}
	pos0 := kv.Len()
	row := 4 * int64(c.nHeadKV) * int64(c.hd)
	kd, _ := c.k[l].Slice(int64(pos0)*row, int64(n)*row)
	vd, _ := c.v[l].Slice(int64(pos0)*row, int64(n)*row)
	must("AttentionKV", b.dev.k.Copy(kd, b.m(k), int64(n)*row))
	must("AttentionKV", b.dev.k.Copy(vd, b.m(v), int64(n)*row))
	s := kernels.AttentionShape{NSeq: 1, N: n, NKV: pos0 + n, NHead: nHead, NHeadKV: c.nHeadKV, HeadDim: c.hd, Pos0: pos0}
	must("AttentionKV", b.dev.k.AttentionForward(b.m(out), kernels.Buffer{}, b.m(q), c.k[l], c.v[l], s))
}

var _ ops.Backend = (*Backend)(nil)
