package ladder

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
	"ladder-engine/ladder/data"
)

// windows cuts tokens into examples of n+1 tokens with loss on all but the first.
func windows(toks []int32, n int) []data.Example {
	var out []data.Example
	for i := 0; i+n+1 <= len(toks); i += n {
		mask := make([]bool, n+1)
		for j := 1; j <= n; j++ {
			mask[j] = true
		}
		out = append(out, data.Example{Tokens: toks[i : i+n+1], Mask: mask, Label: -1})
	}
	return out
}

// The whole side network's gradient, ladders included (their backward runs
// outside the tape, from the kept inputs), against central differences of
// the loss. A batch of two sequences of different lengths covers padding.
func TestGradientCheck(t *testing.T) {
	m := loadStories(t)
	toks := tokens(m, storyText)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		tol  float64
	}{
		{"ladder", func(c *Config) {}, 0.03},
		{"xladder vector gate", func(c *Config) { c.Method, c.Delta, c.Gate = "xladder", 2, "vector" }, 0.03},
		{"gated head", func(c *Config) { c.Head = "gated"; c.SideLayers = "every:2" }, 0.03},
		{"side head", func(c *Config) { c.Head = "side" }, 0.03},
		// f16 inputs change only the ladders' weight gradients, by about
		// f16's relative precision.
		{"f16 ladder inputs", func(c *Config) { c.LadderType = gguf.TypeF16 }, 0.03},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Reduction = 4
			tc.mod(&cfg)
			s := testSide(t, m, cfg)
			exs := []data.Example{windows(toks, 24)[0], windows(toks, 17)[2]}
			tr, err := newTrainer(m, s, cfg, DefaultTrainOptions(), exs, nil)
			if err != nil {
				t.Fatal(err)
			}
			b := data.NewBatch(exs, []int{0, 1})
			for _, p := range s.params {
				clear(p.t.GradF32())
			}
			if _, err := tr.forward(b, true); err != nil {
				t.Fatal(err)
			}
			scale := float64(b.NTargets) // the backward is seeded with the target count
			checked, worst := 0, 0.0
			for _, p := range s.params {
				if !wantCheck(p.name) {
					continue
				}
				// Directional derivative along the tensor's own gradient:
				// the loss moves by h·|g|, far above float32 rounding, where
				// a single coordinate's change would drown in it.
				fd, norm := directionalFD(t, p.t.F32(), p.t.GradF32(), func() (float64, error) { return tr.forward(b, false) })
				if norm/scale < 1e-6 {
					if strings.Contains(p.name, "ladder_") || strings.Contains(p.name, "side_") {
						t.Errorf("%s: no gradient", p.name)
					}
					continue
				}
				g := norm / scale
				rel := math.Abs(fd-g) / max(math.Abs(fd), math.Abs(g))
				if rel > tc.tol {
					t.Errorf("%s: |gradient| %.6g, directional finite difference %.6g (relative error %.3g)", p.name, g, fd, rel)
				}
				checked++
				worst = max(worst, rel)
			}
			t.Logf("%d tensors, worst relative error %.2g", checked, worst)
			if checked < 8 {
				t.Errorf("only %d tensors checked", checked)
			}
		})
	}
}

// directionalFD returns the central difference of loss along grad's
// direction in values (step 1e-2), and |grad|. Along the gradient the loss
// moves by h·|g|, far above float32 rounding, where a single coordinate's
// change would drown in it. values are restored.
func directionalFD(t *testing.T, values, grad []float32, loss func() (float64, error)) (fd, norm float64) {
	t.Helper()
	for _, g := range grad {
		norm += float64(g) * float64(g)
	}
	norm = math.Sqrt(norm)
	if norm == 0 {
		return 0, 0
	}
	orig := append([]float32(nil), values...)
	const h = 1e-2
	move := func(sign float64) float64 {
		for i, g := range grad {
			values[i] = orig[i] + float32(sign*h*float64(g)/norm)
		}
		l, err := loss()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	fd = (move(1) - move(-1)) / (2 * h)
	copy(values, orig)
	return fd, norm
}

func wantCheck(name string) bool {
	for _, s := range []string{"side_in", "ladder_down", "ladder_gate", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_down", "ffn_gate", "attn_norm", "side_up", "side_output_norm", "head_gate"} {
		if strings.Contains(name, s) && (strings.HasPrefix(name, "blk.0.") || strings.HasPrefix(name, "blk.1.") || !strings.HasPrefix(name, "blk.")) {
			return true
		}
	}
	return false
}

// A run interrupted at a checkpoint and resumed repeats the uninterrupted
// run's losses exactly; the loss falls while training. For the ladder and
// for LoRA (whose checkpoint is a llama.cpp LoRA file plus the state).
func TestResumeExact(t *testing.T) {
	for _, method := range []string{"ladder", "lora"} {
		t.Run(method, func(t *testing.T) { testResumeExact(t, method) })
	}
}

func testResumeExact(t *testing.T, method string) {
	m := loadStories(t)
	toks := tokens(m, strings.Repeat(storyText+" ", 2))
	exs := windows(toks, 32)
	cfg := DefaultConfig()
	cfg.Reduction = 2
	cfg.Method = method
	cfg.LoRARank = 4
	opts := DefaultTrainOptions()
	opts.Batch, opts.GradAccum, opts.Steps, opts.LR, opts.EvalEvery = 2, 2, 8, 1e-2, 4
	const cut = 3

	run := func(tr *Trainer, dir string, resumed bool, ctx context.Context) ([]float64, Summary, error) {
		var losses []float64
		s, err := tr.Run(ctx, RunOptions{Dir: dir, Resumed: resumed, NoPlot: true,
			OnStep: func(step int, r StepResult) { losses = append(losses, r.Loss) }})
		return losses, s, err
	}

	tr, err := NewTrainer(m, cfg, opts, exs, exs[:2])
	if err != nil {
		t.Fatal(err)
	}
	full, sum, err := run(tr, t.TempDir(), false, context.Background())
	tr.Free()
	if err != nil {
		t.Fatal(err)
	}
	if !(full[len(full)-1] < 0.8*full[0]) {
		t.Errorf("loss did not fall: %v", full)
	}

	// The same run, stopped after `cut` steps as Ctrl-C would stop it.
	dir := t.TempDir()
	tr, err = NewTrainer(m, cfg, opts, exs, exs[:2])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var first []float64
	_, err = tr.Run(ctx, RunOptions{Dir: dir, NoPlot: true, OnStep: func(step int, r StepResult) {
		first = append(first, r.Loss)
		if step == cut {
			cancel()
		}
	}})
	tr.Free()
	if err == nil || !strings.Contains(err.Error(), "interrupted at step 3/8") {
		t.Fatalf("interrupted run: %v", err)
	}
	c, err := OpenCheckpoint(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Step != cut {
		t.Fatalf("checkpoint at step %d, want %d", c.Step, cut)
	}
	tr, err = c.Resume(m, c.Options, exs, exs[:2])
	if err != nil {
		t.Fatal(err)
	}
	rest, _, err := run(tr, dir, true, context.Background())
	tr.Free()
	if err != nil {
		t.Fatal(err)
	}
	got := append(first, rest...)
	if len(got) != len(full) {
		t.Fatalf("%d steps after resume, want %d", len(got), len(full))
	}
	for i := range full {
		if got[i] != full[i] {
			t.Errorf("step %d: loss %.9g after resume, %.9g uninterrupted", i+1, got[i], full[i])
		}
	}
	t.Logf("losses %v; val %.4f", full, sum.ValLoss)
}

// --init prune copies backbone weights: the ladders start as selections of
// d_s residual dimensions, the norms keep the backbone's weights there, and
// a training step on it is finite. Covers GQA (stories260K) and NEOX RoPE
// with one KV head (synth qwen2), a head dim other than n_embd/n_head
// (gemma2) and fused weights seen as row views (phi3).
func TestPruneInit(t *testing.T) {
	for _, path := range []string{storiesPath, "models/synth/synth-qwen2-Q8_0.gguf", "models/arch/synth-gemma2-Q8_0.gguf", "models/arch/synth-phi3-Q8_0.gguf"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m, err := engine.Load(fixtures.Path(t, path), 2)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			cfg := DefaultConfig()
			cfg.Init, cfg.Reduction = "prune", 4
			toks := tokens(m, storyText)
			exs := windows(toks, 24)
			tr, err := NewTrainer(m, cfg, DefaultTrainOptions(), exs, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Free()
			s := tr.S
			d, ds := m.NEmbd, s.H.NEmbd
			var H []int
			for k := 0; k < ds; k++ {
				for j := 0; j < d; j++ {
					if v := s.In.F32()[k*d+j]; v == 1 {
						H = append(H, j)
					} else if v != 0 {
						t.Fatalf("side_in[%d,%d] = %g: not a selection", k, j, v)
					}
				}
			}
			if len(H) != ds {
				t.Fatalf("side_in selects %d dimensions, want %d", len(H), ds)
			}
			for k, j := range H {
				if s.Blocks[0].AttnNorm.F32()[k] != m.Layers[s.Blocks[0].Layer].AttnNorm[j] {
					t.Fatalf("attn_norm[%d] is not the backbone's at %d", k, j)
				}
			}
			r, err := tr.TrainStep()
			if err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) || math.IsNaN(r.GradNorm) {
				t.Fatalf("step on a pruned init: loss %v, gradient norm %v", r.Loss, r.GradNorm)
			}
		})
	}
}

// With GroupByLength the whole validation split is batched in length
// order, which must give the same mean loss (up to the order of the float
// sums): every example evaluated once, with its own targets.
func TestValidateGroupByLength(t *testing.T) {
	m := loadStories(t)
	toks := tokens(m, strings.Repeat(storyText+" ", 3))
	var val []data.Example
	for i, ex := range windows(toks, 32) {
		l := 4 + (i*11)%29 // lengths 4..32, mixed
		val = append(val, data.Example{Tokens: ex.Tokens[:l], Mask: ex.Mask[:l], Label: -1})
	}
	if len(val) < 6 {
		t.Fatalf("only %d validation examples", len(val))
	}
	loss := func(group bool) float64 {
		opts := DefaultTrainOptions()
		opts.Batch, opts.Steps, opts.GroupByLength = 3, 1, group
		tr, err := NewTrainer(m, DefaultConfig(), opts, val, val)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Free()
		v, err := tr.Validate()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	plain, grouped := loss(false), loss(true)
	if math.IsNaN(plain) || math.Abs(grouped-plain) > 1e-6*math.Abs(plain) {
		t.Fatalf("validation loss %g batched in length order, %g in file order", grouped, plain)
	}
}
