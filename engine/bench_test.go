package engine

import (
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"ladder-engine/internal/fixtures"
)

// benchModel is $LADDER_BENCH_MODEL (e.g. a `ladder-engine synth --preset
// 160m` file, the shapes of llama-bench.json), else the synth F32 fixture.
func benchModel(b *testing.B) *Model {
	path := os.Getenv("LADDER_BENCH_MODEL")
	if path == "" {
		path = fixtures.Path(b, "models/synth/synth-llama-Q4_0.gguf")
	}
	m, err := Load(path, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// cpuTime is the process's user+system CPU time. Other processes share
// this machine's two cores, so besides wall-clock tokens/s the benchmarks
// report tokens per CPU-second times the thread count: the speed with the
// cores to ourselves (exact when our workers never wait).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportSpeed(b *testing.B, m *Model, tokens int, cpu0 time.Duration) {
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
	if cpu := (cpuTime() - cpu0).Seconds(); cpu > 0 {
		b.ReportMetric(float64(tokens*m.Pool.Threads())/cpu, "tokens/cpu-s×threads")
	}
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
	cpu0 := cpuTime()
	for range b.N {
		d.Reset()
		if err := d.Decode(tok, false, logits); err != nil {
			b.Fatal(err)
		}
	}
	reportSpeed(b, m, n*b.N, cpu0)
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
	cpu0 := cpuTime()
	for range b.N {
		d.Reset()
		for _, t := range tok {
			if err := d.Decode([]int32{t}, false, logits); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportSpeed(b, m, n*b.N, cpu0)
}
