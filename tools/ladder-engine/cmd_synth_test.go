package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// TestSynthCommand writes a tiny model through the CLI and reads it back
// with inspect --json: the shapes the preset promises, the requested type
// for matrices, f32 norms.
func TestSynthCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "q.gguf")
	var msg bytes.Buffer
	if err := synthCmd(&msg, []string{"--arch", "llama", "--preset", "tiny", "--type", "Q4_0", "--seed", "5", "-o", out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.String(), "wrote "+out+": llama tiny, Q4_0 (f32×9, q4_0×29, q6_K×1)") {
		t.Errorf("message %q", msg.String())
	}
	var js bytes.Buffer
	if err := inspect(&js, []string{out, "--json"}); err != nil {
		t.Fatal(err)
	}
	var got inspectJSONOut
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // name → "type shape"
		"token_embd.weight":        "q4_0 [256 512]",
		"output.weight":            "q6_K [256 512]", // llama-quantize's Q4_0 mix
		"output_norm.weight":       "f32 [256]",
		"blk.3.attn_k.weight":      "q4_0 [256 64]",
		"blk.0.attn_output.weight": "q4_0 [256 256]",
		"blk.2.ffn_down.weight":    "q4_0 [768 256]",
		"blk.1.ffn_norm.weight":    "f32 [256]",
	}
	seen := 0
	for _, ti := range got.Tensors {
		if w, ok := want[ti.Name]; ok {
			seen++
			shape, _ := json.Marshal(ti.Shape)
			if g := ti.Type + " " + strings.ReplaceAll(string(shape), ",", " "); g != w {
				t.Errorf("%s: %s, want %s", ti.Name, g, w)
			}
		}
	}
	if seen != len(want) || len(got.Tensors) != 3+4*9 {
		t.Errorf("%d tensors, %d of the expected found", len(got.Tensors), seen)
	}
	if ft := string(got.Metadata["general.file_type"]); ft != "2" {
		t.Errorf("general.file_type %s, want 2 (mostly Q4_0)", ft)
	}
}

func TestSynthCommandVocabFrom(t *testing.T) {
	out := filepath.Join(t.TempDir(), "v.gguf")
	vocab := fixtures.Path(t, "models/synth/synth-qwen2-Q8_0.gguf")
	if err := synthCmd(&bytes.Buffer{}, []string{"--arch", "qwen2", "--preset", "tiny", "--vocab-from", vocab, "-o", out}); err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := inspect(&js, []string{out, "--json"}); err != nil {
		t.Fatal(err)
	}
	var got inspectJSONOut
	json.Unmarshal(js.Bytes(), &got)
	var merges struct{ Len int }
	json.Unmarshal(got.Metadata["tokenizer.ggml.merges"], &merges)
	if merges.Len != 500 || string(got.Metadata["tokenizer.ggml.pre"]) != `"qwen2"` {
		t.Errorf("tokenizer not copied: merges %d, pre %s", merges.Len, got.Metadata["tokenizer.ggml.pre"])
	}
}

// TestSynthCommandMixName: llama-quantize's file type name Q4_K_M is
// accepted and gives its mix (Q6_K on the output and some layers).
func TestSynthCommandMixName(t *testing.T) {
	var msg bytes.Buffer
	out := filepath.Join(t.TempDir(), "k.gguf")
	if err := synthCmd(&msg, []string{"--type", "Q4_K_M", "-o", out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.String(), "Q4_K - Medium (f32×9, q4_K×25, q6_K×5)") {
		t.Errorf("message %q", msg.String())
	}
}

func TestSynthCommandUsage(t *testing.T) {
	dir := t.TempDir()
	o := filepath.Join(dir, "x.gguf")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--preset", "tiny"}, "no output file"},
		{[]string{"--arch", "mamba", "-o", o}, `unknown architecture "mamba"`},
		{[]string{"--arch", "qwen2", "--preset", "1b", "-o", o}, `qwen2 has no preset "1b" (have 0.5b, 7b, tiny)`},
		{[]string{"--type", "q9_9", "-o", o}, `unknown tensor type "q9_9"`},
		{[]string{"--type", "iq2_xxs", "-o", o}, "iq2_xxs: writing this type is not supported"},
		{[]string{"--type", "q4_0_M", "-o", o}, `unknown tensor type "q4_0_M"`},
		{[]string{"extra", "-o", o}, `unexpected argument "extra"`},
		{[]string{"-o", dir}, "is a directory"},
	} {
		err := synthCmd(&bytes.Buffer{}, c.args)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want usage error %q", c.args, err, c.want)
		}
	}
	err := synthCmd(&bytes.Buffer{}, []string{"--vocab-from", filepath.Join(dir, "none.gguf"), "-o", o})
	if err == nil || !strings.Contains(err.Error(), "--vocab-from") {
		t.Errorf("missing vocab file: %v", err)
	}
}
