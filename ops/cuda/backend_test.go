package cuda_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
	"ladder-engine/ops"
)

// env runs one case on a backend: host values in, buffers of the backend,
// host values out.
type env struct{ be ops.Backend }

func (e env) up(v []float32) ops.Buffer { return e.upAs(ops.F32, v) }

func (e env) upAs(dt ops.DType, v []float32) ops.Buffer {
	b := e.be.Alloc(-1, dt, len(v))
	e.be.Upload(b, v)
	return b
}

func (e env) zeros(n int) ops.Buffer { return e.be.Alloc(-1, ops.F32, n) }

func (e env) down(b ops.Buffer) []float32 {
	v := make([]float32, b.Len())
	e.be.Download(v, b)
	return v
}

func rnd(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (2*r.Float32() - 1) * scale
	}
	return v
}

// Every Backend method on small ragged shapes against the CPU backend.
// Tolerances are relative to each output's largest value: 0 for memory
// (copies, casts, fills: the same bits); 1e-6 for what the device computes
// with the CPU's operations in another order (sums, products) or with the
// device's expf (SwiGLU, SiLU, the gate's sigmoid: an ulp or so); 1e-5 for
// the norms, RoPE's sin/cos and the online softmax.
func TestBackendMatchesCPU(t *testing.T) {
	dev := newBackend(t)
	cpu := ops.NewCPU(nil)
	r := rand.New(rand.NewPCG(1, 2))
	// A frozen weight of 37×64 as F32 and Q8_0 (its values as the CPU decodes them).
	wf := rnd(r, 37*64, 1)
	raw := make([]byte, 37*68)
	if err := gguf.Quantize(gguf.TypeQ8_0, wf, raw); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		tol  float64
		run  func(e env) [][]float32
	}{
		{"memory", 0, func(e env) [][]float32 {
			x := rnd(rand.New(rand.NewPCG(3, 4)), 67, 3)
			h, bf := e.upAs(ops.F16, x), e.upAs(ops.BF16, x)
			f := e.zeros(67)
			e.be.Copy(f, h)
			g := e.zeros(67)
			e.be.Copy(g, bf)
			h2 := e.be.Alloc(-1, ops.F16, 67)
			e.be.Copy(h2, e.up(x))
			odd := h2.Slice(1, 33)
			e.be.Zero(odd)
			fill := e.zeros(5)
			e.be.Fill(fill, -2.5)
			return [][]float32{e.down(h), e.down(bf), e.down(f), e.down(g), e.down(h2), e.down(fill)}
		}},
		{"matmul", 1e-6, func(e env) [][]float32 {
			r := rand.New(rand.NewPCG(5, 6))
			wm := ops.NewMatrixF32("w", 37, 64, wf)
			x := e.up(rnd(r, 5*64, 1))
			out, out1 := e.zeros(5*37), e.zeros(37)
			e.be.MatMul(out, x, 5, wm)
			e.be.MatMul(out1, x.Slice(64, 64), 1, wm)
			q, err := ops.NewMatrix("q", gguf.TypeQ8_0, 37, 64, raw)
			if err != nil {
				t.Fatal(err)
			}
			oq := e.zeros(5 * 37)
			e.be.MatMulExact(oq, x, 5, q)
			dx := e.up(rnd(r, 5*64, 1))
			e.be.MatMulBackwardInput(dx, e.up(rnd(r, 5*37, 1)), 5, q)
			emb := e.zeros(3 * 64)
			e.be.EmbeddingMatrix(emb, q, []int32{36, 0, 5})
			return [][]float32{e.down(out), e.down(out1), e.down(oq), e.down(dx), e.down(emb)}
		}},
		{"linear", 1e-6, func(e env) [][]float32 {
			r := rand.New(rand.NewPCG(7, 8))
			n, c, oc := 6, 33, 19
			xv := rnd(r, n*c, 1)
			w := e.up(rnd(r, oc*c, 1))
			out, outh := e.zeros(n*oc), e.zeros(n*oc)
			e.be.LinearF32(out, e.up(xv), w, n, c, oc)
			e.be.LinearF32(outh, e.upAs(ops.F16, xv), w, n, c, oc)
			dout := e.up(rnd(r, n*oc, 1))
			dx := e.up(rnd(r, n*c, 1))
			e.be.LinearBackwardInput(dx, dout, w, n, c, oc)
			dw := e.up(rnd(r, oc*c, 1))
			e.be.LinearBackwardWeight(dw, dout, e.upAs(ops.BF16, xv), n, c, oc)
			return [][]float32{e.down(out), e.down(outh), e.down(dx), e.down(dw)}
		}},
		{"elementwise", 1e-6, func(e env) [][]float32 {
			r := rand.New(rand.NewPCG(9, 10))
			n, c := 7, 13
			a, b, row := e.up(rnd(r, n*c, 2)), e.up(rnd(r, n*c, 2)), e.up(rnd(r, c, 2))
			sum, bias, prod, prodRow := e.zeros(n*c), e.zeros(n*c), e.zeros(n*c), e.zeros(n*c)
			e.be.Add(sum, a, b, n, c, false)
			e.be.Add(bias, a, row, n, c, true)
			e.be.Mul(prod, a, b, n, c)
			e.be.Mul(prodRow, a, row, n, c)
			da, drow := e.up(rnd(r, n*c, 1)), e.up(rnd(r, c, 1))
			e.be.MulBackward(da, drow, b, a, row, n, c)
			acc := e.up(rnd(r, n*c, 1))
			e.be.Accumulate(acc, a)
			e.be.ScaleAccumulate(acc, b, -0.75)
			sc := e.zeros(n * c)
			e.be.Scale(sc, a, 1.5)
			mix := e.zeros(n * c)
			alpha := e.up(rnd(r, c, 3))
			e.be.GatedMix(mix, a, b, alpha, n, c, 0.1)
			dmixA, dmixB := e.zeros(n*c), e.zeros(n*c)
			dalpha := e.zeros(c)
			e.be.GatedMixBackward(dalpha, dmixA, dmixB, sum, a, b, alpha, n, c, 0.1)
			sw, dg, du := e.zeros(n*c), e.zeros(n*c), e.zeros(n*c)
			e.be.SwiGLU(sw, a, b, n*c)
			e.be.SwiGLUBackward(dg, du, sum, a, b, n*c)
			si, dsi := e.zeros(n*c), e.zeros(n*c)
			e.be.SiLU(si, a, n*c)
			e.be.SiLUBackward(dsi, sum, a, n*c)
			rounded := e.up(rnd(r, n*c, 3))
			e.be.RoundF16(rounded)
			return [][]float32{e.down(sum), e.down(bias), e.down(prod), e.down(prodRow), e.down(da), e.down(drow), e.down(acc), e.down(sc),
				e.down(mix), e.down(dmixA), e.down(dmixB), e.down(sw), e.down(dg), e.down(du), e.down(si), e.down(dsi), e.down(rounded)}
		}},
		{"reductions", 1e-6, func(e env) [][]float32 {
			r := rand.New(rand.NewPCG(11, 12))
			n, c := 9, 21
			a := e.up(rnd(r, n*c, 2))
			s, ss := e.zeros(1), e.zeros(1)
			e.be.Sum(s, a)
			e.be.SumSquares(ss, a)
			da := e.up(rnd(r, n*c, 1))
			e.be.SumBackward(da, s)
			rows := e.up(rnd(r, c, 1))
			e.be.AccumulateRows(rows, a, n, c)
			dalpha := e.zeros(1)
			e.be.GatedMixBackward(dalpha, nil, nil, a, a, da, e.up([]float32{0.3}), n, c, 0.1)
			return [][]float32{e.down(s), e.down(ss), e.down(da), e.down(rows), e.down(dalpha)}
		}},
		{"layers", 1e-5, func(e env) [][]float32 {
			r := rand.New(rand.NewPCG(13, 14))
			n, c := 5, 48
			x, w := e.up(rnd(r, n*c, 2)), e.up(rnd(r, c, 1))
			out, rstd := e.zeros(n*c), e.zeros(n)
			e.be.RMSNorm(out, rstd, x, w, n, c, 1e-5)
			dx, dw := e.up(rnd(r, n*c, 1)), e.up(rnd(r, c, 1))
			e.be.RMSNormBackward(dx, dw, out, x, w, rstd, n, c)
			pos := []int32{0, 3, 7, 100, 2}
			rot, rotN := e.zeros(n*c), e.up(rnd(r, n*c, 1))
			e.be.RoPE(rot, x, n, 3, 16, pos, &ops.RoPEConfig{Base: 10000}, false)
			e.be.RoPE(rotN, rotN, n, 4, 12, pos, &ops.RoPEConfig{Base: 500, Neox: true, FreqFactors: []float32{1, 2, 4, 8, 1.5, 3}}, true)
			// YaRN on part of each head: the host fallback.
			e.be.RoPE(rotN, rotN, n, 4, 12, pos, &ops.RoPEConfig{NRot: 8, Base: 500, Neox: true, FreqScale: 0.25, ExtFactor: 1, BetaFast: 32, BetaSlow: 1, NCtxOrig: 64}, false)
			table := e.up(rnd(r, 10*c, 1))
			emb := e.zeros(4 * c)
			ids := []int32{9, 0, 9, 3}
			e.be.Embedding(emb, table, ids, 10, c)
			e.be.EmbeddingBackward(table, x.Slice(0, 4*c), ids, c)
			return [][]float32{e.down(out), e.down(rstd), e.down(dx), e.down(dw), e.down(rot), e.down(rotN), e.down(emb), e.down(table)}
		}},
		{"attention", 1e-5, func(e env) [][]float32 {
			var res [][]float32
			// nKV > headDim: the output is saved in att; nKV < headDim: recomputed;
			// each shape also without att.
			// The last shape soft-caps and windows the scores (gemma2): the host fallback.
			gemma := &ops.AttnOptions{SoftCap: 5, Window: 4}
			for _, s := range []struct {
				nSeq, n, nKV, nHead, nHeadKV, hd, pos0 int
				o                                      *ops.AttnOptions
			}{{2, 11, 11, 4, 2, 8, 0, nil}, {1, 3, 5, 2, 1, 16, 2, nil}, {2, 11, 11, 4, 2, 8, 0, gemma}} {
				r := rand.New(rand.NewPCG(15, uint64(s.hd)))
				q := e.up(rnd(r, s.nSeq*s.n*s.nHead*s.hd, 1))
				k := e.up(rnd(r, s.nSeq*s.nKV*s.nHeadKV*s.hd, 1))
				v := e.up(rnd(r, s.nSeq*s.nKV*s.nHeadKV*s.hd, 1))
				out := e.zeros(s.nSeq * s.n * s.nHead * s.hd)
				att := e.zeros(s.nSeq * s.nHead * s.n * s.nKV)
				e.be.Attention(out, q, k, v, att, s.nSeq, s.n, s.nKV, s.nHead, s.nHeadKV, s.hd, s.pos0, s.o)
				dout := e.up(rnd(r, s.nSeq*s.n*s.nHead*s.hd, 1))
				dq, dk, dv := e.zeros(q.Len()), e.zeros(k.Len()), e.zeros(v.Len())
				e.be.AttentionBackward(dq, dk, dv, dout, q, k, v, att, s.nSeq, s.n, s.nKV, s.nHead, s.nHeadKV, s.hd, s.pos0, s.o)
				// Without att (no backward follows): the backends keep what they need.
				outNG := e.zeros(out.Len())
				e.be.Attention(outNG, q, k, v, nil, s.nSeq, s.n, s.nKV, s.nHead, s.nHeadKV, s.hd, s.pos0, s.o)
				res = append(res, e.down(out), e.down(dq), e.down(dk), e.down(dv), e.down(outNG))
			}
			// Decoding over a KV cache: 3 tokens, then 1, exact f32 cache.
			r := rand.New(rand.NewPCG(17, 18))
			kv := e.be.NewKVCache(2, 8, 2, 8, false)
			defer kv.Free()
			for _, n := range []int{3, 1} {
				for l := 0; l < 2; l++ {
					q, k, v := e.up(rnd(r, n*4*8, 1)), e.up(rnd(r, n*2*8, 1)), e.up(rnd(r, n*2*8, 1))
					out := e.zeros(n * 4 * 8)
					e.be.AttentionKV(out, q, k, v, kv, l, n, 4, nil)
					res = append(res, e.down(out))
				}
				kv.Advance(n)
			}
			return res
		}},
		{"losses", 1e-6, func(e env) [][]float32 {
			r := rand.New(rand.NewPCG(19, 20))
			m, vocab := 4, 37
			logits := e.up(rnd(r, m*vocab, 4))
			targets := []int32{3, -1, 36, 0}
			loss, dl := e.zeros(1), e.up(rnd(r, m*vocab, 1))
			e.be.CrossEntropy(loss, dl, logits, targets, vocab, 0.5, 0.25)
			loss2 := e.zeros(1)
			e.be.CrossEntropy(loss2, nil, logits, targets, vocab, 1, 1)
			head := ops.NewMatrixF32("head", 37, 64, wf)
			hidden := e.up(rnd(r, m*64, 1))
			hl, nll, dh := e.zeros(1), e.zeros(m), e.up(rnd(r, m*64, 1))
			e.be.LMHeadCE(hl, nll, dh, hidden, m, head, 0, targets, 0.5, 0.5)
			return [][]float32{e.down(loss), e.down(dl), e.down(logits), e.down(loss2), e.down(hl), e.down(nll), e.down(dh)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, got := tc.run(env{cpu}), tc.run(env{dev})
			for i := range want {
				scale := 0.0
				for _, v := range want[i] {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				for j := range want[i] {
					if d := math.Abs(float64(got[i][j]-want[i][j])) / math.Max(scale, 1e-30); !(d <= tc.tol) {
						t.Fatalf("output %d [%d]: device %g, cpu %g (%.2g of the largest, tolerance %g)", i, j, got[i][j], want[i][j], d, tc.tol)
					}
				}
			}
		})
	}
}
