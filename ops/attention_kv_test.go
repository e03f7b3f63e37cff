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
