package ladder

import (
	"math"
	"strings"
	"testing"

	"ladder-engine/engine"
	"ladder-engine/internal/fixtures"
)

// archModels are the arch fixtures the ladders train on: gemma2 (its
// scaled embeddings feed Down_0, its sliding-window and soft-capped layers
// the ladders, its soft-capped tied head the loss), phi3 (fused weights),
// phi3 with LongRoPE and llama with YaRN (scaled RoPE in the backbone).
var archModels = []string{"synth-gemma2-Q4_K_M", "synth-phi3-Q4_K_M", "synth-phi3-longrope-Q8_0", "synth-llama-yarn-Q8_0"}

// On every arch model, for ladder and xLadder: an untrained residual
// adapter reproduces the base model's perplexity exactly, and a 20-step
// finetune runs with finite losses that fall.
func TestArchFinetune(t *testing.T) {
	for _, name := range archModels {
		t.Run(name, func(t *testing.T) {
			m, err := engine.Load(fixtures.Path(t, "models/arch/"+name+".gguf"), 2)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			toks := tokens(m, strings.Repeat(storyText+" ", 3))
			for _, method := range []string{"ladder", "xladder"} {
				t.Run(method, func(t *testing.T) {
					cfg := DefaultConfig()
					cfg.Method, cfg.Reduction = method, 4
					h, err := NewHparams(cfg, &m.Hparams)
					if err != nil {
						t.Fatal(err)
					}
					s := newSide(h, false)
					defer s.Free()
					s.initRandom(7, 0.02)
					const nCtx = 64
					base := m.NewDecoder(nCtx)
					defer base.Free()
					ad := NewDecoder(m, s, nCtx)
					defer ad.Free()
					o := engine.PerplexityOptions{NCtx: nCtx, NChunks: 3, AddBOS: m.Tok.AddBOS(), BOS: m.Tok.BOS()}
					want, err := engine.Perplexity(base, toks, o)
					if err != nil {
						t.Fatal(err)
					}
					got, err := engine.Perplexity(ad, toks, o)
					if err != nil {
						t.Fatal(err)
					}
					if got.PPL != want.PPL || got.NLL != want.NLL {
						t.Fatalf("perplexity with untrained adapter %.10f, base %.10f: want exactly equal", got.PPL, want.PPL)
					}

					opts := DefaultTrainOptions()
					// Short batches: the pure-Go kernels of a CPU without
					// AVX-512 run gemma2's 26 layers at ~1 s per 128 tokens.
					opts.Batch, opts.Steps, opts.LR = 2, 20, 1e-2
					exs := windows(toks, 16)
					tr, err := NewTrainer(m, cfg, opts, exs, exs[:2])
					if err != nil {
						t.Fatal(err)
					}
					defer tr.Free()
					var losses []float64
					for range opts.Steps {
						r, err := tr.TrainStep()
						if err != nil {
							t.Fatal(err)
						}
						if r.Skipped || math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) {
							t.Fatalf("step %d: loss %g, skipped %v", len(losses)+1, r.Loss, r.Skipped)
						}
						losses = append(losses, r.Loss)
					}
					first, last := mean(losses[:5]), mean(losses[15:])
					t.Logf("base ppl %.4f = untrained adapter ppl; loss %.4f (steps 1-5) → %.4f (steps 16-20)", want.PPL, first, last)
					if !(last < first) {
						t.Errorf("loss did not fall: %v", losses)
					}
				})
			}
		})
	}
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
