package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
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

// finalPPL reads "Final estimate: PPL = X" from perplexity's output.
func finalPPL(t *testing.T, out string) float64 {
	t.Helper()
	i := strings.Index(out, "Final estimate: PPL = ")
	if i < 0 {
		t.Fatalf("no final estimate in:\n%s", out)
	}
	var v float64
	if _, err := fmt.Sscanf(out[i:], "Final estimate: PPL = %g", &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// finetune --method lora writes a llama.cpp LoRA adapter that perplexity,
// generate and eval apply; --adapter-scale 0 gives the base model's
// perplexity exactly (the update is zero), two --adapter flags stack, and
// a LoRA adapter stacks under a ladder adapter.
func TestFinetuneLoRAAdapterCommands(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	text := fixtures.Path(t, "data/text/tinystories_sample.txt")
	dir := t.TempDir()
	lora := filepath.Join(dir, "lora.gguf")
	out, err := captureStdout(t, func() error {
		return runFinetune([]string{model, "--data", text, "-c", "64", "--steps", "4", "--val-batches", "1", "--lr", "1e-2",
			"--out", lora, "--method", "lora", "--lora-rank", "4", "--lora-targets", "q,v,down", "-t", "2"})
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ppl := func(args ...string) float64 {
		out, err := captureStdout(t, func() error {
			return runPerplexity(append([]string{model, "-f", text, "-c", "64", "--chunks", "2", "-t", "2"}, args...))
		})
		if err != nil {
			t.Fatalf("perplexity %v: %v", args, err)
		}
		return finalPPL(t, out)
	}
	base, tuned := ppl(), ppl("--adapter", lora)
	if zero := ppl("--adapter", lora, "--adapter-scale", "0"); zero != base {
		t.Errorf("--adapter-scale 0: PPL %v, base %v", zero, base)
	}
	if tuned == base {
		t.Errorf("the LoRA adapter did not change the perplexity (%v)", base)
	}
	// Stacking the adapter twice at scale 0.5 is the adapter once.
	if half := ppl("--adapter", lora, "--adapter", lora, "--adapter-scale", "0.5"); math.Abs(half-tuned)/tuned > 1e-4 {
		t.Errorf("two adapters at scale 0.5: PPL %v, one at 1: %v", half, tuned)
	}
	gen, err := captureStdout(t, func() error {
		return runGenerate([]string{model, "--adapter", lora, "-p", "Once upon a time", "-n", "4", "--temp", "0", "-t", "2"})
	})
	if err != nil || !strings.HasPrefix(gen, "Once upon a time") {
		t.Errorf("generate --adapter: %v\n%s", err, gen)
	}
	ev, err := captureStdout(t, func() error {
		return runEval([]string{model, "--adapter", lora, "--task", "ppl", "--data", text, "-c", "64", "--limit", "2", "--json", "-t", "2"})
	})
	if err != nil || !strings.Contains(ev, `"ppl"`) {
		t.Errorf("eval --adapter: %v\n%s", err, ev)
	}
	// Start a new run from the adapter: its first loss is the adapter's.
	out2, err := captureStdout(t, func() error {
		return runFinetune([]string{model, "--data", text, "-c", "64", "--steps", "1", "--val-batches", "1", "--method", "lora",
			"--adapter", lora, "--dir", t.TempDir(), "-t", "2"})
	})
	if err != nil || !strings.Contains(out2, "step 1/1") {
		t.Errorf("finetune --adapter: %v\n%s", err, out2)
	}
	// Resume a LoRA run: the checkpoint restores the pairs and the optimizer.
	out, err = captureStdout(t, func() error { return runFinetune([]string{"--resume", dir, "--steps", "5", "-t", "2"}) })
	if err != nil || !strings.Contains(out, "step 5/5") {
		t.Errorf("resume lora: %v\n%s", err, out)
	}
}

// --epochs 0 or below is a usage error (before any work), as is a plan over
// --max-memory, which names a setting that fits; --plan prints the plan.
func TestFinetuneEpochsAndPlan(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	text := fixtures.Path(t, "data/text/tinystories_sample.txt")
	for _, ep := range []string{"0", "-1"} {
		err := runFinetune([]string{model, "--data", text, "--epochs", ep, "--dir", t.TempDir()})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--epochs") {
			t.Errorf("--epochs %s: %v, want a usage error", ep, err)
		}
	}
	out, err := captureStdout(t, func() error {
		return runFinetune([]string{model, "--data", text, "--method", "lora", "-c", "128", "--plan", "--dir", t.TempDir()})
	})
	if err != nil || !strings.Contains(out, "stored activations") || !strings.Contains(out, "process peak") {
		t.Errorf("--plan: %v\n%s", err, out)
	}
	err = runFinetune([]string{model, "--data", text, "--method", "lora", "-c", "128", "--batch", "16", "--max-memory", "120MiB", "--dir", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "would fit") {
		t.Errorf("--max-memory 120MiB: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"12GiB", 12 << 30}, {"800MiB", 800 << 20}, {"1.5GB", 1500000000}, {"4096", 4096}, {"2G", 2 << 30}, {" 64 KiB", 64 << 10}} {
		if got, err := parseBytes(c.in); err != nil || got != c.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1GiB", "0", "twelve"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q): no error", bad)
		}
	}
}
