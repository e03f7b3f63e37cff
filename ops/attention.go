package ops

import (
	"fmt"
	"math"
)

// AttnOptions are attention's per-architecture options: the arguments and
// masks of llama.cpp's build_attn_mha. The zero value (or nil) is plain
// causal attention with scale 1/sqrt(headDim).
type AttnOptions struct {
	Scale   float32 // multiplies the scores inside the softmax; 0: 1/sqrt(headDim)
	SoftCap float32 // > 0: scores kq become SoftCap·tanh(kq/SoftCap) before Scale (gemma2's attn_logit_softcapping)
	Window  int     // > 0: a query at position p sees only keys j with p − j < Window (sliding-window attention)
}

// resolve returns the scale, the soft-cap and the window of o for heads of headDim.
func (o *AttnOptions) resolve(headDim int) (scale, softCap float32, window int) {
	scale = float32(1 / math.Sqrt(float64(headDim)))
	if o == nil {
		return scale, 0, 0
	}
	if o.Scale != 0 {
		scale = o.Scale
	}
	return scale, o.SoftCap, o.Window
}

// firstKey is the first key a query at position p sees: 0, or the start
// of its sliding window (llama.cpp masks key j when p − j >= window).
func firstKey(p, window int) int {
	if window <= 0 {
		return 0
	}
	return max(0, p-window+1)
}

// softCap is c·tanh(x/c), ggml_scale(1/c) → ggml_tanh → ggml_scale(c).
func softCap(x, c float32) float32 {
	return c * float32(math.Tanh(float64(x*(1/c))))
}

func AttentionForward(out, q, k, v []float32, n, nKV, nHead, nHeadKV, headDim, pos0 int, att []float32, o *AttnOptions) {
	var kT []float32
	if n >= attnTransposeMin {
		kT = make([]float32, headDim*nKV)
	}
	for h := 0; h < nHead; h++ {
		attentionHeadForward(out, q, k, v, n, nKV, nHead, nHeadKV, headDim, pos0, att, h, kT, o)
	}
}

// attnTransposeMin is the number of queries from which a head's keys are
// transposed first, so the scores of a query come from headDim axpys over
// contiguous keys rather than nKV short dot products, each ending in a
// horizontal sum. One query (generation) reads each key once: no gain.
const attnTransposeMin = 8

// transposeHead writes dst (headDim, rows) from columns off..off+headDim of
// src (rows, stride): one head's keys or values, one dimension per row.
func transposeHead(dst, src []float32, rows, stride, off, headDim int) {
	for j := 0; j < rows; j++ {
		row := src[j*stride+off : j*stride+off+headDim]
		for d, x := range row {
			dst[d*rows+j] = x
		}
	}
}

// attentionHeadForward does one query head of AttentionForward, so the heads
// can be spread over workers (each head writes its own columns of out and
// its own (n, nKV) slab of att). kT is scratch (headDim, nKV) for the
// transposed keys, or nil to take dot products with the keys as they are.
func attentionHeadForward(out, q, k, v []float32, n, nKV, nHead, nHeadKV, headDim, pos0 int, att []float32, h int, kT []float32, o *AttnOptions) {
	qw, kvw := nHead*headDim, nHeadKV*headDim
	hkv := h / (nHead / nHeadKV)
	scale, sCap, window := o.resolve(headDim)
	if kT != nil {
		transposeHead(kT, k, nKV, kvw, hkv*headDim, headDim)
	}
	for i := 0; i < n; i++ {
		qi := q[i*qw+h*headDim : i*qw+h*headDim+headDim]
		a := att[(h*n+i)*nKV : (h*n+i)*nKV+nKV]
		last := pos0 + i // last visible key
		if last >= nKV {
			last = nKV - 1
		}
		first := firstKey(pos0+i, window)
		if kT != nil {
			s := a[:last+1]
			clear(s)
			for d, x := range qi {
				axpyF32(s, x, kT[d*nKV:])
			}
		} else {
			for j := 0; j <= last; j++ {
				a[j] = dotF32(qi, k[j*kvw+hkv*headDim:j*kvw+hkv*headDim+headDim])
			}
		}
		maxv := float32(math.Inf(-1))
		for j := first; j <= last; j++ {
			s := a[j]
			if sCap > 0 {
				s = softCap(s, sCap)
			}
			s *= scale
			a[j] = s
			if s > maxv {
				maxv = s
			}
		}
		var sum float64
		for j := first; j <= last; j++ {
			e := expf(a[j] - maxv)
			a[j] = e
			sum += float64(e)
		}
		inv := float32(1 / sum)
		for j := first; j <= last; j++ {
			a[j] *= inv
		}
		clear(a[:first])
		for j := last + 1; j < nKV; j++ {
			a[j] = 0
		}
		oi := out[i*qw+h*headDim : i*qw+h*headDim+headDim]
		for d := range oi {
			oi[d] = 0
		}
		for j := first; j <= last; j++ {
			axpyF32(oi, a[j], v[j*kvw+hkv*headDim:j*kvw+hkv*headDim+headDim])
		}
	}
}

// attentionKVHeadBackward accumulates the gradients of one kv head and all
// the query heads that share it, so workers given different kv heads never
// write the same dk/dv columns. With P = att and dP = dout·vᵀ:
//
//	dv += Pᵀ·dout;  dS = P ⊙ (dP − rowsum(P ⊙ dP));  dq += scale·dS·k;  dk += scale·dSᵀ·q
//
// With a soft-cap c, dS is further multiplied by 1 − tanh²(kq/c), kq
// recomputed from q and k. Masked keys have P = 0, so they get nothing.
//
// Shapes as in AttentionForward; dq, dk, dv may be nil when not wanted.
// datt is scratch (nKV), vT scratch (headDim, nKV) for the transposed values.
func attentionKVHeadBackward(dq, dk, dv, dout, q, k, v, att []float32, n, nKV, nHead, nHeadKV, headDim, pos0 int, hkv int, datt, vT []float32, o *AttnOptions) {
	qw, kvw := nHead*headDim, nHeadKV*headDim
	group := nHead / nHeadKV
	scale, sCap, _ := o.resolve(headDim)
	transposeHead(vT, v, nKV, kvw, hkv*headDim, headDim)
	for h := hkv * group; h < (hkv+1)*group; h++ {
		for i := 0; i < n; i++ {
			a := att[(h*n+i)*nKV : (h*n+i)*nKV+nKV]
			last := pos0 + i
			if last >= nKV {
				last = nKV - 1
			}
			do := dout[i*qw+h*headDim : i*qw+h*headDim+headDim]
			// datt = dout_i · v_j for every visible j, from the transposed values.
			dp := datt[:last+1]
			clear(dp)
			for d, g := range do {
				axpyF32(dp, g, vT[d*nKV:])
			}
			var rowsum float32
			for j, s := range dp {
				rowsum += s * a[j]
				if dv != nil && a[j] != 0 {
					off := j*kvw + hkv*headDim
					axpyF32(dv[off:off+headDim], a[j], do)
				}
			}
			qoff := i*qw + h*headDim
			qi := q[qoff : qoff+headDim]
			for j := 0; j <= last; j++ {
				ds := a[j] * (datt[j] - rowsum) * scale
				if ds == 0 {
					continue
				}
				off := j*kvw + hkv*headDim
				if sCap > 0 {
					t := float32(math.Tanh(float64(dotF32(qi, k[off:off+headDim]) / sCap)))
					ds *= 1 - t*t
				}
				if dq != nil {
					axpyF32(dq[qoff:qoff+headDim], ds, k[off:off+headDim])
				}
				if dk != nil {
					axpyF32(dk[off:off+headDim], ds, qi)
				}
			}
		}
	}
}

// Attention is causal multi-head attention over nSeq independent
// sequences (a batch): q (nSeq*n, nHead*headDim), k and v
// (nSeq*nKV, nHeadKV*headDim), out like q. Within each sequence, queries
// sit at positions pos0..pos0+n-1 and keys at 0..nKV-1 (training: pos0 = 0,
// nKV = n; generation with a cache: nSeq = 1, pos0 = cached length).
// The softmax probabilities (nSeq, nHead, n, nKV) are kept for backward.
//
// o (may be nil) sets the scale, the soft-cap and the sliding window.
func (tp *Tape) Attention(q, k, v *Tensor, nSeq, nHead, nHeadKV, pos0 int, o *AttnOptions) *Tensor {
	be := tp.backendFor("Attention", q, k, v)
	mustMatch("Attention", k, v)
	if nSeq <= 0 || nHead <= 0 || nHeadKV <= 0 || nHead%nHeadKV != 0 || q.Cols()%nHead != 0 ||
		q.Rows()%nSeq != 0 || k.Rows()%nSeq != 0 || k.Cols() != nHeadKV*(q.Cols()/nHead) {
		panic(fmt.Sprintf("ops.Attention: q %v, k %v, %d sequences, %d heads, %d kv heads", q, k, nSeq, nHead, nHeadKV))
	}
	headDim := q.Cols() / nHead
	n, nKV := q.Rows()/nSeq, k.Rows()/nSeq
	if pos0+n > nKV {
		panic(fmt.Sprintf("ops.Attention: queries at %d..%d but only %d keys", pos0, pos0+n-1, nKV))
	}
	out := tp.newLike(be, q)
	rec := tp.needsGrad(q, k, v)
	var att Buffer
	if rec {
		att = tp.save(be, nSeq*nHead*n*nKV)
	} else {
		att = be.Alloc(Scratch, F32, nSeq*nHead*n*nKV)
		defer be.Free(Scratch, att)
	}
	be.Attention(out.buf, q.buf, k.buf, v.buf, att, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0, o)
	if rec {
		tp.record(out, func() {
			be.AttentionBackward(tp.grad(q), tp.grad(k), tp.grad(v), out.grad, q.buf, k.buf, v.buf, att,
				nSeq, n, nKV, nHead, nHeadKV, headDim, pos0, o)
		})
	}
	return out
}

// attentionForwardBatch is the CPU kernel of Attention: (sequence, head)
// pairs spread over the pool; att (nSeq, nHead, n, nKV).
func attentionForwardBatch(p *Pool, out, q, k, v, att []float32, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions) {
	qw, kvw := nHead*headDim, nHeadKV*headDim
	slab := nHead * n * nKV // probabilities of one sequence
	var kT []float32        // per worker (headDim, nKV)
	if n >= attnTransposeMin {
		kT = scratch(p.Threads() * headDim * nKV)
		defer freeScratch(kT)
	}
	p.ForWorker(nSeq*nHead, 1, func(worker, lo, hi int) {
		var kTw []float32
		if kT != nil {
			kTw = kT[worker*headDim*nKV : (worker+1)*headDim*nKV]
		}
		for u := lo; u < hi; u++ {
			s, h := u/nHead, u%nHead
			attentionHeadForward(out[s*n*qw:], q[s*n*qw:], k[s*nKV*kvw:], v[s*nKV*kvw:],
				n, nKV, nHead, nHeadKV, headDim, pos0, att[s*slab:], h, kTw, o)
		}
	})
}

// attentionBackwardBatch is the CPU kernel of Attention's backward:
// (sequence, kv head) pairs over the pool, so no two workers write the same
// dk/dv columns.
func attentionBackwardBatch(p *Pool, dq, dk, dv, dout, q, k, v, att []float32, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions) {
	qw, kvw := nHead*headDim, nHeadKV*headDim
	slab := nHead * n * nKV
	datt := scratch(p.Threads() * nKV)
	defer freeScratch(datt)
	vT := scratch(p.Threads() * headDim * nKV)
	defer freeScratch(vT)
	p.ForWorker(nSeq*nHeadKV, 1, func(worker, lo, hi int) {
		for u := lo; u < hi; u++ {
			s, hkv := u/nHeadKV, u%nHeadKV
			attentionKVHeadBackward(sub(dq, s*n*qw), sub(dk, s*nKV*kvw), sub(dv, s*nKV*kvw),
				dout[s*n*qw:], q[s*n*qw:], k[s*nKV*kvw:], v[s*nKV*kvw:], att[s*slab:],
				n, nKV, nHead, nHeadKV, headDim, pos0, hkv,
				datt[worker*nKV:worker*nKV+nKV], vT[worker*headDim*nKV:(worker+1)*headDim*nKV], o)
		}
	})
}

// sub is buf[off:], or nil for a gradient that is not wanted.
func sub(buf []float32, off int) []float32 {
	if buf == nil {
		return nil
	}
	return buf[off:]
}

// AttentionKV appends k, v (n, nHeadKV·headDim) of layer l to kv at
// positions kv.Len().. and returns the attention of q (n, nHead·headDim)
// over every cached position (causal): inference with a cache. No
// gradient flows (a recording tape with inputs that need one panics).
// o (may be nil) sets the scale, the soft-cap and the sliding window.
func (tp *Tape) AttentionKV(q, k, v *Tensor, kv *KVCache, l, nHead int, o *AttnOptions) *Tensor {
	be := tp.backendFor("AttentionKV", q, k, v)
	if tp.needsGrad(q, k, v) {
		panic("ops.AttentionKV: inference only; train with Attention")
	}
	if kv.be.Device() != be.Device() {
		panic(fmt.Sprintf("ops.AttentionKV: cache on %s, op on %s", kv.be.Device(), be.Device()))
	}
	n := q.Rows()
	if l < 0 || l >= kv.NLayer || k.Rows() != n || k.Cols() != kv.nHeadKV*kv.hd || q.Cols() != nHead*kv.hd || nHead%kv.nHeadKV != 0 {
		panic(fmt.Sprintf("ops.AttentionKV: q %v, k %v, layer %d, %d heads; cache of %d layers, %d kv heads of %d", q, k, l, nHead, kv.NLayer, kv.nHeadKV, kv.hd))
	}
	if kv.n+n > kv.NCtx {
		panic(fmt.Sprintf("ops.AttentionKV: %d tokens cached + %d > %d (CheckRoom first)", kv.n, n, kv.NCtx))
	}
	out := tp.newLike(be, q)
	be.AttentionKV(out.buf, q.buf, k.buf, v.buf, kv, l, n, nHead, o)
	return out
}
