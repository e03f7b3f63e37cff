package tokenizer

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
)

// loadFixture opens a GGUF fixture and builds its tokenizer, once per path.
var (
	loadedMu sync.Mutex
	loaded   = map[string]*Tokenizer{}
)

func loadFixture(t testing.TB, rel string) *Tokenizer {
	t.Helper()
	path := fixtures.Path(t, rel)
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if tok, ok := loaded[path]; ok {
		return tok
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	loaded[path] = tok
	return tok
}

// vocabSuites are llama.cpp's test-tokenizer-0 vocabularies in ../shared/vocab.
var vocabSuites = []string{"llama-spm", "gpt-2", "deepseek-coder", "falcon", "mpt", "starcoder", "refact"}

type vocabCase struct {
	text string
	want []int32
}

// readVocabSuite parses a .inp/.out pair: strings separated by
// "\n__ggml_vocab_test__\n", one line of space-separated ids per string.
func readVocabSuite(t *testing.T, name string) []vocabCase {
	t.Helper()
	inp, err := os.ReadFile(fixtures.Path(t, "vocab/ggml-vocab-"+name+".gguf.inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(fixtures.Path(t, "vocab/ggml-vocab-"+name+".gguf.out"))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	if texts[len(texts)-1] == "" {
		texts = texts[:len(texts)-1]
	}
	lines := strings.Split(string(out), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(texts) != len(lines) {
		t.Fatalf("%s: %d strings but %d id lines", name, len(texts), len(lines))
	}
	cases := make([]vocabCase, len(texts))
	for i := range texts {
		cases[i].text = texts[i]
		for _, f := range strings.Fields(lines[i]) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s.out line %d: %v", name, i+1, err)
			}
			cases[i].want = append(cases[i].want, int32(v))
		}
	}
	return cases
}

func idsEqual(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestVocabSuites runs llama.cpp's own tokenizer tests: no BOS, no special
// parsing, ids must match exactly.
func TestVocabSuites(t *testing.T) {
	for _, name := range vocabSuites {
		t.Run(name, func(t *testing.T) {
			tok := loadFixture(t, "vocab/ggml-vocab-"+name+".gguf")
			for i, c := range readVocabSuite(t, name) {
				got := tok.Encode(c.text, false, false)
				if !idsEqual(got, c.want) {
					t.Errorf("case %d %q:\n got  %v\n want %v", i, c.text, got, c.want)
				}
			}
		})
	}
}

// TestReferenceTokens compares with llama-tokenize's default settings (BOS
// when the vocabulary asks for it, special tokens parsed).
func TestReferenceTokens(t *testing.T) {
	for _, tc := range []struct{ ref, model string }{
		{"stories260K", "models/stories260K/stories260K.gguf"},
		{"synth-llama", "models/synth/synth-llama-F32.gguf"},
		{"synth-qwen2", "models/synth/synth-qwen2-F32.gguf"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			raw, err := os.ReadFile(fixtures.Path(t, "reference/tokens/"+tc.ref+".tokens.json"))
			if err != nil {
				t.Fatal(err)
			}
			var ref map[string][]int32
			if err := json.Unmarshal(raw, &ref); err != nil {
				t.Fatal(err)
			}
			tok := loadFixture(t, tc.model)
			for text, want := range ref {
				if got := tok.Encode(text, true, true); !idsEqual(got, want) {
					t.Errorf("%q:\n got  %v\n want %v", text, got, want)
				}
			}
		})
	}
}

// roundTripTexts are valid UTF-8 strings every vocabulary must reproduce.
var roundTripTexts = []string{
	"Hello world! It's a simple test; don't worry, we'll see.",
	"   leading spaces,  double  spaces and trailing spaces   ",
	"line one\nline two\n\n  indented line\n\n\nend\r\n\tTab",
	"12345 3.14 and 1,000,000 (year 2025)",
	"héllo wörld 日本語 🙂 нещо на Български \u00a0nbsp \u3000ideographic",
	"Punctuation: (a) [b] {c}; \"quoted\" 'single' -- dashes... ?! @#$%^&*_+=~`|\\/<>",
	"'s 'S 'll 'LL 'Re I'm you'VE",
}

// TestRoundTrip checks Decode(Encode(x)) == x for valid text, on every
// vocabulary. SPM adds a leading space (add_space_prefix), which Detokenize
// removes as llama_detokenize does.
func TestRoundTrip(t *testing.T) {
	models := []string{"models/stories260K/stories260K.gguf", "models/synth/synth-qwen2-F32.gguf",
		"models/tiny-random/llama-2-tiny-random.gguf"}
	for _, name := range vocabSuites {
		models = append(models, "vocab/ggml-vocab-"+name+".gguf")
	}
	for _, m := range models {
		t.Run(m, func(t *testing.T) {
			tok := loadFixture(t, m)
			for _, s := range roundTripTexts {
				ids := tok.Encode(s, false, false)
				want := s
				if tok.Kind() == KindSPM {
					want = " " + s
				}
				if got := tok.Decode(ids); got != want {
					t.Errorf("Decode(Encode(%q)) = %q", s, got)
				}
				if got := tok.Detokenize(ids, false, false); tok.Kind() == KindSPM && got != s {
					t.Errorf("Detokenize(Encode(%q)) = %q", s, got)
				}
			}
		})
	}
}

// TestSpecialParsing checks parseSpecial and addSpecial on both kinds.
func TestSpecialParsing(t *testing.T) {
	spm := loadFixture(t, "models/stories260K/stories260K.gguf")
	if got := spm.Encode("", true, true); !idsEqual(got, []int32{1}) {
		t.Errorf("SPM empty with BOS: %v", got)
	}
	if got := spm.Encode("", false, true); len(got) != 0 {
		t.Errorf("SPM empty: %v", got)
	}
	// "</s>" is a control token: one id when parsed, text otherwise. After a
	// special token the next text gets a space prefix again.
	a := spm.Encode("a</s>b", false, true)
	if len(a) < 3 || !containsID(a, 2) {
		t.Errorf("SPM parse special: %v", a)
	}
	if b := spm.Encode("a</s>b", false, false); containsID(b, 2) {
		t.Errorf("SPM without parse special contains EOS: %v", b)
	}
	want := append(append(spm.Encode("a", false, false), 2), spm.Encode("b", false, false)...)
	if !idsEqual(a, want) {
		t.Errorf("SPM a</s>b = %v, want %v", a, want)
	}

	bpe := loadFixture(t, "models/synth/synth-qwen2-F32.gguf")
	got := bpe.Encode("<|im_start|>user\nhi<|im_end|>", true, true)
	if got[0] != 757 || got[len(got)-1] != 758 {
		t.Errorf("BPE chat markup: %v", got)
	}
	if bpe.AddBOS() || spm.AddBOS() != true {
		t.Errorf("AddBOS: qwen2 %v stories %v", bpe.AddBOS(), spm.AddBOS())
	}
	if !bpe.IsEOG(758) || !bpe.IsEOG(756) || bpe.IsEOG(757) || !spm.IsEOG(2) || spm.IsEOG(1) {
		t.Errorf("IsEOG wrong")
	}
	if bpe.Decode(got) != "<|im_start|>user\nhi<|im_end|>" {
		t.Errorf("BPE decode with specials: %q", bpe.Decode(got))
	}
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestInvalidUTF8 checks that bad bytes neither panic nor vanish: SPM keeps
// them as byte tokens (so they decode back), BPE reads them as U+FFFD.
func TestInvalidUTF8(t *testing.T) {
	spm := loadFixture(t, "models/stories260K/stories260K.gguf")
	s := "a\xff\xfeb\xc3"
	if got := spm.Decode(spm.Encode(s, false, false)); got != " "+s {
		t.Errorf("SPM invalid UTF-8 round trip: %q", got)
	}
	bpe := loadFixture(t, "models/synth/synth-qwen2-F32.gguf")
	if got := bpe.Decode(bpe.Encode(s, false, false)); got != "a\uFFFD\uFFFDb\uFFFD" || !utf8.ValidString(got) {
		t.Errorf("BPE invalid UTF-8: %q", got)
	}
}

func TestTokenPieceOutOfRange(t *testing.T) {
	tok := loadFixture(t, "models/stories260K/stories260K.gguf")
	for _, id := range []int32{-1, int32(tok.VocabSize()), 1 << 30} {
		if p := tok.TokenPiece(id); p != "" {
			t.Errorf("TokenPiece(%d) = %q", id, p)
		}
	}
	if tok.TokenPiece(1) != "<s>" || tok.TokenPiece(13) != "\n" {
		t.Errorf("pieces: %q %q", tok.TokenPiece(1), tok.TokenPiece(13))
	}
}

// TestDetokenize checks llama_detokenize's extras: BOS/EOS removal, control
// tokens hidden unless unparseSpecial, and clean_up_tokenization_spaces on
// the vocabularies that ask for it (gpt-2 yes, qwen2 no).
func TestDetokenize(t *testing.T) {
	spm := loadFixture(t, "models/stories260K/stories260K.gguf")
	ids := spm.Encode("Hello</s>", true, true)
	// llama.cpp keeps the prefix space when it drops a leading BOS, and
	// hides the control token </s> (add_eos is false, so it is not "removed").
	if got := spm.Detokenize(ids, true, false); got != " Hello" {
		t.Errorf("SPM remove special: %q", got)
	}
	if got := spm.Detokenize(ids, false, true); got != "<s> Hello</s>" {
		t.Errorf("SPM keep special: %q", got)
	}
	if got := spm.Detokenize(ids[1:], false, false); got != "Hello" {
		t.Errorf("SPM without BOS: %q", got)
	}

	const text = "Hello , world ! It ' s ok . I 'm here 've 'll"
	gpt2 := loadFixture(t, "vocab/ggml-vocab-gpt-2.gguf")
	if got := gpt2.Detokenize(gpt2.Encode(text, false, false), false, false); got != "Hello, world! It's ok. I'm here've 'll" {
		t.Errorf("gpt-2 clean spaces: %q", got)
	}
	qwen := loadFixture(t, "models/synth/synth-qwen2-F32.gguf")
	if got := qwen.Detokenize(qwen.Encode(text, false, false), false, false); got != text {
		t.Errorf("qwen2 (no cleaning): %q", got)
	}
}

// TestConcurrentEncode checks that one Tokenizer serves many goroutines
// (run with -race).
func TestConcurrentEncode(t *testing.T) {
	for _, m := range []string{"models/stories260K/stories260K.gguf", "models/synth/synth-qwen2-F32.gguf"} {
		tok := loadFixture(t, m)
		want := make([][]int32, len(roundTripTexts))
		for i, s := range roundTripTexts {
			want[i] = tok.Encode(s, true, true)
		}
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < 20; r++ {
					for i, s := range roundTripTexts {
						if got := tok.Encode(s, true, true); !idsEqual(got, want[i]) {
							errs <- s
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for s := range errs {
			t.Errorf("%s: concurrent Encode(%q) differs", m, s)
		}
	}
}

// TestSPMSegmentsExact checks that cutting SPM text into independent
// segments (spmSegmentEnd) gives exactly llama.cpp's whole-text merge.
func TestSPMSegmentsExact(t *testing.T) {
	var texts []string
	for _, rel := range []string{"data/text/tinyshakespeare.txt", "data/text/tinystories_sample.txt"} {
		b, err := os.ReadFile(fixtures.Path(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b[:min(len(b), 60000)]))
	}
	texts = append(texts, roundTripTexts...)
	texts = append(texts, "a\u2581b \u2581\u2581c\xff d\xe2\x96 \u2581", "  x  ", "\u2581")
	for _, m := range []string{"models/stories260K/stories260K.gguf", "vocab/ggml-vocab-llama-spm.gguf"} {
		tok := loadFixture(t, m)
		for _, s := range texts {
			want := tok.spmEncode(new(encodeState), strings.ReplaceAll(" "+s, " ", "\u2581"), nil)
			if got := tok.Encode(s, false, false); !idsEqual(got, want) {
				t.Errorf("%s: segmented SPM differs on %.40q (%d vs %d tokens)", m, s, len(got), len(want))
			}
		}
	}
}
