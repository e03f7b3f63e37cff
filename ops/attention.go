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
	var kvT []float32
	if n >= attnTransposeMin {
		kvT = make([]float32, 2*headDim*nKV)
	}
	for h := 0; h < nHead; h++ {
		attentionHeadForward(out, q, k, v, n, nKV, nHead, nHeadKV, headDim, pos0, attRows{buf: att, n: n, nKV: nKV}, h, kvT, o)
	}
}

// attnTransposeMin is the number of queries from which a head's keys and
// values are transposed first, so every product of a query runs along the
// keys (headDim axpys for the scores, headDim dots for the output) rather
// than over nKV vectors of headDim values, each a call that does little
// when heads are narrow (the side network's are 8 wide). One query
// (generation) reads each key once: no gain.
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

// addTransposedHead adds src (headDim, rows) into columns off..off+headDim
// of dst (rows, stride): transposeHead's inverse, accumulating.
func addTransposedHead(dst, src []float32, rows, stride, off, headDim int) {
	for j := 0; j < rows; j++ {
		row := dst[j*stride+off : j*stride+off+headDim]
		for d := range row {
			row[d] += src[d*rows+j]
		}
	}
}

// dotsT writes out[d] = Σ_j x[j]·mT[d, lo+j] for the headDim rows of mT
// (headDim, stride): a row of probabilities or score gradients times the
// transposed values or keys, four dimensions per pass over x.
func dotsT(out, x, mT []float32, stride, lo int) {
	n, hd := len(x), len(out)
	d := 0
	for ; d+4 <= hd; d += 4 {
		out[d], out[d+1], out[d+2], out[d+3] = dot4F32(mT[d*stride+lo:], mT[(d+1)*stride+lo:],
			mT[(d+2)*stride+lo:], mT[(d+3)*stride+lo:], x)
	}
	for ; d < hd; d++ {
		out[d] = dotF32(x, mT[d*stride+lo:d*stride+lo+n])
	}
}

// attentionHeadForward does one query head of AttentionForward, so the heads
// can be spread over workers (each head writes its own columns of out and
// its own (n, nKV) slab of att). kvT is scratch (2, headDim, nKV) for the
// transposed keys and values, or nil to work with them as they are.
// Probabilities are softmaxRow's (the vector exp of the inference path).
func attentionHeadForward(out, q, k, v []float32, n, nKV, nHead, nHeadKV, headDim, pos0 int, att attRows, h int, kvT []float32, o *AttnOptions) {
	qw, kvw := nHead*headDim, nHeadKV*headDim
	hkv := h / (nHead / nHeadKV)
	scale, sCap, window := o.resolve(headDim)
	var kT, vT []float32
	if kvT != nil {
		kT, vT = kvT[:headDim*nKV], kvT[headDim*nKV:2*headDim*nKV]
		transposeHead(kT, k, nKV, kvw, hkv*headDim, headDim)
		transposeHead(vT, v, nKV, kvw, hkv*headDim, headDim)
	}
	i0 := 0
	if kT != nil && attnBlocks {
		i0 = attentionBlocksForward(out, q, kT, vT, n, nKV, qw, headDim, pos0, att, h, scale, sCap, window)
	}
	for i := i0; i < n; i++ {
		qi := q[i*qw+h*headDim : i*qw+h*headDim+headDim]
		a := att.row(h, i)
		last := min(pos0+i, nKV-1) // last visible key
		first := firstKey(pos0+i, window)
		if kT != nil {
			s := a[first : last+1]
			clear(s)
			for d, x := range qi {
				axpyF32(s, x, kT[d*nKV+first:])
			}
		} else {
			for j := first; j <= last; j++ {
				a[j] = dotF32(qi, k[j*kvw+hkv*headDim:j*kvw+hkv*headDim+headDim])
			}
		}
		if sCap > 0 {
			for j := first; j <= last; j++ {
				a[j] = softCap(a[j], sCap)
			}
		}
		p := a[first : last+1]
		softmaxRow(p, scale, false)
		clear(a[:first])
		clear(a[last+1:])
		oi := out[i*qw+h*headDim : i*qw+h*headDim+headDim]
		if vT != nil {
			dotsT(oi, p, vT, nKV, first)
			continue
		}
		clear(oi)
		for j := first; j <= last; j++ {
			axpyF32(oi, a[j], v[j*kvw+hkv*headDim:j*kvw+hkv*headDim+headDim])
		}
	}
}

// attnBlocks switches the block loops on; tests and benchmarks turn them
// off to compare with the row loops.
var attnBlocks = true

// attentionBlocksForward is attentionHeadForward's loop over queries in
// blocks of attnBlock rows (attention_block.go), keys and values
// transposed; it returns the number of rows done (the rest, fewer than a
// block, take the row loop). Each block computes the scores of the union
// of its rows' visible keys; a row's softmax then covers its own keys and
// zeroes the others, so they add nothing to its output.
func attentionBlocksForward(out, q, kT, vT []float32, n, nKV, qw, headDim, pos0 int, att attRows, h int, scale, sCap float32, window int) int {
	var rows [attnBlock][]float32
	c := make([]float32, attnBlock*headDim)
	bc := make([]float32, attnBcastLen(headDim))
	o := make([]float32, attnBlock*headDim)
	i0 := 0
	for ; i0+attnBlock <= n; i0 += attnBlock {
		for r := range attnBlock {
			rows[r] = att.row(h, i0+r)
			copy(c[r*headDim:(r+1)*headDim], q[(i0+r)*qw+h*headDim:])
		}
		lo := firstKey(pos0+i0, window)
		hi := min(pos0+i0+attnBlock-1, nKV-1) + 1
		scoresT(&rows, c, kT, nKV, headDim, lo, hi, bc)
		for r, a := range rows {
			last := min(pos0+i0+r, nKV-1)
			first := firstKey(pos0+i0+r, window)
			if sCap > 0 {
				for j := first; j <= last; j++ {
					a[j] = softCap(a[j], sCap)
				}
			}
			softmaxRowBlock(a[first:last+1], scale)
			clear(a[:first])
			clear(a[last+1:])
		}
		dotsT4(o, &rows, vT, nKV, headDim, lo, hi)
		for r := range attnBlock {
			copy(out[(i0+r)*qw+h*headDim:(i0+r)*qw+h*headDim+headDim], o[r*headDim:])
		}
	}
	return i0
}

// attnBackScratch is one worker's scratch for attentionKVHeadBackward:
// four (headDim, nKV) slabs (keys and values transposed, dk and dv
// accumulated transposed) and three rows of nKV.
type attnBackScratch struct {
	kT, vT, dkT, dvT []float32
	dp, ds, kq       []float32 // attnBlock rows of nKV each
	c, bc, o         []float32 // a block's coefficients, their broadcasts, its dq
}

func newAttnBackScratch(buf []float32, headDim, nKV int) attnBackScratch {
	var sc attnBackScratch
	take := func(n int) []float32 {
		b := buf[:n:n]
		buf = buf[n:]
		return b
	}
	slab, rows := headDim*nKV, attnBlock*nKV
	sc.kT, sc.vT, sc.dkT, sc.dvT = take(slab), take(slab), take(slab), take(slab)
	sc.dp, sc.ds, sc.kq = take(rows), take(rows), take(rows)
	sc.c, sc.bc, sc.o = take(attnBlock*headDim), take(attnBcastLen(headDim)), take(attnBlock*headDim)
	return sc
}

// attnBackScratchLen is the floats newAttnBackScratch takes.
func attnBackScratchLen(headDim, nKV int) int {
	return 4*headDim*nKV + 3*attnBlock*nKV + 2*attnBlock*headDim + attnBcastLen(headDim)
}

// attentionKVHeadBackward accumulates the gradients of one kv head and all
// the query heads that share it, so workers given different kv heads never
// write the same dk/dv columns. With P = att and dP = dout·vᵀ:
//
//	dv += Pᵀ·dout;  dS = P ⊙ (dP − rowsum(P ⊙ dP));  dq += scale·dS·k;  dk += scale·dSᵀ·q
//
// With a soft-cap c, dS is further multiplied by 1 − tanh²(kq/c), kq
// recomputed from q and k. Masked keys have P = 0, so they get nothing.
// Every product runs along the keys of a query row (keys and values
// transposed; dk and dv gathered transposed and added at the end), as in
// attentionHeadForward.
//
// Shapes as in AttentionForward; dq, dk, dv may be nil when not wanted.
func attentionKVHeadBackward(dq, dk, dv, dout, q, k, v, att []float32, n, nKV, nHead, nHeadKV, headDim, pos0 int, hkv int, sc attnBackScratch, o *AttnOptions) {
	qw, kvw := nHead*headDim, nHeadKV*headDim
	group := nHead / nHeadKV
	scale, sCap, window := o.resolve(headDim)
	transposeHead(sc.kT, k, nKV, kvw, hkv*headDim, headDim)
	transposeHead(sc.vT, v, nKV, kvw, hkv*headDim, headDim)
	if dk != nil {
		clear(sc.dkT)
	}
	if dv != nil {
		clear(sc.dvT)
	}
	dqi := make([]float32, headDim)
	for h := hkv * group; h < (hkv+1)*group; h++ {
		i0 := 0
		if attnBlocks {
			i0 = attentionBlocksBackward(dq, dk, dv, dout, q, att, n, nKV, qw, headDim, pos0, h, sc, scale, sCap, window)
		}
		for i := i0; i < n; i++ {
			a := att[(h*n+i)*nKV : (h*n+i)*nKV+nKV]
			last := min(pos0+i, nKV-1)
			first := firstKey(pos0+i, window)
			p := a[first : last+1]
			qoff := i*qw + h*headDim
			do := dout[qoff : qoff+headDim]
			qi := q[qoff : qoff+headDim]
			// dP = dout_i · v_j for every visible j; dv_j += P_ij · dout_i.
			dp := sc.dp[first : last+1]
			clear(dp)
			for d, g := range do {
				axpyF32(dp, g, sc.vT[d*nKV+first:])
				if dv != nil {
					axpyF32(sc.dvT[d*nKV+first:d*nKV+last+1], g, p)
				}
			}
			rowsum := dotF32(dp, p)
			ds := sc.ds[first : last+1]
			for j, pj := range p {
				ds[j] = pj * (dp[j] - rowsum) * scale
			}
			if sCap > 0 {
				kq := sc.kq[first : last+1]
				clear(kq)
				for d, x := range qi {
					axpyF32(kq, x, sc.kT[d*nKV+first:])
				}
				for j, s := range kq {
					t := float32(math.Tanh(float64(s / sCap)))
					ds[j] *= 1 - t*t
				}
			}
			if dq != nil {
				dotsT(dqi, ds, sc.kT, nKV, first)
				for d, g := range dqi {
					dq[qoff+d] += g
				}
			}
			if dk != nil {
				for d, x := range qi {
					axpyF32(sc.dkT[d*nKV+first:d*nKV+last+1], x, ds)
				}
			}
		}
	}
	if dk != nil {
		addTransposedHead(dk, sc.dkT, nKV, kvw, hkv*headDim, headDim)
	}
	if dv != nil {
		addTransposedHead(dv, sc.dvT, nKV, kvw, hkv*headDim, headDim)
	}
}

// attentionBlocksBackward is attentionKVHeadBackward's loop over the
// queries of head h in blocks of attnBlock rows; it returns the number of
// rows done. As in attentionBlocksForward each block works on the union
// [lo, hi) of its rows' keys: P is zero outside a row's own keys, so dS is
// too (set so explicitly), and those keys add nothing to dq, dk or dv.
func attentionBlocksBackward(dq, dk, dv, dout, q, att []float32, n, nKV, qw, headDim, pos0, h int, sc attnBackScratch, scale, sCap float32, window int) int {
	var p, dp, ds, kq [attnBlock][]float32
	for r := range attnBlock {
		dp[r], ds[r], kq[r] = sc.dp[r*nKV:(r+1)*nKV], sc.ds[r*nKV:(r+1)*nKV], sc.kq[r*nKV:(r+1)*nKV]
	}
	i0 := 0
	for ; i0+attnBlock <= n; i0 += attnBlock {
		lo := firstKey(pos0+i0, window)
		hi := min(pos0+i0+attnBlock-1, nKV-1) + 1
		for r := range attnBlock {
			p[r] = att[(h*n+i0+r)*nKV : (h*n+i0+r)*nKV+nKV]
			copy(sc.c[r*headDim:(r+1)*headDim], dout[(i0+r)*qw+h*headDim:])
		}
		// dP = dout·vᵀ; dv += Pᵀ·dout.
		scoresT(&dp, sc.c, sc.vT, nKV, headDim, lo, hi, sc.bc)
		if dv != nil {
			rankT(sc.dvT, nKV, headDim, sc.c, &p, lo, hi, sc.bc)
		}
		loadQ := func() { // sc.c: the block's queries, from here on
			for r := range attnBlock {
				copy(sc.c[r*headDim:(r+1)*headDim], q[(i0+r)*qw+h*headDim:])
			}
		}
		if sCap > 0 {
			loadQ()
			scoresT(&kq, sc.c, sc.kT, nKV, headDim, lo, hi, sc.bc)
		}
		for r := range attnBlock {
			last := min(pos0+i0+r, nKV-1)
			first := firstKey(pos0+i0+r, window)
			pr, dpr, dsr := p[r][first:last+1], dp[r][first:last+1], ds[r]
			rowsum := dotF32(dpr, pr)
			clear(dsr[lo:first])
			clear(dsr[last+1 : hi])
			softmaxGradRow(dsr[first:last+1], pr, dpr, rowsum, scale)
			if sCap > 0 {
				for j := first; j <= last; j++ {
					t := float32(math.Tanh(float64(kq[r][j] / sCap)))
					dsr[j] *= 1 - t*t
				}
			}
		}
		if dq != nil {
			dotsT4(sc.o, &ds, sc.kT, nKV, headDim, lo, hi)
			for r := range attnBlock {
				row := dq[(i0+r)*qw+h*headDim : (i0+r)*qw+h*headDim+headDim]
				for d, g := range sc.o[r*headDim : (r+1)*headDim] {
					row[d] += g
				}
			}
		}
		if dk != nil {
			if sCap <= 0 {
				loadQ()
			}
			rankT(sc.dkT, nKV, headDim, sc.c, &ds, lo, hi, sc.bc)
		}
	}
	return i0
}

// Attention is causal multi-head attention over nSeq independent
// sequences (a batch): q (nSeq*n, nHead*headDim), k and v
// (nSeq*nKV, nHeadKV*headDim), out like q. Within each sequence, queries
// sit at positions pos0..pos0+n-1 and keys at 0..nKV-1 (training: pos0 = 0,
// nKV = n; generation with a cache: nSeq = 1, pos0 = cached length).
// The softmax probabilities (nSeq, nHead, n, nKV) are kept for backward
// (a tape that does not record keeps none).
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
	var att Buffer // nil: no backward follows, the backend keeps what it needs
	if rec {
		att = tp.save(be, nSeq*nHead*n*nKV)
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
	var kvT []float32       // per worker (2, headDim, nKV)
	if n >= attnTransposeMin {
		kvT = scratch(p.Threads() * 2 * headDim * nKV)
		defer freeScratch(kvT)
	}
	var ring []float32 // per worker, when att is nil: attnBlock rows of nKV
	if att == nil {
		ring = scratch(p.Threads() * attnBlock * nKV)
		defer freeScratch(ring)
	}
	p.ForWorker(nSeq*nHead, 1, func(worker, lo, hi int) {
		var kvTw []float32
		if kvT != nil {
			kvTw = kvT[worker*2*headDim*nKV : (worker+1)*2*headDim*nKV]
		}
		for u := lo; u < hi; u++ {
			s, h := u/nHead, u%nHead
			rows := attRows{n: n, nKV: nKV}
			if att != nil {
				rows.buf = att[s*slab:]
			} else {
				rows.buf, rows.ring = ring[worker*attnBlock*nKV:(worker+1)*attnBlock*nKV], true
			}
			attentionHeadForward(out[s*n*qw:], q[s*n*qw:], k[s*nKV*kvw:], v[s*nKV*kvw:],
				n, nKV, nHead, nHeadKV, headDim, pos0, rows, h, kvTw, o)
		}
	})
}

// attRows is where a head's forward puts each query row's probabilities:
// in att (nHead, n, nKV) when the backward reads them, else (ring) in
// attnBlock rows of scratch, row i in row i mod attnBlock (a block of
// queries starts at a multiple of attnBlock), so a forward that no
// backward follows never holds the (n, nKV) matrices of every head.
type attRows struct {
	buf    []float32
	n, nKV int
	ring   bool
}

func (a attRows) row(h, i int) []float32 {
	if a.ring {
		r := i % attnBlock
		return a.buf[r*a.nKV : (r+1)*a.nKV]
	}
	return a.buf[(h*a.n+i)*a.nKV : (h*a.n+i+1)*a.nKV]
}

// attentionBackwardBatch is the CPU kernel of Attention's backward:
// (sequence, kv head) pairs over the pool, so no two workers write the same
// dk/dv columns.
func attentionBackwardBatch(p *Pool, dq, dk, dv, dout, q, k, v, att []float32, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *AttnOptions) {
	qw, kvw := nHead*headDim, nHeadKV*headDim
	slab := nHead * n * nKV
	per := attnBackScratchLen(headDim, nKV)
	buf := scratch(p.Threads() * per)
	defer freeScratch(buf)
	p.ForWorker(nSeq*nHeadKV, 1, func(worker, lo, hi int) {
		sc := newAttnBackScratch(buf[worker*per:(worker+1)*per], headDim, nKV)
		for u := lo; u < hi; u++ {
			s, hkv := u/nHeadKV, u%nHeadKV
			attentionKVHeadBackward(sub(dq, s*n*qw), sub(dk, s*nKV*kvw), sub(dv, s*nKV*kvw),
				dout[s*n*qw:], q[s*n*qw:], k[s*nKV*kvw:], v[s*nKV*kvw:], att[s*slab:],
				n, nKV, nHead, nHeadKV, headDim, pos0, hkv, sc, o)
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
