package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The forward kernels the inference engine shares, against plain float64
// formulas written out independently here. float32 kernels agree with them
// to a few ulps; 1e-5 relative leaves room for summation order.

func closeRel(a float32, b float64, tol float64) bool {
	return math.Abs(float64(a)-b) <= tol*math.Max(1, math.Abs(b))
}

func TestRMSNormForward(t *testing.T) {
	const n, c, eps = 3, 10, 1e-5
	x := gcRand(1, n*c, 2)
	w := gcRand(2, c, 1)
	for _, withWeight := range []bool{true, false} {
		out := make([]float32, n*c)
		var wt []float32
		if withWeight {
			wt = w
		}
		RMSNormForward(out, x, wt, n, c, eps)
		for r := 0; r < n; r++ {
			var ss float64
			for i := 0; i < c; i++ {
				ss += float64(x[r*c+i]) * float64(x[r*c+i])
			}
			s := 1 / math.Sqrt(ss/c+eps)
			for i := 0; i < c; i++ {
				want := float64(x[r*c+i]) * s
				if withWeight {
					want *= float64(w[i])
				}
				if !closeRel(out[r*c+i], want, 1e-6) {
					t.Fatalf("weight=%v row %d col %d: got %g, want %g", withWeight, r, i, out[r*c+i], want)
				}
			}
		}
	}
	// In place, as the engine may call it.
	y := append([]float32(nil), x...)
	ref := make([]float32, n*c)
	RMSNormForward(ref, x, w, n, c, eps)
	RMSNormForward(y, y, w, n, c, eps)
	for i := range y {
		if y[i] != ref[i] {
			t.Fatalf("in place differs at %d: %g vs %g", i, y[i], ref[i])
		}
	}
}

func TestRoPEForward(t *testing.T) {
	// Hand-worked case: head size 4, base 100, position 2, one head:
	// θ_0 = 2, θ_1 = 2·100^(-2/4) = 0.2.
	th := []float64{2, 0.2}
	x := []float32{1, 2, 3, 4}
	rot := func(a, b, t float64) (float64, float64) {
		return a*math.Cos(t) - b*math.Sin(t), a*math.Sin(t) + b*math.Cos(t)
	}
	var norm, neox [4]float64
	norm[0], norm[1] = rot(1, 2, th[0]) // adjacent pairs (0,1), (2,3)
	norm[2], norm[3] = rot(3, 4, th[1])
	neox[0], neox[2] = rot(1, 3, th[0]) // halves: (0,2), (1,3)
	neox[1], neox[3] = rot(2, 4, th[1])
	// Frequency factors divide θ_i (Llama 3.1 rope_freqs).
	var withFF [4]float64
	withFF[0], withFF[1] = rot(1, 2, th[0]/2)
	withFF[2], withFF[3] = rot(3, 4, th[1]/8)
	for _, c := range []struct {
		name string
		neox bool
		ff   []float32
		want [4]float64
	}{
		{"norm", false, nil, norm},
		{"neox", true, nil, neox},
		{"norm+freq factors", false, []float32{2, 8}, withFF},
	} {
		y := append([]float32(nil), x...)
		RoPEForward(y, 1, 1, 4, []int32{2}, &RoPEConfig{Base: 100, Neox: c.neox, FreqFactors: c.ff})
		for i := range y {
			if !closeRel(y[i], c.want[i], 1e-6) {
				t.Errorf("%s: y = %v, want %v", c.name, y, c.want)
				break
			}
		}
	}
	// Position 0 is the identity; every head of a row gets the same rotation.
	y := []float32{1, 2, 3, 4, 1, 2, 3, 4}
	RoPEForward(y, 2, 1, 4, []int32{0, 2}, &RoPEConfig{Base: 100})
	for i := 0; i < 4; i++ {
		if y[i] != x[i] || !closeRel(y[4+i], norm[i], 1e-6) {
			t.Fatalf("two rows: %v", y)
		}
	}
}

// attentionRef is causal GQA attention in float64, written from the formula.
func attentionRef(q, k, v []float32, n, nKV, nHead, nHeadKV, hd, pos0 int) (out, att []float64) {
	out = make([]float64, n*nHead*hd)
	att = make([]float64, nHead*n*nKV)
	for h := 0; h < nHead; h++ {
		g := h / (nHead / nHeadKV)
		for i := 0; i < n; i++ {
			s := make([]float64, nKV)
			m := math.Inf(-1)
			for j := 0; j <= pos0+i && j < nKV; j++ {
				for d := 0; d < hd; d++ {
					s[j] += float64(q[i*nHead*hd+h*hd+d]) * float64(k[j*nHeadKV*hd+g*hd+d])
				}
				s[j] /= math.Sqrt(float64(hd))
				m = math.Max(m, s[j])
			}
			var z float64
			for j := 0; j <= pos0+i && j < nKV; j++ {
				s[j] = math.Exp(s[j] - m)
				z += s[j]
			}
			for j := 0; j <= pos0+i && j < nKV; j++ {
				p := s[j] / z
				att[(h*n+i)*nKV+j] = p
				for d := 0; d < hd; d++ {
					out[i*nHead*hd+h*hd+d] += p * float64(v[j*nHeadKV*hd+g*hd+d])
				}
			}
		}
	}
	return out, att
}

func TestAttentionForward(t *testing.T) {
	for _, c := range []struct {
		name                                  string
		n, nKV, nHead, nHeadKV, headDim, pos0 int
	}{
		{"MHA", 5, 5, 2, 2, 8, 0},
		{"GQA", 6, 6, 4, 2, 16, 0},
		{"MQA with cache", 3, 7, 3, 1, 8, 4},
		{"one token", 1, 9, 4, 2, 8, 8},
		{"long GQA", 20, 20, 4, 2, 16, 0}, // ≥ attnTransposeMin queries: transposed keys
		{"long with cache", 12, 30, 2, 1, 8, 18},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := gcRand(1, c.n*c.nHead*c.headDim, 1)
			k := gcRand(2, c.nKV*c.nHeadKV*c.headDim, 1)
			v := gcRand(3, c.nKV*c.nHeadKV*c.headDim, 1)
			out := make([]float32, len(q))
			att := make([]float32, c.nHead*c.n*c.nKV)
			for i := range att {
				att[i] = 7 // garbage that must be overwritten
			}
			AttentionForward(out, q, k, v, c.n, c.nKV, c.nHead, c.nHeadKV, c.headDim, c.pos0, att, nil)
			wantOut, wantAtt := attentionRef(q, k, v, c.n, c.nKV, c.nHead, c.nHeadKV, c.headDim, c.pos0)
			for i := range out {
				if !closeRel(out[i], wantOut[i], 1e-5) {
					t.Fatalf("out[%d] = %g, want %g", i, out[i], wantOut[i])
				}
			}
			for i := range att {
				if !closeRel(att[i], wantAtt[i], 1e-5) {
					t.Fatalf("att[%d] = %g, want %g", i, att[i], wantAtt[i])
				}
			}
		})
	}
}

// The tape's batched attention equals AttentionForward run per sequence.
func TestAttentionBatchMatchesPerSequence(t *testing.T) {
	const nSeq, n, nHead, nHeadKV, hd = 3, 4, 4, 2, 8
	q := gcRand(1, nSeq*n*nHead*hd, 1)
	k := gcRand(2, nSeq*n*nHeadKV*hd, 1)
	v := gcRand(3, nSeq*n*nHeadKV*hd, 1)
	got := (*Tape)(nil).Attention(NewTensor(q, nSeq*n, nHead*hd), NewTensor(k, nSeq*n, nHeadKV*hd), NewTensor(v, nSeq*n, nHeadKV*hd), nSeq, nHead, nHeadKV, 0, nil)
	att := make([]float32, nHead*n*n)
	for s := 0; s < nSeq; s++ {
		want := make([]float32, n*nHead*hd)
		AttentionForward(want, q[s*n*nHead*hd:], k[s*n*nHeadKV*hd:], v[s*n*nHeadKV*hd:], n, n, nHead, nHeadKV, hd, 0, att, nil)
		for i, w := range want {
			if g := got.F32()[s*n*nHead*hd+i]; g != w {
				t.Fatalf("sequence %d value %d: %g, want %g", s, i, g, w)
			}
		}
	}
}

func TestSwiGLUForward(t *testing.T) {
	g := gcRand(1, 50, 6)
	u := gcRand(2, 50, 2)
	out := make([]float32, 50)
	SwiGLUForward(out, g, u, 50)
	for i := range out {
		x := float64(g[i])
		want := x / (1 + math.Exp(-x)) * float64(u[i])
		if !closeRel(out[i], want, 1e-6) {
			t.Fatalf("out[%d] = %g, want %g", i, out[i], want)
		}
	}
	a := gcRand(3, 5, 1)
	AddForward(out[:5], a, u[:5])
	for i := 0; i < 5; i++ {
		if out[i] != a[i]+u[i] {
			t.Fatalf("AddForward[%d] = %g", i, out[i])
		}
	}
}

// Cross-entropy against a hand computation: logits (0, ln 3) → p = (¼, ¾).
func TestCrossEntropyValue(t *testing.T) {
	logits := NewTensor([]float32{0, float32(math.Log(3)), 5, 5}, 2, 2)
	loss := (*Tape)(nil).CrossEntropy(logits, []int32{0, -100})
	if !closeRel(loss.F32()[0], math.Log(4), 1e-6) {
		t.Fatalf("loss = %g, want ln 4 = %g", loss.F32()[0], math.Log(4))
	}
	// Two rows, one per target: mean of ln 4 and ln(4/3).
	loss = (*Tape)(nil).CrossEntropy(NewTensor([]float32{0, float32(math.Log(3)), 0, float32(math.Log(3))}, 2, 2), []int32{0, 1})
	if want := (math.Log(4) + math.Log(4.0/3)) / 2; !closeRel(loss.F32()[0], want, 1e-6) {
		t.Fatalf("loss = %g, want %g", loss.F32()[0], want)
	}
	if loss := (*Tape)(nil).CrossEntropy(logits, []int32{-1, -1}); loss.F32()[0] != 0 {
		t.Fatalf("all ignored: loss = %g, want 0", loss.F32()[0])
	}
}

// The fused head + loss equals LinearMatrix (then SoftCap, gemma2) then
// CrossEntropy, also across chunk boundaries (a vocabulary large enough
// that a chunk is a few rows).
func TestLMHeadCrossEntropyMatchesUnfused(t *testing.T) {
	for _, softCap := range []float32{0, 1.5} {
		t.Run(fmt.Sprintf("softcap=%g", softCap), func(t *testing.T) { lmHeadMatchesUnfused(t, softCap) })
	}
}

func lmHeadMatchesUnfused(t *testing.T, softCap float32) {
	const d, vocab, n = 8, 50, 7
	defer func(old, oldTrain int) { ceChunkFloats, ceTrainChunkFloats = old, oldTrain }(ceChunkFloats, ceTrainChunkFloats)
	ceChunkFloats, ceTrainChunkFloats = 3*vocab, 3*vocab // three rows per chunk
	head := NewMatrixF32("output", vocab, d, gcRand(1, vocab*d, 0.5))
	hidden := gcParam(2, 1, n, d)
	targets := []int32{5, -100, vocab - 1, 0, 17, -100, 33}

	tp := NewTape(NewCPU(NewPool(2)))
	fused := tp.LMHeadCrossEntropy(hidden, head, softCap, targets)
	tp.Backward(fused)
	gotGrad := append([]float32(nil), hidden.GradF32()...)

	hidden.ZeroGrad()
	tp2 := NewTape(NewCPU(nil))
	logits := tp2.LinearMatrix(hidden, head)
	if softCap > 0 {
		logits = tp2.SoftCap(logits, softCap)
	}
	plain := tp2.CrossEntropy(logits, targets)
	tp2.Backward(plain)
	if !closeRel(fused.F32()[0], float64(plain.F32()[0]), 1e-5) {
		t.Fatalf("fused loss %g, unfused %g", fused.F32()[0], plain.F32()[0])
	}
	for i, g := range gotGrad {
		if !closeRel(g, float64(hidden.GradF32()[i]), 1e-4) {
			t.Fatalf("dhidden[%d]: fused %g, unfused %g", i, g, hidden.GradF32()[i])
		}
	}
	nll := make([]float32, n)
	LMHeadNLL(nll, hidden, n, head, softCap, targets)
	var sum float64
	for _, v := range nll {
		sum += float64(v)
	}
	if nll[1] != 0 || !closeRel(float32(sum/5), float64(plain.F32()[0]), 1e-5) {
		t.Fatalf("LMHeadNLL %v: mean %g, want %g", nll, sum/5, plain.F32()[0])
	}
}

// GeGLU without a gradient goes through ggml's f16 GELU table: within an
// f16 rounding (2^-11 relative, twice: input and output) of the exact tanh
// GELU, equal to it past |x| >= 10 (ggml's cut-offs), and the table's
// entries are hand-checkable: gelu(1) = 0.841192, gelu(-1) = -0.158808.
func TestGeGLUF16Table(t *testing.T) {
	for _, c := range []struct{ x, want float64 }{{1, 0.841192}, {-1, -0.158808}, {0, 0}, {12, 12}, {-12, 0}} {
		if got := geluTanh(float32(c.x)); math.Abs(float64(got)-c.want) > 1e-5 {
			t.Errorf("gelu(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	gate := gcRand(3, 400, 4)
	up := make([]float32, 400)
	for i := range up {
		up[i] = 1
	}
	table, exact := make([]float32, 400), make([]float32, 400)
	gegluForward(table, gate, up, 400, true)
	gegluForward(exact, gate, up, 400, false)
	for i, x := range gate {
		d := math.Abs(float64(table[i] - exact[i]))
		// the input's rounding moves gelu by at most |gelu'|·|x|·2^-11, |gelu'| < 1.13
		if lim := 1.13*math.Abs(float64(x))/2048 + math.Abs(float64(exact[i]))/2048 + 1e-7; d > lim {
			t.Fatalf("gelu_f16(%g) = %g, exact %g", x, table[i], exact[i])
		}
	}
}

// RoPE scaling by hand, against ggml's formulas (ggml-cpu rope_yarn):
// partial rotary leaves the dims past NRot alone and rotates the first NRot
// as a head of NRot; linear scaling by s is position p·s; the magnitude
// factor multiplies cos and sin; YaRN with base 10000, NRot 8, n_ctx_orig
// 64 has corr dims low = floor(8·ln(64/(32·2π))/(2 ln 1e4)) = 0 and
// high = ceil(8·ln(64/2π)/(2 ln 1e4)) = 2, so pair i mixes interpolated
// and extrapolated angles by ramp 1 − i/2 (i = 0: extrapolated, i ≥ 2:
// interpolated), and mscale = 1 + 0.1·ln 4.
func TestRoPEScaling(t *testing.T) {
	const p = 7
	x := gcRand(5, 10, 1) // one head of 10, 8 rotated
	theta := func(i int, nRot float64) float64 { return p * math.Pow(10000, -2*float64(i)/nRot) }
	rotNeox := func(in []float32, nRot int, angle func(i int) float64, mscale float64) []float64 {
		out := make([]float64, len(in))
		for i := range in {
			out[i] = float64(in[i])
		}
		half := nRot / 2
		for i := 0; i < half; i++ {
			a, b := float64(in[i]), float64(in[i+half])
			c, s := math.Cos(angle(i))*mscale, math.Sin(angle(i))*mscale
			out[i], out[i+half] = a*c-b*s, a*s+b*c
		}
		return out
	}
	yarnAngle := func(i int) float64 {
		ramp := 1 - math.Min(1, math.Max(0, float64(i)/2))
		return theta(i, 8)*0.25*(1-ramp) + theta(i, 8)*ramp
	}
	for _, c := range []struct {
		name string
		rc   RoPEConfig
		want []float64
	}{
		{"partial", RoPEConfig{NRot: 8, Base: 10000, Neox: true}, rotNeox(x, 8, func(i int) float64 { return theta(i, 8) }, 1)},
		{"linear+attn factor", RoPEConfig{NRot: 8, Base: 10000, Neox: true, FreqScale: 0.5, AttnFactor: 1.25},
			rotNeox(x, 8, func(i int) float64 { return theta(i, 8) * 0.5 }, 1.25)},
		{"yarn", RoPEConfig{NRot: 8, Base: 10000, Neox: true, FreqScale: 0.25, ExtFactor: 1, BetaFast: 32, BetaSlow: 1, NCtxOrig: 64},
			rotNeox(x, 8, yarnAngle, 1+0.1*math.Log(4))},
	} {
		y := append([]float32(nil), x...)
		RoPEForward(y, 1, 1, 10, []int32{p}, &c.rc)
		for i := range y {
			if !closeRel(y[i], c.want[i], 2e-6) {
				t.Errorf("%s: y = %v, want %v", c.name, y, c.want)
				break
			}
		}
	}
}

// lmHeadCE on rows of which only some have a target (the others gathered
// out, as a prompt's or padding's) gives each target row the loss and
// gradient the full run gives it, and the others 0 and no gradient:
// ignored rows at the start, in runs, alternating, and all of them.
func TestLMHeadCEOnlyTargets(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	const n, vocab, d = 23, 300, 256
	heads := []*Matrix{randQ6KWeight(t, rng, vocab, d), NewMatrixF32("f32", vocab, d, randVec(rng, vocab*d))}
	hidden := randVec(rng, n*d)
	full := make([]int32, n)
	for i := range full {
		full[i] = int32(rng.IntN(vocab))
	}
	p := NewPool(2)
	defer p.Close()
	for _, head := range heads {
		for _, pattern := range []string{"first half", "runs", "alternating", "none"} {
			tg := append([]int32(nil), full...)
			for i := range tg {
				ignore := false
				switch pattern {
				case "first half":
					ignore = i < n/2
				case "runs":
					ignore = i%9 < 4
				case "alternating":
					ignore = i%2 == 0
				case "none":
					ignore = true
				}
				if ignore {
					tg[i] = -1
				}
			}
			for _, train := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/train=%v", head.Type, pattern, train)
				var dh, dhFull []float32
				if train {
					dh, dhFull = randVec(rng, n*d), make([]float32, n*d)
				}
				dh0 := append([]float32(nil), dh...)
				nll, nllFull := make([]float32, n), make([]float32, n)
				for i := range nll {
					nll[i] = 7 // must be overwritten
				}
				sum := lmHeadCE(p, nll, dh, hidden, n, head, 0, tg, 0.25)
				lmHeadCE(p, nllFull, dhFull, hidden, n, head, 0, full, 0.25)
				var want float64
				for i := range n {
					if tg[i] < 0 {
						if nll[i] != 0 {
							t.Fatalf("%s: ignored row %d: nll %g", name, i, nll[i])
						}
						for j := 0; train && j < d; j++ {
							if dh[i*d+j] != dh0[i*d+j] {
								t.Fatalf("%s: ignored row %d got a gradient", name, i)
							}
						}
						continue
					}
					want += float64(nllFull[i])
					if math.Abs(float64(nll[i]-nllFull[i])) > 1e-5*math.Abs(float64(nllFull[i])) {
						t.Fatalf("%s: row %d: nll %g, full run %g", name, i, nll[i], nllFull[i])
					}
					for j := 0; train && j < d; j++ {
						if g, w := dh[i*d+j]-dh0[i*d+j], dhFull[i*d+j]; math.Abs(float64(g-w)) > 1e-4*math.Abs(float64(w))+1e-6 {
							t.Fatalf("%s: row %d: dhidden[%d] %g, full run %g", name, i, j, g, w)
						}
					}
				}
				if math.Abs(sum-want) > 1e-5*math.Abs(want) {
					t.Fatalf("%s: summed loss %g, want %g", name, sum, want)
				}
			}
		}
	}
}

// TestRoPETable: rows rotated from the cached table of cos and sin equal,
// bit for bit, rows rotated from their own (ropeCosSin, the path past
// ropeCacheMax), for plain, NeoX, partial, frequency-factor and YaRN
// configurations, forward and inverse, with the table grown between calls.
func TestRoPETable(t *testing.T) {
	const nHead, headDim = 3, 16
	for ci, rc := range []RoPEConfig{
		{Base: 10000},
		{Base: 1e6, Neox: true},
		{Base: 10000, NRot: 8},
		{Base: 500000, FreqFactors: []float32{1, 1, 2, 4, 8, 8, 8, 8}},
		{Base: 10000, FreqScale: 0.25, ExtFactor: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, NCtxOrig: 4096},
	} {
		for _, sign := range []float32{1, -1} {
			for _, npos := range []int{5, 70, 300} {
				pos := make([]int32, npos)
				for i := range pos {
					pos[i] = int32((i * 37) % npos)
				}
				if npos == 300 {
					pos[7] = ropeCacheMax + 5 // past the table: its own values, the other rows the table's
				}
				x := gcRand(uint64(ci+1), npos*nHead*headDim, 1)
				got := append([]float32(nil), x...)
				ropeRotate(got, npos, nHead, headDim, pos, &rc, sign)
				tb := rc.tables(headDim)
				half := tb.nRot / 2
				cs := make([]float32, 2*half)
				for r, p := range pos {
					ropeCosSin(cs, &rc, &tb, p)
					for i := 0; i < half; i++ {
						i0, i1 := 2*i, 2*i+1
						if rc.Neox {
							i0, i1 = i, i+half
						}
						c, s := cs[2*i], cs[2*i+1]*sign
						for h := 0; h < nHead; h++ {
							o := r*nHead*headDim + h*headDim
							x0, x1 := x[o+i0], x[o+i1]
							w0, w1 := x0*c-x1*s, x0*s+x1*c
							if got[o+i0] != w0 || got[o+i1] != w1 {
								t.Fatalf("config %d sign %g row %d (pos %d) head %d pair %d: (%g, %g), direct (%g, %g)",
									ci, sign, r, p, h, i, got[o+i0], got[o+i1], w0, w1)
							}
						}
					}
				}
			}
		}
	}
}

// A configuration whose frequency factors are a copy of another's (a model
// loaded again) shares its table: the cache does not grow.
func TestRoPETableSharedByValue(t *testing.T) {
	count := func() int {
		n := 0
		ropeCache.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	ff := []float32{1, 1, 2, 4, 8, 8, 8, 8}
	a := RoPEConfig{Base: 123457, FreqFactors: ff}
	b := RoPEConfig{Base: 123457, FreqFactors: append([]float32(nil), ff...)}
	x := gcRand(9, 3*16, 1)
	pos := []int32{0, 1, 2}
	ropeRotate(x, 3, 1, 16, pos, &a, 1)
	n := count()
	ropeRotate(x, 3, 1, 16, pos, &b, 1)
	if count() != n {
		t.Fatal("a copy of the frequency factors made a second table")
	}
	b.FreqFactors[3] = 5
	ropeRotate(x, 3, 1, 16, pos, &b, 1)
	if count() != n+1 {
		t.Fatal("other frequency factors shared the first table")
	}
}
