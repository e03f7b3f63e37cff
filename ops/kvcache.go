package ops

import (
	"fmt"
)

// KVCache holds the keys and values of every layer for the tokens of one
// sequence so far, laid out for the CPU attention kernel (attention_kv.go):
//
//	K: (nHeadKV, nCtx/32, headDim, 32)  32 positions side by side per dim,
//	   a ready panel for scores = q · Kᵀ
//	V: (nHeadKV, headDim/32, nCtx, 32)  32 dims side by side per position,
//	   a ready panel for out = probs · V
//
// (nCtx and headDim rounded up to 32, the padding zero.) Storage is float32,
// but by default values are rounded to float16 precision on the way in, as
// llama.cpp's default f16 cache stores them; set RoundF16 = false for an
// exact f32 cache.
//
// The cache belongs to the backend that made it (Backend.NewKVCache); a
// device backend keeps its storage in Impl.
type KVCache struct {
	NCtx     int
	RoundF16 bool
	NLayer   int

	be            Backend
	nHeadKV, hd   int
	ctxPad, hdPad int // NCtx and hd rounded up to 32
	n             int // tokens stored
	k, v          [][]float32
	buf           []float32 // the one allocation behind k and v (KVMem), CPU
	bytes         int64
	probs         []float32 // CPU attention scratch (Scratch), grown as needed
	Impl          any       // a device backend's storage
}

// newCPUKVCache allocates a CPU cache (counted in the KVMem class).
func newCPUKVCache(be Backend, nLayer, nCtx, nHeadKV, headDim int, roundF16 bool) *KVCache {
	kv := &KVCache{NCtx: nCtx, RoundF16: roundF16, NLayer: nLayer, be: be, nHeadKV: nHeadKV, hd: headDim,
		ctxPad: roundUp(nCtx, 32), hdPad: roundUp(headDim, 32)}
	kSize := kv.nHeadKV * kv.ctxPad * kv.hd
	vSize := kv.nHeadKV * kv.hdPad * kv.ctxPad
	kv.buf = make([]float32, nLayer*(kSize+vSize))
	kv.bytes = int64(len(kv.buf)) * 4
	be.Meter().Add(KVMem, kv.bytes)
	for l := 0; l < nLayer; l++ {
		base := l * (kSize + vSize)
		kv.k = append(kv.k, kv.buf[base:base+kSize])
		kv.v = append(kv.v, kv.buf[base+kSize:base+kSize+vSize])
	}
	return kv
}

// NewDeviceKVCache makes the KVCache of a device backend: its storage
// (bytes, counted here in be's KVMem class) lives in impl, which the
// backend's AttentionKV reads; Free calls impl's Free method when it has one.
func NewDeviceKVCache(be Backend, nLayer, nCtx, nHeadKV, headDim int, roundF16 bool, bytes int64, impl any) *KVCache {
	be.Meter().Add(KVMem, bytes)
	return &KVCache{NCtx: nCtx, RoundF16: roundF16, NLayer: nLayer, be: be, nHeadKV: nHeadKV, hd: headDim,
		ctxPad: roundUp(nCtx, 32), hdPad: roundUp(headDim, 32), bytes: bytes, Impl: impl}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// Backend is the backend whose memory holds the cache.
func (kv *KVCache) Backend() Backend { return kv.be }

// Advance counts n more tokens as stored (after every layer has appended
// them with AttentionKV).
func (kv *KVCache) Advance(n int) { kv.n += n }

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
	if kv.bytes != 0 {
		kv.be.Meter().Add(KVMem, -kv.bytes)
	}
	freeScratch(kv.probs)
	if f, ok := kv.Impl.(interface{ Free() }); ok {
		f.Free()
	}
	kv.buf, kv.k, kv.v, kv.n, kv.bytes, kv.Impl, kv.probs = nil, nil, nil, 0, 0, nil, nil
}

// Bytes is the size of the cache's storage.
func (kv *KVCache) Bytes() int64 { return kv.bytes }

// checkRoom reports a clear error when n more tokens do not fit.
func (kv *KVCache) CheckRoom(n int) error {
	if kv.bytes == 0 {
		return fmt.Errorf("ops: KV cache used after Free")
	}
	if kv.n+n > kv.NCtx {
		return fmt.Errorf("ops: context full: %d tokens in the KV cache + %d new > context size %d (raise -c)", kv.n, n, kv.NCtx)
	}
	return nil
}

// store writes the keys and values (n, nHeadKV*hd) of n new tokens of
// layer l at positions Len()..; k and v are rounded in place first when
// RoundF16.
func (kv *KVCache) store(l int, k, v []float32, n int) {
	hd, kvDim := kv.hd, kv.nHeadKV*kv.hd
	if kv.RoundF16 {
		roundF16(k[:n*kvDim])
		roundF16(v[:n*kvDim])
	}
	K, V := kv.k[l], kv.v[l]
	for t := 0; t < n; t++ {
		pos := kv.n + t
		for h := 0; h < kv.nHeadKV; h++ {
			vr := v[t*kvDim+h*hd : t*kvDim+h*hd+hd]
			for c := 0; c*32 < hd; c++ { // V: a position's 32 dims of a panel are contiguous
				off := ((h*kv.hdPad/32+c)*kv.ctxPad + pos) * 32
				copy(V[off:off+32], vr[32*c:min(32*c+32, hd)])
			}
		}
	}
	fast := canPackRows32F32(hd)
	for t := 0; t < n; {
		pos := kv.n + t
		blk, lane := pos/32, pos%32
		if fast && lane == 0 && t+32 <= n { // K: 32 whole positions, transposed at once
			for h := 0; h < kv.nHeadKV; h++ {
				off := (h*kv.ctxPad/32 + blk) * hd * 32
				packRows32F32(K[off:off+hd*32], k[t*kvDim+h*hd:], kvDim, hd)
			}
			t += 32
			continue
		}
		for h := 0; h < kv.nHeadKV; h++ {
			kr := k[t*kvDim+h*hd : t*kvDim+h*hd+hd]
			kb := K[(h*kv.ctxPad/32+blk)*hd*32:]
			for d, x := range kr {
				kb[d*32+lane] = x
			}
		}
		t++
	}
}

// kPanel is keys of positions [32b, 32b+32) of kv head h, layer l: (hd, 32).
func (kv *KVCache) kPanel(l, h, b int) []float32 {
	off := (h*kv.ctxPad/32 + b) * kv.hd * 32
	return kv.k[l][off : off+kv.hd*32]
}

// vPanel is dims [32c, 32c+32) of kv head h, layer l, positions [0, nKV): (nKV, 32).
func (kv *KVCache) vPanel(l, h, c, nKV int) []float32 {
	off := (h*kv.hdPad/32 + c) * kv.ctxPad * 32
	return kv.v[l][off : off+nKV*32]
}
