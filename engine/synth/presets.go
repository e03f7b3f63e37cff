// Package synth writes random-weight models with real architectures'
// shapes, keys and tensor names (as llama.cpp's converters write them), for
// tests and benchmarks at sizes no fixture has.
package synth

import (
	"fmt"
	"sort"
	"strings"
)

// Preset is a model shape. The values mirror ../shared/reference/presets.json,
// the shapes llama.cpp's speed figures (llama-bench.json) were measured on.
type Preset struct {
	NEmbd     int
	NLayer    int
	NHead     int
	NHeadKV   int
	NFF       int
	NVocab    int
	Tied      bool // output shares token_embd (no output.weight)
	RopeBase  float32
	RMSEps    float32
	NCtxTrain int
	Arch      ArchShape // gemma2 and phi3 only
}

// ArchShape is what gemma2 and phi3 presets add (zero for llama, qwen2).
type ArchShape struct {
	KeyLength     int     // attention.key_length = value_length when not NEmbd/NHead (Gemma 2)
	SlidingWindow int     // attention.sliding_window
	AttnSoftCap   float32 // gemma2 attn_logit_softcapping
	FinalSoftCap  float32 // gemma2 final_logit_softcapping
}

// HeadDim is the size of one attention head.
func (p Preset) HeadDim() int {
	if p.Arch.KeyLength > 0 {
		return p.Arch.KeyLength
	}
	return p.NEmbd / p.NHead
}

var presets = map[string]map[string]Preset{
	"llama": {
		"tiny": {NEmbd: 256, NLayer: 4, NHead: 8, NHeadKV: 2, NFF: 768, NVocab: 512, RopeBase: 10000, RMSEps: 1e-5, NCtxTrain: 2048},
		"160m": {NEmbd: 768, NLayer: 12, NHead: 12, NHeadKV: 12, NFF: 2048, NVocab: 32000, RopeBase: 10000, RMSEps: 1e-5, NCtxTrain: 2048},
		"1b":   {NEmbd: 2048, NLayer: 16, NHead: 32, NHeadKV: 8, NFF: 8192, NVocab: 32000, RopeBase: 500000, RMSEps: 1e-5, NCtxTrain: 4096},
		"7b":   {NEmbd: 4096, NLayer: 32, NHead: 32, NHeadKV: 32, NFF: 11008, NVocab: 32000, RopeBase: 10000, RMSEps: 1e-5, NCtxTrain: 4096},
	},
	"qwen2": {
		"tiny": {NEmbd: 320, NLayer: 3, NHead: 5, NHeadKV: 1, NFF: 864, NVocab: 759, Tied: true, RopeBase: 1000000, RMSEps: 1e-6, NCtxTrain: 4096},
		"0.5b": {NEmbd: 896, NLayer: 24, NHead: 14, NHeadKV: 2, NFF: 4864, NVocab: 151936, Tied: true, RopeBase: 1000000, RMSEps: 1e-6, NCtxTrain: 32768},
		"7b":   {NEmbd: 3584, NLayer: 28, NHead: 28, NHeadKV: 4, NFF: 18944, NVocab: 152064, RopeBase: 1000000, RMSEps: 1e-6, NCtxTrain: 32768},
	},
	// tiny: the shape of ../shared/models/arch/synth-gemma2 (26 layers: the
	// count llama.cpp's reference commit accepts); 2b: Gemma-2 2B's config.json.
	"gemma2": {
		"tiny": {NEmbd: 256, NLayer: 26, NHead: 2, NHeadKV: 1, NFF: 64, NVocab: 512, Tied: true, RopeBase: 10000, RMSEps: 1e-6, NCtxTrain: 512,
			Arch: ArchShape{KeyLength: 32, SlidingWindow: 32, AttnSoftCap: 3, FinalSoftCap: 2}},
		"2b": {NEmbd: 2304, NLayer: 26, NHead: 8, NHeadKV: 4, NFF: 9216, NVocab: 256000, Tied: true, RopeBase: 10000, RMSEps: 1e-6, NCtxTrain: 8192,
			Arch: ArchShape{KeyLength: 256, SlidingWindow: 4096, AttnSoftCap: 50, FinalSoftCap: 30}},
	},
	// tiny: the shape of ../shared/models/arch/synth-phi3; mini:
	// Phi-3-mini-4k-instruct's config.json.
	"phi3": {
		"tiny": {NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, NFF: 256, NVocab: 512, RopeBase: 10000, RMSEps: 1e-5, NCtxTrain: 512,
			Arch: ArchShape{SlidingWindow: 64}},
		"mini": {NEmbd: 3072, NLayer: 32, NHead: 32, NHeadKV: 32, NFF: 8192, NVocab: 32064, RopeBase: 10000, RMSEps: 1e-5, NCtxTrain: 4096,
			Arch: ArchShape{SlidingWindow: 2047}},
	},
}

// Arches lists the supported architectures.
func Arches() []string { return sortedKeys(presets) }

// PresetNames lists the presets of arch (nil for an unknown arch).
func PresetNames(arch string) []string { return sortedKeys(presets[arch]) }

// LookupPreset returns a preset, or an error listing the valid choices.
func LookupPreset(arch, name string) (Preset, error) {
	ps, ok := presets[arch]
	if !ok {
		return Preset{}, fmt.Errorf("synth: unknown architecture %q (have %s)", arch, strings.Join(Arches(), ", "))
	}
	p, ok := ps[name]
	if !ok {
		return Preset{}, fmt.Errorf("synth: %s has no preset %q (have %s)", arch, name, strings.Join(PresetNames(arch), ", "))
	}
	return p, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
