// Package ladder is Ladder Side Tuning (LST) and xLadder on a frozen GGUF
// backbone: a small side network of llama blocks at width d/r that reads the
// backbone's layer outputs through gated "ladder" projections, its training
// loop, checkpoints, the adapter GGUF file, and inference with an adapter
// (an engine.Decoder).
//
// The data flow of one training step (DESIGN.md):
//
//	tokens ─► engine.Forward (no tape) ─► onLayer(l, h_l): keep h_l of the
//	          layers the ladders read (ladder inputs, f32/f16/bf16) and
//	          Down_i·h_l; drop the rest
//	side (tape): h_s = Down_0(start); before block i h_s = μ_i h_s + (1-μ_i) Down_i(h_b(i));
//	          block i (RMSNorm, attention with RoPE, SwiGLU) ...
//	head:     z = output_norm(h_b) + Up(RMSNorm_s(h_s))   (residual; gated/side)
//	loss:     cross-entropy of the frozen LM head on z
//	backward: the tape, then dDown_i = dY_iᵀ·X_i from the kept ladder inputs.
package ladder

import (
	"fmt"
	"strconv"
	"strings"

	"ladder-engine/engine"
	"ladder-engine/gguf"
)

// Config chooses the side network. The zero value is not usable: start from
// DefaultConfig() and change what you need.
type Config struct {
	Method     string  // "ladder" (LST, default), "xladder" or "lora" (the QLoRA-style baseline)
	Reduction  int     // side width d_s = d / Reduction (default 8)
	SideLayers string  // ladder only: "all" (default), "every:K" or "i,j,k" (backbone layers, 0-based)
	Delta      int     // xladder only: δ, the number of top backbone layers read (default L/2)
	Gate       string  // "scalar" (default) or "vector": one α per ladder or one per side dimension
	GateTemp   float32 // T in μ = sigmoid(α/T) (default 0.1)
	Head       string  // "residual" (default), "gated" or "side"
	Init       string  // "random" (default) or "prune" (copied from the backbone's largest rows/columns)
	InitStd    float32 // std of the random init of block weights; 0 (default): 1/sqrt(fan-in)
	Seed       uint64  // random init seed
	// LadderType is how the ladder inputs (backbone hidden states kept for
	// the down-projections' backward) are stored: F32 (default), F16 or BF16.
	LadderType gguf.Type

	// LoRA (Method "lora"): pairs of rank LoRARank on the backbone
	// projections named in LoRATargets (q,k,v,o,gate,up,down), scale
	// LoRAAlpha/LoRARank, dropout LoRADropout on the pairs' input.
	LoRARank    int
	LoRAAlpha   float32
	LoRATargets string
	LoRADropout float32
	// Checkpointing (lora): keep only each layer's input and recompute the
	// layer in backward, instead of keeping every activation.
	Checkpointing bool
}

// DefaultConfig returns the defaults of `ladder-engine finetune`.
func DefaultConfig() Config {
	return Config{Method: "ladder", Reduction: 8, SideLayers: "all", Gate: "scalar", GateTemp: 0.1,
		Head: "residual", Init: "random", Seed: 1, LadderType: gguf.TypeF32,
		LoRARank: 8, LoRAAlpha: 16, LoRATargets: "q,k,v,o,gate,up,down"}
}

// Hparams is the side network's shape, everything needed to rebuild it from
// an adapter file (stored under ladder.*).
type Hparams struct {
	Method    string
	NEmbd     int // d_s
	NFF       int
	NHead     int
	NHeadKV   int
	HeadDim   int
	NBlock    int
	Reduction int
	// LayerMap[i] is the backbone layer whose output side block i mixes in,
	// or -1 for a "free" block (xLadder's top δ blocks) that takes none.
	LayerMap []int
	// StartLayer is the backbone layer whose output feeds Down_0, the start
	// of the side stream; -1 means the token embeddings.
	StartLayer int
	Gate       string
	GateTemp   float32
	Head       string
	NormEps    float32
	RopeBase   float32
	RopeNeox   bool

	// Of the backbone:
	BaseEmbd  int // d
	BaseLayer int // L
	BaseVocab int
}

// NewHparams derives the side network's shape from the config and the
// backbone's hyper-parameters. Errors name the flag to change.
func NewHparams(c Config, base *engine.Hparams) (Hparams, error) {
	h := Hparams{Method: c.Method, Reduction: c.Reduction, Gate: c.Gate, GateTemp: c.GateTemp, Head: c.Head,
		NormEps: base.NormEps, RopeBase: base.RopeFreqBase, RopeNeox: base.RopeNeox,
		BaseEmbd: base.NEmbd, BaseLayer: base.NLayer, BaseVocab: base.NVocab}
	if c.Reduction < 1 {
		return h, fmt.Errorf("--reduction %d: must be >= 1", c.Reduction)
	}
	switch c.Gate {
	case "scalar", "vector":
	default:
		return h, fmt.Errorf("--gate %q: want scalar or vector", c.Gate)
	}
	switch c.Head {
	case "residual", "gated", "side":
	default:
		return h, fmt.Errorf("--head %q: want residual, gated or side", c.Head)
	}
	switch c.Init {
	case "random", "prune":
	default:
		return h, fmt.Errorf("--init %q: want random or prune", c.Init)
	}
	if !(c.GateTemp > 0) {
		return h, fmt.Errorf("gate temperature %g: must be > 0", c.GateTemp)
	}
	switch c.LadderType {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16:
	default:
		return h, fmt.Errorf("ladder input storage %s: want f32, f16 or bf16", c.LadderType)
	}
	L := base.NLayer
	switch c.Method {
	case "ladder":
		layers, err := ParseSideLayers(c.SideLayers, L)
		if err != nil {
			return h, err
		}
		h.LayerMap, h.StartLayer = layers, -1
	case "xladder":
		delta := c.Delta
		if delta == 0 {
			delta = max(1, L/2)
		}
		if delta < 1 || delta > L {
			return h, fmt.Errorf("--delta %d: must lie in 1..%d (the backbone's layers)", delta, L)
		}
		// Block j (1-based) ≤ δ reads backbone layer L-δ+j (1-based), i.e.
		// 0-based layer L-δ+j-1; the stream starts from the output of
		// 1-based layer L-δ, 0-based L-δ-1 (-1: the embeddings when δ = L).
		for j := 0; j < delta; j++ {
			h.LayerMap = append(h.LayerMap, L-delta+j)
		}
		for j := 0; j < delta; j++ {
			h.LayerMap = append(h.LayerMap, -1)
		}
		h.StartLayer = L - delta - 1
	default:
		return h, fmt.Errorf("--method %q: want ladder, xladder or lora", c.Method)
	}
	h.NBlock = len(h.LayerMap)

	d := base.NEmbd
	h.NEmbd = d / c.Reduction
	if h.NEmbd < 2 {
		return h, fmt.Errorf("--reduction %d: side width %d/%d is below 2", c.Reduction, d, c.Reduction)
	}
	h.NFF = max(1, base.NFF/c.Reduction)
	h.NHead, h.NHeadKV, h.HeadDim = sideHeads(h.NEmbd, base.NHead, base.NHeadKV)
	if h.HeadDim%2 != 0 {
		return h, fmt.Errorf("--reduction %d: side width %d has no even head size for RoPE; choose a reduction that leaves an even width", c.Reduction, h.NEmbd)
	}
	return h, nil
}

// sideHeads keeps the backbone's head count when the head size stays at
// least 8, else uses fewer heads (of size ≥ 8); the KV heads keep the
// backbone's grouping ratio where they can. The head count always divides
// the width.
func sideHeads(dS, nHead, nHeadKV int) (nh, nkv, hd int) {
	nh = nHead
	if dS/nh < 8 {
		nh = max(1, dS/8)
	}
	for nh > 1 && dS%nh != 0 {
		nh--
	}
	group := max(1, nHead/max(1, nHeadKV))
	nkv = max(1, nh/group)
	for nh%nkv != 0 {
		nkv--
	}
	return nh, nkv, dS / nh
}

// ParseSideLayers reads --side-layers for a backbone of L layers: "all",
// "every:K" (every K-th layer counted from the top, so the last layer is
// always read) or a comma-separated list of 0-based layers in increasing
// order.
func ParseSideLayers(spec string, L int) ([]int, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "" || spec == "all":
		out := make([]int, L)
		for i := range out {
			out[i] = i
		}
		return out, nil
	case strings.HasPrefix(spec, "every:"):
		k, err := strconv.Atoi(strings.TrimPrefix(spec, "every:"))
		if err != nil || k < 1 {
			return nil, fmt.Errorf("--side-layers %q: want every:K with K >= 1", spec)
		}
		var out []int
		for l := L - 1; l >= 0; l -= k {
			out = append([]int{l}, out...)
		}
		return out, nil
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		l, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--side-layers %q: %q is not a layer number (want all, every:K or i,j,k)", spec, f)
		}
		if l < 0 || l >= L {
			return nil, fmt.Errorf("--side-layers %q: layer %d outside 0..%d", spec, l, L-1)
		}
		if len(out) > 0 && l <= out[len(out)-1] {
			return nil, fmt.Errorf("--side-layers %q: layers must be increasing", spec)
		}
		out = append(out, l)
	}
	return out, nil
}

// ladderLayers returns the backbone layers whose outputs are kept, in
// increasing order, with StartLayer first when it is a layer.
func (h *Hparams) ladderLayers() []int {
	var out []int
	if h.StartLayer >= 0 {
		out = append(out, h.StartLayer)
	}
	for _, l := range h.LayerMap {
		if l >= 0 {
			out = append(out, l)
		}
	}
	return out
}

// QDim and KVDim are the side attention's projection widths.
func (h *Hparams) QDim() int  { return h.NHead * h.HeadDim }
func (h *Hparams) KVDim() int { return h.NHeadKV * h.HeadDim }
