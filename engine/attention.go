package engine

import (
	"math"

	"ladder-engine/gguf"
	"ladder-engine/ops"
)

// attention is causal multi-head attention for inference over the KV
// cache, split over the pool by (token, head) pairs so that decoding one
// token also uses every worker.
//
// With round16 it is computed the way llama.cpp's CPU graph does with its
// default f16 KV cache (no flash attention): q is rounded to f16 for the
// K·q dot (ggml converts src1 to F16's vec_dot_type), the softmax runs in
// f32 with a double sum, and the probabilities are rounded to f16 before the
// V product. Matching these roundings brings our final hidden states from
// ~2e-4 to ~4e-5 of llama.cpp's on F32 models, and fewer 8-bit activation
// roundings downstream fall the other way on quantized ones.
//
// q (n, nHead*hd) at positions pos0.., already rounded when round16;
// k, v (nKV, nHeadKV*hd); out (n, nHead*hd); probs is per-worker scratch of
// at least nKV values each (worker w uses probs[w*stride:]).
func (m *Model) attention(out, q, k, v []float32, n, nKV, pos0 int, probs []float32, stride int, round16 bool) {
	nHead, nHeadKV, hd := m.NHead, m.NHeadKV, m.HeadDim
	qw, kvw := nHead*hd, nHeadKV*hd
	group := nHead / nHeadKV
	scale := float32(1 / math.Sqrt(float64(hd)))
	m.Pool.ForWorker(n*nHead, 1, func(w, lo, hi int) {
		p := probs[w*stride : w*stride+nKV]
		for ih := lo; ih < hi; ih++ {
			i, h := ih/nHead, ih%nHead
			hkv := h / group
			last := min(pos0+i, nKV-1) // causal: keys 0..pos0+i
			qi := q[i*qw+h*hd : i*qw+h*hd+hd]
			maxv := float32(math.Inf(-1))
			for j := 0; j <= last; j++ {
				s := ops.DotF32(qi, k[j*kvw+hkv*hd:j*kvw+hkv*hd+hd]) * scale
				p[j] = s
				maxv = max(maxv, s)
			}
			var sum float64
			for j := 0; j <= last; j++ {
				e := float32(math.Exp(float64(p[j] - maxv)))
				p[j] = e
				sum += float64(e)
			}
			inv := float32(1 / sum)
			o := out[i*qw+h*hd : i*qw+h*hd+hd]
			clear(o)
			for j := 0; j <= last; j++ {
				pj := p[j] * inv
				if round16 {
					pj = gguf.F16ToF32(gguf.F32ToF16(pj))
				}
				ops.AxpyF32(o, pj, v[j*kvw+hkv*hd:j*kvw+hkv*hd+hd])
			}
		}
	})
}
