package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ladder"
	"ladder-engine/ops"
)

// adapterFlags are --adapter (repeatable: llama.cpp LoRA adapters stack,
// as its --lora; at most one ladder adapter) and --adapter-scale.
type adapterFlags struct {
	files []string
	scale float64
}

func addAdapterFlags(fs *flag.FlagSet) *adapterFlags {
	af := &adapterFlags{scale: 1}
	fs.Func("adapter", "adapter GGUF to apply: a ladder/xladder adapter, or a llama.cpp LoRA adapter (repeat to stack several, as llama.cpp's --lora)", func(s string) error {
		af.files = append(af.files, s)
		return nil
	})
	fs.Float64Var(&af.scale, "adapter-scale", 1, "LoRA adapters: multiply each update alpha/r·B·A by this (llama.cpp's --lora-scaled)")
	return af
}

// apply puts every LoRA adapter on m and returns the ladder adapter's path
// ("" if none) and a function that releases the LoRA files once m no
// longer runs.
func (af *adapterFlags) apply(m *engine.Model) (ladderPath string, release func(), err error) {
	var opened []*engine.LoRAAdapter
	release = func() {
		for _, a := range opened {
			a.Close()
		}
	}
	for _, path := range af.files {
		f, err := gguf.Open(path)
		if err != nil {
			release()
			return "", nil, err
		}
		isLoRA := engine.IsLoRAAdapter(f)
		f.Close()
		if !isLoRA {
			if ladderPath != "" {
				release()
				return "", nil, usagef("--adapter %s: only one ladder adapter at a time (%s is another); LoRA adapters may stack", path, ladderPath)
			}
			ladderPath = path
			continue
		}
		a, err := engine.OpenLoRA(path)
		if err != nil {
			release()
			return "", nil, err
		}
		opened = append(opened, a)
		if err := m.ApplyLoRA(a, float32(af.scale)); err != nil {
			release()
			return "", nil, err
		}
	}
	return ladderPath, release, nil
}

// decoder is what generate, perplexity and eval run on: the plain model's
// engine.ModelDecoder or, with --adapter, a ladder.Decoder (backbone and
// side-network caches together).
type decoder interface {
	engine.Decoder
	Free()
}

// newDecoder returns the model's decoder, or with an adapter file the
// model with the adapter applied. An adapter trained on another base model
// is refused with a message naming what differs.
func newDecoder(m *engine.Model, adapter string, nCtx int) (decoder, error) {
	if err := checkContext(m, "-c", nCtx); err != nil {
		return nil, err
	}
	if adapter == "" {
		return m.NewDecoder(nCtx), nil
	}
	return ladder.OpenDecoder(m, adapter, nCtx)
}

// adapterDecoder is newDecoder for `eval --adapter` (which wraps the plain
// model itself); the ladder decoder also truncates its caches, so eval
// reuses shared prefixes.
func adapterDecoder(m *engine.Model, path string, nCtx int) (engine.Decoder, error) {
	if err := checkContext(m, "-c", nCtx); err != nil {
		return nil, err
	}
	return ladder.OpenDecoder(m, path, nCtx)
}

// checkContext warns when -c exceeds the training context and refuses a -c
// that is negative or whose KV cache cannot fit in
// the memory the system has available: allocating it would kill the process
// with the runtime's "fatal error: out of memory", which no caller can catch.
func checkContext(m *engine.Model, flag string, nCtx int) error {
	if nCtx < 0 {
		return usagef("%s %d: the context size cannot be negative (0: the model's training context, %d)", flag, nCtx, m.NCtxTrain)
	}
	n := nCtx
	if n == 0 {
		n = m.NCtxTrain
	}
	if flag == "-c" && n > m.NCtxTrain {
		// As llama.cpp: allowed, but positions past training are untrained.
		fmt.Fprintf(os.Stderr, "warning: -c %d is larger than the model's training context %d\n", n, m.NCtxTrain)
	}
	if err := checkKVFits(m, flag, n); err != nil {
		return err
	}
	// As engine.NewKVCache: K and V of every layer, f32, padded to 32.
	pad := func(x int64) int64 { return (x + 31) / 32 * 32 }
	ctxPad, hd := pad(int64(n)), int64(m.HeadDim)
	need := 4 * int64(m.NLayer) * int64(m.NHeadKV) * ctxPad * (hd + pad(hd))
	if avail := memAvailable(); avail > 0 && need > avail {
		return fmt.Errorf("%s %d: the KV cache needs %s but only %s of memory is available; lower %s (the model's training context is %d)",
			flag, n, ops.FormatBytes(need), ops.FormatBytes(avail), flag, m.NCtxTrain)
	}
	return nil
}

// memAvailable is MemAvailable of /proc/meminfo in bytes, 0 if unknown.
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
