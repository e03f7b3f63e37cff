package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refAttention is ops' attention (softmax with the maximum subtracted, in
// double here) and its backward, over s.NSeq sequences.
func refAttention(q, k, v, dout []float32, s AttentionShape) (out, lse, dq, dk, dv []float32) {
	hd, qw, kvw := s.HeadDim, s.NHead*s.HeadDim, s.NHeadKV*s.HeadDim
	scale := 1 / math.Sqrt(float64(hd))
	out, dq = make([]float32, len(q)), make([]float32, len(q))
	dk, dv = make([]float32, len(k)), make([]float32, len(v))
	lse = make([]float32, s.NSeq*s.NHead*s.N)
	p := make([]float64, s.NKV)
	for sq := 0; sq < s.NSeq; sq++ {
		for h := 0; h < s.NHead; h++ {
			hkv := h / (s.NHead / s.NHeadKV)
			for i := 0; i < s.N; i++ {
				qo := (sq*s.N+i)*qw + h*hd
				last := min(s.Pos0+i, s.NKV-1)
				maxv := math.Inf(-1)
				for j := 0; j <= last; j++ {
					ko := (sq*s.NKV+j)*kvw + hkv*hd
					var dot float64
					for d := 0; d < hd; d++ {
						dot += float64(q[qo+d]) * float64(k[ko+d])
					}
					p[j] = dot * scale
					maxv = math.Max(maxv, p[j])
				}
				var sum float64
				for j := 0; j <= last; j++ {
					p[j] = math.Exp(p[j] - maxv)
					sum += p[j]
				}
				lse[(sq*s.NHead+h)*s.N+i] = float32(maxv + math.Log(sum))
				o := make([]float64, hd)
				for j := 0; j <= last; j++ {
					p[j] /= sum
					ko := (sq*s.NKV+j)*kvw + hkv*hd
					for d := 0; d < hd; d++ {
						o[d] += p[j] * float64(v[ko+d])
					}
				}
				var D float64
				for d := 0; d < hd; d++ {
					out[qo+d] = float32(o[d])
					D += float64(dout[qo+d]) * o[d]
				}
				for j := 0; j <= last; j++ {
					ko := (sq*s.NKV+j)*kvw + hkv*hd
					var dp float64
					for d := 0; d < hd; d++ {
						dp += float64(dout[qo+d]) * float64(v[ko+d])
					}
					ds := p[j] * (dp - D) * scale
					for d := 0; d < hd; d++ {
						dq[qo+d] += float32(ds * float64(k[ko+d]))
						dk[ko+d] += float32(ds * float64(q[qo+d]))
						dv[ko+d] += float32(p[j] * float64(dout[qo+d]))
					}
				}
			}
		}
	}
	return
}

// TestAttention runs training-shaped attention (2 sequences, 33 queries:
// two key tiles, a ragged one) and a decoding step from a cache (pos0 > 0),
// GQA with 2 query heads per kv head, head size 20 (not a multiple of 32).
// Tolerances: the forward differs from the double reference by float32
// rounding of sums of ~40 terms (1e-5 relative, 1e-6 absolute); the
// gradients add a second pass of such sums (3e-5 relative, 1e-5 absolute).
func TestAttention(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(21, 22))
	for _, s := range []AttentionShape{
		{NSeq: 2, N: 33, NKV: 33, NHead: 2, NHeadKV: 1, HeadDim: 20},
		{NSeq: 1, N: 3, NKV: 40, NHead: 2, NHeadKV: 1, HeadDim: 36, Pos0: 37},
	} {
		nq, nkv := s.NSeq*s.N*s.NHead*s.HeadDim, s.NSeq*s.NKV*s.NHeadKV*s.HeadDim
		q, k, v, dout := randF32(r, nq, 1), randF32(r, nkv, 1), randF32(r, nkv, 1), randF32(r, nq, 1)
		out, lse, dq, dk, dv := refAttention(q, k, v, dout, s)
		qb, kb, vb := upload(t, d, q), upload(t, d, k), upload(t, d, v)
		ob, lb := alloc(t, d, 4*nq), alloc(t, d, 4*s.NSeq*s.NHead*s.N)
		if err := d.AttentionForward(ob, lb, qb, kb, vb, s); err != nil {
			t.Fatal(err)
		}
		within(t, "out", download(t, d, ob, nq), out, 1e-5, 1e-6)
		within(t, "lse", download(t, d, lb, len(lse)), lse, 1e-5, 1e-6)

		// Gradients accumulate into ones.
		ones := func(n int) ([]float32, Buffer) {
			v := make([]float32, n)
			for i := range v {
				v[i] = 1
			}
			return v, upload(t, d, v)
		}
		_, dqb := ones(nq)
		_, dkb := ones(nkv)
		_, dvb := ones(nkv)
		for _, g := range [][]float32{dq, dk, dv} {
			for i := range g {
				g[i]++
			}
		}
		scratch := alloc(t, d, 4*s.NSeq*s.NHead*s.N)
		if err := d.AttentionBackward(dqb, dkb, dvb, upload(t, d, dout), ob, qb, kb, vb, lb, scratch, s); err != nil {
			t.Fatal(err)
		}
		within(t, "dq", download(t, d, dqb, nq), dq, 3e-5, 1e-5)
		within(t, "dk", download(t, d, dkb, nkv), dk, 3e-5, 1e-5)
		within(t, "dv", download(t, d, dvb, nkv), dv, 3e-5, 1e-5)
	}
	bad := AttentionShape{NSeq: 1, N: 4, NKV: 3, NHead: 2, NHeadKV: 1, HeadDim: 8}
	if err := d.AttentionForward(Buffer{}, Buffer{}, Buffer{}, Buffer{}, Buffer{}, bad); err == nil {
		t.Fatal("more queries than keys: no error")
	}
}
