package main

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// llamaBenchJSON is the real stdout of
// `llama-bench -m stories260K.gguf -p 16 -n 4 -t 2 -r 1 -o json`
// (llama.cpp c392e509, built for an AVX2 AMD EPYC).
const llamaBenchJSON = `[
  {
    "build_commit": "c392e509",
    "build_number": 4748,
    "cpu_info": "AMD EPYC",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "/work/shared/models/stories260K/stories260K.gguf",
    "model_type": "llama ?B all F32 (guessed)",
    "model_size": 1171200,
    "model_n_params": 292800,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": 99,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": false,
    "tensor_split": "0.00",
    "use_mmap": true,
    "embeddings": false,
    "n_prompt": 16,
    "n_gen": 0,
    "test_time": "2026-12-03T12:27:16Z",
    "avg_ns": 639704,
    "stddev_ns": 0,
    "avg_ts": 25011.567850,
    "stddev_ts": 0.000000,
    "samples_ns": [ 639704 ],
    "samples_ts": [ 25011.6 ]
  },
  {
    "build_commit": "c392e509",
    "build_number": 4748,
    "cpu_info": "AMD EPYC",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "/work/shared/models/stories260K/stories260K.gguf",
    "model_type": "llama ?B all F32 (guessed)",
    "model_size": 1171200,
    "model_n_params": 292800,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": 99,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": false,
    "tensor_split": "0.00",
    "use_mmap": true,
    "embeddings": false,
    "n_prompt": 0,
    "n_gen": 4,
    "test_time": "2026-12-03T12:27:16Z",
    "avg_ns": 865436,
    "stddev_ns": 0,
    "avg_ts": 4621.947781,
    "stddev_ts": 0.000000,
    "samples_ns": [ 865436 ],
    "samples_ts": [ 4621.95 ]
  }
]
`

// Real stdout of `ladder-engine bench pp stories260K.gguf -p 16 -t 2 -r 1`
// and `bench tg ... -n 4`; the memory report goes to stderr.
const (
	ourBenchPP = `| model | size | threads | test | t/s |
|---|---:|---:|---:|---:|
| stories260K.gguf | 1.1 MiB | 2 | pp16 | 7750.76 ± 0.00 |
`
	ourBenchTG = `| model | size | threads | test | t/s |
|---|---:|---:|---:|---:|
| stories260K.gguf | 1.1 MiB | 2 | tg4 | 1633.99 ± 0.00 |
`
)

func TestParseLlamaBench(t *testing.T) {
	got, err := parseLlamaBench([]byte(llamaBenchJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		test string
		tps  float64
	}{{"pp16", 25011.567850}, {"tg4", 4621.947781}}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Test() != w.test || got[i].AvgTS != w.tps {
			t.Errorf("result %d: %s %v t/s, want %s %v", i, got[i].Test(), got[i].AvgTS, w.test, w.tps)
		}
	}
	if got[0].BuildCommit != "c392e509" || got[0].ModelType != "llama ?B all F32 (guessed)" || got[0].CPUInfo != "AMD EPYC" {
		t.Errorf("details: %+v", got[0])
	}
	// A stray line on stdout before the list is skipped.
	if got, err := parseLlamaBench([]byte("warning: something\n" + llamaBenchJSON)); err != nil || len(got) != 2 {
		t.Errorf("with a leading line: %d results, %v", len(got), err)
	}
	if name := testName(512, 32); name != "pp512+tg32" {
		t.Errorf("testName(512, 32) = %q", name)
	}
}

func TestParseLlamaBenchErrors(t *testing.T) {
	for _, tc := range []struct{ name, out, want string }{
		{"empty", "", "no JSON list"},
		{"markdown", "| model | size |\n", "no JSON list"},
		{"empty list", "[]\n", "empty list"},
		{"truncated", llamaBenchJSON[:300], "llama-bench output"},
		{"zero speed", `[{"n_prompt": 16, "n_gen": 0, "avg_ts": 0}]`, "pp16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLlamaBench([]byte(tc.out))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseOurBench(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      ourResult
	}{
		{"pp", ourBenchPP, ourResult{"stories260K.gguf", "pp16", 7750.76}},
		{"tg", ourBenchTG, ourResult{"stories260K.gguf", "tg4", 1633.99}},
		{"three reps", "| model | size | threads | test | t/s |\n|---|---:|---:|---:|---:|\n| x.gguf | 78.0 MiB | 2 | pp512 | 443.52 ± 0.74 |\n", ourResult{"x.gguf", "pp512", 443.52}},
		{"extra column", "| model | size | threads | device | test | t/s |\n|---|---|---|---|---|---|\n| x.gguf | 78.0 MiB | 2 | cpu | tg32 | 21.5 ± 1.2 |\n", ourResult{"x.gguf", "tg32", 21.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOurBench([]byte(tc.out))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %+v, want [%+v]", got, tc.want)
			}
		})
	}
	both, err := parseOurBench([]byte(ourBenchPP + strings.SplitN(ourBenchTG, "\n", 3)[2]))
	if err != nil || len(both) != 2 || both[1].Test != "tg4" {
		t.Errorf("pp and tg rows: %+v, %v", both, err)
	}
}

func TestParseOurBenchErrors(t *testing.T) {
	header := "| model | size | threads | test | t/s |\n|---|---:|---:|---:|---:|\n"
	for _, tc := range []struct{ name, out, want string }{
		{"empty", "", "no result rows"},
		{"header only", header, "no result rows"},
		{"bad number", header + "| x.gguf | 1 MiB | 2 | pp16 | fast ± 0.1 |\n", `"fast ± 0.1" is not a positive number`},
		{"short row", header + "| x.gguf | 1 MiB |\n", "cells"},
		{"row lacks the model column", "| test | t/s | model |\n|---|---|---|\n| pp16 | 5 |\n", "want at least 3"},
		{"no t/s column", "| model | test |\n|---|---|\n| x | pp16 |\n", "lacks a test or t/s column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOurBench([]byte(tc.out))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The parsers read other programs' output: whatever it is, they return an
// error or results, never panic.
func FuzzParseOurBench(f *testing.F) {
	f.Add(ourBenchPP)
	f.Add("| test | t/s |\n| pp1 | 1 ± |\n|\n")
	f.Add("| test | t/s | model |\n| pp1 | 5 |\n") // a row short of the model column once panicked
	f.Fuzz(func(t *testing.T, out string) {
		results, err := parseOurBench([]byte(out))
		if err == nil && len(results) == 0 {
			t.Error("no error and no results")
		}
	})
}

func FuzzParseLlamaBench(f *testing.F) {
	f.Add(llamaBenchJSON)
	f.Add(`[{"n_prompt": 1}]`)
	f.Fuzz(func(t *testing.T, out string) {
		results, err := parseLlamaBench([]byte(out))
		if err == nil && len(results) == 0 {
			t.Error("no error and no results")
		}
	})
}

func TestMedianAndRatio(t *testing.T) {
	for _, tc := range []struct {
		x    []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.x); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
	// By hand: ratios 50/100, 300/200, 50/50 = 0.5, 1.5, 1 → median 1, while
	// the ratio of the medians (50/100) would be 0.5: the pairs count, not
	// the columns.
	var r row
	for _, p := range [][2]float64{{100, 50}, {200, 300}, {50, 50}} {
		r.add(p[0], p[1])
	}
	r.summarize()
	if r.LlamaMedian != 100 || r.OursMedian != 50 || r.RatioMedian != 1 || r.Rounds != 3 {
		t.Errorf("got llama %v, ours %v, ratio %v, rounds %d; want 100, 50, 1, 3", r.LlamaMedian, r.OursMedian, r.RatioMedian, r.Rounds)
	}
	if !slices.Equal(r.Ratios, []float64{0.5, 1.5, 1}) {
		t.Errorf("ratios %v, want [0.5 1.5 1]", r.Ratios)
	}
	if s := spread(r.LlamaTPS); s != "100.00 (50.00–200.00)" {
		t.Errorf("spread = %q", s)
	}
}

func TestMissingBinary(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.gguf")
	plain := filepath.Join(dir, "plain")
	for _, f := range []string{model, plain} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	llama := writeScript(t, dir, "llama-bench", "exit 0")
	missing := filepath.Join(dir, "bin", "ladder-engine")
	for _, tc := range []struct {
		name          string
		llama, engine string
		want          []string
	}{
		{"engine", llama, missing, []string{missing, "not found", "./build.sh"}},
		{"llama-bench", filepath.Join(dir, "nope"), llama, []string{filepath.Join(dir, "nope"), "not found", "--llama-bench", "LLAMA_BENCH"}},
		{"directory", llama, dir, []string{dir, "is a directory", "./build.sh"}},
		{"not executable", llama, plain, []string{plain, "not executable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config{llamaBench: tc.llama, engine: tc.engine, device: "cpu", nPrompt: 16, nGen: 4, threads: 2, rounds: 1, models: []string{model}}
			_, err := compare(cfg, &bytes.Buffer{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRunToolFailure(t *testing.T) {
	dir := shellDir(t)
	dies := writeScript(t, dir, "dies", "echo loading model >&2\necho 'error: failed to load model' >&2\nexit 3")
	_, err := runTool(dies, []string{"-m", "x.gguf"}, "")
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{dies + " -m x.gguf", "exited with status 3", "error: failed to load model"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	// A binary built for another CPU dies with SIGILL; the error says so.
	sigill := writeScript(t, dir, "sigill", "echo 'build: c392e509' >&2\nkill -ILL $$")
	_, err = runTool(sigill, nil, "needs AVX-512")
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{sigill, "SIGILL", "needs AVX-512", "build: c392e509"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// TestCompareWithFakeTools runs the whole comparison against stand-ins that
// print the captured outputs and log each call, to check the alternating
// order and the figures that reach the report.
func TestCompareWithFakeTools(t *testing.T) {
	dir := shellDir(t)
	log := filepath.Join(dir, "calls.log")
	t.Setenv("BENCH_COMPARE_LOG", log)
	llama := writeScript(t, dir, "llama-bench", "echo llama >> \"$BENCH_COMPARE_LOG\"\ncat <<'JSON'\n"+llamaBenchJSON+"JSON")
	engine := writeScript(t, dir, "ladder-engine", "echo \"ours-$2\" >> \"$BENCH_COMPARE_LOG\"\ncase \"$2\" in\npp) cat <<'MD'\n"+ourBenchPP+"MD\n;;\ntg) cat <<'MD'\n"+ourBenchTG+"MD\n;;\nesac")
	model := filepath.Join(dir, "stories260K.gguf")
	if err := os.WriteFile(model, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config{llamaBench: llama, engine: engine, device: "cpu", nPrompt: 16, nGen: 4, threads: 2, rounds: 3, models: []string{model}}
	rep, err := compare(cfg, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := "llama ours-pp ours-tg ours-pp ours-tg llama llama ours-pp ours-tg"
	if got := strings.Join(strings.Fields(string(calls)), " "); got != wantCalls {
		t.Errorf("calls %q, want %q", got, wantCalls)
	}
	// Ratios by hand from the captured outputs: 7750.76/25011.56785 and
	// 1633.99/4621.947781.
	want := []struct {
		test        string
		llama, ours float64
		ratio       float64
	}{{"pp16", 25011.567850, 7750.76, 0.3098870109416192}, {"tg4", 4621.947781, 1633.99, 0.353528442427896}}
	if len(rep.Rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rep.Rows), len(want))
	}
	for i, w := range want {
		r := rep.Rows[i]
		if r.Test != w.test || r.Rounds != 3 || len(r.LlamaTPS) != 3 || len(r.OursTPS) != 3 ||
			r.LlamaMedian != w.llama || r.OursMedian != w.ours || math.Abs(r.RatioMedian-w.ratio) > 1e-12 {
			t.Errorf("row %d: %+v, want %s llama %v ours %v ratio %v over 3 rounds", i, r, w.test, w.llama, w.ours, w.ratio)
		}
	}
	if rep.LlamaBuildCommit != "c392e509" {
		t.Errorf("build_commit %q", rep.LlamaBuildCommit)
	}
	var md bytes.Buffer
	writeMarkdown(&md, rep)
	if !strings.Contains(md.String(), "| stories260K.gguf | pp16 | 25011.57 (25011.57–25011.57) | 7750.76 (7750.76–7750.76) | 0.31 | 3 |") {
		t.Errorf("markdown lacks the pp16 row:\n%s", md.String())
	}
}

func TestParseArgs(t *testing.T) {
	t.Setenv("LLAMA_BENCH", "/opt/llama-bench")
	cfg, asJSON, err := parseArgs([]string{"a.gguf", "-p", "16", "--json", "b.gguf", "--rounds", "1"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.models, []string{"a.gguf", "b.gguf"}) || cfg.nPrompt != 16 || cfg.nGen != 32 || cfg.threads != 2 ||
		cfg.rounds != 1 || !asJSON || cfg.llamaBench != "/opt/llama-bench" || cfg.engine != "bin/ladder-engine" {
		t.Errorf("got %+v json=%v", cfg, asJSON)
	}
	for _, args := range [][]string{nil, {"-p", "0", "-n", "0", "a.gguf"}, {"--rounds", "0", "a.gguf"}, {"--bogus", "a.gguf"}} {
		var ue usageError
		if _, _, err := parseArgs(args, &bytes.Buffer{}); !errors.As(err, &ue) {
			t.Errorf("parseArgs(%q): %v, want a usage error", args, err)
		}
	}
}

func TestParseCPUInfo(t *testing.T) {
	info := parseCPUInfo([]byte("processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nmodel name\t: other\nflags\t\t: avx512f\n"))
	if info.model != "AMD EPYC 9654 96-Core Processor" || !info.flags["avx2"] || info.flags["avx512f"] {
		t.Errorf("got %q avx2=%v avx512f=%v", info.model, info.flags["avx2"], info.flags["avx512f"])
	}
}

// shellDir is a temporary folder for stand-in tools, which are shell scripts.
func shellDir(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("stand-in tools are shell scripts")
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for the stand-in tools")
	}
	return t.TempDir()
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
