package report

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMetricsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := []Record{
		{Step: 0, TrainLoss: 6.2, LR: 1e-4, TokensPerSec: 5000, MemBytes: 1 << 20, Elapsed: 0.5},
		{Step: 10, TrainLoss: 4.5, LR: 3e-4, Epoch: 0.25},
		{Step: 10, ValLoss: 4.8, Eval: map[string]float64{"classify/accuracy": 0.0, "classify/ci_low": 0.1}},
		{Step: 20, TrainLoss: math.Inf(1), RSSBytes: 123456789},
	}
	for _, r := range in {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	if n := strings.Count(string(raw), "\n"); n != 4 {
		t.Fatalf("%d lines, want 4:\n%s", n, raw)
	}
	// Unmeasured (zero) fields are left out of the line.
	if first := strings.SplitN(string(raw), "\n", 2)[0]; strings.Contains(first, "val_loss") || strings.Contains(first, "eval") {
		t.Errorf("first line carries absent fields: %s", first)
	}
	got, err := ReadMetricsFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		in[0],
		{Step: 10, TrainLoss: 4.5, LR: 3e-4, Epoch: 0.25, ValLoss: 4.8, Eval: map[string]float64{"classify/accuracy": 0.0, "classify/ci_low": 0.1}},
		in[3],
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("read back\n got %+v\nwant %+v", got, want)
	}
}

func TestReadMetricsResumeAndTornLine(t *testing.T) {
	// A run resumed from step 1 logs step 2 again; the crash cut the last line.
	text := `{"step":1,"train_loss":3}
{"step":2,"train_loss":2.5}

{"step":2,"train_loss":2.4,"val_loss":2.9}
{"step":3,"train_loss":2.2}
{"step":4,"trai`
	got, err := ReadMetrics(strings.NewReader(text), "m.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{Step: 1, TrainLoss: 3}, {Step: 2, TrainLoss: 2.4, ValLoss: 2.9}, {Step: 3, TrainLoss: 2.2}}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestReadMetricsErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"{\"step\":1}\nnot json\n", "m.jsonl:2:"},
		{"{\"train_loss\":1}\n", `m.jsonl:1: no "step"`},
		{"{\"step\":1,\"train_loss\":\"x\"}\n", "m.jsonl:1:"},
	} {
		_, err := ReadMetrics(strings.NewReader(tc.text), "m.jsonl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.want)
		}
	}
}

func TestAppendMetrics(t *testing.T) {
	dir := t.TempDir()
	w, _ := CreateMetrics(dir)
	w.Write(Record{Step: 1, TrainLoss: 2})
	w.Close()
	w, err := AppendMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(Record{Step: 2, TrainLoss: 1.5})
	w.Close()
	got, err := ReadMetricsFile(w.Path())
	if err != nil || len(got) != 2 || got[1].TrainLoss != 1.5 {
		t.Fatalf("after append: %+v, %v", got, err)
	}
}

func FuzzReadMetrics(f *testing.F) {
	f.Add([]byte(`{"step":1,"train_loss":3,"eval":{"a":1}}` + "\n"))
	f.Add([]byte(`{"step":2,"val_loss":"NaN"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ReadMetrics(strings.NewReader(string(b)), "fuzz")
		if err != nil {
			return
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Step <= recs[i-1].Step {
				t.Fatalf("steps not increasing: %d then %d", recs[i-1].Step, recs[i].Step)
			}
		}
	})
}
