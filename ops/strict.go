package ops

import "fmt"

// Strict is a test backend: the CPU kernels behind buffers that nothing
// else can read. Its buffers are not CPU buffers, so any host access that
// bypasses the Backend interface (Tensor.F32, a kernel handed a strict
// buffer directly) panics; only its own methods unwrap them for the CPU
// kernels. Running the forward, perplexity and training on it and getting
// the CPU backend's numbers bit for bit shows that no code reaches into
// device memory behind the backend's back, before any GPU exists.
type Strict struct {
	cpu   *CPU
	meter *Meter
}

// NewStrict makes a strict backend whose kernels run on pool, counting
// memory in a meter of its own.
func NewStrict(pool *Pool) *Strict {
	m := &Meter{}
	c := NewCPU(pool)
	c.meter = m
	return &Strict{cpu: c, meter: m}
}

// Pool is the worker pool of the wrapped CPU kernels.
func (s *Strict) Pool() *Pool { return s.cpu.pool }

func (s *Strict) Name() string   { return "strict" }
func (s *Strict) Device() string { return "strict" }
func (s *Strict) Meter() *Meter  { return s.meter }

type strictBuf struct {
	be *Strict
	in *cpuBuf
}

func (b *strictBuf) Backend() Backend { return b.be }
func (b *strictBuf) DType() DType     { return b.in.dt }
func (b *strictBuf) Len() int         { return b.in.Len() }
func (b *strictBuf) Slice(off, n int) Buffer {
	return &strictBuf{be: b.be, in: b.in.Slice(off, n).(*cpuBuf)}
}
func (b *strictBuf) SameMemory(o Buffer) bool {
	d, ok := o.(*strictBuf)
	return ok && b.in.SameMemory(d.in)
}

// u unwraps a strict buffer for the CPU kernels.
func (s *Strict) u(b Buffer) Buffer {
	if b == nil {
		return nil
	}
	sb, ok := b.(*strictBuf)
	if !ok || sb.be != s {
		panic(fmt.Sprintf("ops: strict backend handed a %s buffer", b.Backend().Name()))
	}
	return sb.in
}

func (s *Strict) Alloc(c MemClass, dt DType, n int) Buffer {
	in := s.cpu.Alloc(c, dt, n).(*cpuBuf)
	in.be = s.cpu
	return &strictBuf{be: s, in: in}
}

func (s *Strict) Free(c MemClass, b Buffer)          { s.cpu.Free(c, s.u(b)) }
func (s *Strict) Upload(dst Buffer, src []float32)   { s.cpu.Upload(s.u(dst), src) }
func (s *Strict) Download(dst []float32, src Buffer) { s.cpu.Download(dst, s.u(src)) }
func (s *Strict) Zero(b Buffer)                      { s.cpu.Zero(s.u(b)) }
func (s *Strict) Copy(dst, src Buffer)               { s.cpu.Copy(s.u(dst), s.u(src)) }
func (s *Strict) PlaceMatrix(w *Matrix) error        { return nil }

func (s *Strict) MatMul(out, x Buffer, n int, w *Matrix) { s.cpu.MatMul(s.u(out), s.u(x), n, w) }
func (s *Strict) MatMulExact(out, x Buffer, n int, w *Matrix) {
	s.cpu.MatMulExact(s.u(out), s.u(x), n, w)
}
func (s *Strict) MatMulBackwardInput(dx, dout Buffer, n int, w *Matrix) {
	s.cpu.MatMulBackwardInput(s.u(dx), s.u(dout), n, w)
}
func (s *Strict) LinearBackwardWeight(dw, dout, x Buffer, n, c, oc int) {
	s.cpu.LinearBackwardWeight(s.u(dw), s.u(dout), s.u(x), n, c, oc)
}
func (s *Strict) LinearBackwardInput(dx, dout, w Buffer, n, c, oc int) {
	s.cpu.LinearBackwardInput(s.u(dx), s.u(dout), s.u(w), n, c, oc)
}
func (s *Strict) LinearF32(out, x, w Buffer, n, c, oc int) {
	s.cpu.LinearF32(s.u(out), s.u(x), s.u(w), n, c, oc)
}
func (s *Strict) Add(out, a, b Buffer, n, c int, bcast bool) {
	s.cpu.Add(s.u(out), s.u(a), s.u(b), n, c, bcast)
}
func (s *Strict) Accumulate(dst, src Buffer) { s.cpu.Accumulate(s.u(dst), s.u(src)) }
func (s *Strict) AccumulateRows(dst, src Buffer, n, c int) {
	s.cpu.AccumulateRows(s.u(dst), s.u(src), n, c)
}
func (s *Strict) Mul(out, a, b Buffer, n, c int) { s.cpu.Mul(s.u(out), s.u(a), s.u(b), n, c) }
func (s *Strict) MulBackward(da, db, dout, a, b Buffer, n, c int) {
	s.cpu.MulBackward(s.u(da), s.u(db), s.u(dout), s.u(a), s.u(b), n, c)
}
func (s *Strict) Scale(out, a Buffer, k float32) { s.cpu.Scale(s.u(out), s.u(a), k) }
func (s *Strict) ScaleAccumulate(dst, src Buffer, k float32) {
	s.cpu.ScaleAccumulate(s.u(dst), s.u(src), k)
}
func (s *Strict) Sum(out, a Buffer)           { s.cpu.Sum(s.u(out), s.u(a)) }
func (s *Strict) SumBackward(da, dout Buffer) { s.cpu.SumBackward(s.u(da), s.u(dout)) }
func (s *Strict) Fill(dst Buffer, v float32)  { s.cpu.Fill(s.u(dst), v) }
func (s *Strict) GatedMix(out, a, b, alpha Buffer, n, c int, temp float32) {
	s.cpu.GatedMix(s.u(out), s.u(a), s.u(b), s.u(alpha), n, c, temp)
}
func (s *Strict) GatedMixBackward(dalpha, da, db, dout, a, b, alpha Buffer, n, c int, temp float32) {
	s.cpu.GatedMixBackward(s.u(dalpha), s.u(da), s.u(db), s.u(dout), s.u(a), s.u(b), s.u(alpha), n, c, temp)
}
func (s *Strict) RoundF16(x Buffer) { s.cpu.RoundF16(s.u(x)) }
func (s *Strict) RMSNorm(out, rstd, inp, weight Buffer, n, c int, eps float32) {
	s.cpu.RMSNorm(s.u(out), s.u(rstd), s.u(inp), s.u(weight), n, c, eps)
}
func (s *Strict) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd Buffer, n, c int) {
	s.cpu.RMSNormBackward(s.u(dinp), s.u(dweight), s.u(dout), s.u(inp), s.u(weight), s.u(rstd), n, c)
}
func (s *Strict) RoPE(out, x Buffer, n, nHead, headDim int, pos []int32, rc *RoPEConfig, inverse bool) {
	s.cpu.RoPE(s.u(out), s.u(x), n, nHead, headDim, pos, rc, inverse)
}
func (s *Strict) SwiGLU(out, gate, up Buffer, n int) { s.cpu.SwiGLU(s.u(out), s.u(gate), s.u(up), n) }
func (s *Strict) SwiGLUBackward(dgate, dup, dout, gate, up Buffer, n int) {
	s.cpu.SwiGLUBackward(s.u(dgate), s.u(dup), s.u(dout), s.u(gate), s.u(up), n)
}
func (s *Strict) SiLU(out, x Buffer, n int) { s.cpu.SiLU(s.u(out), s.u(x), n) }
func (s *Strict) SiLUBackward(dx, dout, x Buffer, n int) {
	s.cpu.SiLUBackward(s.u(dx), s.u(dout), s.u(x), n)
}
func (s *Strict) GeGLU(out, gate, up Buffer, n int, f16Table bool) {
	s.cpu.GeGLU(s.u(out), s.u(gate), s.u(up), n, f16Table)
}
func (s *Strict) GeGLUBackward(dgate, dup, dout, gate, up Buffer, n int) {
	s.cpu.GeGLUBackward(s.u(dgate), s.u(dup), s.u(dout), s.u(gate), s.u(up), n)
}
func (s *Strict) SoftCap(out, x Buffer, n int, c float32) { s.cpu.SoftCap(s.u(out), s.u(x), n, c) }
func (s *Strict) SoftCapBackward(dx, dout, out Buffer, n int, c float32) {
	s.cpu.SoftCapBackward(s.u(dx), s.u(dout), s.u(out), n, c)
}
func (s *Strict) Embedding(out, table Buffer, ids []int32, vocab, c int) {
	s.cpu.Embedding(s.u(out), s.u(table), ids, vocab, c)
}
func (s *Strict) EmbeddingBackward(dtable, dout Buffer, ids []int32, c int) {
	s.cpu.EmbeddingBackward(s.u(dtable), s.u(dout), ids, c)
}
func (s *Strict) EmbeddingMatrix(out Buffer, table *Matrix, ids []int32) {
	s.cpu.EmbeddingMatrix(s.u(out), table, ids)
}
func (s *Strict) Attention(out, q, k, v, att Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions) {
	s.cpu.Attention(s.u(out), s.u(q), s.u(k), s.u(v), s.u(att), nSeq, n, nKV, nHead, nHeadKV, headDim, pos0, o)
}
func (s *Strict) AttentionBackward(dq, dk, dv, dout, q, k, v, att Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions) {
	s.cpu.AttentionBackward(s.u(dq), s.u(dk), s.u(dv), s.u(dout), s.u(q), s.u(k), s.u(v), s.u(att), nSeq, n, nKV, nHead, nHeadKV, headDim, pos0, o)
}
func (s *Strict) NewKVCache(nLayer, nCtx, nHeadKV, headDim int, roundF16 bool) *KVCache {
	return newCPUKVCache(s, nLayer, nCtx, nHeadKV, headDim, roundF16)
}
func (s *Strict) AttentionKV(out, q, k, v Buffer, kv *KVCache, l, n, nHead int, o *AttnOptions) {
	if kv.be != Backend(s) {
		panic(fmt.Sprintf("ops: strict backend handed a KV cache of %s", kv.be.Name()))
	}
	s.cpu.AttentionKV(s.u(out), s.u(q), s.u(k), s.u(v), kv, l, n, nHead, o)
}
func (s *Strict) CrossEntropy(loss, dlogits, logits Buffer, targets []int32, vocab int, scale float32, lossScale float64) {
	s.cpu.CrossEntropy(s.u(loss), s.u(dlogits), s.u(logits), targets, vocab, scale, lossScale)
}
func (s *Strict) LMHeadCE(loss, nll, dhidden, hidden Buffer, n int, head *Matrix, softCap float32, targets []int32, scale float32, lossScale float64) {
	s.cpu.LMHeadCE(s.u(loss), s.u(nll), s.u(dhidden), s.u(hidden), n, head, softCap, targets, scale, lossScale)
}
func (s *Strict) SumSquares(out, x Buffer) { s.cpu.SumSquares(s.u(out), s.u(x)) }
