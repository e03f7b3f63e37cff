package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

func runTokenizeOut(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := tokenizeCmd(args, strings.NewReader(stdin), &out)
	return out.String(), err
}

// TestTokenizeMatchesReference runs the command on every reference string
// (llama-tokenize defaults) in each output format. --no-escape keeps the
// reference text's backslashes as they are.
func TestTokenizeMatchesReference(t *testing.T) {
	for _, tc := range []struct{ ref, model string }{
		{"stories260K", "models/stories260K/stories260K.gguf"},
		{"synth-qwen2", "models/synth/synth-qwen2-F32.gguf"},
	} {
		model := fixtures.Path(t, tc.model)
		raw, err := os.ReadFile(fixtures.Path(t, "reference/tokens/"+tc.ref+".tokens.json"))
		if err != nil {
			t.Fatal(err)
		}
		var ref map[string][]int32
		if err := json.Unmarshal(raw, &ref); err != nil {
			t.Fatal(err)
		}
		for text, want := range ref {
			out, err := runTokenizeOut(t, "", model, "-p", text, "--json", "--no-escape")
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("--json output %q: %v", out, err)
			}
			if !equalIDs(got, want) {
				t.Errorf("%s %q: got %v want %v", tc.ref, text, got, want)
			}
			// --ids prints the same list as llama-tokenize: [1, 2, 3]
			out, err = runTokenizeOut(t, "", "-m", model, "--no-escape", "--ids", "-p", text)
			if err != nil {
				t.Fatal(err)
			}
			wantIDs, _ := json.Marshal(want)
			if strings.ReplaceAll(out, " ", "") != string(wantIDs)+"\n" {
				t.Errorf("--ids %q: %q", text, out)
			}
		}
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTokenizeFlags(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")

	// default format: "%6d -> '%s'", BOS first
	out, err := runTokenizeOut(t, "", model, "-p", "Hello")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "     1 -> '<s>'\n   346 -> ' He'\n") {
		t.Errorf("default output:\n%s", out)
	}

	// --no-bos drops BOS; escapes are processed unless --no-escape
	out, _ = runTokenizeOut(t, "", model, "-p", `a\nb`, "--ids", "--no-bos")
	out2, _ := runTokenizeOut(t, "", model, "-p", "a\nb", "--ids", "--no-bos")
	if out != out2 || strings.HasPrefix(out, "[1,") {
		t.Errorf("escapes: %q vs %q", out, out2)
	}
	out3, _ := runTokenizeOut(t, "", model, "-p", `a\nb`, "--ids", "--no-bos", "--no-escape")
	if out3 == out {
		t.Errorf("--no-escape changed nothing: %q", out3)
	}

	// --no-parse-special: "</s>" is text, not id 2
	out, _ = runTokenizeOut(t, "", model, "-p", "</s>", "--ids", "--no-bos")
	if out != "[2]\n" {
		t.Errorf("parse special: %q", out)
	}
	out, _ = runTokenizeOut(t, "", model, "-p", "</s>", "--ids", "--no-bos", "--no-parse-special")
	if strings.Contains(out, "[2]") || out == "[]\n" {
		t.Errorf("no parse special: %q", out)
	}

	// -f FILE and --stdin read the same text; --show-count counts
	dir := t.TempDir()
	file := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(file, []byte("Once upon a time"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := runTokenizeOut(t, "", model, "-f", file, "--ids")
	b, _ := runTokenizeOut(t, "Once upon a time", model, "--stdin", "--ids")
	c, _ := runTokenizeOut(t, "", model, "-p", "Once upon a time", "--ids", "--show-count")
	if a != b || !strings.HasPrefix(c, a) || !strings.HasSuffix(c, "Total number of tokens: "+
		itoa(strings.Count(a, ",")+1)+"\n") {
		t.Errorf("-f %q --stdin %q --show-count %q", a, b, c)
	}

	// an empty prompt is allowed: just BOS
	out, _ = runTokenizeOut(t, "", model, "-p", "", "--json")
	if out != "[1]\n" {
		t.Errorf("empty prompt: %q", out)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestTokenizeUsageErrors(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	for _, args := range [][]string{
		{model},                               // no text
		{model, "-p", "a", "--stdin"},         // two sources
		{model, "-p", "a", "--ids", "--json"}, // two formats
		{"-p", "a"},                           // no model
		{model, "-p", "a", "stray"},           // extra argument
		{model, "-p", "a", "--no-such-flag"},  // unknown flag
	} {
		_, err := runTokenizeOut(t, "", args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", args, err)
		}
	}
	if _, err := runTokenizeOut(t, "", filepath.Join(t.TempDir(), "missing.gguf"), "-p", "a"); err == nil {
		t.Errorf("missing model file accepted")
	}
}

func TestProcessEscapes(t *testing.T) {
	for in, want := range map[string]string{
		`a\nb\tc\\d`: "a\nb\tc\\d",
		`\'\"`:       `'"`,
		`\x41\x4a`:   "AJ",
		`\x4`:        `\x4`,
		`\xZZ`:       `\xZZ`,
		`\q`:         `\q`,
		`end\`:       `end\`,
		`\x+1`:       "\x01",
	} {
		if got := processEscapes(in); got != want {
			t.Errorf("processEscapes(%q) = %q, want %q", in, got, want)
		}
	}
}
