package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"ladder-engine/engine"
	"ladder-engine/ladder"
	"ladder-engine/ops"
)

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
