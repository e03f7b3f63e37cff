package engine

import (
	"fmt"

	"ladder-engine/gguf"
	"ladder-engine/ops"
)

// KVCache holds the keys and values of every layer for the tokens of one
// sequence so far. Storage is float32 (what ops.AttentionForward reads), but
// values are rounded to float16 precision on the way in, as llama.cpp's
// default f16 cache stores them, so our attention sees the same numbers
// (about 2e-4 relative difference otherwise). Set RoundF16 = false for a
// pure f32 cache.
type KVCache struct {
	NCtx     int
	RoundF16 bool
	kvDim    int
	n        int         // tokens stored
	k, v     [][]float32 // per layer: (NCtx, kvDim)
	buf      []float32   // the one allocation behind k and v (ops.KVCache)
}

// NewKVCache allocates a cache for nCtx tokens (nCtx <= 0: the training
// context length). It is counted in the ops.KVCache memory class.
func (m *Model) NewKVCache(nCtx int) *KVCache {
	if nCtx <= 0 {
		nCtx = m.NCtxTrain
	}
	kvDim := m.KVDim()
	kv := &KVCache{NCtx: nCtx, RoundF16: true, kvDim: kvDim}
	kv.buf = ops.Alloc(ops.KVCache, 2*m.NLayer*nCtx*kvDim)
	per := nCtx * kvDim
	for l := 0; l < m.NLayer; l++ {
		kv.k = append(kv.k, kv.buf[(2*l)*per:(2*l+1)*per])
		kv.v = append(kv.v, kv.buf[(2*l+1)*per:(2*l+2)*per])
	}
	return kv
}

// Len is the number of tokens in the cache; the next token goes at this position.
func (kv *KVCache) Len() int { return kv.n }

// Reset empties the cache (a new sequence).
func (kv *KVCache) Reset() { kv.n = 0 }

// Truncate keeps the first n tokens (n <= Len).
func (kv *KVCache) Truncate(n int) {
	if n < kv.n && n >= 0 {
		kv.n = n
	}
}

// Free releases the memory (counted in ops.KVCache). The cache is unusable afterwards.
func (kv *KVCache) Free() {
	ops.Free(ops.KVCache, kv.buf)
	kv.buf, kv.k, kv.v, kv.n = nil, nil, nil, 0
}

// Bytes is the size of the cache's storage.
func (kv *KVCache) Bytes() int64 { return int64(len(kv.buf)) * 4 }

// checkRoom reports a clear error when n more tokens do not fit.
func (kv *KVCache) checkRoom(n int) error {
	if kv.buf == nil {
		return fmt.Errorf("engine: KV cache used after Free")
	}
	if kv.n+n > kv.NCtx {
		return fmt.Errorf("engine: context full: %d tokens in the KV cache + %d new > context size %d (raise -c)", kv.n, n, kv.NCtx)
	}
	return nil
}

// store writes the keys and values of n new tokens of layer l at positions Len()...
func (kv *KVCache) store(l int, k, v []float32, n int) {
	off, cnt := kv.n*kv.kvDim, n*kv.kvDim
	dk, dv := kv.k[l][off:off+cnt], kv.v[l][off:off+cnt]
	copy(dk, k[:cnt])
	copy(dv, v[:cnt])
	if kv.RoundF16 {
		roundF16(dk)
		roundF16(dv)
	}
}

// layer returns the keys and values of positions 0..nKV-1 of layer l.
func (kv *KVCache) layer(l, nKV int) (k, v []float32) {
	return kv.k[l][:nKV*kv.kvDim], kv.v[l][:nKV*kv.kvDim]
}

// roundF16 rounds values to the nearest float16 (ggml's f32→f16 conversion).
func roundF16(x []float32) {
	for i, v := range x {
		x[i] = gguf.F16ToF32(gguf.F32ToF16(v))
	}
}
