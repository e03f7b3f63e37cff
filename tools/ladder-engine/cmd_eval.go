package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"ladder-engine/ladder/eval"
)

// runEval scores a model (and adapter) on a task: label-word
// classification, multiple choice, GSM8K or perplexity.
func runEval(args []string) error {
	fs := newFlags("eval", "MODEL.gguf [--adapter FILE]... [--adapter-scale S] --task classify|choice|gsm8k|ppl --data FILE [--limit N] [--json] [--dump FILE]")
	model := modelFlag(fs)
	af := addAdapterFlags(fs)
	task := fs.String("task", "", "classify (label-word log-likelihood), choice (ARC JSONL / MMLU CSV), gsm8k (greedy, exact match) or ppl")
	dataPath := fs.String("data", "", "data file (plain, .gz or .zst): TSV/JSONL text+label, ARC JSONL, MMLU CSV, GSM8K JSONL, or a text file for ppl")
	limit := fs.Int("limit", 0, "evaluate only the first N examples (ppl: N chunks; 0: all)")
	asJSON := fs.Bool("json", false, "print one JSON object (task, n, accuracy or ppl, ci_low, ci_high, ...)")
	dump := fs.String("dump", "", "write per-example predictions to FILE (JSONL)")
	labelWords := fs.String("label-words", "", "classify: comma-separated label words, the i-th for label i (default as finetune: negative,positive)")
	template := fs.String("prompt-template", "", "classify: prompt template with {text} (default as finetune)")
	shots := fs.Int("shots", 0, "gsm8k: worked examples before each question (0: zero-shot)")
	shotsData := fs.String("shots-data", "", "gsm8k: file of worked examples (default: train.jsonl beside --data)")
	maxNew := fs.Int("max-new", 256, "gsm8k: most tokens generated per answer")
	nCtx := fs.Int("c", 0, "context size (0: the model's training context; ppl: tokens per chunk, default 512 as perplexity)")
	threads := fs.Int("t", 0, "threads (0: all CPUs)")
	device := deviceFlag(fs)
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
	switch *task {
	case eval.TaskClassify, eval.TaskChoice, eval.TaskGSM8K, eval.TaskPPL:
	case "":
		return usagef("no task: pass --task classify, choice, gsm8k or ppl")
	default:
		return usagef("--task %q: want classify, choice, gsm8k or ppl", *task)
	}
	if *dataPath == "" {
		return usagef("no data: pass --data FILE")
	}
	if *limit < 0 || *shots < 0 || *maxNew < 0 {
		return usagef("--limit, --shots and --max-new cannot be negative")
	}
	opts := eval.Options{
		Task: *task, Data: *dataPath, Limit: *limit, Template: *template,
		Shots: *shots, ShotsData: *shotsData, MaxNew: *maxNew,
	}
	if *labelWords != "" {
		for _, w := range strings.Split(*labelWords, ",") {
			if w = strings.TrimSpace(w); w == "" {
				return usagef("--label-words %q: empty label word", *labelWords)
			}
			opts.LabelWords = append(opts.LabelWords, w)
		}
		if len(opts.LabelWords) < 2 {
			return usagef("--label-words %q: need at least two words", *labelWords)
		}
	}
	if *task == eval.TaskPPL && *nCtx == 0 {
		*nCtx = 512
	}
	if isTerminal(os.Stderr) {
		opts.Progress = func(done, total int) {
			fmt.Fprintf(os.Stderr, "\r%s: %d/%d", *task, done, total)
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
		}
	}
	set, err := eval.Load(opts)
	if err != nil {
		return err
	}

	m, err := loadModel(path, *threads, *device)
	if err != nil {
		return err
	}
	defer m.Close()
	adapter, releaseLoRA, err := af.apply(m)
	if err != nil {
		return err
	}
	defer releaseLoRA()
	var lm *eval.LM
	if adapter != "" {
		dec, err := adapterDecoder(m, adapter, *nCtx)
		if err != nil {
			return err
		}
		lm = eval.NewLM(dec, m.Tok)
	} else {
		if err := checkContext(m, "-c", *nCtx); err != nil {
			return err
		}
		lm = eval.NewEngineLM(m, *nCtx)
	}
	defer lm.Free()

	res, err := set.Run(lm)
	if err != nil {
		return err
	}
	if *dump != "" {
		if err := writeDump(*dump, res); err != nil {
			return err
		}
	}
	if *asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}
	fmt.Println(res)
	return nil
}

func writeDump(path string, res *eval.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteDump(f); err != nil {
		f.Close()
		return fmt.Errorf("--dump %s: %w", path, err)
	}
	return f.Close()
}

// isTerminal reports whether f is a character device (a terminal), where a
// progress line with \r is welcome.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
