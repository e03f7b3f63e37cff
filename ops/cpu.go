package ops

import (
	"fmt"
	"sync"

	"ladder-engine/gguf"
)

// CPU is the backend of Go slices: its kernels are this package's plain
// functions over []float32, spread over a worker pool. Every CPU backend
// shares the one host memory (Device "cpu"), so tensors of two CPU
// backends (different pools) mix freely; the op runs on the tape's.
type CPU struct {
	pool  *Pool
	meter *Meter
}

// NewCPU makes a CPU backend whose kernels run on pool (nil: one thread),
// counting memory in DefaultMeter.
func NewCPU(pool *Pool) *CPU {
	if pool == nil {
		pool = serialPool()
	}
	return &CPU{pool: pool, meter: DefaultMeter}
}

var serialPool = sync.OnceValue(func() *Pool { return NewPool(1) })

var defaultCPU = sync.OnceValue(func() *CPU { return NewCPU(nil) })

// DefaultCPU is the one-thread CPU backend of tensors made without one
// (NewTensor, NewParam).
func DefaultCPU() *CPU { return defaultCPU() }

// Pool is the worker pool the kernels run on.
func (b *CPU) Pool() *Pool { return b.pool }

func (b *CPU) Name() string   { return "cpu" }
func (b *CPU) Device() string { return "cpu" }
func (b *CPU) Meter() *Meter  { return b.meter }

// cpuBuf is host memory: f32 values in f, or f16/bf16 bits in h.
type cpuBuf struct {
	be *CPU
	dt DType
	f  []float32
	h  []uint16
	i  []int32
}

func (c *cpuBuf) Backend() Backend { return c.be }
func (c *cpuBuf) DType() DType     { return c.dt }
func (c *cpuBuf) Len() int {
	switch c.dt {
	case F16, BF16:
		return len(c.h)
	case I32:
		return len(c.i)
	}
	return len(c.f)
}
func (c *cpuBuf) Slice(off, n int) Buffer {
	s := &cpuBuf{be: c.be, dt: c.dt}
	switch c.dt {
	case F16, BF16:
		s.h = c.h[off : off+n]
	case I32:
		s.i = c.i[off : off+n]
	default:
		s.f = c.f[off : off+n]
	}
	return s
}
func (c *cpuBuf) SameMemory(o Buffer) bool {
	d, ok := o.(*cpuBuf)
	return ok && len(c.f) > 0 && len(d.f) > 0 && &c.f[0] == &d.f[0]
}

// wrap views host values as a buffer of b (no copy).
func (b *CPU) wrap(f []float32) *cpuBuf { return &cpuBuf{be: b, dt: F32, f: f} }

// hostF32 is the CPU kernels' view of an f32 buffer. Any other buffer
// panics: a kernel or a caller reaching into memory behind its backend's
// back (the strict backend exists to make that fail).
func hostF32(b Buffer) []float32 {
	if b == nil {
		return nil
	}
	c, ok := b.(*cpuBuf)
	if !ok {
		panic(fmt.Sprintf("ops: host access to a %s buffer behind its backend's back (use Tensor.Read/Write)", b.Backend().Name()))
	}
	if c.dt != F32 {
		panic(fmt.Sprintf("ops: %s buffer read as f32", c.dt))
	}
	return c.f
}

// hostAny returns a CPU buffer's values as f32: the slice itself for f32,
// a decoded scratch copy (free with freeScratch when decoded) for f16/bf16.
func hostAny(b Buffer) (f []float32, decoded bool) {
	c, ok := b.(*cpuBuf)
	if !ok {
		hostF32(b) // panics with the message
	}
	if c.dt == F32 {
		return c.f, false
	}
	out := scratch(len(c.h))
	decodeHalf(c.dt, out, c.h)
	return out, true
}

func decodeHalf(dt DType, dst []float32, src []uint16) {
	t := gguf.TypeF16
	if dt == BF16 {
		t = gguf.TypeBF16
	}
	if err := gguf.Dequantize(t, uint16Bytes(src), dst); err != nil {
		panic(fmt.Sprintf("ops: decode %s: %v", dt, err))
	}
}

func (b *CPU) Alloc(c MemClass, dt DType, n int) Buffer {
	buf := &cpuBuf{be: b, dt: dt}
	switch dt {
	case F16, BF16:
		buf.h = make([]uint16, n)
	case I32:
		buf.i = make([]int32, n)
	default:
		buf.f = make([]float32, n)
	}
	if c >= 0 {
		b.meter.Add(c, int64(n*dt.Size()))
	}
	return buf
}

func (b *CPU) Free(c MemClass, buf Buffer) {
	if buf == nil || c < 0 {
		return
	}
	b.meter.Add(c, -int64(buf.Len()*buf.DType().Size()))
}

func (b *CPU) Upload(dst Buffer, src []float32) {
	c := dst.(*cpuBuf)
	switch c.dt {
	case F32:
		copy(c.f, src[:len(c.f)])
	case F16, BF16:
		t := gguf.TypeF16
		if c.dt == BF16 {
			t = gguf.TypeBF16
		}
		if err := gguf.Quantize(t, src[:len(c.h)], uint16Bytes(c.h)); err != nil {
			panic(fmt.Sprintf("ops: upload as %s: %v", c.dt, err))
		}
	default:
		panic(fmt.Sprintf("ops: upload f32 values into a %s buffer", c.dt))
	}
}

func (b *CPU) Download(dst []float32, src Buffer) {
	c := src.(*cpuBuf)
	switch c.dt {
	case F32:
		copy(dst[:len(c.f)], c.f)
	case F16, BF16:
		decodeHalf(c.dt, dst[:len(c.h)], c.h)
	default:
		panic(fmt.Sprintf("ops: download a %s buffer as f32", c.dt))
	}
}

func (b *CPU) Zero(buf Buffer) {
	c := buf.(*cpuBuf)
	clear(c.f)
	clear(c.h)
	clear(c.i)
}

func (b *CPU) Copy(dst, src Buffer) {
	d, s := dst.(*cpuBuf), src.(*cpuBuf)
	if d.Len() != s.Len() {
		panic(fmt.Sprintf("ops: copy %s[%d] into %s[%d]", s.dt, s.Len(), d.dt, d.Len()))
	}
	switch {
	case d.dt == s.dt:
		copy(d.f, s.f)
		copy(d.h, s.h)
		copy(d.i, s.i)
	case s.dt == F32:
		b.Upload(d, s.f) // rounds to f16/bf16
	case d.dt == F32:
		b.Download(d.f, s)
	default:
		panic(fmt.Sprintf("ops: copy %s into %s", s.dt, d.dt))
	}
}

func (b *CPU) PlaceMatrix(w *Matrix) error { return nil }

func (b *CPU) MatMul(out, x Buffer, n int, w *Matrix) {
	MatMul(b.pool, hostF32(out), hostF32(x), n, w)
}

func (b *CPU) MatMulExact(out, x Buffer, n int, w *Matrix) {
	MatMulExact(b.pool, hostF32(out), hostF32(x), n, w)
}

func (b *CPU) MatMulBackwardInput(dx, dout Buffer, n int, w *Matrix) {
	MatMulBackwardInput(b.pool, hostF32(dx), hostF32(dout), n, w)
}

func (b *CPU) LinearF32(out, x, w Buffer, n, c, oc int) {
	xf, dec := hostAny(x)
	linearForward(b.pool, hostF32(out), xf, hostF32(w), n, c, oc)
	if dec {
		freeScratch(xf)
	}
}

func (b *CPU) LinearBackwardInput(dx, dout, w Buffer, n, c, oc int) {
	linearBackward(b.pool, hostF32(dx), nil, hostF32(dout), nil, hostF32(w), n, c, oc)
}

func (b *CPU) LinearBackwardWeight(dw, dout, x Buffer, n, c, oc int) {
	xf, dec := hostAny(x)
	linearBackward(b.pool, nil, hostF32(dw), hostF32(dout), xf, nil, n, c, oc)
	if dec {
		freeScratch(xf)
	}
}

func (b *CPU) Add(out, a, bb Buffer, n, c int, bcast bool) {
	o, x, y := hostF32(out), hostF32(a), hostF32(bb)
	if !bcast {
		b.pool.For(len(o), func(lo, hi int) { AddForward(o[lo:hi], x[lo:hi], y[lo:hi]) })
		return
	}
	for r := 0; r < n; r++ {
		AddForward(o[r*c:r*c+c], x[r*c:r*c+c], y)
	}
}

func (b *CPU) Accumulate(dst, src Buffer) { accumulate(hostF32(dst), hostF32(src)) }

func (b *CPU) AccumulateRows(dst, src Buffer, n, c int) {
	d, s := hostF32(dst), hostF32(src)
	for r := 0; r < n; r++ {
		accumulate(d, s[r*c:r*c+c])
	}
}

func (b *CPU) Mul(out, a, bb Buffer, n, c int) {
	mulForward(hostF32(out), hostF32(a), hostF32(bb), n, c)
}

func (b *CPU) MulBackward(da, db, dout, a, bb Buffer, n, c int) {
	mulBackward(hostF32(da), hostF32(db), hostF32(dout), hostF32(a), hostF32(bb), n, c)
}

func (b *CPU) Scale(out, a Buffer, s float32) {
	o := hostF32(out)
	for i, x := range hostF32(a) {
		o[i] = s * x
	}
}

func (b *CPU) ScaleAccumulate(dst, src Buffer, s float32) {
	d := hostF32(dst)
	for i, g := range hostF32(src) {
		d[i] += s * g
	}
}

func (b *CPU) Sum(out, a Buffer) {
	var s float64
	for _, x := range hostF32(a) {
		s += float64(x)
	}
	hostF32(out)[0] = float32(s)
}

func (b *CPU) SumBackward(da, dout Buffer) {
	d, g := hostF32(da), hostF32(dout)[0]
	for i := range d {
		d[i] += g
	}
}

func (b *CPU) Fill(dst Buffer, v float32) {
	d := hostF32(dst)
	for i := range d {
		d[i] = v
	}
}

func (b *CPU) GatedMix(out, a, bb, alpha Buffer, n, c int, temp float32) {
	gatedMixForward(hostF32(out), hostF32(a), hostF32(bb), hostF32(alpha), n, c, temp)
}

func (b *CPU) GatedMixBackward(dalpha, da, db, dout, a, bb, alpha Buffer, n, c int, temp float32) {
	gatedMixBackward(hostF32(dalpha), hostF32(da), hostF32(db), hostF32(dout), hostF32(a), hostF32(bb), hostF32(alpha), n, c, temp)
}

func (b *CPU) RoundF16(x Buffer) {
	v := hostF32(x)
	b.pool.For(len(v), func(lo, hi int) { roundF16(v[lo:hi]) })
}

func (b *CPU) RMSNorm(out, rstd, inp, weight Buffer, n, c int, eps float32) {
	o, rs, x, w := hostF32(out), hostF32(rstd), hostF32(inp), hostF32(weight)
	b.pool.For(n, func(lo, hi int) {
		var r []float32
		if rs != nil {
			r = rs[lo:hi]
		}
		rmsnormForward(o[lo*c:hi*c], r, x[lo*c:hi*c], w, hi-lo, c, eps)
	})
}

func (b *CPU) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd Buffer, n, c int) {
	// dweight is summed over rows: one pass, no split.
	rmsnormBackward(hostF32(dinp), hostF32(dweight), hostF32(dout), hostF32(inp), hostF32(weight), hostF32(rstd), n, c)
}

func (b *CPU) RoPE(out, x Buffer, n, nHead, headDim int, pos []int32, rc *RoPEConfig, inverse bool) {
	o, in := hostF32(out), hostF32(x)
	w := nHead * headDim
	sign := float32(1)
	if inverse {
		sign = -1
	}
	b.pool.For(n, func(lo, hi int) {
		if &o[0] != &in[0] {
			copy(o[lo*w:hi*w], in[lo*w:hi*w])
		}
		ropeRotate(o[lo*w:hi*w], hi-lo, nHead, headDim, pos[lo:hi], rc, sign)
	})
}

func (b *CPU) SwiGLU(out, gate, up Buffer, n int) {
	o, g, u := hostF32(out), hostF32(gate), hostF32(up)
	b.pool.For(n, func(lo, hi int) {
		copy(o[lo:hi], g[lo:hi])
		siluMul(o[lo:hi], u[lo:hi])
	})
}

func (b *CPU) SwiGLUBackward(dgate, dup, dout, gate, up Buffer, n int) {
	dg, du, do, g, u := hostF32(dgate), hostF32(dup), hostF32(dout), hostF32(gate), hostF32(up)
	b.pool.For(n, func(lo, hi int) {
		swigluBackward(sub2(dg, lo, hi), sub2(du, lo, hi), do[lo:hi], g[lo:hi], u[lo:hi], hi-lo)
	})
}

// sub2 is buf[lo:hi], or nil for a gradient that is not wanted.
func sub2(buf []float32, lo, hi int) []float32 {
	if buf == nil {
		return nil
	}
	return buf[lo:hi]
}

func (b *CPU) SiLU(out, x Buffer, n int) { siluForward(hostF32(out), hostF32(x), n) }

func (b *CPU) SiLUBackward(dx, dout, x Buffer, n int) {
	siluBackward(hostF32(dx), hostF32(dout), hostF32(x), n)
}

func (b *CPU) GeGLU(out, gate, up Buffer, n int, f16Table bool) {
	o, g, u := hostF32(out), hostF32(gate), hostF32(up)
	b.pool.For(n, func(lo, hi int) { gegluForward(o[lo:hi], g[lo:hi], u[lo:hi], hi-lo, f16Table) })
}

func (b *CPU) GeGLUBackward(dgate, dup, dout, gate, up Buffer, n int) {
	dg, du, do, g, u := hostF32(dgate), hostF32(dup), hostF32(dout), hostF32(gate), hostF32(up)
	b.pool.For(n, func(lo, hi int) {
		gegluBackward(sub2(dg, lo, hi), sub2(du, lo, hi), do[lo:hi], g[lo:hi], u[lo:hi], hi-lo)
	})
}

func (b *CPU) SoftCap(out, x Buffer, n int, c float32) {
	o, in := hostF32(out), hostF32(x)
	b.pool.For(n, func(lo, hi int) { softCapForward(o[lo:hi], in[lo:hi], hi-lo, c) })
}

func (b *CPU) SoftCapBackward(dx, dout, out Buffer, n int, c float32) {
	softCapBackward(hostF32(dx), hostF32(dout), hostF32(out), n, c)
}

func (b *CPU) Embedding(out, table Buffer, ids []int32, vocab, c int) {
	embeddingForward(hostF32(out), hostF32(table), ids, vocab, c)
}

func (b *CPU) EmbeddingBackward(dtable, dout Buffer, ids []int32, c int) {
	embeddingBackward(hostF32(dtable), hostF32(dout), ids, c)
}

func (b *CPU) EmbeddingMatrix(out Buffer, table *Matrix, ids []int32) {
	o, c := hostF32(out), table.Cols
	for i, id := range ids {
		checkID(id, table.Rows)
		table.DequantizeRow(int(id), o[i*c:(i+1)*c])
	}
}

func (b *CPU) Attention(out, q, k, v, att Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions) {
	attentionForwardBatch(b.pool, hostF32(out), hostF32(q), hostF32(k), hostF32(v), hostF32(att), nSeq, n, nKV, nHead, nHeadKV, headDim, pos0, o)
}

func (b *CPU) AttentionBackward(dq, dk, dv, dout, q, k, v, att Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions) {
	attentionBackwardBatch(b.pool, hostF32(dq), hostF32(dk), hostF32(dv), hostF32(dout), hostF32(q), hostF32(k), hostF32(v), hostF32(att), nSeq, n, nKV, nHead, nHeadKV, headDim, pos0, o)
}

func (b *CPU) NewKVCache(nLayer, nCtx, nHeadKV, headDim int, roundF16 bool) *KVCache {
	return newCPUKVCache(b, nLayer, nCtx, nHeadKV, headDim, roundF16)
}

func (b *CPU) AttentionKV(out, q, k, v Buffer, kv *KVCache, l, n, nHead int, o *AttnOptions) {
	kf, vf := hostF32(k), hostF32(v)
	kv.store(l, kf, vf, n)
	qf := hostF32(q)
	stride := kv.ctxPad
	if need := b.pool.Threads() * GemmMR * stride; len(kv.probs) < need {
		freeScratch(kv.probs)
		kv.probs = scratch(need)
	}
	attentionKV(b.pool, hostF32(out), qf, kv, l, n, nHead, kv.n, kv.probs, stride, o)
}

func (b *CPU) CrossEntropy(loss, dlogits, logits Buffer, targets []int32, vocab int, scale float32, lossScale float64) {
	crossEntropyCPU(hostF32(loss), hostF32(dlogits), hostF32(logits), targets, vocab, scale, lossScale)
}

func (b *CPU) LMHeadCE(loss, nll, dhidden, hidden Buffer, n int, head *Matrix, softCap float32, targets []int32, scale float32, lossScale float64) {
	sum := lmHeadCE(b.pool, hostF32(nll), hostF32(dhidden), hostF32(hidden), n, head, softCap, targets, scale)
	hostF32(loss)[0] = float32(sum * lossScale)
}

func (b *CPU) SumSquares(out, x Buffer) {
	var s float64
	for _, v := range hostF32(x) {
		s += float64(v) * float64(v)
	}
	hostF32(out)[0] = float32(s)
}
