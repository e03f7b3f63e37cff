package main

import (
	"flag"
	"fmt"
	"os"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ops"
	"ladder-engine/ops/cuda"
)

// deviceFlag adds --device to a command that runs a model.
func deviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "auto", "where the model runs: auto (CUDA when a driver loads and a device answers, else the CPU), cpu, cuda or cuda:N")
}

// loadModel loads path on the device --device names and says on stderr
// which it chose. On CUDA it first refuses weights that do not fit in the
// device's free memory (needed vs free bytes); --device cuda fails when no
// driver loads, naming every library tried, where auto falls back to the CPU.
func loadModel(path string, threads int, device string) (*engine.Model, error) {
	kind, ordinal, err := cuda.ParseDevice(device)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if kind == "cpu" {
		fmt.Fprintln(os.Stderr, "device: cpu")
		return engine.Load(path, threads)
	}
	be, err := cuda.New(ordinal)
	if err != nil {
		if kind == "cuda" {
			return nil, fmt.Errorf("--device %s: %w", device, err)
		}
		fmt.Fprintf(os.Stderr, "device: cpu (auto: no CUDA device: %v)\n", err)
		return engine.Load(path, threads)
	}
	fmt.Fprintf(os.Stderr, "device: %s\n", be.Describe())
	if err := checkWeightsFit(path, be); err != nil {
		return nil, err
	}
	return engine.LoadOn(path, threads, func(*ops.Pool) ops.Backend { return be })
}

// checkWeightsFit refuses a model whose tensors need more than the
// device's free memory.
func checkWeightsFit(path string, be *cuda.Backend) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	var need int64
	for _, ti := range f.Tensors {
		need += ti.Size
	}
	f.Close()
	free, _, err := be.MemInfo()
	if err != nil {
		return fmt.Errorf("%s: %w", be.Name(), err)
	}
	if need > free {
		return fmt.Errorf("%s: the weights of %s need %s (%d bytes) but %s has only %s (%d bytes) free; use a smaller quantization or --device cpu",
			be.Name(), path, ops.FormatBytes(need), need, be.Name(), ops.FormatBytes(free), free)
	}
	return nil
}

// checkKVFits refuses a KV cache of nCtx positions that does not fit in
// the free memory of the model's device (the weights are already there).
func checkKVFits(m *engine.Model, flagName string, nCtx int) error {
	be, ok := m.Backend.(*cuda.Backend)
	if !ok {
		return nil
	}
	need := 2 * 4 * int64(m.NLayer) * int64(nCtx) * int64(m.NHeadKV) * int64(m.HeadDim)
	free, _, err := be.MemInfo()
	if err != nil {
		return fmt.Errorf("%s: %w", be.Name(), err)
	}
	if need > free {
		return fmt.Errorf("%s %d: the KV cache needs %s (%d bytes) but %s has %s (%d bytes) free after the weights (%s); lower %s",
			flagName, nCtx, ops.FormatBytes(need), need, be.Name(), ops.FormatBytes(free), free, ops.FormatBytes(m.WeightBytes()), flagName)
	}
	return nil
}

// printDeviceMemory reports the device's memory by class (peaks) when the
// model runs on one; the host meter reports the rest.
func printDeviceMemory(m *engine.Model) {
	if _, onCPU := m.Backend.(*ops.CPU); onCPU {
		return
	}
	fmt.Fprintf(os.Stderr, "%s memory by class:\n%s", m.Backend.Name(), m.Backend.Meter().Report())
}
