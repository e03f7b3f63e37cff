package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// llamaResult is one test of llama-bench's `-o json` output: a list of
// objects, one per test (a pp test has n_gen 0, a tg test n_prompt 0).
type llamaResult struct {
	BuildCommit string  `json:"build_commit"`
	CPUInfo     string  `json:"cpu_info"`
	ModelType   string  `json:"model_type"`
	NPrompt     int     `json:"n_prompt"`
	NGen        int     `json:"n_gen"`
	AvgTS       float64 `json:"avg_ts"`
}

// Test names the test as llama-bench's markdown table does: pp512, tg32,
// pp512+tg32.
func (r llamaResult) Test() string { return testName(r.NPrompt, r.NGen) }

func testName(nPrompt, nGen int) string {
	switch {
	case nGen == 0:
		return fmt.Sprintf("pp%d", nPrompt)
	case nPrompt == 0:
		return fmt.Sprintf("tg%d", nGen)
	}
	return fmt.Sprintf("pp%d+tg%d", nPrompt, nGen)
}

// parseLlamaBench reads llama-bench's stdout under `-o json`. Its log goes
// to stderr, but anything before the opening '[' is skipped in case a build
// prints a line on stdout first.
func parseLlamaBench(out []byte) ([]llamaResult, error) {
	start := bytes.IndexByte(out, '[')
	if start < 0 {
		return nil, fmt.Errorf("llama-bench output: no JSON list (want `-o json` output), got %q", head(out))
	}
	var results []llamaResult
	if err := json.Unmarshal(out[start:], &results); err != nil {
		return nil, fmt.Errorf("llama-bench output: %w", err)
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("llama-bench output: empty list of results")
	}
	for i, r := range results {
		if r.AvgTS <= 0 {
			return nil, fmt.Errorf("llama-bench output: result %d (%s): avg_ts %v is not a positive speed", i, r.Test(), r.AvgTS)
		}
	}
	return results, nil
}

// ourResult is one row of `ladder-engine bench`'s markdown table:
//
//	| model | size | threads | test | t/s |
//	| x.gguf | 78.0 MiB | 2 | pp512 | 443.52 ± 0.74 |
type ourResult struct {
	Model string
	Test  string
	TPS   float64 // the mean over -r repetitions
}

// parseOurBench reads the markdown table that `ladder-engine bench` prints
// on stdout (it has no JSON output). Columns are found by their header
// names, so added columns do not break it.
func parseOurBench(out []byte) ([]ourResult, error) {
	colModel, colTest, colTPS := -1, -1, -1
	var results []ourResult
	for n, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if colTest < 0 {
			for i, c := range cells {
				switch c {
				case "model":
					colModel = i
				case "test":
					colTest = i
				case "t/s":
					colTPS = i
				}
			}
			if colTest < 0 || colTPS < 0 {
				return nil, fmt.Errorf("ladder-engine bench output line %d: header %q lacks a test or t/s column", n+1, line)
			}
			continue
		}
		if strings.HasPrefix(cells[0], "---") || strings.HasPrefix(cells[0], ":--") {
			continue // the alignment row
		}
		// Every named column, the model's included, must be in the row: a
		// header may put "model" last.
		if need := max(colModel, colTest, colTPS) + 1; len(cells) < need {
			return nil, fmt.Errorf("ladder-engine bench output line %d: %d cells, want at least %d: %q", n+1, len(cells), need, line)
		}
		// "443.52 ± 0.74": the mean, then the standard deviation.
		mean, _, _ := strings.Cut(cells[colTPS], "±")
		tps, err := strconv.ParseFloat(strings.TrimSpace(mean), 64)
		if err != nil || tps <= 0 {
			return nil, fmt.Errorf("ladder-engine bench output line %d: t/s %q is not a positive number", n+1, cells[colTPS])
		}
		r := ourResult{Test: cells[colTest], TPS: tps}
		if colModel >= 0 {
			r.Model = cells[colModel]
		}
		results = append(results, r)
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("ladder-engine bench output: no result rows in %q", head(out))
	}
	return results, nil
}

// head is the start of a tool's output, for error messages.
func head(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
