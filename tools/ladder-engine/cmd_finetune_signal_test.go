//go:build unix

package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ladder-engine/ladder"
)

// helperEnv marks a child process started by startLadderEngine: it runs
// the command line after "--" as ladder-engine's main would.
const helperEnv = "LADDER_ENGINE_TEST_MAIN"

// TestHelperProcess is not a test: in a child started by startLadderEngine
// it is ladder-engine's main.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process of TestFinetuneSignalResume")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(dispatch(args, os.Stderr))
}

// startLadderEngine re-executes the test binary as `ladder-engine ARGS...`
// with TMPDIR set to tmpdir; stdout is returned as a pipe, stderr goes to
// the returned buffer.
func startLadderEngine(t *testing.T, tmpdir string, args ...string) (*exec.Cmd, io.ReadCloser, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=1", "TMPDIR="+tmpdir)
	stderr := new(bytes.Buffer)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stdout, stderr
}

// Ctrl-C during `finetune` finishes the step, saves a checkpoint, exits
// with status 0 and leaves no temporary files; --resume continues from the
// saved step to the new --steps.
func TestFinetuneSignalResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the embedded default in a child process")
	}
	dir, tmpdir := t.TempDir(), t.TempDir()
	cmd, stdout, stderr := startLadderEngine(t, tmpdir,
		"finetune", "--steps", "400", "--log-every", "1", "--eval-every", "1000", "--dir", dir, "-t", "1")

	// Interrupt once a few steps have been logged.
	lines := make(chan string)
	var out bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	steps := 0
	for steps < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("finetune ended before 3 steps:\n%s\nstderr:\n%s", out.String(), stderr)
			}
			out.WriteString(l + "\n")
			if strings.HasPrefix(l, "step ") {
				steps++
			}
		case <-deadline:
			t.Fatalf("no 3 steps within 60 s:\n%s\nstderr:\n%s", out.String(), stderr)
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// Drain stdout (Wait must not run before the pipe is read to EOF).
	done := make(chan struct{})
	go func() {
		for l := range lines {
			out.WriteString(l + "\n")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("finetune still running 60 s after the interrupt:\n%s\nstderr:\n%s", out.String(), stderr)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("finetune killed by %v instead of saving:\n%s\nstderr:\n%s", ws.Signal(), out.String(), stderr)
		}
	}
	if err != nil {
		t.Fatalf("interrupted finetune: %v (want exit status 0)\n%s\nstderr:\n%s", err, out.String(), stderr)
	}
	if !strings.Contains(stderr.String(), "finetune: interrupt: saving a checkpoint") {
		t.Errorf("stderr lacks the interrupt notice:\n%s", stderr)
	}
	if !strings.Contains(out.String(), "interrupted at step ") || !strings.Contains(out.String(), "resume with: ladder-engine finetune --resume "+dir) {
		t.Errorf("stdout lacks the interrupt summary:\n%s", out.String())
	}

	ckpt, err := ladder.OpenCheckpoint(filepath.Join(dir, ladder.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	saved := ckpt.Step
	ckpt.Close()
	if saved <= 0 || saved >= 400 {
		t.Fatalf("checkpoint at step %d, want within (0, 400)", saved)
	}
	if !strings.Contains(out.String(), "interrupted at step "+strconv.Itoa(saved)+"/400") {
		t.Errorf("stdout does not report the saved step %d:\n%s", saved, out.String())
	}
	assertNoTemp(t, dir, tmpdir)

	// Resume to a few steps past the saved one.
	n := saved + 3
	cmd, stdout, stderr = startLadderEngine(t, tmpdir, "finetune", "--resume", dir, "--steps", strconv.Itoa(n), "-t", "1")
	b, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("resume: %v\n%s\nstderr:\n%s", err, b, stderr)
	}
	res := string(b)
	if !strings.Contains(stderr.String(), "resuming "+dir+" at step "+strconv.Itoa(saved)+"/"+strconv.Itoa(n)) {
		t.Errorf("resume does not start at step %d/%d:\n%s", saved, n, stderr)
	}
	if !strings.Contains(res, "trained to step "+strconv.Itoa(n)+" ") || !strings.Contains(res, "adapter written to ") {
		t.Errorf("resume does not end at step %d:\n%s", n, res)
	}
	ckpt, err = ladder.OpenCheckpoint(filepath.Join(dir, ladder.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if ckpt.Step != n {
		t.Errorf("checkpoint after resume at step %d, want %d", ckpt.Step, n)
	}
	ckpt.Close()
	assertNoTemp(t, dir, tmpdir)
}

// assertNoTemp fails if the run folder holds a temporary file of an atomic
// write, or the child's TMPDIR holds anything (the builtin backbone).
func assertNoTemp(t *testing.T, dir, tmpdir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("leftover temporary file %s in the run folder", e.Name())
		}
	}
	if ents, _ := os.ReadDir(tmpdir); len(ents) > 0 {
		t.Errorf("leftover %s in TMPDIR", ents[0].Name())
	}
}
