package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// runFresh runs the command in a new process (this test binary, see
// TestDispatchChild) with the environment given: the driver library a
// process loads stays loaded, so each case needs a process of its own.
func runFresh(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDispatchChild$")
	cmd.Env = append(append(os.Environ(), env...), "LADDER_TEST_DISPATCH="+strings.Join(args, "\n"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// TestDispatchChild is runFresh's child: it runs the command it is given
// and exits with its status.
func TestDispatchChild(t *testing.T) {
	args := os.Getenv("LADDER_TEST_DISPATCH")
	if args == "" {
		t.Skip("runs only as runFresh's child")
	}
	os.Exit(dispatch(strings.Split(args, "\n"), os.Stderr))
}

// --device cuda where no driver loads exits 1 naming the library paths
// tried; --device auto falls back to the CPU and runs; a bad --device
// value is a usage error.
func TestDeviceFlag(t *testing.T) {
	model := fixtures.Path(t, "models/stories260K/stories260K.gguf")
	noDriver := []string{"LADDER_CUDA_LIB=/nonexistent/libcuda.so.1"}
	for _, cmd := range [][]string{
		{"generate", model, "-p", "Once", "-n", "2"},
		{"perplexity", model, "-f", "/dev/null"},
		{"embedding", model, "-p", "Once"},
		{"bench", model},
		{"eval", model, "--task", "ppl", "--data", fixtures.Path(t, "data/text/tinystories_sample.txt")},
		{"finetune", model},
	} {
		code, stderr := runFresh(t, noDriver, append(cmd, "--device", "cuda")...)
		if code != 1 || !strings.Contains(stderr, "tried /nonexistent/libcuda.so.1") || !strings.Contains(stderr, "--device cuda") {
			t.Errorf("%s --device cuda without a driver: exit %d, %q; want 1 and the paths tried", cmd[0], code, stderr)
		}
	}
	if code, stderr := runFresh(t, nil, "generate", model, "-p", "x", "--device", "gpu"); code != 2 || !strings.Contains(stderr, "cuda:N") {
		t.Errorf("--device gpu: exit %d, %q", code, stderr)
	}
	code, stderr := runFresh(t, noDriver, "generate", model, "-p", "Once upon a time", "-n", "4", "--temp", "0", "--device", "auto", "-t", "2")
	if code != 0 || !strings.Contains(stderr, "device: cpu (auto: no CUDA device: ") {
		t.Errorf("--device auto without a driver: exit %d, %q", code, stderr)
	}
}
