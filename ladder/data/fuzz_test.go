package data

import (
	"strings"
	"testing"
)

// checkRecords holds for anything a parser accepts: every record names its
// source line, and formatting it never panics.
func checkRecords(t *testing.T, name string, recs []Record) {
	f, err := NewFormatter(fakeEncoder(), Options{Context: 32, ChatTemplate: "chatml"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if !strings.HasPrefix(recs[i].Source, name+":") {
			t.Fatalf("record %d source %q", i, recs[i].Source)
		}
		ex, _, err := f.Example(&recs[i])
		if err == nil && (len(ex.Tokens) > 33 || len(ex.Mask) != len(ex.Tokens) || (len(ex.Mask) > 0 && ex.Mask[0])) {
			t.Fatalf("record %d: %d tokens, %d mask", i, len(ex.Tokens), len(ex.Mask))
		}
	}
}

func FuzzParseJSONL(f *testing.F) {
	for _, s := range []string{
		`{"text": "a"}`,
		`{"prompt": "p", "completion": "c"}` + "\n" + `{"prompt": "q", "completion": "d"}`,
		`{"instruction": "i", "input": "", "response": "r"}`,
		`{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}`,
		`{"text": "t", "label": 1}`,
		`[{"text": "a"}, {"text": "b"}]`,
		`{"text": "a"`,
		"\ufeff{\"question\": \"q\", \"answer\": \"a\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range []string{"f.jsonl", "f.json"} {
			recs, err := ParseRecords(name, b)
			if err != nil {
				if !strings.Contains(err.Error(), name) {
					t.Fatalf("error does not name the file: %v", err)
				}
				continue
			}
			checkRecords(t, name, recs)
		}
	})
}

func FuzzParseTSV(f *testing.F) {
	for _, s := range []string{"sentence\tlabel\ngood\t1\n", "a\tb\t0\r\n", "no tab", "x\t\n", "\n\n\t\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ParseRecords("f.tsv", b)
		if err != nil {
			if !strings.Contains(err.Error(), "f.tsv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		checkRecords(t, "f.tsv", recs)
		for _, r := range recs {
			if r.Kind != KindClassify || r.Label == "" {
				t.Fatalf("TSV record %+v", r)
			}
		}
	})
}

// FuzzChatTemplate: detection never panics, and any detected template
// that renders keeps every message's text and trains only on assistant turns.
func FuzzChatTemplate(f *testing.F) {
	for _, c := range chatCases {
		f.Add(c.template, "hello", "reply")
	}
	f.Add("", "", "")
	f.Add("mistral", " x ", "\n")
	f.Fuzz(func(t *testing.T, tmpl, user, reply string) {
		name := DetectChatTemplate(tmpl)
		if name == "" {
			return
		}
		segs, err := RenderChat(name, []Message{{"system", "S"}, {"user", user}, {"assistant", reply}})
		if err != nil {
			return // detected but not renderable
		}
		var all strings.Builder
		for _, s := range segs {
			all.WriteString(s.Text)
			if s.Train && strings.Contains(s.Text, "S") && !strings.Contains(reply, "S") {
				t.Fatalf("%s: system text in a trained piece %q", name, s.Text)
			}
		}
		if !strings.Contains(all.String(), trim(user)) {
			t.Fatalf("%s: user text %q missing from %q", name, user, all.String())
		}
	})
}
