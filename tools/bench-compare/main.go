// Command bench-compare measures llama.cpp's llama-bench and our
// `ladder-engine bench` side by side on the same model files, in alternating
// rounds, and prints one table of speeds and median ratios.
//
//	go run ./tools/bench-compare [--llama-bench PATH] [--engine PATH] [-p 512] [-n 32] [-t 2] [--rounds 3] [--json] MODEL.gguf...
//
// The machines are shared and noisy, so each round runs both engines back
// to back (llama.cpp first in odd rounds, ours first in even rounds, to
// cancel order effects) and the ratio reported is the median of the
// per-round ratios. The header records the CPU and the load average before
// and after, so the reader knows what else was running.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

const usageLine = "usage: go run ./tools/bench-compare [--llama-bench PATH] [--engine PATH] [-p 512] [-n 32] [-t 2] [--rounds 3] [--device cpu] [--json] MODEL.gguf..."

// defaultLlamaBench is the prebuilt llama.cpp beside the project (an
// AVX-512 build: it dies with SIGILL on CPUs without AVX-512).
const defaultLlamaBench = "../shared/llama.cpp/bin/llama-bench"

// config is one comparison: the two binaries, the models and the settings
// passed to both.
type config struct {
	llamaBench string
	engine     string
	device     string // our --device; llama-bench here is a CPU build
	nPrompt    int    // 0: no pp test
	nGen       int    // 0: no tg test
	threads    int
	rounds     int
	models     []string
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, asJSON, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		var rep *report
		if rep, err = compare(cfg, stderr); err == nil {
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				writeMarkdown(stdout, rep)
			}
		}
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "bench-compare: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, usageLine)
		return 2
	}
	return 1
}

func parseArgs(args []string, stderr io.Writer) (config, bool, error) {
	var cfg config
	fs := flag.NewFlagSet("bench-compare", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	llamaDefault := defaultLlamaBench
	if env := os.Getenv("LLAMA_BENCH"); env != "" {
		llamaDefault = env
	}
	fs.StringVar(&cfg.llamaBench, "llama-bench", llamaDefault, "llama.cpp's llama-bench (env LLAMA_BENCH overrides the default; relative paths from the current directory)")
	fs.StringVar(&cfg.engine, "engine", "bin/ladder-engine", "our ladder-engine binary (./build.sh builds it)")
	fs.StringVar(&cfg.device, "device", "cpu", "our engine's --device (llama-bench is a CPU build)")
	fs.IntVar(&cfg.nPrompt, "p", 512, "prompt tokens for pp (0: no pp test)")
	fs.IntVar(&cfg.nGen, "n", 32, "generated tokens for tg (0: no tg test)")
	fs.IntVar(&cfg.threads, "t", 2, "threads for both engines")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds; each runs both engines once (-r 1), in alternating order")
	asJSON := fs.Bool("json", false, "print a JSON object instead of markdown")
	// Flags may come before or after the models, as in ladder-engine.
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stderr, "%s\n\nflags:\n", usageLine)
				fs.SetOutput(stderr)
				fs.PrintDefaults()
				return cfg, false, err
			}
			return cfg, false, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			cfg.models = append(cfg.models, rest[1:]...)
			break
		}
		cfg.models = append(cfg.models, rest[0])
		args = rest[1:]
	}
	switch {
	case len(cfg.models) == 0:
		return cfg, false, usageError{"no model given: name one or more MODEL.gguf files"}
	case cfg.nPrompt < 0 || cfg.nGen < 0 || cfg.nPrompt+cfg.nGen == 0:
		return cfg, false, usageError{"-p and -n must be >= 0 and not both 0"}
	case cfg.threads < 1 || cfg.rounds < 1:
		return cfg, false, usageError{"-t and --rounds must be positive"}
	}
	return cfg, *asJSON, nil
}

// Where to get each binary, for the error when it is missing.
const (
	engineHint = "build it with ./build.sh in the project root, or pass --engine PATH"
	llamaHint  = "pass --llama-bench PATH or set LLAMA_BENCH; " + defaultLlamaBench + " (relative to the project root) is an AVX-512 build, see ../shared/llama.cpp/README.md"
)

// checkBinary says, before anything runs, that a tool is missing, where it
// was looked for and how to get it.
func checkBinary(what, path, hint string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s not found at %s: %s", what, abs, hint)
	case err != nil:
		return fmt.Errorf("%s at %s: %w (%s)", what, abs, err, hint)
	case st.IsDir():
		return fmt.Errorf("%s at %s is a directory, not a program: %s", what, abs, hint)
	case st.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s at %s is not executable: %s", what, abs, hint)
	}
	return nil
}

// compare runs every model for cfg.rounds rounds and collects the speeds;
// progress lines go to progress.
func compare(cfg config, progress io.Writer) (*report, error) {
	if err := checkBinary("llama-bench", cfg.llamaBench, llamaHint); err != nil {
		return nil, err
	}
	if err := checkBinary("ladder-engine", cfg.engine, engineHint); err != nil {
		return nil, err
	}
	for _, m := range cfg.models {
		if st, err := os.Stat(m); err != nil {
			return nil, fmt.Errorf("model %s: %w", m, err)
		} else if st.IsDir() {
			return nil, fmt.Errorf("model %s is a directory, want a .gguf file", m)
		}
	}
	cpu := readCPUInfo()
	rep := &report{
		Date:          time.Now().Format(time.RFC3339),
		CPUModel:      cpu.model,
		AVX512F:       cpu.flags["avx512f"],
		AVX2:          cpu.flags["avx2"],
		NCPU:          runtime.NumCPU(),
		LlamaBench:    cfg.llamaBench,
		Engine:        cfg.engine,
		Device:        cfg.device,
		NPrompt:       cfg.nPrompt,
		NGen:          cfg.nGen,
		Threads:       cfg.threads,
		Rounds:        cfg.rounds,
		Order:         "llama.cpp first in odd rounds, ours first in even rounds",
		LoadavgBefore: readLoadavg(),
	}
	var tests []string
	if cfg.nPrompt > 0 {
		tests = append(tests, testName(cfg.nPrompt, 0))
	}
	if cfg.nGen > 0 {
		tests = append(tests, testName(0, cfg.nGen))
	}
	for _, model := range cfg.models {
		rows := make(map[string]*row)
		for _, test := range tests {
			rows[test] = &row{Model: model, Test: test}
			rep.Rows = append(rep.Rows, rows[test])
		}
		for r := 0; r < cfg.rounds; r++ {
			var llama, ours map[string]float64
			runLlama := func() (err error) {
				var info llamaResult
				llama, info, err = runLlamaBench(cfg, model, tests, cpu)
				rep.LlamaBuildCommit = info.BuildCommit
				for _, row := range rows {
					row.LlamaModelType = info.ModelType
				}
				return err
			}
			runOurs := func() (err error) {
				ours, err = runOurBench(cfg, model, tests)
				return err
			}
			steps := []func() error{runLlama, runOurs}
			if r%2 == 1 {
				steps = []func() error{runOurs, runLlama}
			}
			for _, step := range steps {
				if err := step(); err != nil {
					return nil, err
				}
			}
			var line []string
			for _, test := range tests {
				rows[test].add(llama[test], ours[test])
				line = append(line, fmt.Sprintf("%s %.2f / %.2f", test, llama[test], ours[test]))
			}
			fmt.Fprintf(progress, "bench-compare: round %d/%d %s: t/s llama.cpp / ours: %s\n", r+1, cfg.rounds, filepath.Base(model), strings.Join(line, ", "))
		}
	}
	for _, r := range rep.Rows {
		r.summarize()
	}
	rep.LoadavgAfter = readLoadavg()
	return rep, nil
}

// runLlamaBench runs llama-bench once (-r 1) for both tests and returns
// t/s by test name, with the build and model details of its first result.
func runLlamaBench(cfg config, model string, tests []string, cpu cpuInfo) (map[string]float64, llamaResult, error) {
	args := []string{"-m", model, "-p", fmt.Sprint(cfg.nPrompt), "-n", fmt.Sprint(cfg.nGen), "-t", fmt.Sprint(cfg.threads), "-r", "1", "-o", "json"}
	sigillHint := fmt.Sprintf("it uses instructions this CPU lacks (this CPU: avx512f %s, avx2 %s); %s needs AVX-512, so build llama.cpp for this CPU and pass --llama-bench PATH",
		yesNo(cpu.flags["avx512f"]), yesNo(cpu.flags["avx2"]), defaultLlamaBench)
	out, err := runTool(cfg.llamaBench, args, sigillHint)
	if err != nil {
		return nil, llamaResult{}, err
	}
	results, err := parseLlamaBench(out)
	if err != nil {
		return nil, llamaResult{}, fmt.Errorf("%s: %w", commandLine(cfg.llamaBench, args), err)
	}
	tps := make(map[string]float64)
	var got []string
	for _, r := range results {
		tps[r.Test()] = r.AvgTS
		got = append(got, r.Test())
	}
	for _, test := range tests {
		if _, ok := tps[test]; !ok {
			return nil, llamaResult{}, fmt.Errorf("%s: no %s result in its output (got %s)", commandLine(cfg.llamaBench, args), test, strings.Join(got, ", "))
		}
	}
	return tps, results[0], nil
}

// runOurBench runs `ladder-engine bench pp` and `bench tg` once each (-r 1)
// and returns t/s by test name.
func runOurBench(cfg config, model string, tests []string) (map[string]float64, error) {
	tps := make(map[string]float64)
	for _, test := range tests {
		args := []string{"bench", test[:2], model, "-t", fmt.Sprint(cfg.threads), "-r", "1", "--device", cfg.device}
		if test[:2] == "pp" {
			args = append(args, "-p", fmt.Sprint(cfg.nPrompt))
		} else {
			args = append(args, "-n", fmt.Sprint(cfg.nGen))
		}
		out, err := runTool(cfg.engine, args, "")
		if err != nil {
			return nil, err
		}
		results, err := parseOurBench(out)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", commandLine(cfg.engine, args), err)
		}
		i := slices.IndexFunc(results, func(r ourResult) bool { return r.Test == test })
		if i < 0 {
			return nil, fmt.Errorf("%s: no %s row in its output %q", commandLine(cfg.engine, args), test, head(out))
		}
		tps[test] = results[i].TPS
	}
	return tps, nil
}

// runTool runs path with args and returns its stdout. A failure names the
// command and ends with the tail of its stderr; sigillHint explains a death
// by SIGILL (a binary built for another CPU).
func runTool(path string, args []string, sigillHint string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	cmdline := commandLine(path, args)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return nil, fmt.Errorf("cannot run %s: %w", cmdline, err)
	}
	what := fmt.Sprintf("exited with status %d", ee.ExitCode())
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		what = fmt.Sprintf("was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		if ws.Signal() == syscall.SIGILL {
			what = "died with SIGILL (illegal instruction)"
			if sigillHint != "" {
				what += ": " + sigillHint
			}
		}
	}
	return nil, fmt.Errorf("%s %s\n%s", cmdline, what, stderrTail(stderr.Bytes()))
}

// stderrTail is the last lines of a tool's stderr, indented, for errors.
func stderrTail(b []byte) string {
	const maxLines, maxBytes = 15, 2000
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return "  (stderr was empty)"
	}
	if len(s) > maxBytes {
		s = "…" + s[len(s)-maxBytes:]
	}
	lines := strings.Split(s, "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return "  stderr (last lines):\n    " + strings.Join(lines, "\n    ")
}

func commandLine(path string, args []string) string {
	return strings.Join(append([]string{path}, args...), " ")
}

type cpuInfo struct {
	model string
	flags map[string]bool
}

// readCPUInfo reads the first processor's model name and flags from
// /proc/cpuinfo (Linux); elsewhere the model is "unknown".
func readCPUInfo() cpuInfo {
	info := cpuInfo{model: "unknown", flags: map[string]bool{}}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return info
	}
	return parseCPUInfo(b)
}

func parseCPUInfo(b []byte) cpuInfo {
	info := cpuInfo{model: "unknown", flags: map[string]bool{}}
	var seenModel, seenFlags bool
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "model name":
			if !seenModel {
				info.model, seenModel = strings.TrimSpace(val), true
			}
		case "flags":
			if !seenFlags {
				for _, f := range strings.Fields(val) {
					info.flags[f] = true
				}
				seenFlags = true
			}
		}
	}
	return info
}

// readLoadavg is /proc/loadavg's 1, 5 and 15 minute load averages.
func readLoadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
