package ladder

import (
	"math"
	"strings"
	"testing"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
	"ladder-engine/ops"
)

// A 5-step ladder finetune and an xLadder one on the strict backend (the
// CPU kernels behind buffers nothing else can read) give the CPU backend's
// losses, gradient norms, validation loss, trained values and adapter
// decoding bit for bit: the training path — backbone, ladders, side
// network, head, backward, optimizer — goes through the Backend interface
// only (a host read behind it would panic).
func TestStrictBackendFinetune(t *testing.T) {
	path := fixtures.Path(t, storiesPath)
	cpu := loadStories(t)
	strict, err := engine.LoadOn(path, 2, func(p *ops.Pool) ops.Backend { return ops.NewStrict(p) })
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	toks := tokens(cpu, strings.Repeat(storyText+" ", 2))
	exs := windows(toks, 24)
	for _, method := range []string{"ladder", "xladder"} {
		t.Run(method, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Reduction = 2
			cfg.LadderType = gguf.TypeF16 // f16 ladder inputs: the converting copies too
			if method == "xladder" {
				cfg.Method, cfg.Delta = "xladder", 2
			}
			opts := DefaultTrainOptions()
			opts.Batch, opts.Steps, opts.LR = 2, 5, 1e-2
			type run struct {
				loss, norm []float64
				val        float64
				values     []float32
				logits     []float32
			}
			train := func(m *engine.Model) run {
				tr, err := NewTrainer(m, cfg, opts, exs, exs[:2])
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Free()
				var r run
				for range opts.Steps {
					s, err := tr.TrainStep()
					if err != nil {
						t.Fatal(err)
					}
					r.loss = append(r.loss, s.Loss)
					r.norm = append(r.norm, s.GradNorm)
				}
				if r.val, err = tr.Validate(); err != nil {
					t.Fatal(err)
				}
				r.values = tr.S.hostValues()
				d := NewDecoder(m, tr.S, 64)
				defer d.Free()
				r.logits = make([]float32, 8*m.NVocab)
				if err := d.Decode(toks[:8], true, r.logits); err != nil {
					t.Fatal(err)
				}
				return r
			}
			a, b := train(cpu), train(strict)
			for i := range a.loss {
				if a.loss[i] != b.loss[i] || a.norm[i] != b.norm[i] {
					t.Errorf("step %d: cpu loss %.9g norm %.9g, strict %.9g %.9g", i+1, a.loss[i], a.norm[i], b.loss[i], b.norm[i])
				}
			}
			if !(a.loss[4] < a.loss[0]) {
				t.Errorf("loss did not fall: %v", a.loss)
			}
			if a.val != b.val {
				t.Errorf("validation: cpu %.9g, strict %.9g", a.val, b.val)
			}
			for i := range a.values {
				if math.Float32bits(a.values[i]) != math.Float32bits(b.values[i]) {
					t.Fatalf("trained value %d: cpu %g, strict %g", i, a.values[i], b.values[i])
				}
			}
			for i := range a.logits {
				if math.Float32bits(a.logits[i]) != math.Float32bits(b.logits[i]) {
					t.Fatalf("adapter logits[%d]: cpu %g, strict %g", i, a.logits[i], b.logits[i])
				}
			}
		})
	}
}
