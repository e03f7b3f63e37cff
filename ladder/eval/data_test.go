package eval

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestExtractAnswer(t *testing.T) {
	for _, tc := range []struct {
		text, want string
		ok         bool
	}{
		{"Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18", "18", true},
		{"#### 1,234", "1234", true},
		{"so the total is $1,000.50 in all", "1000.50", true},
		{"first 3 then 5 and finally 7.", "7", true},
		{"#### -12\nQuestion: 99", "-12", true},
		{"the answer is 5 #### 6", "6", true},
		{"#### none here but 4 earlier? no", "4", true}, // after #### the first number
		{"3 apples #### and nothing", "3", true},        // #### without a number: last number
		{"no numbers at all", "", false},
		{"", "", false},
	} {
		got, ok := ExtractAnswer(tc.text)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ExtractAnswer(%q) = %q, %v; want %q, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSameNumber(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"18", "18", true},
		{"18", "18.00", true},
		{"0.5", ".5", true},
		{"-3", "3", false},
		{"7", "7.0001", false},
		{"1234", "1234", true},
	} {
		if got := SameNumber(tc.a, tc.b); got != tc.same {
			t.Errorf("SameNumber(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestCutAtStop(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{" 5 + 3 = 8\n#### 8\nQuestion: next", " 5 + 3 = 8\n#### 8"},
		{" It is 4.\n\nQuestion: x", " It is 4."},
		{" still going", " still going"},
	} {
		if got, _ := cutAtStop(tc.in); got != tc.want {
			t.Errorf("cutAtStop(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadARC(t *testing.T) {
	f, err := os.Open("testdata/arc_small.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	items, err := ReadARC(f, "arc_small.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 20 {
		t.Fatalf("%d items, want 20", len(items))
	}
	want := ChoiceItem{ID: "toy-05", Question: "What do bees make?", Choices: []string{"milk", "bread", "honey", "rocks"},
		Labels: []string{"1", "2", "3", "4"}, Answer: 2}
	if !reflect.DeepEqual(items[4], want) {
		t.Errorf("item 5 = %+v, want %+v", items[4], want)
	}
	if len(items[3].Choices) != 3 || len(items[6].Choices) != 5 || items[6].Answer != 0 {
		t.Errorf("3- and 5-choice items read wrong: %+v %+v", items[3], items[6])
	}
}

func TestReadARCErrors(t *testing.T) {
	good := `{"question": {"stem": "q", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "B"}`
	for _, tc := range []struct{ text, want string }{
		{good + "\n{not json\n", "x.jsonl:2:"},
		{`{"question": {"choices": []}, "answerKey": "A"}`, `x.jsonl:1: no "question": {"stem"`},
		{`{"question": {"stem": "q", "choices": [{"text": "a", "label": "A"}]}, "answerKey": "A"}`, "1 choices"},
		{strings.Replace(good, `"answerKey": "B"`, `"answerKey": "C"`, 1), `answerKey "C" is none of the labels A,B`},
		{strings.Replace(good, `, "answerKey": "B"`, ``, 1), `no "answerKey"`},
		{strings.Replace(good, `"label": "B"`, `"label": "A"`, 1), `label "A" appears twice`},
		{strings.Replace(good, `"text": "b", `, ``, 1), `choice 1 has no "text"`},
	} {
		_, err := ReadARC(strings.NewReader(tc.text), "x.jsonl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\nerror %v, want one containing %q", tc.text, err, tc.want)
		}
	}
	// Numeric answer keys without quotes, as some exports write them.
	items, err := ReadARC(strings.NewReader(`{"question": {"stem": "q", "choices": [{"text": "a", "label": "1"}, {"text": "b", "label": "2"}]}, "answerKey": 2}`), "x")
	if err != nil || items[0].Answer != 1 {
		t.Errorf("numeric answerKey: %+v, %v", items, err)
	}
}

func TestReadMMLU(t *testing.T) {
	f, err := os.Open("testdata/mmlu_small.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	items, err := ReadMMLU(f, "mmlu_small.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		q       string
		choices []string
		answer  int
	}{
		{"What is 2 + 2?", []string{"3", "4", "5", "6"}, 1},
		{`Which word, in quotes, is a "greeting"?`, []string{"hello", "table, chair", "run", "blue"}, 0},
		{"A question that spans\ntwo lines?", []string{"yes", "no", "maybe", "never"}, 2},
		{"Pick D", []string{"a", "b", "c", "d"}, 3},
	}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for i, w := range want {
		it := items[i]
		if it.Question != w.q || !reflect.DeepEqual(it.Choices, w.choices) || it.Answer != w.answer {
			t.Errorf("item %d = %+v, want %+v", i, it, w)
		}
	}
	if items[3].ID != "mmlu_small.csv:5" {
		t.Errorf("item 4 id %q, want its line, mmlu_small.csv:5", items[3].ID)
	}
}

func TestReadMMLUErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"q,a,b,c,d,A\nq,a,b,c,d\n", "x.csv:2:"},
		{"q,a,b,c,d,E\n", `x.csv:1: answer "E"`},
		{"\"q,a,b,c,d,A\n", "x.csv:1:"},
		{"q,a\"b,c,d,e,A\n", "x.csv:1:"},
	} {
		_, err := ReadMMLU(strings.NewReader(tc.text), "x.csv")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.want)
		}
	}
}

func TestReadGSM8K(t *testing.T) {
	text := `{"question": "Q1?", "answer": "a\n#### 18"}

{"question": "Q2?", "answer": "It is 1,000.\n#### 1,000"}
`
	items, err := ReadGSM8K(strings.NewReader(text), "g.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Gold != "18" || items[1].Gold != "1000" {
		t.Errorf("got %+v", items)
	}
	for _, tc := range []struct{ text, want string }{
		{`{"question": "q"}`, `g.jsonl:1: need "question" and "answer"`},
		{`{"question": "q", "answer": "none"}`, "no final number"},
		{"{\"question\": \"q\", \"answer\": \"#### 1\"}\n[1]", "g.jsonl:2:"},
	} {
		_, err := ReadGSM8K(strings.NewReader(tc.text), "g.jsonl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.want)
		}
	}
}
