package eval

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"ladder-engine/engine"
)

// spansSharingPrefixes makes spans the way the tasks do: a few prompts,
// several continuations each, some continuations prefixes of others.
func spansSharingPrefixes(r *rand.Rand) []Span {
	var spans []Span
	tok := func(n int) []int32 {
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(3 + r.IntN(20))
		}
		return s
	}
	for p := 0; p < 6; p++ {
		prompt := append([]int32{fakeBOS}, tok(1+r.IntN(12))...)
		for c := 0; c < 3; c++ {
			cont := tok(1 + r.IntN(4))
			spans = append(spans, Span{Tokens: append(slices.Clone(prompt), cont...), From: len(prompt)})
		}
		// A single-token continuation and an empty one.
		spans = append(spans, Span{Tokens: append(slices.Clone(prompt), 7), From: len(prompt)})
		spans = append(spans, Span{Tokens: slices.Clone(prompt), From: len(prompt)})
	}
	// Scoring from the second token: the whole sequence.
	spans = append(spans, Span{Tokens: append([]int32{fakeBOS}, tok(9)...), From: 1})
	r.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
	return spans
}

func TestLogProbsMatchDirect(t *testing.T) {
	spans := spansSharingPrefixes(rand.New(rand.NewPCG(1, 2)))
	want := 0
	for _, s := range spans {
		want += len(s.Tokens)
	}
	for _, tc := range []struct {
		name string
		dec  func(f *fakeDecoder) engine.Decoder
	}{
		{"truncating", func(f *fakeDecoder) engine.Decoder { return truncFake{f} }},
		{"reset-only", func(f *fakeDecoder) engine.Decoder { return f }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDecoder{nCtx: 64, logits: hashLogits}
			lm := NewLM(tc.dec(f), byteTok{})
			got, err := lm.LogProbs(spans)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range spans {
				if len(got[i]) != len(s.Tokens)-s.From {
					t.Fatalf("span %d: %d values, want %d", i, len(got[i]), len(s.Tokens)-s.From)
				}
				for j, lp := range got[i] {
					// float32 results of a float64 computation.
					if d := directLogProb(s.Tokens, s.From+j); math.Abs(float64(lp)-d) > 1e-5 {
						t.Errorf("span %d token %d: log p %v, direct %v", i, s.From+j, lp, d)
					}
				}
			}
			if int64(f.ran) != lm.Tokens {
				t.Errorf("LM counted %d tokens, decoder ran %d", lm.Tokens, f.ran)
			}
			t.Logf("%d tokens run for spans of %d tokens in all", f.ran, want)
			if f.ran >= want {
				t.Errorf("no prefix reuse: ran %d tokens for %d", f.ran, want)
			}
		})
	}
}

// TestLogProbsSingleTokenLabels: one prompt, single-token label words: the
// prompt runs once and no label token is ever run.
func TestLogProbsSingleTokenLabels(t *testing.T) {
	f := &fakeDecoder{nCtx: 64, logits: hashLogits}
	lm := NewLM(f, byteTok{})
	prompt := []int32{fakeBOS, 10, 11, 12, 13}
	var spans []Span
	for w := int32(20); w < 25; w++ {
		spans = append(spans, Span{Tokens: append(slices.Clone(prompt), w), From: len(prompt)})
	}
	if _, err := lm.LogProbs(spans); err != nil {
		t.Fatal(err)
	}
	if f.ran != len(prompt) {
		t.Errorf("ran %d tokens, want the %d of the prompt", f.ran, len(prompt))
	}
}

func TestLogProbsErrors(t *testing.T) {
	lm := NewLM(&fakeDecoder{nCtx: 4, logits: hashLogits}, byteTok{})
	for _, s := range []Span{
		{Tokens: []int32{1, 5}, From: 0},
		{Tokens: []int32{1, 5}, From: 3},
		{Tokens: []int32{1, 5, 6, 7, 8, 9}, From: 1}, // 5 to run in a context of 4
	} {
		if _, err := lm.LogProbs([]Span{s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

func TestGreedy(t *testing.T) {
	f := &fakeDecoder{nCtx: 40, logits: hashLogits}
	lm := NewLM(truncFake{f}, byteTok{})
	prompt := []int32{fakeBOS, 30, 31, 32}
	gen, err := lm.Greedy(prompt, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Direct: argmax of the logits after each prefix.
	seq := slices.Clone(prompt)
	row := make([]float32, fakeVocab)
	var want []int32
	for len(want) < 10 {
		hashLogits(seq, row)
		next := engine.Argmax(row)
		if next == fakeEOS {
			break
		}
		want = append(want, next)
		seq = append(seq, next)
	}
	if !slices.Equal(gen, want) {
		t.Fatalf("greedy %v, want %v", gen, want)
	}
	// The same prompt again: nothing but the generated tokens reruns.
	ran := f.ran
	gen2, _ := lm.Greedy(prompt, 10, nil)
	if !slices.Equal(gen2, want) {
		t.Fatalf("second greedy %v, want %v", gen2, want)
	}
	if f.ran-ran > len(want) {
		t.Errorf("second run decoded %d tokens, want at most %d", f.ran-ran, len(want))
	}
	// Stop after 3 and at the end of the context.
	gen3, _ := lm.Greedy(prompt, 10, func(g []int32) bool { return len(g) == 3 })
	if len(gen3) != min(3, len(want)) {
		t.Errorf("stop: %d tokens", len(gen3))
	}
	long := make([]int32, 38)
	long[0] = fakeBOS
	if g, err := lm.Greedy(long, 10, nil); err != nil || len(g) > 3 {
		t.Errorf("at the context end: %d tokens, %v", len(g), err)
	}
}
