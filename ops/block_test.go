package ops

import (
	"fmt"
	"math"
	"testing"

	"ladder-engine/optim"
)

// testBlock is a pre-norm llama decoder block built from the tape's ops,
// the shape of a ladder side block:
// x + Wo·Attn(RoPE(Wq·n), RoPE(Wk·n), Wv·n), n = RMSNorm(x), then
// x + Wdown·SwiGLU(Wgate·m, Wup·m), m = RMSNorm(x).
type testBlock struct {
	nHead, nHeadKV             int
	attnNorm, wq, wk, wv, wo   *Tensor
	ffnNorm, wGate, wUp, wDown *Tensor
	ropeBase                   float32
	neox                       bool
	eps                        float32
}

func newTestBlock(seed uint64, d, nHead, nHeadKV, nFF int) *testBlock {
	hd := d / nHead
	s := float32(1 / math.Sqrt(float64(d)))
	norm := func(k uint64) *Tensor {
		p := gcParam(seed+k, 0.1, d)
		for i := range p.F32() {
			p.F32()[i] += 1
		}
		return p
	}
	return &testBlock{
		nHead: nHead, nHeadKV: nHeadKV, ropeBase: 10000, eps: 1e-5,
		attnNorm: norm(1),
		wq:       gcParam(seed+2, s, d, d),
		wk:       gcParam(seed+3, s, nHeadKV*hd, d),
		wv:       gcParam(seed+4, s, nHeadKV*hd, d),
		wo:       gcParam(seed+5, s, d, d),
		ffnNorm:  norm(6),
		wGate:    gcParam(seed+7, s, nFF, d),
		wUp:      gcParam(seed+8, s, nFF, d),
		wDown:    gcParam(seed+9, float32(1/math.Sqrt(float64(nFF))), d, nFF),
	}
}

func (b *testBlock) params() []*Tensor {
	return []*Tensor{b.attnNorm, b.wq, b.wk, b.wv, b.wo, b.ffnNorm, b.wGate, b.wUp, b.wDown}
}

var testBlockNames = []string{"attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"}

// forward runs the block over nSeq sequences of equal length; x is (nSeq*n, d).
func (b *testBlock) forward(tp *Tape, x *Tensor, nSeq int, pos []int32) *Tensor {
	h := tp.RMSNorm(x, b.attnNorm, b.eps)
	q := tp.RoPE(tp.Linear(h, b.wq), b.nHead, pos, &RoPEConfig{Base: b.ropeBase, Neox: b.neox})
	k := tp.RoPE(tp.Linear(h, b.wk), b.nHeadKV, pos, &RoPEConfig{Base: b.ropeBase, Neox: b.neox})
	v := tp.Linear(h, b.wv)
	x = tp.Add(x, tp.Linear(tp.Attention(q, k, v, nSeq, b.nHead, b.nHeadKV, 0, nil), b.wo))
	m := tp.RMSNorm(x, b.ffnNorm, b.eps)
	return tp.Add(x, tp.Linear(tp.SwiGLU(tp.Linear(m, b.wGate), tp.Linear(m, b.wUp)), b.wDown))
}

// seqPositions returns 0..n-1 for each of nSeq sequences.
func seqPositions(nSeq, n int) []int32 {
	pos := make([]int32, nSeq*n)
	for i := range pos {
		pos[i] = int32(i % n)
	}
	return pos
}

// A whole two-layer side stack (with the ladder's gated mix of a frozen
// backbone state in between) against finite differences, for every
// parameter and for the input.
func TestTwoLayerBlockGradients(t *testing.T) {
	const nSeq, n, d, nHead, nHeadKV, nFF = 2, 5, 16, 4, 2, 24
	b0 := newTestBlock(10, d, nHead, nHeadKV, nFF)
	b1 := newTestBlock(20, d, nHead, nHeadKV, nFF)
	b1.neox = true
	x := gcParam(1, 1, nSeq*n, d)
	backbone := NewTensor(gcRand(2, nSeq*n*d, 1), nSeq*n, d)
	gate := gcParam(3, 0.1, 1)
	pos := seqPositions(nSeq, n)
	build := func(tp *Tape) *Tensor {
		h := b0.forward(tp, x, nSeq, pos)
		h = tp.GatedMix(gate, h, backbone, 0.1)
		return b1.forward(tp, h, nSeq, pos)
	}
	params := append(append([]*Tensor{x, gate}, b0.params()...), b1.params()...)
	names := []string{"x", "gate"}
	for _, p := range []string{"0", "1"} {
		for _, nm := range testBlockNames {
			names = append(names, "blk"+p+"."+nm)
		}
	}
	// The gate enters as α/T (T = 0.1): a tenth of the usual step for it.
	checkGradsSteps(t, build, params, names, []float32{0, gcStep * 0.1}, gcDefaultTol)
	if backbone.GradF32() != nil {
		t.Error("the frozen backbone state got a gradient buffer")
	}
}

// The pool splits every kernel by rows, heads or columns; the results must
// not depend on it.
func TestBlockPoolMatchesSerial(t *testing.T) {
	const nSeq, n, d, nHead, nHeadKV, nFF = 2, 9, 32, 4, 2, 48
	run := func(pool *Pool) (out []float32, grads [][]float32) {
		b := newTestBlock(30, d, nHead, nHeadKV, nFF)
		x := NewTensor(gcRand(4, nSeq*n*d, 1), nSeq*n, d)
		tp := NewTape(NewCPU(pool))
		y := b.forward(tp, x, nSeq, seqPositions(nSeq, n))
		out = append([]float32(nil), y.F32()...)
		tp.Backward(tp.Sum(tp.Mul(y, NewTensor(gcRand(5, len(y.F32()), 1), y.Shape...))))
		for _, p := range b.params() {
			grads = append(grads, p.GradF32())
		}
		return out, grads
	}
	pool := NewPool(3)
	defer pool.Close()
	out1, g1 := run(nil)
	out3, g3 := run(pool)
	for i := range out1 {
		if out1[i] != out3[i] {
			t.Fatalf("output %d: serial %g, pool %g", i, out1[i], out3[i])
		}
	}
	for k := range g1 {
		for i := range g1[k] {
			if !closeRel(g3[k][i], float64(g1[k][i]), 1e-5) {
				t.Fatalf("%s grad %d: serial %g, pool %g", testBlockNames[k], i, g1[k][i], g3[k][i])
			}
		}
	}
}

// tinyLM is a two-layer transformer of width 32 on a 24-token vocabulary:
// trainable embeddings, two blocks, a final norm and a frozen LM head
// through the fused loss, as the ladder trains.
type tinyLM struct {
	embd   *Tensor
	blocks []*testBlock
	norm   *Tensor
	head   *Matrix
}

func (m *tinyLM) params() []*Tensor {
	ps := []*Tensor{m.embd, m.norm}
	for _, b := range m.blocks {
		ps = append(ps, b.params()...)
	}
	return ps
}

func (m *tinyLM) loss(tp *Tape, tokens, targets []int32, nSeq int) *Tensor {
	pos := seqPositions(nSeq, len(tokens)/nSeq)
	h := tp.Embedding(m.embd, tokens)
	for _, b := range m.blocks {
		h = b.forward(tp, h, nSeq, pos)
	}
	return tp.LMHeadCrossEntropy(tp.RMSNorm(h, m.norm, 1e-5), m.head, 0, targets)
}

// Acceptance (issue 4): a tiny transformer overfits a small fixed batch to
// near-zero loss, trained with optim.AdamW.
func TestTinyTransformerOverfits(t *testing.T) {
	const vocab, d, nHead, nHeadKV, nFF, nSeq, n = 24, 32, 4, 2, 64, 4, 32
	m := &tinyLM{
		embd:   gcParam(1, 1, vocab, d),
		blocks: []*testBlock{newTestBlock(10, d, nHead, nHeadKV, nFF), newTestBlock(20, d, nHead, nHeadKV, nFF)},
		norm:   gcParam(2, 0.1, d),
		head:   NewMatrixF32("output", vocab, d, gcRand(3, vocab*d, 0.5)),
	}
	for i := range m.norm.F32() {
		m.norm.F32()[i] += 1
	}
	seq := gcRand(4, nSeq*(n+1), 1)
	tokens, targets := make([]int32, 0, nSeq*n), make([]int32, 0, nSeq*n)
	for s := 0; s < nSeq; s++ {
		for i := 0; i <= n; i++ {
			id := int32((seq[s*(n+1)+i] + 1) / 2 * vocab)
			if i < n {
				tokens = append(tokens, id)
			}
			if i > 0 {
				targets = append(targets, id)
			}
		}
	}
	targets[3] = -100 // a masked position must not matter

	var ps []*optim.Param
	for i, p := range m.params() {
		ps = append(ps, &optim.Param{Name: fmt.Sprint(i), Data: p.F32(), Grad: p.GradF32()})
	}
	cfg := optim.DefaultAdamW()
	cfg.WeightDecay = 0
	opt, err := optim.NewAdamW(ps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := NewTape(NewCPU(nil))
	var first, last float32
	for step := 0; step < 300; step++ {
		optim.ZeroGrads(ps)
		loss := m.loss(tp, tokens, targets, nSeq)
		tp.Backward(loss)
		opt.Step(1e-2)
		if step == 0 {
			first = loss.F32()[0]
		}
		last = loss.F32()[0]
		if last < 0.01 {
			break
		}
	}
	t.Logf("loss %.4f → %.4f after %d steps", first, last, opt.Steps())
	if first < 2 || last > 0.05 {
		t.Fatalf("loss %.4f → %.4f, want a start near ln 24 = 3.2 and an end under 0.05", first, last)
	}
}

// TestReusingTapeMatchesFresh: a block and the fused head loss recorded
// twice on a reusing tape give, the second time (every output, saved value
// and gradient a stale buffer of the first), the outputs and gradients of a
// fresh tape bit for bit: no op relies on a new buffer being zero.
func TestReusingTapeMatchesFresh(t *testing.T) {
	const nSeq, n, d, nHead, nHeadKV, nFF, vocab = 2, 9, 32, 4, 2, 48, 20
	head := NewMatrixF32("output", vocab, d, gcRand(40, vocab*d, 0.5))
	norm := gcParam(41, 0.1, d)
	targets := make([]int32, nSeq*n)
	for i := range targets {
		targets[i] = int32((i * 7) % vocab)
	}
	targets[3] = -100
	pool := NewPool(2)
	defer pool.Close()
	run := func(tp *Tape, seed uint64) (float32, [][]float32) {
		b := newTestBlock(30, d, nHead, nHeadKV, nFF)
		x := gcParam(seed, 1, nSeq*n, d)
		y := b.forward(tp, x, nSeq, seqPositions(nSeq, n))
		loss := tp.LMHeadCrossEntropy(tp.RMSNorm(y, norm, 1e-5), head, 0, targets)
		tp.Backward(loss)
		grads := [][]float32{append([]float32(nil), x.GradF32()...)}
		for _, p := range b.params() {
			grads = append(grads, p.GradF32())
		}
		return loss.F32()[0], grads
	}
	reusing := NewReusingTape(NewCPU(pool))
	defer reusing.Close()
	run(reusing, 50)
	kept := 0
	for _, l := range reusing.free {
		kept += len(l.bufs)
	}
	if kept == 0 {
		t.Fatal("the reusing tape kept no buffers after a backward")
	}
	lr, gr := run(reusing, 51)
	lf, gf := run(NewTape(NewCPU(pool)), 51)
	if lr != lf {
		t.Fatalf("loss on the reusing tape %g, fresh %g", lr, lf)
	}
	for k := range gf {
		for i := range gf[k] {
			if gr[k][i] != gf[k][i] {
				t.Fatalf("gradient %d[%d]: reusing tape %g, fresh %g", k, i, gr[k][i], gf[k][i])
			}
		}
	}
}
