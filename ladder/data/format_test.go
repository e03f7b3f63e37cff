package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustFormatter(t *testing.T, enc Encoder, opt Options) *Formatter {
	t.Helper()
	f, err := NewFormatter(enc, opt)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestExampleMasks checks tokens and loss masks per record kind against
// sequences written out by hand for the byte-level fake tokenizer.
func TestExampleMasks(t *testing.T) {
	f := mustFormatter(t, fakeEncoder(), Options{Context: 100, ChatTemplate: "chatml"})
	for _, tc := range []struct {
		name      string
		rec       Record
		text      string   // decoded tokens
		trained   []string // decoded runs of masked tokens
		wantLabel int
	}{
		{"text: all tokens and EOS", Record{Kind: KindText, Text: "hi"}, "<BOS>hi<EOS>", []string{"hi<EOS>"}, -1},
		{"prompt/completion", Record{Kind: KindPrompt, Prompt: "Q: x\nA:", Completion: " y"}, "<BOS>Q: x\nA: y<EOS>", []string{" y<EOS>"}, -1},
		// "a"+"b" merge into one token across the boundary: it belongs to
		// the completion (the later segment), as lm-eval-harness splits.
		{"token across the boundary", Record{Kind: KindPrompt, Prompt: "xa", Completion: "bc"}, "<BOS>xabc<EOS>", []string{"abc<EOS>"}, -1},
		{"classification", Record{Kind: KindClassify, Text: "fine", Label: "1"}, "<BOS>Review: fine\nSentiment: positive", []string{" positive"}, 1},
		{"classification by word", Record{Kind: KindClassify, Text: "bad", Label: "Negative"}, "<BOS>Review: bad\nSentiment: negative", []string{" negative"}, 0},
		{"chat: only assistant turns, with end markers", Record{Kind: KindChat, Messages: []Message{{"user", "hi"}, {"assistant", "yo"}, {"user", "q"}, {"assistant", "a"}}},
			"<BOS><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n",
			[]string{"yo<|im_end|>", "a<|im_end|>"}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, truncated, err := f.Example(&tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if truncated {
				t.Error("reported truncated")
			}
			if got := fakeDecode(ex.Tokens); got != tc.text {
				t.Errorf("tokens decode to %q, want %q", got, tc.text)
			}
			if got := trainedText(ex); !reflect.DeepEqual(got, tc.trained) {
				t.Errorf("trained runs %q, want %q", got, tc.trained)
			}
			if ex.Label != tc.wantLabel {
				t.Errorf("label %d, want %d", ex.Label, tc.wantLabel)
			}
			if ex.Mask[0] {
				t.Error("first token is a target")
			}
		})
	}
	// Chat special tokens are parsed: <|im_end|> is one token.
	ex, _, _ := f.Example(&Record{Kind: KindChat, Messages: []Message{{"assistant", "z"}}})
	if n := len(ex.Tokens); n != 1+1+len("assistant\n")+1+1+1 { // BOS, <|im_start|>, "assistant\n", z, <|im_end|>, \n
		t.Errorf("chat tokens %d (%q): special tokens not parsed?", n, fakeDecode(ex.Tokens))
	}
}

func TestChoices(t *testing.T) {
	f := mustFormatter(t, fakeEncoder(), Options{Context: 100, LabelWords: []string{"bad", "good", "meh"}, PromptTemplate: "{text} =>\n"})
	label, choices, err := f.Choices(&Record{Kind: KindClassify, Text: "ok", Label: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if label != 2 || len(choices) != 3 {
		t.Fatalf("label %d, %d choices", label, len(choices))
	}
	// The prompt ends in a newline, so the words follow without a space.
	for i, w := range []string{"bad", "good", "meh"} {
		if got := fakeDecode(choices[i].Tokens); got != "<BOS>ok =>\n"+w {
			t.Errorf("choice %d: %q", i, got)
		}
		if got := trainedText(choices[i]); !reflect.DeepEqual(got, []string{w}) {
			t.Errorf("choice %d trained %q", i, got)
		}
	}
	if _, _, err := f.Choices(&Record{Kind: KindClassify, Text: "ok", Label: "7", Source: "f.tsv:9"}); err == nil || !strings.Contains(err.Error(), "f.tsv:9") {
		t.Errorf("label out of range: error %v, want one naming f.tsv:9", err)
	}
	if _, _, err := f.Choices(&Record{Kind: KindText}); err == nil {
		t.Error("Choices accepted a text record")
	}
}

func TestLabelCompletion(t *testing.T) {
	for _, tc := range []struct{ prompt, word, want string }{
		{"Sentiment:", "positive", " positive"},
		{"Sentiment: ", "positive", "positive"},
		{"Answer:\n", "yes", "yes"},
		{"", "x", "x"},
	} {
		if got := LabelCompletion(tc.prompt, tc.word); got != tc.want {
			t.Errorf("LabelCompletion(%q, %q) = %q, want %q", tc.prompt, tc.word, got, tc.want)
		}
	}
}

func TestTruncation(t *testing.T) {
	f := mustFormatter(t, fakeEncoder(), Options{Context: 8})
	// Text: keeps the first 9 tokens (8 inputs + 1 target).
	ex, truncated, _ := f.Example(&Record{Kind: KindText, Text: "0123456789abcdefgh"})
	if !truncated || fakeDecode(ex.Tokens) != "<BOS>01234567" {
		t.Errorf("text: truncated=%v, tokens %q", truncated, fakeDecode(ex.Tokens))
	}
	// Classification keeps the end, where the label word is.
	f12 := mustFormatter(t, fakeEncoder(), Options{Context: 12})
	ex, truncated, _ = f12.Example(&Record{Kind: KindClassify, Text: "a long review", Label: "0"})
	if !truncated || fakeDecode(ex.Tokens) != "ent: negative" || ex.Mask[0] {
		t.Errorf("classification: truncated=%v, tokens %q", truncated, fakeDecode(ex.Tokens))
	}
	if got := trainedText(ex); !reflect.DeepEqual(got, []string{" negative"}) {
		t.Errorf("classification trained %q", got)
	}
	// A completion pushed out entirely leaves no target: Examples drops it.
	recs := []Record{
		{Kind: KindPrompt, Prompt: "a prompt longer than eight", Completion: "c"},
		{Kind: KindPrompt, Prompt: "p", Completion: "c"},
	}
	exs, st, err := f.Examples(recs, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Records: 2, Examples: 1, Truncated: 1, Dropped: 1, Tokens: 3, Targets: 2}
	if len(exs) != 1 || st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestWindows(t *testing.T) {
	text := "abcdefghijklmnopqrstuvwxy" // 25 bytes, "ab" merges: 24 tokens
	for _, tc := range []struct {
		name string
		enc  Encoder
		want []string
	}{
		{"with BOS: BOS + 10 tokens each", fakeEncoder(), []string{"<BOS>abcdefghijk", "<BOS>lmnopqrstu", "<BOS>vwxy"}},
		{"without BOS: overlapping by one", Encoder{Encode: fakeEncode, BOS: -1, EOS: -1}, []string{"abcdefghijkl", "lmnopqrstuv", "vwxy"}},
	} {
		f := mustFormatter(t, tc.enc, Options{Context: 10})
		exs := f.Windows(text)
		var got []string
		targets := 0
		for _, ex := range exs {
			got = append(got, fakeDecode(ex.Tokens))
			targets += ex.Targets()
			if len(ex.Tokens) > 11 || ex.Mask[0] {
				t.Errorf("%s: window of %d tokens, mask[0]=%v", tc.name, len(ex.Tokens), ex.Mask[0])
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: windows %q, want %q", tc.name, got, tc.want)
		}
		// Every token is scored once (without BOS, all but the first).
		n := len(fakeEncode(text, false, false))
		if tc.enc.BOS < 0 {
			n--
		}
		if targets != n {
			t.Errorf("%s: %d targets, want %d", tc.name, targets, n)
		}
	}
}

func TestSplitTextTail(t *testing.T) {
	text := strings.Repeat("line of text\n", 10) // 130 bytes
	train, val := SplitTextTail(text, 0.1)
	if train+val != text || !strings.HasSuffix(train, "\n") || val != strings.Repeat("line of text\n", 1) {
		t.Errorf("split at %d: val %q", len(train), val)
	}
	train, val = SplitTextTail(text, 0.25) // cut at byte 97.5 → next line start 104
	if len(train) != 104 || train+val != text {
		t.Errorf("25%%: train %d bytes, want 104", len(train))
	}
	// No newline after the cut: split at a rune boundary.
	s := "ééééééééé" // 18 bytes
	train, val = SplitTextTail(s, 0.5)
	if train+val != s || !strings.HasPrefix(val, "é") {
		t.Errorf("runes: %q | %q", train, val)
	}
	if train, val = SplitTextTail(text, 0); train != text || val != "" {
		t.Error("fraction 0 should hold nothing out")
	}
}

func TestSplitRecords(t *testing.T) {
	var recs []Record
	for i := range 50 {
		recs = append(recs, Record{Kind: KindText, Text: string(rune('A' + i))})
	}
	tr1, va1 := SplitRecords(recs, 0.2, 7)
	tr2, va2 := SplitRecords(recs, 0.2, 7)
	_, va3 := SplitRecords(recs, 0.2, 8)
	if len(va1) != 10 || len(tr1) != 40 {
		t.Fatalf("sizes %d/%d, want 40/10", len(tr1), len(va1))
	}
	if !reflect.DeepEqual(va1, va2) || !reflect.DeepEqual(tr1, tr2) {
		t.Error("same seed, different split")
	}
	if reflect.DeepEqual(va1, va3) {
		t.Error("seeds 7 and 8 gave the same split")
	}
	seen := map[string]int{}
	for _, r := range append(append([]Record{}, tr1...), va1...) {
		seen[r.Text]++
	}
	if len(seen) != 50 {
		t.Errorf("split lost or duplicated records: %d distinct", len(seen))
	}
	_, va := SplitRecords(recs[:3], 0.01, 1)
	if len(va) != 1 {
		t.Errorf("tiny fraction of 3 records: %d held out, want 1", len(va))
	}
}

func TestPack(t *testing.T) {
	f := mustFormatter(t, fakeEncoder(), Options{Context: 100})
	var exs []Example
	for _, s := range []string{"aaaa", "bb", "c", "dddddd", "e"} {
		ex, _, _ := f.Example(&Record{Kind: KindPrompt, Prompt: "p", Completion: s})
		exs = append(exs, ex)
	}
	packed := Pack(exs, 16)
	var got []string
	for _, p := range packed {
		got = append(got, fakeDecode(p.Tokens))
		if len(p.Tokens) > 16 || p.Label != -1 {
			t.Errorf("packed sequence of %d tokens, label %d", len(p.Tokens), p.Label)
		}
	}
	// Lengths 7,5,4,9,4: 7+5+4=16 fits; 9+4=13.
	want := []string{"<BOS>paaaa<EOS><BOS>pbb<EOS><BOS>pc<EOS>", "<BOS>pdddddd<EOS><BOS>pe<EOS>"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("packed %q, want %q", got, want)
	}
	if got := trainedText(packed[0]); !reflect.DeepEqual(got, []string{"aaaa<EOS>", "bb<EOS>", "c<EOS>"}) {
		t.Errorf("packed masks %q", got)
	}
}

// TestLoad runs the whole path on small files: JSONL with a random split,
// TSV with a separate validation file, raw text with a tail split, packing.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var jsonl strings.Builder
	for i := range 20 {
		jsonl.WriteString(`{"prompt": "q` + string(rune('a'+i)) + `", "completion": " r"}` + "\n")
	}
	pc := write("pc.jsonl", jsonl.String())
	ds, err := Load(pc, "", fakeEncoder(), Options{Context: 64, ValSplit: 0.25, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Kind != KindPrompt || len(ds.Train) != 15 || len(ds.Val) != 5 || len(ds.ValRecords) != 5 || ds.TrainStats.Records != 15 {
		t.Errorf("prompt/completion: kind %v, %d train, %d val", ds.Kind, len(ds.Train), len(ds.Val))
	}
	packed, err := Load(pc, "", fakeEncoder(), Options{Context: 64, ValSplit: 0.25, Seed: 3, Pack: true})
	if err != nil {
		t.Fatal(err)
	}
	// 15 examples of 6 tokens: 10 fit in 65.
	if len(packed.Train) != 2 || packed.TrainStats.Targets != ds.TrainStats.Targets {
		t.Errorf("packed: %d sequences, %d targets (unpacked %d)", len(packed.Train), packed.TrainStats.Targets, ds.TrainStats.Targets)
	}

	tr := write("train.tsv", "sentence\tlabel\ngood film\t1\nbad film\t0\n")
	va := write("dev.tsv", "meh\t0\n")
	ds, err = Load(tr, va, fakeEncoder(), Options{Context: 64})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Kind != KindClassify || len(ds.Train) != 2 || len(ds.Val) != 1 || ds.Train[0].Label != 1 || ds.ValRecords[0].Text != "meh" {
		t.Errorf("classification: %+v", ds)
	}
	if _, err := Load(tr, pc, fakeEncoder(), Options{Context: 64}); err == nil || !strings.Contains(err.Error(), "validation file") {
		t.Errorf("mismatched validation file: error %v", err)
	}

	txt := write("t.txt", strings.Repeat("0123456789\n", 100))
	ds, err = Load(txt, "", fakeEncoder(), Options{Context: 50, ValSplit: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Kind != KindRaw || ds.TrainStats.Targets != 990 || ds.ValStats.Targets != 110 || len(ds.ValRecords[0].Text) != 110 {
		t.Errorf("raw text: %d/%d targets, held-out %d bytes", ds.TrainStats.Targets, ds.ValStats.Targets, len(ds.ValRecords[0].Text))
	}

	chat := write("chat.jsonl", `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}`)
	if _, err := Load(chat, "", fakeEncoder(), Options{Context: 64}); err == nil || !strings.Contains(err.Error(), "--chat-template") {
		t.Errorf("chat without template: error %v, want advice to pass --chat-template", err)
	}
	enc := fakeEncoder()
	enc.ChatTemplate = "{{ '<|im_start|>' + message['role'] }}"
	if ds, err = Load(chat, "", enc, Options{Context: 64}); err != nil || ds.Formatter.ChatTemplate() != "chatml" {
		t.Errorf("chat with the model's template: %v", err)
	}
	if _, err := NewFormatter(fakeEncoder(), Options{Context: 64, ChatTemplate: "nope"}); err == nil {
		t.Error("unknown --chat-template accepted")
	}
	if _, err := NewFormatter(fakeEncoder(), Options{Context: 64, PromptTemplate: "no placeholder"}); err == nil {
		t.Error("prompt template without {text} accepted")
	}
}
