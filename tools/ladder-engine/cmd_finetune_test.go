package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
	"ladder-engine/ladder/report"
)

// captureStdout runs fn with os.Stdout going to a pipe and returns what it
// printed.
func captureStdout(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(bufio.NewReader(r))
		done <- string(b)
	}()
	err = fn()
	w.Close()
	os.Stdout = old
	return <-done, err
}

// The embedded default trains, writes its adapter, metrics and checkpoint,
// and a resumed run continues where it stopped.
func TestFinetuneBuiltinAndResume(t *testing.T) {
	dir := t.TempDir()
	out, err := captureStdout(t, func() error {
		return runFinetune([]string{"--steps", "4", "--eval-every", "2", "--val-batches", "1", "--dir", dir, "-t", "2"})
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"step 4/4", "val ", "peak memory:", "stored activations", "ladder inputs kept", "On a real model"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"adapter.gguf", "checkpoint.gguf", "metrics.jsonl", "loss.png", "builtin-task.txt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	out, err = captureStdout(t, func() error {
		return runFinetune([]string{"--resume", dir, "--steps", "6", "-t", "2"})
	})
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if !strings.Contains(out, "step 6/6") || strings.Contains(out, "step 4/6") {
		t.Errorf("resumed run should log steps 5..6 only:\n%s", out)
	}
	recs, err := report.ReadMetricsFile(filepath.Join(dir, report.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || recs[5].Step != 6 {
		t.Errorf("metrics hold %d steps, want 6", len(recs))
	}
	// Flags that shape the run cannot change on resume.
	if err := runFinetune([]string{"--resume", dir, "--lr", "0.1"}); err == nil || !strings.Contains(err.Error(), "--lr cannot change") {
		t.Errorf("changing --lr on resume: %v", err)
	}
}

// A real model: train a few steps, then perplexity, generate and embedding
// with --adapter; an adapter of another base model is refused.
func TestFinetuneAdapterCommands(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	other := fixtures.Path(t, "models/synth/synth-llama-F32.gguf")
	text := fixtures.Path(t, "data/text/tinystories_sample.txt")
	dir := t.TempDir()
	adapter := filepath.Join(dir, "a.gguf")
	out, err := captureStdout(t, func() error {
		return runFinetune([]string{model, "--data", text, "-c", "64", "--steps", "3", "--val-batches", "2",
			"--out", adapter, "--adapter-type", "f16", "--method", "xladder", "-t", "2"})
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "adapter written to "+adapter+" (f16)") {
		t.Errorf("output:\n%s", out)
	}
	ppl, err := captureStdout(t, func() error {
		return runPerplexity([]string{model, "--adapter", adapter, "-f", text, "-c", "64", "--chunks", "2", "-t", "2"})
	})
	if err != nil || !strings.Contains(ppl, "Final estimate: PPL = ") {
		t.Errorf("perplexity --adapter: %v\n%s", err, ppl)
	}
	gen, err := captureStdout(t, func() error {
		return runGenerate([]string{model, "--adapter", adapter, "-p", "Once upon a time", "-n", "8", "--temp", "0", "-t", "2"})
	})
	if err != nil || !strings.HasPrefix(gen, "Once upon a time") {
		t.Errorf("generate --adapter: %v\n%s", err, gen)
	}
	emb, err := captureStdout(t, func() error {
		return runEmbedding([]string{model, "--adapter", adapter, "-p", "Once upon a time", "--pooling", "mean", "-t", "2"})
	})
	if err != nil || !strings.Contains(emb, "embedding 0:") {
		t.Errorf("embedding --adapter: %v\n%s", err, emb)
	}
	ev, err := captureStdout(t, func() error {
		return runEval([]string{model, "--adapter", adapter, "--task", "ppl", "--data", text, "-c", "64", "--limit", "2", "--json", "-t", "2"})
	})
	if err != nil || !strings.Contains(ev, `"ppl"`) {
		t.Errorf("eval --adapter: %v\n%s", err, ev)
	}
	_, err = captureStdout(t, func() error {
		return runPerplexity([]string{other, "--adapter", adapter, "-f", text, "-c", "64", "--chunks", "1"})
	})
	if err == nil || !strings.Contains(err.Error(), "different base model") {
		t.Errorf("adapter on another base model: %v", err)
	}
}
