package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode feeds arbitrary bytes to an SPM and two BPE vocabularies (the
// regex-engine path and the hand-written GPT-2 splitter): Encode must not
// panic, every id must be in range, and valid text must come back from
// Decode unchanged (SPM: after its space prefix). Invalid UTF-8 need not
// round-trip, in llama.cpp either: BPE reads bad bytes as U+FFFD, and SPM's
// byte fallback can swallow the "▁" of an escaped space after a bad lead byte.
func FuzzEncode(f *testing.F) {
	for _, s := range roundTripTexts {
		f.Add(s)
	}
	for _, s := range []string{"", " ", "\xff", "a\xc3", "<s></s><unk>", "<|im_start|><|im_end|>", "\u2581x",
		"'S'LL'm", "\r\n\r\n", strings.Repeat(" ", 40) + "x", "٣٤٥ ½", "\x00\x01", "\xff "} {
		f.Add(s)
	}
	spm := loadFixture(f, "models/stories260K/stories260K.gguf")
	qwen := loadFixture(f, "models/synth/synth-qwen2-F32.gguf")
	gpt2 := loadFixture(f, "vocab/ggml-vocab-gpt-2.gguf")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range []*Tokenizer{spm, qwen, gpt2} {
			for _, flags := range [][2]bool{{false, false}, {true, true}, {true, false}} {
				ids := tok.Encode(s, flags[0], flags[1])
				for _, id := range ids {
					if id < 0 || int(id) >= tok.VocabSize() {
						t.Fatalf("id %d out of range for %q", id, s)
					}
				}
				_ = tok.Detokenize(ids, flags[0], flags[1])
			}
			got := tok.Decode(tok.Encode(s, false, false))
			switch {
			case !utf8.ValidString(s):
			case tok.Kind() == KindSPM && !strings.Contains(s, "\u2581"):
				if got != " "+s && s != "" {
					t.Fatalf("SPM round trip of %q gave %q", s, got)
				}
			case tok.Kind() == KindBPE && got != s:
				t.Fatalf("BPE round trip of %q gave %q", s, got)
			}
		}
	})
}
