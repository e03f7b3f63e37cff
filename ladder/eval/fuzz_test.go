package eval

import (
	"os"
	"strings"
	"testing"
)

// The parsers of user files must return an error, never panic, on any
// input; what they accept must be usable by the tasks.

func FuzzReadARC(f *testing.F) {
	if b, err := os.ReadFile("testdata/arc_small.jsonl"); err == nil {
		f.Add(string(b))
	}
	f.Add(`{"question": {"stem": "q", "choices": [{"text": "a"}, {"text": "b"}]}, "answerKey": "B"}`)
	f.Add(`{"question": {"stem": "q", "choices": [{"text": "a", "label": "1"}, {"text": "b", "label": "2"}]}, "answerKey": 2}`)
	f.Fuzz(func(t *testing.T, s string) {
		items, err := ReadARC(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, it := range items {
			if len(it.Choices) < 2 || len(it.Labels) != len(it.Choices) || it.Answer < 0 || it.Answer >= len(it.Choices) {
				t.Fatalf("accepted a bad item %+v", it)
			}
		}
	})
}

func FuzzReadMMLU(f *testing.F) {
	if b, err := os.ReadFile("testdata/mmlu_small.csv"); err == nil {
		f.Add(string(b))
	}
	f.Add("q,a,b,c,d,A\n")
	f.Add("\xef\xbb\xbf\"q\"\"\",a,b,c,d,d\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		items, err := ReadMMLU(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, it := range items {
			if len(it.Choices) != 4 || it.Answer < 0 || it.Answer > 3 {
				t.Fatalf("accepted a bad item %+v", it)
			}
		}
	})
}

func FuzzGSM8K(f *testing.F) {
	f.Add(`{"question": "Q?", "answer": "a <<2*3=6>>6\n#### 6"}`)
	f.Add(`{"question": "Q?", "answer": "#### $1,000.50"}`)
	f.Add("#### -0.5 ####")
	f.Fuzz(func(t *testing.T, s string) {
		items, err := ReadGSM8K(strings.NewReader(s), "fuzz")
		if err == nil {
			for _, it := range items {
				if it.Gold == "" || !SameNumber(it.Gold, it.Gold) {
					t.Fatalf("accepted a bad gold answer %q", it.Gold)
				}
			}
		}
		// Free text is what the model generates: extraction must cope.
		if a, ok := ExtractAnswer(s); ok && !SameNumber(a, a) {
			t.Fatalf("extracted %q is not a number", a)
		}
		cutAtStop(s)
	})
}
