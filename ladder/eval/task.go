package eval

import (
	"fmt"
	"time"

	"ladder-engine/ladder/data"
)

// Task names, as --task spells them.
const (
	TaskClassify = "classify"
	TaskChoice   = "choice"
	TaskGSM8K    = "gsm8k"
	TaskPPL      = "ppl"
)

// Options says what to evaluate. Zero values mean the documented defaults.
type Options struct {
	Task  string // classify, choice, gsm8k or ppl
	Data  string // the data file (plain, .gz or .zst)
	Limit int    // evaluate only the first Limit examples (0: all)

	// classify
	LabelWords []string // the i-th word is label i (default data.DefaultLabelWords: negative,positive)
	Template   string   // prompt template with {text} (default data.DefaultPromptTemplate, as finetune)

	// gsm8k
	Shots     int    // worked examples before each question (default 0: zero-shot)
	ShotsData string // where the shots come from (default: train.jsonl beside Data)
	MaxNew    int    // most tokens generated per question (default 256)

	// ppl
	Ctx int // tokens per chunk (default: the LM's context, the -c of eval)

	// Progress, when set, is called as examples finish.
	Progress func(done, total int)
}

// Set is a loaded evaluation: the examples of one task, ready to run on any
// number of models (finetune runs it at every --eval-every).
type Set struct {
	opts    Options
	records []data.Record // classify
	choice  []ChoiceItem
	math    []MathItem
	shots   []MathItem
	text    string
}

// Load reads the data of opts.Task.
func Load(opts Options) (*Set, error) {
	s := &Set{opts: opts}
	var err error
	switch opts.Task {
	case TaskClassify:
		err = s.loadClassify()
	case TaskChoice:
		s.choice, err = ReadChoiceFile(opts.Data)
		s.choice = limit(s.choice, opts.Limit)
	case TaskGSM8K:
		err = s.loadGSM8K()
	case TaskPPL:
		err = s.loadText()
	default:
		return nil, fmt.Errorf("eval: unknown task %q (want classify, choice, gsm8k or ppl)", opts.Task)
	}
	if err != nil {
		return nil, err
	}
	if opts.Task != TaskPPL && s.Len() == 0 {
		// an accuracy of 0/0 would read as a real (bad) result.
		return nil, fmt.Errorf("eval: %s: no %s examples in the file", opts.Data, opts.Task)
	}
	return s, nil
}

// Len is the number of examples that Run will score.
func (s *Set) Len() int {
	switch s.opts.Task {
	case TaskClassify:
		return len(s.records)
	case TaskChoice:
		return len(s.choice)
	case TaskGSM8K:
		return len(s.math)
	}
	return 0
}

// Run evaluates lm on the set.
func (s *Set) Run(lm *LM) (*Result, error) {
	r := &Result{Task: s.opts.Task, Data: s.opts.Data}
	t0 := time.Now()
	tok0 := lm.Tokens
	var err error
	switch s.opts.Task {
	case TaskClassify:
		err = s.runClassify(lm, r)
	case TaskChoice:
		err = s.runChoice(lm, r)
	case TaskGSM8K:
		err = s.runGSM8K(lm, r)
	case TaskPPL:
		err = s.runPPL(lm, r)
	}
	r.Seconds = time.Since(t0).Seconds()
	r.Tokens = lm.Tokens - tok0
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Set) progress(done, total int) {
	if s.opts.Progress != nil {
		s.opts.Progress(done, total)
	}
}

func limit[T any](items []T, n int) []T {
	if n > 0 && len(items) > n {
		return items[:n]
	}
	return items
}

// continuation tokenizes ctx+cont the way lm-evaluation-harness does: the
// whole text is encoded at once (so the tokens at the seam are the ones
// the model would see) and the continuation is what follows the longest
// shared prefix with the context's own encoding. When the sequence exceeds
// nCtx+1 (the last token is never run), the oldest context tokens are
// dropped (truncated = true), as data.Formatter cuts classification.
func continuation(tok Tokenizer, ctx, cont string, nCtx int) (sp Span, truncated bool) {
	whole := tok.Encode(ctx+cont, true, false)
	c := tok.Encode(ctx, true, false)
	from := min(commonPrefix(whole, c), len(whole)-1)
	from = max(from, 1)
	if len(whole) > nCtx+1 {
		drop := len(whole) - (nCtx + 1)
		whole = whole[drop:]
		from = max(from-drop, 1)
		truncated = true
	}
	return Span{Tokens: whole, From: from}, truncated
}
