package tokenizer

import (
	"os"
	"testing"
	"time"

	"ladder-engine/internal/fixtures"
)

// BenchmarkEncode tokenizes tinyshakespeare (1.1 MB) with each kind of
// vocabulary and pre-tokenizer: SPM, the regex-engine path (qwen2, falcon)
// and the hand-written GPT-2 splitter.
func BenchmarkEncode(b *testing.B) {
	text, err := os.ReadFile(fixtures.Path(b, "data/text/tinyshakespeare.txt"))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, model string }{
		{"spm-stories260K", "models/stories260K/stories260K.gguf"},
		{"spm-llama2", "vocab/ggml-vocab-llama-spm.gguf"},
		{"bpe-qwen2", "models/synth/synth-qwen2-F32.gguf"},
		{"bpe-gpt2", "vocab/ggml-vocab-gpt-2.gguf"},
		{"bpe-falcon", "vocab/ggml-vocab-falcon.gguf"},
		{"bpe-deepseek-coder", "vocab/ggml-vocab-deepseek-coder.gguf"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tok := loadFixture(b, bc.model)
			s := string(text)
			b.SetBytes(int64(len(s)))
			b.ResetTimer()
			start := time.Now()
			n := 0
			for i := 0; i < b.N; i++ {
				n += len(tok.Encode(s, true, true))
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "tokens/s")
		})
	}
}

// BenchmarkLoad measures building a 65k-token BPE vocabulary.
func BenchmarkLoad(b *testing.B) {
	path := fixtures.Path(b, "vocab/ggml-vocab-falcon.gguf")
	for i := 0; i < b.N; i++ {
		loadedMu.Lock()
		delete(loaded, path)
		loadedMu.Unlock()
		loadFixture(b, "vocab/ggml-vocab-falcon.gguf")
	}
}
