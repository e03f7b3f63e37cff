package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"ladder-engine/engine/synth"
	"ladder-engine/gguf"
	"ladder-engine/ops"
)

func runSynth(args []string) error { return synthCmd(os.Stdout, args) }

func synthCmd(stdout io.Writer, args []string) error {
	fs := newFlags("synth", "--arch llama|qwen2|gemma2|phi3 --preset NAME [--type f32|f16|q8_0|q4_0|q4_K] [--pure] [--seed N] [--vocab-from FILE.gguf] -o OUT.gguf")
	arch := fs.String("arch", "llama", "architecture: "+strings.Join(synth.Arches(), ", "))
	var presetHelp []string
	for _, a := range synth.Arches() {
		presetHelp = append(presetHelp, a+": "+strings.Join(synth.PresetNames(a), ", "))
	}
	preset := fs.String("preset", "tiny", "model shape ("+strings.Join(presetHelp, "; ")+")")
	typeName := fs.String("type", "f32", "main type of the weight matrices (f32, f16, bf16, q8_0, q4_0, q4_K, q6_K, ...; q4_K_M = q4_K); norms and biases stay f32")
	pure := fs.Bool("pure", false, "give every weight matrix exactly --type, like llama-quantize --pure (default: llama-quantize's mix for that type, e.g. output.weight q6_K with q4_0)")
	seed := fs.Uint64("seed", 1234, "random seed; the same seed gives the same file")
	vocabFrom := fs.String("vocab-from", "", "copy the tokenizer from this GGUF file (its size replaces the preset's n_vocab)")
	var out string
	fs.StringVar(&out, "o", "", "output GGUF file")
	fs.StringVar(&out, "output", "", "same as -o")
	threads := fs.Int("t", 0, "threads (default: all CPUs); the output does not depend on it")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if out == "" {
		return usagef("no output file: pass -o OUT.gguf")
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return usagef("-o %s is a directory; give a file name", out)
	}
	if _, err := synth.LookupPreset(*arch, *preset); err != nil {
		return usagef("%v", err)
	}
	// llama-quantize's names for the K-quant mixes we make ("Q4_K_M") are
	// accepted for their main type.
	t, err := gguf.ParseType(*typeName)
	if err != nil {
		if t2, err2 := gguf.ParseType(strings.TrimSuffix(strings.ToLower(*typeName), "_m")); err2 == nil && t2.BlockSize() == gguf.QK_K {
			t, err = t2, nil
		}
	}
	if err != nil {
		return usagef("--type: %v", err)
	}
	if !gguf.CanQuantize(t) {
		return usagef("--type %s: writing this type is not supported", t)
	}
	opt := synth.Options{Arch: *arch, Preset: *preset, Type: t, Pure: *pure, Seed: *seed, Threads: *threads}
	if *vocabFrom != "" {
		vf, err := gguf.Open(*vocabFrom)
		if err != nil {
			return fmt.Errorf("--vocab-from: %w", err)
		}
		defer vf.Close()
		opt.Vocab = vf
	}

	start := time.Now()
	w, err := synth.Build(opt)
	if err != nil {
		return err
	}
	var params, size int64
	types := map[gguf.Type]int{}
	for _, ti := range w.Tensors() {
		params += ti.NElements()
		size += ti.Size
		types[ti.Type]++
	}
	var mix []string
	for ty, n := range types {
		mix = append(mix, fmt.Sprintf("%s×%d", ty, n))
	}
	sort.Strings(mix)
	// A 7b preset is tens of GB: refuse up front rather than fill the disk
	// and fail at the end.
	var fsst unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(out), &fsst); err == nil {
		if free := int64(fsst.Bavail) * int64(fsst.Bsize); size > free {
			return fmt.Errorf("%s: the model needs %s but %s has only %s free", out, ops.FormatBytes(size), filepath.Dir(out), ops.FormatBytes(free))
		}
	}
	// WriteFile writes a hidden temp file beside out and renames it at the
	// end; on Ctrl-C or SIGTERM remove it instead of leaving gigabytes behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; ok {
			tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp*"))
			for _, t := range tmps {
				os.Remove(t)
			}
			fmt.Fprintf(os.Stderr, "ladder-engine synth: interrupted; %s not written\n", out)
			os.Exit(1)
		}
	}()
	if err := w.WriteFile(out); err != nil {
		return err
	}
	ft, _ := gguf.FileTypeFor(t)
	fmt.Fprintf(stdout, "wrote %s: %s %s, %s (%s), %.1fM parameters, %s of tensors, seed %d, in %.1fs\n",
		out, *arch, *preset, ft, strings.Join(mix, ", "), float64(params)/1e6, ops.FormatBytes(size), *seed, time.Since(start).Seconds())
	return nil
}
