package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// evalStdout runs the command line and returns its exit status and what it
// printed on stdout.
func evalStdout(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var code int
	out, _ := captureStdout(t, func() error { code = dispatch(args, io.Discard); return nil })
	return code, out
}

func TestEvalChoiceJSON(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	dump := filepath.Join(t.TempDir(), "pred.jsonl")
	code, out := evalStdout(t, "eval", model, "--task", "choice", "--data", "../../ladder/eval/testdata/arc_small.jsonl",
		"--limit", "8", "--json", "--dump", dump, "-t", "2")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	for _, k := range []string{"task", "n", "accuracy", "ci_low", "ci_high", "tokens_per_s"} {
		if _, ok := res[k]; !ok {
			t.Errorf("--json lacks %q: %s", k, out)
		}
	}
	if res["task"] != "choice" || res["n"] != 8.0 {
		t.Errorf("task %v n %v", res["task"], res["n"])
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 8 {
		t.Errorf("--dump wrote %d lines, want 8", n)
	}
}

func TestEvalUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"eval", "m.gguf", "--data", "x"}, 2},                                             // no task
		{[]string{"eval", "m.gguf", "--task", "classify"}, 2},                                      // no data
		{[]string{"eval", "--task", "classify", "--data", "x"}, 2},                                 // no model
		{[]string{"eval", "m.gguf", "--task", "classify", "--data", "x", "--label-words", "a"}, 2}, // one word
		{[]string{"eval", "m.gguf", "--task", "nope", "--data", "x"}, 2},
		{[]string{"eval", "m.gguf", "--task", "choice", "--data", "/nonexistent.jsonl"}, 1},
	} {
		if code, _ := evalStdout(t, tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.code)
		}
	}
}

// A missing adapter file is an error naming it (adapters themselves are
// tested in cmd_finetune_test.go).
func TestEvalAdapterMissingFile(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	var stderr strings.Builder
	code := dispatch([]string{"eval", model, "--adapter", "a.gguf", "--task", "choice", "--data", "../../ladder/eval/testdata/arc_small.jsonl"}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "a.gguf") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
