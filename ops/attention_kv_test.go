package ops

import (
	"fmt"
	"testing"
)

// The inference kernel over the KV cache (exact f32 cache) computes the
// same attention as the training kernel, with every option: plain, a
// soft-cap with a query scale, and a sliding window shorter than the
// sequence; the tokens go in two batches (a prompt, then more), so the
// second batch's queries see cached keys.
func TestAttentionKVMatchesAttention(t *testing.T) {
	const n, nHead, nHeadKV, hd = 45, 4, 2, 32
	q := gcRand(1, n*nHead*hd, 1)
	k := gcRand(2, n*nHeadKV*hd, 1)
	v := gcRand(3, n*nHeadKV*hd, 1)
	for _, o := range []*AttnOptions{nil, {Scale: 0.3, SoftCap: 2}, {Window: 7}, {SoftCap: 1.5, Window: 33}} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			be := NewCPU(NewPool(2))
			want := (*Tape)(nil).Attention(NewTensor(q, n, nHead*hd), NewTensor(k, n, nHeadKV*hd), NewTensor(v, n, nHeadKV*hd), 1, nHead, nHeadKV, 0, o).F32()
			kv := be.NewKVCache(1, 64, nHeadKV, hd, false)
			defer kv.Free()
			tp := NewNoGradTape(be)
			got := make([]float32, 0, len(want))
			for _, r := range [][2]int{{0, 38}, {38, n}} {
				rows := func(x []float32, w int) *Tensor {
					return NewTensor(append([]float32(nil), x[r[0]*w:r[1]*w]...), r[1]-r[0], w)
				}
				out := tp.AttentionKV(rows(q, nHead*hd), rows(k, nHeadKV*hd), rows(v, nHeadKV*hd), kv, 0, nHead, o)
				got = append(got, out.F32()...)
				kv.Advance(r[1] - r[0])
				tp.Reset()
			}
			for i := range want {
				if !closeRel(got[i], float64(want[i]), 1e-4) {
					t.Fatalf("out[%d] = %g, want %g", i, got[i], want[i])
				}
			}
		})
	}
}

// KVCache.store puts every key and value where kPanel and vPanel read
// them, whether a block of 32 positions goes in whole (transposed at once)
// or position by position: batches that start on and off block bounds,
// head dims with and without a partial 32-dim panel.
func TestKVCacheStoreLayout(t *testing.T) {
	for _, hd := range []int{32, 40, 64} {
		const nHeadKV, nCtx = 3, 160
		be := NewCPU(NewPool(1))
		kv := be.NewKVCache(1, nCtx, nHeadKV, hd, false)
		kvDim := nHeadKV * hd
		var ks, vs []float32
		for i, n := range []int{70, 60, 1, 29} { // whole blocks at 0, 32 and (second batch) 96
			k := gcRand(uint64(10+i), n*kvDim, 1)
			v := gcRand(uint64(20+i), n*kvDim, 1)
			ks, vs = append(ks, k...), append(vs, v...)
			kv.store(0, append([]float32(nil), k...), append([]float32(nil), v...), n)
			kv.Advance(n)
		}
		for pos := 0; pos < kv.Len(); pos++ {
			for h := 0; h < nHeadKV; h++ {
				kp := kv.kPanel(0, h, pos/32)
				for d := 0; d < hd; d++ {
					if got, want := kp[d*32+pos%32], ks[pos*kvDim+h*hd+d]; got != want {
						t.Fatalf("hd %d: key pos %d head %d dim %d = %g, want %g", hd, pos, h, d, got, want)
					}
					vp := kv.vPanel(0, h, d/32, kv.Len())
					if got, want := vp[pos*32+d%32], vs[pos*kvDim+h*hd+d]; got != want {
						t.Fatalf("hd %d: value pos %d head %d dim %d = %g, want %g", hd, pos, h, d, got, want)
					}
				}
			}
		}
		kv.Free()
	}
}
