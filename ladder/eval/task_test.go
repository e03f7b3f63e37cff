package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeLM is an LM over a scripted fake model with a byte tokenizer.
func fakeLM(nCtx int, marker string, answerFor func(text string) string) *LM {
	return NewLM(truncFake{&fakeDecoder{nCtx: nCtx, logits: scriptLogits(marker, answerFor)}}, byteTok{})
}

// TestClassifyOracle: a model that answers " positive" exactly when the
// review says "good" gets every example right, and the scores in the dump
// are the log-likelihoods of the label words under it.
func TestClassifyOracle(t *testing.T) {
	dir := t.TempDir()
	tsv := "sentence\tlabel\na good film\t1\nbad and dull\t0\ngood good\t1\nboring\t0\nnot good at all\t1\n"
	path := filepath.Join(dir, "sst.tsv")
	os.WriteFile(path, []byte(tsv), 0o644)
	set, err := Load(Options{Task: TaskClassify, Data: path})
	if err != nil {
		t.Fatal(err)
	}
	lm := fakeLM(256, "Sentiment:", func(text string) string {
		// The prompt is data.DefaultPromptTemplate: "Review: {text}\nSentiment:".
		if strings.Contains(text, "good") {
			return " positive"
		}
		return " negative"
	})
	r, err := set.Run(lm)
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 5 || r.Correct != 5 || r.Accuracy != 1 || r.Chance != 0.5 {
		t.Errorf("result %+v, want 5/5 correct", r)
	}
	if lo, hi := Wilson(5, 5); r.CILow != lo || r.CIHigh != hi {
		t.Errorf("interval [%v, %v], want Wilson(5,5) = [%v, %v]", r.CILow, r.CIHigh, lo, hi)
	}
	// The wrong label word " negative" follows the script for its space
	// (logit 10 of 10 and 258 zeros), then leaves it at 'n' and stays off
	// (EOS at 10, the word's bytes at 0) for 8 bytes.
	z := math.Log(math.Exp(10) + float64(fakeVocab-1))
	if got, want := r.Examples[0].Scores[0], (10-z)+8*(0-z); math.Abs(got-want) > 1e-4 {
		t.Errorf("score of the wrong label %v, want %v", got, want)
	}
	var dump bytes.Buffer
	if err := r.WriteDump(&dump); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(dump.String(), "\n"); n != 5 {
		t.Errorf("dump has %d lines, want 5", n)
	}
	var first Prediction
	json.Unmarshal([]byte(strings.SplitN(dump.String(), "\n", 2)[0]), &first)
	if first.Gold != "positive" || first.Pred != "positive" || first.ID == "" {
		t.Errorf("first dump line %+v", first)
	}
	// Label words other than the defaults, given as words in the file.
	os.WriteFile(path, []byte("good\tyes\nbad\tno\n"), 0o644)
	set, err = Load(Options{Task: TaskClassify, Data: path, LabelWords: []string{"no", "yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Errorf("%d records", set.Len())
	}
}

func TestClassifyBadLabel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tsv")
	os.WriteFile(path, []byte("fine\t1\nworse\t7\n"), 0o644)
	_, err := Load(Options{Task: TaskClassify, Data: path})
	if err == nil || !strings.Contains(err.Error(), "x.tsv:2") {
		t.Errorf("error %v, want one naming x.tsv:2", err)
	}
}

// TestChoiceOracle: a model that knows the answers scores 100% on the ARC
// test file, and chance is the mean of 1/choices.
func TestChoiceOracle(t *testing.T) {
	items, err := ReadChoiceFile("testdata/arc_small.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]string{}
	for _, it := range items {
		answers[choicePrompt(it.Question)] = " " + it.Choices[it.Answer]
	}
	set, err := Load(Options{Task: TaskChoice, Data: "testdata/arc_small.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	lm := fakeLM(512, "Answer:", func(text string) string {
		return answers[text+"Answer:"]
	})
	r, err := set.Run(lm)
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 20 || r.Correct != 20 || r.RawAcc != 1 {
		t.Errorf("oracle: %d/%d (raw %v), want 20/20", r.Correct, r.N, r.RawAcc)
	}
	// Chance: 18 four-choice, one three-, one five-choice item.
	if want := (18*0.25 + 1.0/3 + 0.2) / 20; math.Abs(r.Chance-want) > 1e-12 {
		t.Errorf("chance %v, want %v", r.Chance, want)
	}
	// MMLU CSV by extension, with a limit.
	set, err = Load(Options{Task: TaskChoice, Data: "testdata/mmlu_small.csv", Limit: 3})
	if err != nil || set.Len() != 3 {
		t.Fatalf("mmlu: %v, %d items", err, set.Len())
	}
}

// TestChoiceLengthNormalised: a model giving logit 2 to the bytes of
// " cdefgh" and 0 to the rest (Z = log(7e²+252) = 5.716 nats) scores
// " ab" at 2-3Z = -15.1 and " cdefgh" at 7(2-Z) = -26.0: the raw sum picks
// the short A, the per-byte score (-5.05 vs -3.72) the long B.
func TestChoiceLengthNormalised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.jsonl")
	os.WriteFile(path, []byte(`{"question": {"stem": "q", "choices": [{"text": "ab", "label": "A"}, {"text": "cdefgh", "label": "B"}]}, "answerKey": "B"}`+"\n"), 0o644)
	set, err := Load(Options{Task: TaskChoice, Data: path})
	if err != nil {
		t.Fatal(err)
	}
	logits := func(_ []int32, out []float32) {
		for i := range out {
			out[i] = 0
		}
		for _, b := range []byte(" cdefgh") {
			out[int(b)+3] = 2
		}
	}
	r, err := set.Run(NewLM(&fakeDecoder{nCtx: 64, logits: logits}, byteTok{}))
	if err != nil {
		t.Fatal(err)
	}
	z := math.Log(7*math.Exp(2) + 252)
	ex := r.Examples[0]
	if math.Abs(ex.Raw[0]-(2-3*z)) > 1e-4 || math.Abs(ex.Raw[1]-7*(2-z)) > 1e-4 {
		t.Errorf("raw scores %v, want [%v %v]", ex.Raw, 2-3*z, 7*(2-z))
	}
	if r.Correct != 1 || r.RawAcc != 0 {
		t.Errorf("normalised %d/1 (want 1), raw accuracy %v (want 0)", r.Correct, r.RawAcc)
	}
}

// TestGSM8KScripted: generation stops at "####"'s line and at "Question:",
// the final number is extracted and compared exactly.
func TestGSM8KScripted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "test.jsonl")
	os.WriteFile(path, []byte(`{"question": "What is 6*3?", "answer": "6*3=18\n#### 18"}
{"question": "What is 1000+1?", "answer": "#### 1,001"}
{"question": "What is 2-5?", "answer": "#### -3"}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "train.jsonl"), []byte(`{"question": "What is 1+1?", "answer": "1+1=2\n#### 2"}`+"\n"), 0o644)
	script := map[string]string{
		"What is 6*3?":    " 6 times 3 is 18.\n#### 18\nQuestion: What is 7?",
		"What is 1000+1?": " It is 1,001.\n\nQuestion: 5",
		"What is 2-5?":    " 2 - 5 = 3\n#### 3\n",
	}
	for _, shots := range []int{0, 1} {
		set, err := Load(Options{Task: TaskGSM8K, Data: path, Shots: shots})
		if err != nil {
			t.Fatal(err)
		}
		lm := fakeLM(1024, "Answer:", func(text string) string {
			q := text[strings.LastIndex(text, "Question: ")+len("Question: "):]
			return script[strings.TrimSuffix(q, "\n")]
		})
		r, err := set.Run(lm)
		if err != nil {
			t.Fatal(err)
		}
		if r.N != 3 || r.Correct != 2 {
			t.Errorf("shots %d: %d/%d correct, want 2/3", shots, r.Correct, r.N)
		}
		if got := r.Examples[0].Output; got != " 6 times 3 is 18.\n#### 18" {
			t.Errorf("output cut at %q", got)
		}
		if r.Examples[1].Pred != "1001" || r.Examples[2].Pred != "3" {
			t.Errorf("preds %q %q", r.Examples[1].Pred, r.Examples[2].Pred)
		}
	}
	if _, err := Load(Options{Task: TaskGSM8K, Data: path, Shots: 5}); err == nil {
		t.Error("5 shots from a 1-example train file: no error")
	}
}

func TestLoadErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{
		{Task: "nope", Data: "x"},
		{Task: TaskChoice, Data: "testdata/missing.jsonl"},
		{Task: TaskClassify, Data: "testdata/arc_small.jsonl"}, // not text/label records
		{Task: TaskChoice, Data: empty},                        // 0/0 is not an accuracy
		{Task: TaskGSM8K, Data: empty},
	} {
		if _, err := Load(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
