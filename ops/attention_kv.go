package ops

// attentionKV is the CPU kernel of Backend.AttentionKV: causal multi-head
// attention for inference over the KV cache, out (n, nHead*hd) for queries
// q (n, nHead*hd) at positions pos0..pos0+n-1, keys and values of positions
// 0..pos0+n-1 from kv (layer l).
//
// Work is split over the pool by (block of GemmMR queries, head). For each, the
// scores q·Kᵀ come from the matmul's register-blocked kernel against the
// cache's K panels (32 positions at a time), then a softmax per query row
// (causal: keys up to its own position), then probs·V from the same kernel
// against the V panels (32 dims at a time). GQA: head h reads kv head
// h/(nHead/nHeadKV).
//
// With kv.RoundF16 this computes what llama.cpp's CPU graph does with its
// default f16 cache (no flash attention): q rounded to f16 (done by the
// caller) for the K·q dot, softmax in f32 with a double sum, probabilities
// rounded to f16 before the V product. Matching these roundings brings our
// final hidden states from ~2e-4 to ~4e-5 of llama.cpp's on F32 models, and
// fewer 8-bit activation roundings downstream fall the other way on
// quantized ones.
//
// probs is scratch of Threads × GemmMR × stride values (stride >= nKV
// rounded up to 32).
//
// o (may be nil): the scores are soft-capped before the scale, and keys
// outside a query's sliding window get probability 0 (llama.cpp's masks).
func attentionKV(p *Pool, out, q []float32, kv *KVCache, l, n, nHead, pos0 int, probs []float32, stride int, o *AttnOptions) {
	hd := kv.hd
	qw := nHead * hd
	group := nHead / kv.nHeadKV
	scale, sCap, window := o.resolve(hd)
	nQB := (n + GemmMR - 1) / GemmMR
	round16 := kv.RoundF16
	// Causal: a block's work grows with its position, so the blocks go
	// last first (the cheapest end the loop, when a worker that takes one
	// keeps the other waiting), one block's heads a chunk, or fewer when
	// there are few blocks (decoding: one block, its heads split).
	chunk := max(1, min(nHead, nQB*nHead/(4*p.Threads())))
	p.ForChunks(nQB*nHead, chunk, func(w, lo, hi int) {
		pr := probs[w*GemmMR*stride : (w+1)*GemmMR*stride]
		var ctile [GemmMR * GemmNR]float32
		for it := lo; it < hi; it++ {
			ib, h := nQB-1-it/nHead, it%nHead
			hkv := h / group
			i0 := ib * GemmMR
			mr := min(GemmMR, n-i0)
			lastMax := pos0 + i0 + mr - 1 // the block's last row sees keys 0..lastMax
			nb := lastMax/32 + 1
			qrows := q[i0*qw+h*hd:]
			for b := 0; b < nb; b++ {
				GemmKernel(kv.kPanel(l, hkv, b), qrows, qw, hd, mr, &ctile)
				for i := 0; i < mr; i++ {
					copy(pr[i*stride+32*b:i*stride+32*b+32], ctile[i*32:i*32+32])
				}
			}
			for i := 0; i < mr; i++ {
				last := pos0 + i0 + i
				first := firstKey(last, window)
				row := pr[i*stride : i*stride+nb*32]
				if sCap > 0 {
					for j := first; j <= last; j++ {
						row[j] = softCap(row[j], sCap)
					}
				}
				softmaxRow(row[first:last+1], scale, round16)
				clear(row[:first])
				clear(row[last+1:])
			}
			depth := lastMax + 1
			for c := 0; c*32 < hd; c++ {
				GemmKernel(kv.vPanel(l, hkv, c, depth), pr, stride, depth, mr, &ctile)
				width := min(32, hd-32*c)
				for i := 0; i < mr; i++ {
					o := out[(i0+i)*qw+h*hd+32*c:]
					copy(o[:width], ctile[i*32:i*32+width])
				}
			}
		}
	})
}
