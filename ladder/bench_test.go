package ladder

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"ladder-engine/engine"
	"ladder-engine/internal/fixtures"
	"ladder-engine/ladder/data"
)

// builtinSetup loads the embedded default backbone and its task.
func builtinSetup(b testing.TB, ctx int) (*engine.Model, []data.Example, []data.Example) {
	path := filepath.Join(b.TempDir(), "tiny.gguf")
	if err := BuiltinModel(path); err != nil {
		b.Fatal(err)
	}
	m, err := engine.Load(path, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	train, val := BuiltinTask(3000, 300)
	enc := data.Encoder{Encode: m.Tok.Encode, BOS: m.Tok.BOS(), EOS: m.Tok.EOS(), AddBOS: m.Tok.AddBOS()}
	f, err := data.NewFormatter(enc, data.Options{Context: ctx})
	if err != nil {
		b.Fatal(err)
	}
	return m, f.Windows(train), f.Windows(val)
}

// BenchmarkTrainStep is one optimizer step of the embedded default
// (batch 8 × 64 tokens, r = 4); reports training tokens/s.
func BenchmarkTrainStep(b *testing.B) {
	m, train, val := builtinSetup(b, 64)
	cfg := DefaultConfig()
	cfg.Reduction = 4
	opts := DefaultTrainOptions()
	opts.Steps = 1 << 30
	tr, err := NewTrainer(m, cfg, opts, train, val)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Free()
	benchSteps(b, tr)
}

// BenchmarkValidate is one pass over the embedded default's validation split.
func BenchmarkValidate(b *testing.B) {
	m, train, val := builtinSetup(b, 64)
	cfg := DefaultConfig()
	cfg.Reduction = 4
	tr, err := NewTrainer(m, cfg, DefaultTrainOptions(), train, val)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Free()
	n := 0
	for _, ex := range val {
		n += len(ex.Tokens) - 1
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Validate(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkTrainStepModel is one ladder step (batch 1, -c 512, r = 8) of
// $LADDER_BENCH_MODEL on tinyshakespeare, the training-throughput
// case; compare its tokens/s with engine's BenchmarkPromptProcessing on the
// same file. Skipped without the variable (the default fixture is too small
// to say anything about speed).
func BenchmarkTrainStepModel(b *testing.B) {
	path := os.Getenv("LADDER_BENCH_MODEL")
	if path == "" {
		b.Skip("set LADDER_BENCH_MODEL to a model file (e.g. ladder-engine synth --preset 160m --type q4_0)")
	}
	m, err := engine.Load(path, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	enc := data.Encoder{Encode: m.Tok.Encode, BOS: m.Tok.BOS(), EOS: m.Tok.EOS(), AddBOS: m.Tok.AddBOS()}
	ds, err := data.Load(fixtures.Path(b, "data/text/tinyshakespeare.txt"), "", enc,
		data.Options{Context: 512, ValSplit: 0.1})
	if err != nil {
		b.Fatal(err)
	}
	opts := DefaultTrainOptions()
	opts.Batch = 1
	opts.Steps = 1 << 30
	tr, err := NewTrainer(m, DefaultConfig(), opts, ds.Train, ds.Val[:1])
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Free()
	if _, err := tr.TrainStep(); err != nil { // first step sizes the buffers
		b.Fatal(err)
	}
	benchSteps(b, tr)
}

// benchSteps times training steps of tr and reports tokens/s, and for
// the ladder the seconds per step of each phase.
func benchSteps(b *testing.B, tr *Trainer) {
	tokens := 0
	tr.Phases = StepPhases{}
	defer func() {
		if tr.S == nil {
			return
		}
		ph, n := tr.Phases, float64(b.N)
		for _, m := range []struct {
			d    time.Duration
			unit string
		}{{ph.Backbone, "backbone-s/op"}, {ph.SideFwd, "side-fwd-s/op"}, {ph.Head, "head-s/op"}, {ph.SideBwd, "side-bwd-s/op"}, {ph.Down, "down-s/op"}} {
			b.ReportMetric(m.d.Seconds()/n, m.unit)
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		r, err := tr.TrainStep()
		if err != nil {
			b.Fatal(err)
		}
		tokens += r.Tokens
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}
