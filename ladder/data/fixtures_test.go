package data

import (
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// TestReadFixtureFiles reads the shared data sets; record counts come from
// ../shared/README.md.
func TestReadFixtureFiles(t *testing.T) {
	for _, tc := range []struct {
		rel      string
		n        int
		kind     Kind
		firstHas string // in the first record's text, prompt or completion
	}{
		{"data/instruct/code_alpaca_2k.json", 2017, KindPrompt, "What are the distinct values from the given list?"},
		{"data/instruct/gpteacher_roleplay.json", 1923, KindPrompt, "The scene of the crime is a di"},
		{"data/sst2/dev.tsv", 872, KindClassify, "it 's a charming and often affecting journey ."},
		{"data/sst2/train.tsv", 67349, KindClassify, "hide new secretions from the parental units"},
		{"data/gsm8k/test.jsonl", 1319, KindPrompt, "Janet’s ducks lay 16 eggs per day."},
	} {
		t.Run(tc.rel, func(t *testing.T) {
			recs, err := ReadFile(fixtures.Path(t, tc.rel))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tc.n || recs[0].Kind != tc.kind {
				t.Fatalf("%d %s records, want %d %s", len(recs), recs[0].Kind, tc.n, tc.kind)
			}
			r := recs[0]
			if !strings.Contains(r.Text+r.Prompt+r.Completion, tc.firstHas) {
				t.Errorf("first record %+v lacks %q", r, tc.firstHas)
			}
		})
	}
}

// TestSST2Dev formats SST-2 dev as label-word classification: the labels
// split 428 negative / 444 positive (counted with awk on the file).
func TestSST2Dev(t *testing.T) {
	ds, err := Load(fixtures.Path(t, "data/sst2/dev.tsv"), "", fakeEncoder(), Options{Context: 128})
	if err != nil {
		t.Fatal(err)
	}
	counts := [2]int{}
	for _, ex := range ds.Train {
		counts[ex.Label]++
	}
	if counts != [2]int{428, 444} {
		t.Errorf("label counts %v, want [428 444]", counts)
	}
	// Fake tokens are bytes: each example trains on " negative" or " positive" (9 tokens).
	if ds.TrainStats.Targets != 872*9 || ds.TrainStats.Dropped != 0 {
		t.Errorf("stats %v", ds.TrainStats)
	}
}

// TestTinyShakespeareSplit: the acceptance run trains on the first 90% of
// tinyshakespeare and holds out the rest; the cut lands on the line start
// after byte 1,003,854 (= 0.9 × 1,115,394).
func TestTinyShakespeareSplit(t *testing.T) {
	recs, err := ReadFile(fixtures.Path(t, "data/text/tinyshakespeare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	train, val := SplitRecords(recs, 0.1, 0)
	if len(train[0].Text) != 1003856 || len(train[0].Text)+len(val[0].Text) != 1115394 {
		t.Errorf("split %d + %d bytes", len(train[0].Text), len(val[0].Text))
	}
	if !strings.HasPrefix(val[0].Text, "\nGREMIO:\nGood morrow, neighbour Baptista") {
		t.Errorf("held-out text starts %q", val[0].Text[:40])
	}
}
