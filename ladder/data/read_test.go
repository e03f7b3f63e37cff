package data

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestParseRecordKinds(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                []Record
	}{
		{"text", "a.jsonl", `{"text": "hello"}` + "\n\n" + `{"text": "bye", "extra": 1}`, []Record{
			{Source: "a.jsonl:1", Kind: KindText, Text: "hello"},
			{Source: "a.jsonl:3", Kind: KindText, Text: "bye"},
		}},
		{"prompt/completion", "a.jsonl", `{"prompt": "2+2=", "completion": "4"}`, []Record{
			{Source: "a.jsonl:1", Kind: KindPrompt, Prompt: "2+2=", Completion: "4"},
		}},
		{"alpaca with input", "a.jsonl", `{"instruction": "Add", "input": "2, 2", "output": "4"}`, []Record{
			{Source: "a.jsonl:1", Kind: KindPrompt, Prompt: AlpacaPrompt("Add", "2, 2"), Completion: "4"},
		}},
		{"alpaca response, empty input", "a.jsonl", `{"instruction": "Greet", "input": "", "response": "Hi"}`, []Record{
			{Source: "a.jsonl:1", Kind: KindPrompt, Prompt: AlpacaPrompt("Greet", ""), Completion: "Hi"},
		}},
		{"question/answer", "a.jsonl", `{"question": "1+1?", "answer": "2\n#### 2"}`, []Record{
			{Source: "a.jsonl:1", Kind: KindPrompt, Prompt: "Question: 1+1?\nAnswer:", Completion: " 2\n#### 2"},
		}},
		{"chat", "a.jsonl", `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}`, []Record{
			{Source: "a.jsonl:1", Kind: KindChat, Messages: []Message{{"user", "hi"}, {"assistant", "yo"}}},
		}},
		{"classification, number and word labels", "a.jsonl", `{"text": "good", "label": 1}` + "\n" + `{"text": "bad", "label": "negative"}`, []Record{
			{Source: "a.jsonl:1", Kind: KindClassify, Text: "good", Label: "1"},
			{Source: "a.jsonl:2", Kind: KindClassify, Text: "bad", Label: "negative"},
		}},
		{"JSON array", "a.json", "[\n  {\"text\": \"x\"},\n\n  {\"text\": \"y\"}\n]\n", []Record{
			{Source: "a.json:2", Kind: KindText, Text: "x"},
			{Source: "a.json:4", Kind: KindText, Text: "y"},
		}},
		{"TSV with header, CRLF, text with a tab", "d.tsv", "sentence\tlabel\r\nfine film \t1\r\na\tb\t0\r\n", []Record{
			{Source: "d.tsv:2", Kind: KindClassify, Text: "fine film", Label: "1"},
			{Source: "d.tsv:3", Kind: KindClassify, Text: "a\tb", Label: "0"},
		}},
		{"TSV without header", "d.tsv", "fine\t1\nbad\t0\n", []Record{
			{Source: "d.tsv:1", Kind: KindClassify, Text: "fine", Label: "1"},
			{Source: "d.tsv:2", Kind: KindClassify, Text: "bad", Label: "0"},
		}},
		{"TSV header, word labels", "d.tsv", "text\tclass\nfine\tpositive\n", []Record{
			{Source: "d.tsv:2", Kind: KindClassify, Text: "fine", Label: "positive"},
		}},
		{"TSV, first row's word label is data", "d.tsv", "fine\tpositive\nbad\tnegative\n", []Record{
			{Source: "d.tsv:1", Kind: KindClassify, Text: "fine", Label: "positive"},
			{Source: "d.tsv:2", Kind: KindClassify, Text: "bad", Label: "negative"},
		}},
		{"raw text", "t.txt", "To be\nor not", []Record{{Source: "t.txt:1", Kind: KindRaw, Text: "To be\nor not"}}},
		{"unknown extension sniffed as JSON", "data", `{"text": "z"}`, []Record{{Source: "data:1", Kind: KindText, Text: "z"}}},
		{"byte-order mark", "a.jsonl", "\ufeff" + `{"text": "z"}`, []Record{{Source: "a.jsonl:1", Kind: KindText, Text: "z"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRecords(tc.file, []byte(tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestParseErrorsNameTheLine: a bad line is an error with file and line.
func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, want string
	}{
		{"broken JSON", "a.jsonl", `{"text": "a"}` + "\n" + `{"text": "b"}` + "\n" + `{"text": "c"`, "a.jsonl:3: invalid JSON"},
		{"unknown fields", "a.jsonl", `{"foo": 1, "bar": 2}`, `a.jsonl:1: unknown record fields {"bar", "foo"}`},
		{"text not a string", "a.jsonl", `{"text": 5}`, `a.jsonl:1: field "text" must be a string`},
		{"label not scalar", "a.jsonl", `{"text": "x", "label": [1]}`, `a.jsonl:1: field "label"`},
		{"messages not a list", "a.jsonl", `{"messages": "hi"}`, `a.jsonl:1: field "messages"`},
		{"message without role", "a.jsonl", `{"messages": [{"content": "hi"}]}`, "a.jsonl:1: message 0 has no role"},
		{"not an object", "a.jsonl", `[1, 2]` + "\n", "a.jsonl:1: invalid JSON object"},
		{"mixed kinds", "a.jsonl", `{"text": "a"}` + "\n" + `{"prompt": "p", "completion": "c"}`, "a.jsonl:2: prompt/completion record, but the file started with text records (a.jsonl:1)"},
		{"array element broken", "a.json", "[\n{\"text\": \"a\"},\n{\"text\": }\n]", "a.json:3: invalid JSON"},
		{"array not closed", "a.json", "[\n{\"text\": \"a\"}\n", "a.json:"},
		{"array trailing text", "a.json", "[{\"text\": \"a\"}] x", "a.json:1: text after the JSON array"},
		{"TSV without tab", "d.tsv", "good\t1\nno tab here\n", "d.tsv:2: no tab"},
		{"TSV empty label", "d.tsv", "good\t1\nbad\t \n", "d.tsv:2: empty label"},
		{"empty JSONL", "a.jsonl", "\n\n", "a.jsonl: no records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecords(tc.file, []byte(tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestReadFileCompressed: gzip and zstd are recognised by their magic bytes,
// the format by the extension under the compression suffix.
func TestReadFileCompressed(t *testing.T) {
	content := []byte(`{"text": "one"}` + "\n" + `{"text": "two"}` + "\n")
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(content)
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zst := enc.EncodeAll(content, nil)
	enc.Close()
	for name, b := range map[string][]byte{"d.jsonl": content, "d.jsonl.gz": gz.Bytes(), "d.jsonl.zst": zst} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		recs, err := ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(recs) != 2 || recs[1].Text != "two" || recs[1].Source != p+":2" {
			t.Errorf("%s: got %+v", name, recs)
		}
	}
	bad := filepath.Join(dir, "bad.jsonl.gz")
	os.WriteFile(bad, gz.Bytes()[:len(gz.Bytes())/2], 0o644)
	if _, err := ReadFile(bad); err == nil || !strings.Contains(err.Error(), "bad.jsonl.gz") {
		t.Errorf("truncated gzip: error %v, want one naming the file", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Error("missing file: no error")
	}
}
