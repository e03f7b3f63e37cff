package main

import (
	"bytes"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// --device cuda where no driver loads exits 1 naming the library paths
// tried; --device auto falls back to the CPU and runs; a bad --device
// value is a usage error.
func TestDeviceFlag(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	t.Setenv("LADDER_CUDA_LIB", "/nonexistent/libcuda.so.1")
	for _, cmd := range [][]string{
		{"generate", model, "-p", "Once", "-n", "2"},
		{"perplexity", model, "-f", "/dev/null"},
		{"embedding", model, "-p", "Once"},
		{"bench", model},
		{"eval", model, "--task", "ppl", "--data", fixtures.Path(t, "data/text/tinystories_sample.txt")},
		{"finetune", model},
	} {
		var stderr bytes.Buffer
		code := dispatch(append(cmd, "--device", "cuda"), &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "/nonexistent/libcuda.so.1") || !strings.Contains(stderr.String(), "--device cuda") {
			t.Errorf("%s --device cuda without a driver: exit %d, %q; want 1 and the paths tried", cmd[0], code, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := dispatch([]string{"generate", model, "-p", "x", "--device", "gpu"}, &stderr); code != 2 || !strings.Contains(stderr.String(), "cuda:N") {
		t.Errorf("--device gpu: exit %d, %q", code, stderr.String())
	}
	out, err := captureStdout(t, func() error {
		return runGenerate([]string{model, "-p", "Once upon a time", "-n", "4", "--temp", "0", "--device", "auto", "-t", "2"})
	})
	if err != nil || !strings.HasPrefix(out, "Once upon a time") {
		t.Errorf("--device auto without a driver: %v, %q", err, out)
	}
}
