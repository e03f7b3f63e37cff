package cuda_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ladder"
	"ladder-engine/ladder/data"
)

const storyText = `Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the park. She ran to the ball and kicked it very hard. The ball went up, up, up into the sky. Lily was so happy!`

// windows cuts toks into examples of n+1 tokens (-c n+1), every token
// after the first a target.
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

// A 3-step ladder and a 3-step xLadder finetune at -c 32 --batch 2 (-c 8
// on the simulator, see fullSize) on the device track the CPU run: losses within 1e-3 relative (the backbone's
// hidden states agree to ~1e-4, see TestStoriesHidden, and three AdamW
// steps at lr 1e-2 barely separate the runs), and the adapter the device
// run writes decodes on the CPU within 1e-2 of the CPU run's adapter.
func TestStoriesFinetune(t *testing.T) {
	cpu, dev := loadBoth(t)
	nCtx := 8
	if fullSize() {
		nCtx = 32
	}
	exs := windows(cpu.Tok.Encode(strings.Repeat(storyText+" ", 2), true, false), nCtx-1)
	for _, method := range []string{"ladder", "xladder"} {
		t.Run(method, func(t *testing.T) {
			cfg := ladder.DefaultConfig()
			if method == "xladder" {
				cfg.Method, cfg.Delta = "xladder", 2
			}
			opts := ladder.DefaultTrainOptions()
			opts.Batch, opts.Steps, opts.LR = 2, 3, 1e-2
			train := func(m *engine.Model) ([]float64, string) {
				tr, err := ladder.NewTrainer(m, cfg, opts, exs, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Free()
				var losses []float64
				for range opts.Steps {
					s, err := tr.TrainStep()
					if err != nil {
						t.Fatal(err)
					}
					losses = append(losses, s.Loss)
				}
				path := filepath.Join(t.TempDir(), m.Backend.Name()+".gguf")
				if err := tr.S.Save(path, gguf.TypeF32, ladder.BaseFingerprint(m), nil); err != nil {
					t.Fatal(err)
				}
				return losses, path
			}
			want, cpuAdapter := train(cpu)
			start := time.Now()
			got, devAdapter := train(dev)
			t.Logf("-c %d --batch 2: losses cpu %.6f, device %.6f (%v on the device)", nCtx, want, got, time.Since(start))
			for i := range want {
				if d := math.Abs(got[i]-want[i]) / want[i]; !(d <= 1e-3) {
					t.Errorf("step %d: device loss %.6f, cpu %.6f (%.2g relative)", i+1, got[i], want[i], d)
				}
			}
			// Both adapters on the CPU: the device's decodes like the CPU's.
			toks := exs[0].Tokens[:8]
			logits := func(path string) []float32 {
				d, err := ladder.OpenDecoder(cpu, path, nCtx)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Free()
				out := make([]float32, len(toks)*cpu.NVocab)
				if err := d.Decode(toks, true, out); err != nil {
					t.Fatal(err)
				}
				return out
			}
			a, b := logits(devAdapter), logits(cpuAdapter)
			scale := 0.0
			for _, v := range b {
				scale = math.Max(scale, math.Abs(float64(v)))
			}
			for i := range b {
				if d := math.Abs(float64(a[i]-b[i])) / scale; !(d <= 1e-2) {
					t.Fatalf("logit %d with the device's adapter on the CPU: %g, with the CPU's %g", i, a[i], b[i])
				}
			}
		})
	}
}
