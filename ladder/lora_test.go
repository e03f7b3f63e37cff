package ladder

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ladder/data"
	"ladder-engine/ops"
)

func loraConfig(rank int) Config {
	cfg := DefaultConfig()
	cfg.Method, cfg.LoRARank = "lora", rank
	return cfg
}

// baseLoss is the batch's loss through the plain frozen blocks, on a
// no-grad tape: what an untrained LoRA (B = 0) must give exactly.
func baseLoss(m *engine.Model, b *data.Batch) float64 {
	tp := ops.NewNoGradTape(m.Backend)
	defer tp.Close()
	rows := b.B * b.T
	pos := make([]int32, rows)
	for i := range pos {
		pos[i] = int32(i % b.T)
	}
	hp := m.BlockHparams()
	h := m.EmbedTokens(tp, b.Tokens[:rows])
	for l := range m.NLayer {
		w := m.Block(l)
		h = engine.BlockForward(tp, &hp, &w, h, pos, b.B, nil, l)
	}
	z := tp.RMSNorm(h, m.OutputNormTensor(), m.NormEps)
	return float64(tp.LMHeadCrossEntropy(z, m.Output, m.FinalSoftCap, b.Targets).Scalar())
}

// randomizeB gives every B a small random value, so that A has a gradient
// and the adapter changes the model.
func randomizeB(lo *LoRA, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, p := range lo.pairs {
		v := p.w.B.F32()
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.05)
		}
	}
}

// LoRA starts as the base model exactly (B = 0); with --checkpointing the
// loss and every gradient are bitwise those of keeping all activations
// (the recomputation repeats the same kernels on the same values); and the
// gradients of A and B match central differences of the loss.
func TestLoRATrainer(t *testing.T) {
	m := loadStories(t)
	toks := tokens(m, storyText)
	exs := []data.Example{windows(toks, 24)[0], windows(toks, 17)[2]}
	b := data.NewBatch(exs, []int{0, 1})

	newTr := func(ckpt bool, dropout float32) *Trainer {
		cfg := loraConfig(4)
		cfg.Checkpointing, cfg.LoRADropout = ckpt, dropout
		tr, err := NewTrainer(m, cfg, DefaultTrainOptions(), exs, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Free)
		return tr
	}
	tr := newTr(false, 0)
	l0, err := tr.forward(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := baseLoss(m, b); l0 != want {
		t.Fatalf("untrained LoRA: loss %.9g, base model %.9g", l0, want)
	}

	trC := newTr(true, 0)
	randomizeB(tr.L, 1)
	randomizeB(trC.L, 1)
	grads := func(tr *Trainer) (float64, [][]float32) {
		for _, p := range tr.L.params {
			clear(p.t.GradF32())
		}
		l, err := tr.forward(b, true)
		if err != nil {
			t.Fatal(err)
		}
		var g [][]float32
		for _, p := range tr.L.params {
			g = append(g, append([]float32(nil), p.t.GradF32()...))
		}
		return l, g
	}
	lossA, gA := grads(tr)
	lossC, gC := grads(trC)
	if lossA != lossC {
		t.Errorf("loss %.9g with all activations kept, %.9g with checkpointing", lossA, lossC)
	}
	for i := range gA {
		for j := range gA[i] {
			if gA[i][j] != gC[i][j] {
				t.Fatalf("%s[%d]: gradient %g kept, %g checkpointed", tr.L.params[i].name, j, gA[i][j], gC[i][j])
			}
		}
	}

	// Dropout: the recomputation reuses the forward's masks, so again the
	// same gradients; and they differ from those without dropout.
	trD, trDC := newTr(false, 0.3), newTr(true, 0.3)
	randomizeB(trD.L, 1)
	randomizeB(trDC.L, 1)
	lossD, gD := grads(trD)
	lossDC, gDC := grads(trDC)
	if lossD != lossDC || lossD == lossA {
		t.Errorf("dropout: loss %.9g kept, %.9g checkpointed, %.9g without dropout", lossD, lossDC, lossA)
	}
	for i := range gD {
		for j := range gD[i] {
			if gD[i][j] != gDC[i][j] {
				t.Fatalf("dropout: %s[%d]: gradient %g kept, %g checkpointed", trD.L.params[i].name, j, gD[i][j], gDC[i][j])
			}
		}
	}
	if l, _ := trD.forward(b, false); l != lossA {
		t.Errorf("validation with dropout set: loss %.9g, want %.9g (no dropout outside training)", l, lossA)
	}

	// Directional finite differences along each checked tensor's gradient.
	scale := float64(b.NTargets)
	checked := 0
	for i, p := range tr.L.params {
		if !strings.HasPrefix(p.name, "blk.0.") && !strings.HasPrefix(p.name, "blk.4.") {
			continue
		}
		fd, norm := directionalFD(t, p.t.F32(), gA[i], func() (float64, error) { return tr.forward(b, false) })
		if norm/scale < 1e-7 {
			t.Errorf("%s: no gradient", p.name)
			continue
		}
		want := norm / scale
		// Validation rounds the frozen products' activations to the
		// weights' type (llama.cpp inference); training multiplies exactly,
		// QLoRA's numerics. On this f32 model both are exact.
		if rel := math.Abs(fd-want) / max(math.Abs(fd), want); rel > 0.03 {
			t.Errorf("%s: |gradient| %.6g, finite difference %.6g (relative error %.3g)", p.name, want, fd, rel)
		}
		checked++
	}
	if checked != 2*2*7 {
		t.Errorf("checked %d tensors, want 28", checked)
	}
}

// A trained LoRA written as a llama.cpp adapter (f32) and applied with
// engine.ApplyLoRA gives the perplexity of the trained pairs in memory;
// f16 and bf16 adapters within their rounding; the run's defaults (rank 8,
// alpha 16, all targets) make r·(in+out) values per projection.
func TestLoRAExport(t *testing.T) {
	m := loadStories(t)
	toks := tokens(m, strings.Repeat(storyText+" ", 3))
	exs := windows(toks, 32)
	opts := DefaultTrainOptions()
	opts.Batch, opts.Steps, opts.LR = 2, 6, 1e-2
	tr, err := NewTrainer(m, loraConfig(8), opts, exs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Free()
	perLayer := 8 * (m.NEmbd + m.QDim() + 2*(m.NEmbd+m.KVDim()) + m.QDim() + m.NEmbd + 3*(m.NEmbd+m.NFF))
	if tr.L.NumParams() != m.NLayer*perLayer {
		t.Errorf("%d trainable values, want %d", tr.L.NumParams(), m.NLayer*perLayer)
	}
	dir := t.TempDir()
	if _, err := tr.Run(context.Background(), RunOptions{Dir: dir, NoPlot: true}); err != nil {
		t.Fatal(err)
	}
	ppl := func(d engine.Decoder) float64 {
		r, err := engine.Perplexity(d, toks, engine.PerplexityOptions{NCtx: 64, NBatch: 64, AddBOS: true, BOS: m.Tok.BOS()})
		if err != nil {
			t.Fatal(err)
		}
		return r.PPL
	}
	mem := tr.net.newDecoder(m, 64)
	want := ppl(mem)
	mem.Free()
	base := m.NewDecoder(64)
	basePPL := ppl(base)
	base.Free()
	for _, c := range []struct {
		typ gguf.Type
		tol float64
	}{{gguf.TypeF32, 1e-5}, {gguf.TypeF16, 1e-3}, {gguf.TypeBF16, 5e-3}} {
		path := filepath.Join(dir, c.typ.String()+".gguf")
		if err := tr.L.Save(path, c.typ, tr.fp, nil); err != nil {
			t.Fatal(err)
		}
		m2 := loadStories(t)
		a, err := engine.OpenLoRA(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.ApplyLoRA(a, 1); err != nil {
			t.Fatal(err)
		}
		d := m2.NewDecoder(64)
		got := ppl(d)
		d.Free()
		a.Close()
		t.Logf("%s: ppl base %.5f, trained in memory %.5f, from the file %.5f", c.typ, basePPL, want, got)
		if math.Abs(got-want)/want > c.tol {
			t.Errorf("%s adapter: perplexity %.6f, in memory %.6f", c.typ, got, want)
		}
	}
	if !(want < 0.9*basePPL) {
		t.Errorf("training did not lower the perplexity: %.4f → %.4f", basePPL, want)
	}
}
