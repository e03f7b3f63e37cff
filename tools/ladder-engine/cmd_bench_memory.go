package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"ladder-engine/ladder"
)

// runBenchMemory is `bench memory`: each method trains a few real steps on
// the same data in its own process (this binary's finetune, so each peak
// RSS is that method's alone), and one table sets side by side the
// measured peak, the meter's accounting, the planner's prediction, tokens/s,
// the trainable values and each peak as a ratio to LoRA's.
func runBenchMemory(args []string) error {
	fs := newFlags("bench memory", "MODEL.gguf -c N [--batch B] [--methods ladder,xladder,lora,lora-ckpt] [--steps 5] [--data FILE] [--json] [-t N]")
	model := modelFlag(fs)
	nCtx := fs.Int("c", 512, "tokens per training sequence")
	batch := fs.Int("batch", 1, "sequences per step")
	methods := fs.String("methods", "ladder,xladder,lora,lora-ckpt", "methods to measure: ladder, xladder, lora, lora-ckpt (lora with --checkpointing)")
	steps := fs.Int("steps", 5, "training steps per method")
	dataPath := fs.String("data", "", "training text (default: the embedded toy task's text)")
	asJSON := fs.Bool("json", false, "print a JSON list of objects (method, peak_bytes, predicted_bytes, tokens_per_s, trainable_params, ...)")
	threads := fs.Int("t", 0, "threads (0: all CPUs)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	path, pos, err := model(pos)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *nCtx < 2 || *batch < 1 || *steps < 1 {
		return usagef("-c must be >= 2, --batch and --steps >= 1")
	}
	var list []string
	for _, m := range strings.Split(*methods, ",") {
		switch m = strings.TrimSpace(m); m {
		case "ladder", "xladder", "lora", "lora-ckpt":
			list = append(list, m)
		default:
			return usagef("--methods: %q is not ladder, xladder, lora or lora-ckpt", m)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ladder-bench-memory")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *dataPath == "" {
		train, _ := ladder.BuiltinTask(3000, 1)
		*dataPath = filepath.Join(tmp, "data.txt")
		if err := os.WriteFile(*dataPath, []byte(train), 0o644); err != nil {
			return err
		}
	}
	var rows []runSummary
	for _, m := range list {
		method, extra := m, []string(nil)
		if m == "lora-ckpt" {
			method, extra = "lora", []string{"--checkpointing"}
		}
		sum := filepath.Join(tmp, m+".json")
		cargs := append([]string{"finetune", path, "--data", *dataPath, "--method", method, "-c", strconv.Itoa(*nCtx),
			"--batch", strconv.Itoa(*batch), "--steps", strconv.Itoa(*steps), "--val-split", "0", "--eval-every", strconv.Itoa(*steps),
			"--dir", filepath.Join(tmp, m), "--summary-json", sum, "-t", strconv.Itoa(*threads)}, extra...)
		fmt.Fprintf(os.Stderr, "bench memory: %s: %s %s\n", m, filepath.Base(self), strings.Join(cargs, " "))
		cmd := exec.Command(self, cargs...)
		cmd.Stderr = os.Stderr
		if out, err := cmd.Output(); err != nil {
			os.Stderr.Write(out)
			return fmt.Errorf("bench memory: %s: %w", m, err)
		}
		b, err := os.ReadFile(sum)
		if err != nil {
			return err
		}
		var r runSummary
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", sum, err)
		}
		r.Method = m
		rows = append(rows, r)
	}
	var loraPeak int64
	for _, r := range rows {
		if r.Method == "lora" {
			loraPeak = r.PeakBytes
		}
	}
	for i := range rows {
		if loraPeak > 0 {
			rows[i].RatioToLoRA = float64(rows[i].PeakBytes) / float64(loraPeak)
		}
	}
	if *asJSON {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}
	printMemoryTable(os.Stdout, filepath.Base(path), *nCtx, *batch, *steps, rows)
	return nil
}

// printMemoryTable writes the table of bench memory.
func printMemoryTable(w *os.File, model string, nCtx, batch, steps int, rows []runSummary) {
	mib := func(n int64) string { return fmt.Sprintf("%.0f", float64(n)/(1<<20)) }
	fmt.Fprintf(w, "%s, -c %d, --batch %d, %d steps (MiB; peak = process RSS; meter classes: weights, params+grads+optimizer, activations, KV, scratch)\n",
		model, nCtx, batch, steps)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tpeak\tpredicted\terror\tmeter\tweights\tparams+grad+opt\tactivations\tKV\tscratch\ttokens/s\ttrainable\t× lora\t")
	for _, r := range rows {
		c := r.MeterByClass
		ratio := "-"
		if r.RatioToLoRA > 0 {
			ratio = fmt.Sprintf("%.2f", r.RatioToLoRA)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%+.1f%%\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t\n", r.Method, mib(r.PeakBytes), mib(r.PredictedBytes),
			100*float64(r.PredictedBytes-r.PeakBytes)/float64(max(r.PeakBytes, 1)), mib(r.MeterPeakBytes), mib(c["weights"]),
			mib(c["side params"]+c["gradients"]+c["optimizer state"]), mib(c["stored activations"]), mib(c["KV cache"]), mib(c["scratch"]),
			r.TokensPerS, humanCount(r.TrainableParams), ratio)
	}
	tw.Flush()
}
