package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"ladder-engine/ops"
)

// runBench measures prompt processing (pp) and generation (tg) speed the way
// llama-bench does: pp feeds -p random tokens (BOS first) in batches of -b
// and computes only the last token's logits; tg decodes -n tokens one by one
// from an empty cache. One warm-up run, then -r timed repetitions.
func runBench(args []string) error {
	if len(args) > 0 && args[0] == "memory" {
		return runBenchMemory(args[1:])
	}
	fs := newFlags("bench", "[pp|tg|memory] MODEL.gguf [-p 512] [-n 32] [-b 512] [-r 3] [-t N]")
	model := modelFlag(fs)
	nPrompt := fs.Int("p", 512, "prompt tokens for pp")
	nGen := fs.Int("n", 32, "generated tokens for tg")
	nBatch := fs.Int("b", 512, "prompt tokens per batch (llama-bench's n_ubatch)")
	reps := fs.Int("r", 3, "timed repetitions")
	threads := fs.Int("t", 0, "threads (0: all CPUs)")
	device := deviceFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	tests := []string{"pp", "tg"}
	if len(pos) > 0 && (pos[0] == "pp" || pos[0] == "tg") {
		tests, pos = pos[:1], pos[1:]
	} else if len(pos) > 1 {
		return usagef("unknown test %q: want pp or tg (before MODEL.gguf)", pos[0])
	}
	path, pos, err := model(pos)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *reps < 1 || *nPrompt < 1 || *nGen < 1 || *nBatch < 1 {
		return usagef("-p, -n, -b and -r must be positive")
	}
	m, err := loadModel(path, *threads, *device)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := checkContext(m, "-p + -n", *nPrompt+*nGen); err != nil {
		return err
	}
	d := m.NewDecoder(*nPrompt + *nGen)
	defer d.Free()
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, m.NVocab)
	first := func() int32 {
		if m.Tok.AddBOS() {
			return m.Tok.BOS()
		}
		return int32(rng.IntN(m.NVocab))
	}
	pp := func() error {
		d.Reset()
		tok := make([]int32, *nPrompt)
		tok[0] = first()
		for i := 1; i < len(tok); i++ {
			tok[i] = int32(rng.IntN(m.NVocab))
		}
		for b := 0; b < len(tok); b += *nBatch {
			if err := d.Decode(tok[b:min(b+*nBatch, len(tok))], false, logits); err != nil {
				return err
			}
		}
		return nil
	}
	tg := func(n int) error {
		d.Reset()
		t := first()
		for i := 0; i < n; i++ {
			if err := d.Decode([]int32{t}, false, logits); err != nil {
				return err
			}
			t = int32(rng.IntN(m.NVocab))
		}
		return nil
	}
	fmt.Printf("| model | size | threads | test | t/s |\n|---|---:|---:|---:|---:|\n")
	for _, test := range tests {
		run, n, name := pp, *nPrompt, fmt.Sprintf("pp%d", *nPrompt)
		if test == "tg" {
			run, n, name = func() error { return tg(*nGen) }, *nGen, fmt.Sprintf("tg%d", *nGen)
			if err := tg(1); err != nil { // warm-up
				return err
			}
		} else if err := pp(); err != nil { // warm-up
			return err
		}
		var ts []float64
		for r := 0; r < *reps; r++ {
			start := time.Now()
			if err := run(); err != nil {
				return err
			}
			ts = append(ts, float64(n)/time.Since(start).Seconds())
		}
		mean, sd := meanStd(ts)
		fmt.Printf("| %s | %s | %d | %s | %.2f ± %.2f |\n", filepath.Base(path), ops.FormatBytes(m.WeightBytes()), m.Pool.Threads(), name, mean, sd)
	}
	fmt.Fprintf(os.Stderr, "memory:\n%s", ops.DefaultMeter.Report())
	printDeviceMemory(m)
	return nil
}

func meanStd(x []float64) (mean, sd float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	for _, v := range x {
		sd += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(sd / float64(len(x)-1))
}
