package tokenizer

import (
	"fmt"
	"testing"
)

// Tiny hand-made vocabularies whose tokenizations can be worked out on
// paper; they need no fixtures.

func smallSPM(t *testing.T, extra []string, scores []float32) *Tokenizer {
	t.Helper()
	toks := []string{"<unk>", "<s>", "</s>"}
	types := []int32{TypeUnknown, TypeControl, TypeControl}
	sc := []float32{0, 0, 0}
	for b := 0; b < 256; b++ {
		toks = append(toks, fmt.Sprintf("<0x%02X>", b))
		types = append(types, TypeByte)
		sc = append(sc, 0)
	}
	toks = append(toks, extra...)
	sc = append(sc, scores...)
	for range extra {
		types = append(types, TypeNormal)
	}
	tok, err := New(Config{Model: "llama", Tokens: toks, Scores: sc, Types: types})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func textsOf(tok *Tokenizer, ids []int32) []string {
	var s []string
	for _, id := range ids {
		s = append(s, tok.TokenText(id))
	}
	return s
}

func TestSmallSPM(t *testing.T) {
	cases := []struct {
		tokens []string
		scores []float32
		text   string
		want   string
	}{
		// "ab" scores higher than "▁a": merge it first, then "▁ab" does not exist.
		{[]string{"▁", "a", "b", "▁a", "ab"}, []float32{-5, -5, -5, -1, -0.5}, "ab", "[▁ ab]"},
		// now "▁a" wins and "ab" can no longer form.
		{[]string{"▁", "a", "b", "▁a", "ab"}, []float32{-5, -5, -5, -0.1, -0.5}, "ab", "[▁a b]"},
		// equal scores: the leftmost pair merges first.
		{[]string{"▁", "a", "▁a", "aa"}, []float32{-5, -5, -1, -1}, "aa", "[▁a a]"},
		// a character with no token falls back to its UTF-8 bytes.
		{[]string{"▁", "a"}, nil, "aé", "[▁ a <0xC3> <0xA9>]"},
		// spaces become ▁, runs of them stay separate symbols.
		{[]string{"▁", "a", "▁▁"}, []float32{-5, -5, -1}, "a  a", "[▁ a ▁▁ a]"},
	}
	for _, c := range cases {
		sc := c.scores
		if sc == nil {
			sc = make([]float32, len(c.tokens))
		}
		tok := smallSPM(t, c.tokens, sc)
		got := fmt.Sprint(textsOf(tok, tok.Encode(c.text, false, false)))
		if got != c.want {
			t.Errorf("%v %v on %q: got %s want %s", c.tokens, c.scores, c.text, got, c.want)
		}
	}
	tok := smallSPM(t, []string{"▁", "a"}, []float32{0, 0})
	if got := tok.Encode("a", true, false); len(got) != 3 || got[0] != 1 {
		t.Errorf("BOS: %v", got)
	}
}

func smallBPE(t *testing.T, pre string, extra, merges []string) *Tokenizer {
	t.Helper()
	var toks []string
	for b := 0; b < 256; b++ {
		toks = append(toks, byteToUTF8[b])
	}
	toks = append(toks, extra...)
	if merges == nil {
		merges = []string{}
	}
	tok, err := New(Config{Model: "gpt2", Pre: pre, Tokens: toks, Merges: merges})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSmallBPE(t *testing.T) {
	cases := []struct {
		extra, merges []string
		text, want    string
	}{
		// lowest rank first: "a b" (0) before "Ġ a" (1); then "Ġ ab" joins.
		{[]string{"ab", "Ġa", "Ġab"}, []string{"a b", "Ġ a", "Ġ ab"}, " ab", "[Ġab]"},
		// without "Ġ ab" the word stays split after "a b".
		{[]string{"ab", "Ġa", "Ġab"}, []string{"a b", "Ġ a", "Ġa b"}, " ab", "[Ġ ab]"},
		// merges never cross pre-tokenizer words: "a" and " b" are words.
		{[]string{"ab", "aĠ"}, []string{"a Ġ", "a b"}, "a b", "[a Ġ b]"},
		// bytes map to GPT-2 characters: newline is Ċ, é is Ã©.
		{nil, nil, "\né", "[Ċ Ã ©]"},
		// a merge result that is not a token falls back to single bytes of
		// its text that are tokens (here none: "Ã©" is two 2-byte chars).
		{nil, []string{"Ã ©"}, "é", "[]"},
	}
	for _, c := range cases {
		tok := smallBPE(t, "gpt-2", c.extra, c.merges)
		got := fmt.Sprint(textsOf(tok, tok.Encode(c.text, false, false)))
		if got != c.want {
			t.Errorf("%v %v on %q: got %s want %s", c.extra, c.merges, c.text, got, c.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Model: "llama"},
		{Model: "bert", Tokens: []string{"a"}},
		{Model: "gpt2", Tokens: []string{"a"}}, // no merges
		{Model: "gpt2", Pre: "no-such-pre", Tokens: []string{"a"}, Merges: []string{}}, // unknown pre
		{Model: "llama", Tokens: []string{"a", "b"}, Scores: []float32{0}},
		{Model: "llama", Tokens: []string{"a", "b"}, Types: []int32{1}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	// every listed pre-tokenizer compiles
	for _, p := range preTypes {
		for _, name := range p.names {
			if _, err := New(Config{Model: "gpt2", Pre: name, Tokens: []string{"a"}, Merges: []string{}}); err != nil {
				t.Errorf("pre %q: %v", name, err)
			}
		}
	}
}
