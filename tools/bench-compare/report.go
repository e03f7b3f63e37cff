package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// report is what one bench-compare run found; --json prints it as is.
type report struct {
	Date             string `json:"date"`
	CPUModel         string `json:"cpu_model"`
	AVX512F          bool   `json:"avx512f"`
	AVX2             bool   `json:"avx2"`
	NCPU             int    `json:"n_cpu"`
	LlamaBench       string `json:"llama_bench"`
	LlamaBuildCommit string `json:"llama_build_commit"`
	Engine           string `json:"engine"`
	Device           string `json:"device"`
	NPrompt          int    `json:"n_prompt"`
	NGen             int    `json:"n_gen"`
	Threads          int    `json:"threads"`
	Rounds           int    `json:"rounds"`
	Order            string `json:"order"`
	LoadavgBefore    string `json:"loadavg_before"`
	LoadavgAfter     string `json:"loadavg_after"`
	Rows             []*row `json:"rows"`
}

// row is one model and test. LlamaTPS[i], OursTPS[i] and Ratios[i] are
// round i's figures.
type row struct {
	Model          string    `json:"model"`
	Test           string    `json:"test"`
	LlamaModelType string    `json:"llama_model_type"`
	LlamaTPS       []float64 `json:"llama_tps"`
	OursTPS        []float64 `json:"ours_tps"`
	Ratios         []float64 `json:"ratios"`
	LlamaMedian    float64   `json:"llama_median"`
	OursMedian     float64   `json:"ours_median"`
	RatioMedian    float64   `json:"ratio_median"`
	Rounds         int       `json:"rounds"`
}

// add records one round's pair of speeds.
func (r *row) add(llama, ours float64) {
	r.LlamaTPS = append(r.LlamaTPS, llama)
	r.OursTPS = append(r.OursTPS, ours)
	r.Ratios = append(r.Ratios, ours/llama)
}

// summarize fills the medians. The ratio is the median of the per-round
// ratios, not the ratio of the medians: each round's pair ran back to back
// under the same load, so its ratio cancels what the machine was doing then.
func (r *row) summarize() {
	r.LlamaMedian = median(r.LlamaTPS)
	r.OursMedian = median(r.OursTPS)
	r.RatioMedian = median(r.Ratios)
	r.Rounds = len(r.Ratios)
}

// median of x (the mean of the middle two when len(x) is even); 0 for none.
func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// spread formats a median with the min–max over rounds: "443.52 (440.10–447.00)".
func spread(x []float64) string {
	if len(x) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(x), slices.Min(x), slices.Max(x))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// writeMarkdown prints the header (what ran, on what, under what load) and
// one table row per model and test.
func writeMarkdown(w io.Writer, rep *report) {
	var b strings.Builder
	fmt.Fprintf(&b, "## llama.cpp against ladder-engine, side by side\n\n")
	fmt.Fprintf(&b, "- date: %s\n", rep.Date)
	fmt.Fprintf(&b, "- CPU: %s (avx512f: %s, avx2: %s), %d logical CPUs\n", rep.CPUModel, yesNo(rep.AVX512F), yesNo(rep.AVX2), rep.NCPU)
	fmt.Fprintf(&b, "- llama.cpp: %s, build_commit %s\n", rep.LlamaBench, rep.LlamaBuildCommit)
	fmt.Fprintf(&b, "- ours: %s, --device %s\n", rep.Engine, rep.Device)
	fmt.Fprintf(&b, "- settings: -p %d -n %d -t %d, %d round(s) of -r 1 each; %s\n", rep.NPrompt, rep.NGen, rep.Threads, rep.Rounds, rep.Order)
	fmt.Fprintf(&b, "- load average (1, 5, 15 min): before %s, after %s\n\n", rep.LoadavgBefore, rep.LoadavgAfter)
	fmt.Fprintf(&b, "| model | test | llama.cpp t/s, median (min–max) | ours t/s, median (min–max) | ours/llama.cpp (median of ratios) | rounds |\n")
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|---:|\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %d |\n", filepath.Base(r.Model), r.Test, spread(r.LlamaTPS), spread(r.OursTPS), r.RatioMedian, r.Rounds)
	}
	fmt.Fprintf(&b, "\nPer round, t/s (llama.cpp / ours):\n")
	for _, r := range rep.Rows {
		var rounds []string
		for i := range r.Ratios {
			rounds = append(rounds, fmt.Sprintf("%.2f / %.2f", r.LlamaTPS[i], r.OursTPS[i]))
		}
		fmt.Fprintf(&b, "- %s %s: %s\n", filepath.Base(r.Model), r.Test, strings.Join(rounds, "; "))
	}
	io.WriteString(w, b.String())
}
