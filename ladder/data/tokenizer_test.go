package data

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"ladder-engine/engine/tokenizer"
	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
)

// realEncoder loads the tokenizer of a fixture model.
func realEncoder(t *testing.T, rel string) (Encoder, *tokenizer.Tokenizer) {
	t.Helper()
	f, err := gguf.Open(fixtures.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	enc := Encoder{Encode: tok.Encode, BOS: tok.BOS(), EOS: tok.EOS(), AddBOS: tok.AddBOS()}
	if f.Has("tokenizer.chat_template") {
		enc.ChatTemplate, _ = f.GetString("tokenizer.chat_template")
	}
	return enc, tok
}

// TestRealTokenizerMatchesLlamaTokenize: a text example is BOS + the text's
// tokens + EOS, and the BOS + text part must equal llama-tokenize's output
// for stories260K (../shared/reference/tokens).
func TestRealTokenizerMatchesLlamaTokenize(t *testing.T) {
	enc, _ := realEncoder(t, "models/stories260K/stories260K.gguf")
	raw, err := os.ReadFile(fixtures.Path(t, "reference/tokens/stories260K.tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string][]int32
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	f := mustFormatter(t, enc, Options{Context: 4096})
	for text, want := range ref {
		ex, _, err := f.Example(&Record{Kind: KindText, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		want = append(slices.Clone(want), enc.EOS)
		if !reflect.DeepEqual(ex.Tokens, want) {
			t.Errorf("%q:\n got %v\nwant %v (llama-tokenize + EOS)", text, ex.Tokens, want)
		}
	}
}

// TestRealTokenizerPromptBoundary: with SentencePiece, a prompt/completion
// example holds exactly the tokens of the whole text (not prompt and
// completion tokenized apart), and the loss covers the completion.
func TestRealTokenizerPromptBoundary(t *testing.T) {
	enc, tok := realEncoder(t, "models/stories260K/stories260K.gguf")
	f := mustFormatter(t, enc, Options{Context: 256})
	for _, r := range []Record{
		{Kind: KindPrompt, Prompt: "Once upon a time, there was a", Completion: " little girl named Lily."},
		{Kind: KindClassify, Text: "it 's a charming and often affecting journey .", Label: "1"},
		{Kind: KindPrompt, Prompt: AlpacaPrompt("Say hi.", ""), Completion: "Hi!"},
	} {
		ex, _, err := f.Example(&r)
		if err != nil {
			t.Fatal(err)
		}
		segs, _ := f.Segments(&r)
		whole := tok.Encode(segs[0].Text+segs[1].Text, true, false)
		body := ex.Tokens
		if r.Kind == KindPrompt {
			body = body[:len(body)-1] // EOS
		}
		if !reflect.DeepEqual(body, whole) {
			t.Errorf("%q: tokens %v, whole-text tokens %v", segs[0].Text+segs[1].Text, body, whole)
		}
		var trained []int32
		for i, m := range ex.Mask {
			if m {
				trained = append(trained, ex.Tokens[i])
			}
		}
		got := tok.Decode(trained)
		want := strings.TrimSpace(segs[1].Text)
		if !strings.Contains(got, want) || strings.Contains(got, strings.TrimSpace(segs[0].Text)) {
			t.Errorf("trained tokens decode to %q, want the completion %q", got, segs[1].Text)
		}
	}
}

// TestRealTokenizerChat renders chatml with the qwen2 BPE vocabulary, whose
// <|im_start|>/<|im_end|> are special tokens 757/758: the trained part of
// each assistant turn must end in <|im_end|> (758), parsed as one token.
func TestRealTokenizerChat(t *testing.T) {
	enc, tok := realEncoder(t, "models/synth/synth-qwen2-F32.gguf")
	f := mustFormatter(t, enc, Options{Context: 256, ChatTemplate: "chatml"})
	ex, _, err := f.Example(&Record{Kind: KindChat, Messages: []Message{
		{"system", "Be brief."}, {"user", "Who art thou?"}, {"assistant", "A king."}, {"user", "Of what?"}, {"assistant", "Of Denmark."},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var runs [][]int32
	for i, m := range ex.Mask {
		if m && (i == 0 || !ex.Mask[i-1]) {
			runs = append(runs, nil)
		}
		if m {
			runs[len(runs)-1] = append(runs[len(runs)-1], ex.Tokens[i])
		}
	}
	if len(runs) != 2 {
		t.Fatalf("%d trained runs, want 2 (the assistant turns)", len(runs))
	}
	for i, want := range []string{"A king.<|im_end|>", "Of Denmark.<|im_end|>"} {
		if got := tok.Decode(runs[i]); got != want || runs[i][len(runs[i])-1] != 758 {
			t.Errorf("turn %d: trained %q %v, want %q ending in token 758", i, got, runs[i], want)
		}
	}
	if n := strings.Count(tok.Decode(ex.Tokens), "<|im_start|>"); n != 5 {
		t.Errorf("%d <|im_start|> in %q", n, tok.Decode(ex.Tokens))
	}
}

// TestRealTokenizerLoad times the whole path on SST-2 dev and tinystories
// with the real tokenizer (both take well under a second here).
func TestRealTokenizerLoad(t *testing.T) {
	enc, tok := realEncoder(t, "models/stories260K/stories260K.gguf")
	t0 := time.Now()
	ds, err := Load(fixtures.Path(t, "data/sst2/dev.tsv"), "", enc, Options{Context: 128, ValSplit: 0.1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SST-2 dev: train %v; val %v (%v)", ds.TrainStats, ds.ValStats, time.Since(t0))
	if len(ds.Train)+len(ds.Val) != 872 || ds.TrainStats.Dropped != 0 {
		t.Errorf("SST-2 dev: %d + %d examples, %d dropped", len(ds.Train), len(ds.Val), ds.TrainStats.Dropped)
	}
	// The 512-token vocabulary spends ~80 tokens on a review, so some are
	// cut at -c 128: from the front, so the label word is always kept.
	for _, ex := range ds.Train {
		var trained []int32
		for j, m := range ex.Mask {
			if m {
				trained = append(trained, ex.Tokens[j])
			}
		}
		if got := strings.TrimSpace(tok.Decode(trained)); got != DefaultLabelWords[ex.Label] {
			t.Fatalf("example with label %d trains %q", ex.Label, got)
		}
	}
	label, choices, err := ds.Formatter.Choices(&ds.ValRecords[0])
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range choices {
		var trained []int32
		for j, m := range c.Mask {
			if m {
				trained = append(trained, c.Tokens[j])
			}
		}
		if got := strings.TrimSpace(tok.Decode(trained)); got != DefaultLabelWords[i] {
			t.Errorf("choice %d (gold %d) trains %q", i, label, got)
		}
	}

	t0 = time.Now()
	ds, err = Load(fixtures.Path(t, "data/text/tinystories_sample.txt"), "", enc, Options{Context: 128, ValSplit: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tinystories: train %v; val %v (%v)", ds.TrainStats, ds.ValStats, time.Since(t0))
	for _, ex := range ds.Train {
		if len(ex.Tokens) > 129 || ex.Tokens[0] != enc.BOS {
			t.Fatalf("window of %d tokens starting %d", len(ex.Tokens), ex.Tokens[0])
		}
	}
	b, _ := NewBatcher(ds.Train, 8, 1, true)
	if bt := b.Next(); bt.B != 8 || bt.T != 128 || bt.NTargets != 8*128 {
		t.Errorf("first batch %dx%d with %d targets, want 8x128 with 1024", bt.B, bt.T, bt.NTargets)
	}
}
