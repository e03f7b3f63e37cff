package main

import (
	"bufio"
	"fmt"
	"os"
	"time"
	"unicode/utf8"

	"ladder-engine/engine"
)

// runGenerate streams a continuation of a prompt (llama-cli / llama-simple).
func runGenerate(args []string) error {
	fs := newFlags("generate", "MODEL.gguf -p TEXT [--adapter FILE]... [--adapter-scale S] [-n 128] [--temp 0.8] [--top-k 40] [--top-p 0.95] [--min-p 0.05] [--seed S]")
	model := modelFlag(fs)
	prompt := fs.String("p", "", "prompt text (special tokens like <|im_start|> are parsed)")
	file := fs.String("f", "", "read the prompt from a file")
	nPredict := fs.Int("n", 128, "tokens to generate (-1: until end of text or a full context)")
	temp := fs.Float64("temp", 0.8, "temperature (0: greedy)")
	topK := fs.Int("top-k", 40, "keep the K most likely tokens (0: all)")
	topP := fs.Float64("top-p", 0.95, "keep the most likely tokens up to this total probability (1: all)")
	minP := fs.Float64("min-p", 0.05, "drop tokens less likely than this fraction of the top token (0: off)")
	seed := fs.Int64("seed", -1, "random seed (-1: from the clock)")
	nCtx := fs.Int("c", 0, "context size (0: the model's training context)")
	threads := fs.Int("t", 0, "threads (0: all CPUs)")
	device := deviceFlag(fs)
	af := addAdapterFlags(fs)
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
	if *nPredict < -1 {
		return usagef("-n %d: want a count of tokens, or -1 for until the end of text or a full context", *nPredict)
	}
	text := *prompt
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		text = string(b)
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
	ids := m.Tok.Encode(text, true, true)
	if len(ids) == 0 {
		return usagef("empty prompt: pass -p TEXT (this vocabulary adds no BOS to start from)")
	}
	d, err := newDecoder(m, adapter, *nCtx)
	if err != nil {
		return err
	}
	defer d.Free()
	if *seed < 0 {
		*seed = time.Now().UnixNano() & (1<<62 - 1)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprint(w, text)
	w.Flush()

	// Decode the whole continuation each time and print what is new once it
	// is valid UTF-8: a character may span several byte-fallback tokens.
	var gen []int32
	printed := 0
	start := time.Now()
	var tFirst time.Time
	out, err := engine.Generate(d, ids, engine.GenerateOptions{
		NPredict: *nPredict,
		Sampler: engine.SamplerOptions{Temp: float32(*temp), TopK: *topK, TopP: float32(*topP),
			MinP: float32(*minP), Seed: uint64(*seed)},
		IsEOG: m.Tok.IsEOG,
	}, func(id int32) bool {
		if tFirst.IsZero() {
			tFirst = time.Now()
		}
		gen = append(gen, id)
		s := m.Tok.Decode(gen)
		if len(s) > printed && utf8.ValidString(s[printed:]) {
			fmt.Fprint(w, s[printed:])
			w.Flush()
			printed = len(s)
		}
		return true
	})
	if s := m.Tok.Decode(gen); len(s) > printed {
		fmt.Fprint(w, s[printed:])
	}
	fmt.Fprintln(w)
	if err != nil {
		return err
	}
	end := time.Now()
	if !tFirst.IsZero() {
		pp := tFirst.Sub(start).Seconds()
		fmt.Fprintf(os.Stderr, "prompt: %d tokens in %.3f s (%.1f tokens/s)\n", len(ids), pp, float64(len(ids))/pp)
		if len(out) > 1 {
			tg := end.Sub(tFirst).Seconds()
			fmt.Fprintf(os.Stderr, "generation: %d tokens in %.3f s (%.1f tokens/s)\n", len(out)-1, tg, float64(len(out)-1)/tg)
		}
	}
	return nil
}
