package eval

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"ladder-engine/engine"
	"ladder-engine/internal/fixtures"
)

func loadStories(t *testing.T) *engine.Model {
	t.Helper()
	m, err := engine.Load(fixtures.Path(t, "models/stories260K/stories260K.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestClassifySST2Stories260K: the base TinyStories model knows nothing of
// sentiment, so it must score near chance on SST-2 dev; and the label-word
// scores of the cached, prefix-sharing LM must equal a direct computation
// (a fresh cache per sequence, every row's logits).
func TestClassifySST2Stories260K(t *testing.T) {
	m := loadStories(t)
	const n = 200 // of 872, to keep the test short; the full set is in the report
	set, err := Load(Options{Task: TaskClassify, Data: fixtures.Path(t, "data/sst2/dev.tsv"), Limit: n})
	if err != nil {
		t.Fatal(err)
	}
	lm := NewEngineLM(m, 0)
	defer lm.Free()
	r, err := set.Run(lm)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", r)
	if r.N != n || r.Accuracy < 0.35 || r.Accuracy > 0.65 {
		t.Errorf("base stories260K on %d SST-2 sentences: %v, want near chance", n, r)
	}

	// Direct scores of the first examples.
	recs := set.records[:4]
	f, err := classifyFormatter(m.Tok, set.labelWords(), "")
	if err != nil {
		t.Fatal(err)
	}
	d := m.NewDecoder(0)
	defer d.Free()
	for i := range recs {
		_, spans, _, err := classifySpans(f, &recs[i], d.NCtx())
		if err != nil {
			t.Fatal(err)
		}
		for j, sp := range spans {
			d.Reset()
			run := sp.Tokens[:len(sp.Tokens)-1]
			logits := make([]float32, len(run)*m.NVocab)
			if err := d.Decode(run, true, logits); err != nil {
				t.Fatal(err)
			}
			var want float64
			for k := sp.From; k < len(sp.Tokens); k++ {
				want += logSoftmaxAt(logits[(k-1)*m.NVocab:k*m.NVocab], sp.Tokens[k])
			}
			// Same kernels on the same rows, batched differently: only
			// float32 summation order differs.
			if got := r.Examples[i].Scores[j]; math.Abs(got-want) > 1e-3 {
				t.Errorf("example %d label %d: score %.5f, direct %.5f", i, j, got, want)
			}
		}
	}
}

// TestPPLStories260K: the ppl task is the perplexity command's protocol:
// after 20 chunks of 128 tokens of tinystories.txt, llama-perplexity's
// running value is 4.3656.
func TestPPLStories260K(t *testing.T) {
	m := loadStories(t)
	refPath := fixtures.Path(t, "reference/ppl/stories260K.ppl.json")
	raw, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		TextFile string    `json:"text_file"`
		Running  []float64 `json:"running_ppl_per_chunk"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	const chunks = 20
	set, err := Load(Options{Task: TaskPPL, Data: fixtures.Path(t, ref.TextFile), Limit: chunks, Ctx: 128})
	if err != nil {
		t.Fatal(err)
	}
	lm := NewEngineLM(m, 128)
	defer lm.Free()
	r, err := set.Run(lm)
	if err != nil {
		t.Fatal(err)
	}
	want := ref.Running[chunks-1]
	// llama.cpp prints 4 decimals and keeps an f16 KV cache like ours; its
	// 8-bit activation rounding does not apply to this F32 model.
	if math.Abs(r.PPL-want) > 2e-3*want {
		t.Errorf("ppl after %d chunks %.4f, llama-perplexity %.4f", chunks, r.PPL, want)
	}
	if r.N != chunks*(128-1-64) || !(r.CILow < r.PPL && r.PPL < r.CIHigh) {
		t.Errorf("n %d, interval [%v, %v] around %v", r.N, r.CILow, r.CIHigh, r.PPL)
	}
	t.Logf("%v", r)
}

// BenchmarkClassifySST2 times label-word classification of the whole SST-2
// dev set (872 sentences) on stories260K at its training context.
func BenchmarkClassifySST2(b *testing.B) {
	m, err := engine.Load(fixtures.Path(b, "models/stories260K/stories260K.gguf"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	set, err := Load(Options{Task: TaskClassify, Data: fixtures.Path(b, "data/sst2/dev.tsv")})
	if err != nil {
		b.Fatal(err)
	}
	lm := NewEngineLM(m, 0)
	defer lm.Free()
	var r *Result
	for b.Loop() {
		if r, err = set.Run(lm); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.TokensPerSec(), "tokens/s")
	b.ReportMetric(float64(r.N)/r.Seconds, "sentences/s")
}
