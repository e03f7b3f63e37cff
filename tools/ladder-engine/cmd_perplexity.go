package main

import (
	"fmt"
	"os"
	"time"

	"ladder-engine/engine"
)

// runPerplexity is llama-perplexity: the protocol itself is engine.Perplexity.
func runPerplexity(args []string) error {
	fs := newFlags("perplexity", "MODEL.gguf -f FILE [--adapter FILE]... [--adapter-scale S] [-c 512] [-b N] [--chunks N] [-t N]")
	model := modelFlag(fs)
	file := fs.String("f", "", "text file to score (required)")
	nCtx := fs.Int("c", 512, "tokens per chunk (context size)")
	nBatch := fs.Int("b", 2048, "tokens per batch (at most -c)")
	nChunks := fs.Int("chunks", -1, "score at most this many chunks (-1: all)")
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
	if *file == "" {
		return usagef("no text file: pass -f FILE")
	}
	if *nCtx < 2 {
		return usagef("-c %d: the context must hold at least 2 tokens", *nCtx)
	}
	if *nBatch < 1 {
		return usagef("-b %d: a batch must hold at least 1 token", *nBatch)
	}
	text, err := os.ReadFile(*file)
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
	// llama-perplexity: common_tokenize(text, add_special=true, parse_special=false).
	tokens := m.Tok.Encode(string(text), true, false)
	d, err := newDecoder(m, adapter, *nCtx)
	if err != nil {
		return err
	}
	defer d.Free()
	nb := min(*nBatch, *nCtx)
	fmt.Fprintf(os.Stderr, "perplexity: tokenizing the input: %d tokens\n", len(tokens))
	fmt.Fprintf(os.Stderr, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, threads=%d\n",
		len(tokens) / *nCtx, *nCtx, nb, m.Pool.Threads())
	start := time.Now()
	r, err := engine.Perplexity(d, tokens, engine.PerplexityOptions{
		NCtx: *nCtx, NBatch: nb, NChunks: *nChunks,
		AddBOS: m.Tok.AddBOS(), BOS: m.Tok.BOS(),
		Progress: func(i int, ppl float64) { fmt.Printf("[%d]%.4f,", i, ppl) },
	})
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Printf("Final estimate: PPL = %.4f +/- %.5f\n", r.PPL, r.Stderr)
	el := time.Since(start).Seconds()
	fmt.Fprintf(os.Stderr, "perplexity: %d chunks, %d tokens in %.2f s (%.1f tokens/s)\n", r.NChunks, r.NChunks**nCtx, el, float64(r.NChunks**nCtx)/el)
	return nil
}
