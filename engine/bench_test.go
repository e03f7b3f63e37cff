package engine

import (
	"math/rand/v2"
	"os"
	"testing"

	"ladder-engine/internal/fixtures"
)

// benchModel is $LADDER_BENCH_MODEL (e.g. a `ladder-engine synth --preset
// 160m` file, the shapes of llama-bench.json), else the synth F32 fixture.
func benchModel(b *testing.B) *Model {
	path := os.Getenv("LADDER_BENCH_MODEL")
	if path == "" {
		path = fixtures.Path(b, "models/synth/synth-llama-Q4_0.gguf")
	}
	m, err := Load(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

func randomTokens(m *Model, n int) []int32 {
	rng := rand.New(rand.NewPCG(1, 2))
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(rng.IntN(m.NVocab))
	}
	return t
}

// BenchmarkPromptProcessing is llama-bench's pp: 512 tokens in one batch,
// logits of the last one only. Reports tokens/s.
func BenchmarkPromptProcessing(b *testing.B) {
	m := benchModel(b)
	const n = 512
	d := m.NewDecoder(n)
	defer d.Free()
	tok := randomTokens(m, n)
	logits := make([]float32, m.NVocab)
	b.ResetTimer()
	for range b.N {
		d.Reset()
		if err := d.Decode(tok, false, logits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkGeneration is llama-bench's tg: 32 tokens decoded one by one.
func BenchmarkGeneration(b *testing.B) {
	m := benchModel(b)
	const n = 32
	d := m.NewDecoder(n)
	defer d.Free()
	tok := randomTokens(m, n)
	logits := make([]float32, m.NVocab)
	b.ResetTimer()
	for range b.N {
		d.Reset()
		for _, t := range tok {
			if err := d.Decode([]int32{t}, false, logits); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
