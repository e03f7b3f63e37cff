package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// `embedding --json` prints llama-embedding's JSON with the final hidden
// states of every token, matching llama.cpp's (stories260K: F32 weights,
// ~1e-4 after the f16 KV rounding both sides do).
func TestEmbeddingJSON(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	var ref struct {
		Prompt string `json:"prompt"`
		Shape  [2]int `json:"shape"`
	}
	b, err := os.ReadFile(fixtures.Path(t, "reference/hidden/stories260K.hidden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(fixtures.Path(t, "reference/hidden/stories260K.hidden.bin"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := captureStdout(t, func() error {
		return runEmbedding([]string{model, "-p", ref.Prompt, "--pooling", "none", "--embd-normalize", "-1", "--json", "-t", "2"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Object string `json:"object"`
		Data   []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%.300s", err, out)
	}
	if got.Object != "list" || len(got.Data) != ref.Shape[0] {
		t.Fatalf("object %q with %d rows, want list of %d", got.Object, len(got.Data), ref.Shape[0])
	}
	for i, row := range got.Data {
		if row.Index != i || len(row.Embedding) != ref.Shape[1] {
			t.Fatalf("row %d: index %d, %d values", i, row.Index, len(row.Embedding))
		}
		for j, v := range row.Embedding {
			want := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(i*ref.Shape[1]+j):])))
			if math.Abs(v-want) > 5e-3 {
				t.Fatalf("token %d dim %d: %g, llama.cpp %g", i, j, v, want)
			}
		}
	}
}

// `perplexity` prints llama-perplexity's running values and final line.
func TestPerplexityOutput(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	text := fixtures.Path(t, "reference/text/tinystories.txt")
	out, err := captureStdout(t, func() error {
		return runPerplexity([]string{model, "-f", text, "-c", "128", "-b", "128", "--chunks", "3", "-t", "2"})
	})
	if err != nil {
		t.Fatal(err)
	}
	// llama.cpp's first three running values: 4.3962, 4.3976, 4.9510.
	if !strings.HasPrefix(out, "[1]4.396") || !strings.Contains(out, ",[3]4.95") || !strings.Contains(out, "\nFinal estimate: PPL = 4.95") {
		t.Errorf("output:\n%s", out)
	}
}

// `generate --temp 0` streams llama-simple's greedy continuation.
func TestGenerateGreedy(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	out, err := captureStdout(t, func() error {
		return runGenerate([]string{model, "-p", "Once upon a time", "-n", "30", "--temp", "0", "-t", "2"})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
	if !strings.HasPrefix(out, want) {
		t.Errorf("got %q, want prefix %q", out, want)
	}
}

// Flag mistakes are usage errors (exit status 2) that say what to do.
func TestEngineCommandUsage(t *testing.T) {
	for _, c := range []struct {
		run  func([]string) error
		args []string
		want string
	}{
		{runPerplexity, []string{"m.gguf"}, "-f FILE"},
		{runEmbedding, []string{"m.gguf", "-p", "x", "--pooling", "max"}, "--pooling"},
		{runBench, []string{}, "no model"},
		{runGenerate, []string{}, "no model"},
		{runPerplexity, []string{"m.gguf", "-f", "x.txt", "-b", "0"}, "-b 0"},
		{runGenerate, []string{"m.gguf", "-n", "-5"}, "-n -5"},
		{runBench, []string{"pg", "m.gguf"}, `unknown test "pg"`},
		{runFinetune, []string{"m.gguf", "--data", "x.txt", "--dir", os.TempDir(), "--out", "/nonexistent-dir/a.gguf"}, "does not exist"},
		{runEval, []string{"m.gguf", "--task", "ppl", "--data", "x.txt", "--limit", "-3"}, "--limit"},
		{runFinetune, []string{"m.gguf", "--data", "x.txt", "-c", "0"}, "-c 0"},
		{runFinetune, []string{"m.gguf", "--data", "x.txt", "--val-split", "1"}, "--val-split"},
		{runFinetune, []string{"m.gguf", "--data", "x.txt", "--eval-task", "nope"}, `--eval-task "nope"`},
	} {
		err := c.run(c.args)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error mentioning %q", c.args, err, c.want)
		}
	}
}
