// Package engine runs a frozen GGUF transformer (llama, qwen2, qwen3,
// gemma2, phi3) on the CPU: batched prompt processing and single-token
// decoding with a KV cache, logits through the frozen LM head, sampling,
// and llama.cpp's perplexity protocol. Every number is checked against
// llama.cpp.
package engine

import (
	"errors"
	"fmt"
	"math"

	"ladder-engine/gguf"
)

// Hparams are the model's hyper-parameters, named as llama.cpp's
// llama_hparams, read from the GGUF metadata with llama.cpp's defaults.
type Hparams struct {
	NVocab    int // rows of token_embd
	NCtxTrain int // {arch}.context_length
	NEmbd     int // {arch}.embedding_length
	NLayer    int // {arch}.block_count
	NHead     int // {arch}.attention.head_count
	NHeadKV   int // {arch}.attention.head_count_kv (default NHead)
	NFF       int // {arch}.feed_forward_length
	HeadDim   int // {arch}.attention.key_length (default NEmbd/NHead); value_length must equal it
	NRot      int // {arch}.rope.dimension_count (default HeadDim): the rotated dims of each head

	RopeFreqBase float32 // {arch}.rope.freq_base (default 10000)
	RopeNeox     bool    // RoPE pairs (i, i+d/2) instead of (2i, 2i+1): llama_rope_type
	NormEps      float32 // {arch}.attention.layer_norm_rms_epsilon

	// RoPE scaling (llama.cpp load_hparams and the context defaults):
	RopeScalingType string  // {arch}.rope.scaling.type: "none", "linear", "yarn" (absent: linear, which with factor 1 is none)
	RopeFreqScale   float32 // 1 / {arch}.rope.scaling.factor (absent or 0: 1)
	NCtxOrigYarn    int     // {arch}.rope.scaling.original_context_length (default NCtxTrain)
	RopeAttnFactor  float32 // {arch}.rope.scaling.attn_factor (default 1)
	YarnExtFactor   float32 // 1 for YaRN, else 0 (llama.cpp's yarn_ext_factor -1 default)
	YarnBetaFast    float32 // 32, llama.cpp's default (not in the GGUF)
	YarnBetaSlow    float32 // 1

	// gemma2 and phi3:
	NSWA         int     // {arch}.attention.sliding_window: the window of sliding-window layers (0: none)
	AttnSoftCap  float32 // gemma2 attn_logit_softcapping (0: none)
	FinalSoftCap float32 // gemma2 final_logit_softcapping (0: none)
	QueryScale   float32 // multiplies q before attention (gemma2, phi3: llama.cpp scales Qcur); 0: scores scaled by 1/sqrt(HeadDim)
	EmbdScale    float32 // multiplies the token embeddings (gemma2: sqrt(NEmbd)); 0: none
}

// QDim is the width of the query projection output (NHead*HeadDim).
func (h *Hparams) QDim() int { return h.NHead * h.HeadDim }

// KVDim is the width of the key and value projections (NHeadKV*HeadDim).
func (h *Hparams) KVDim() int { return h.NHeadKV * h.HeadDim }

// IsSWA reports whether layer il uses the sliding window (llama.cpp:
// gemma2's even layers, every layer of phi3 when the window is set).
func (h *Hparams) IsSWA(arch string, il int) bool {
	if h.NSWA <= 0 {
		return false
	}
	switch archs[arch].swa {
	case swaEven:
		return il%2 == 0
	case swaAll:
		return true
	}
	return false
}

// swaPattern is which layers of an architecture slide their window.
type swaPattern uint8

const (
	swaNone swaPattern = iota
	swaEven            // gemma2: layers 0, 2, 4, ...
	swaAll             // phi3 (when sliding_window > 0)
)

// archInfo is what differs between the supported architectures. Adding an
// architecture is one entry here plus, if it has new tensors, a few lines in
// loadLayer and the block.
type archInfo struct {
	ropeNeox    bool       // llama_rope_type: LLAMA_ROPE_TYPE_NEOX
	qkNorm      bool       // per-head RMSNorm of Q and K before RoPE (qwen3: attn_q_norm, attn_k_norm)
	fusedQKV    bool       // one attn_qkv matrix, rows Q | K | V (phi3)
	fusedGateUp bool       // ffn_up holds gate | up, 2·n_ff rows, no ffn_gate (phi3)
	postNorms   bool       // post_attention_norm and post_ffw_norm on the branch outputs (gemma2)
	geglu       bool       // feed-forward gelu(gate)·up with tanh GELU (gemma2), not silu
	embdScale   bool       // token embeddings times sqrt(n_embd) (gemma2)
	softCaps    bool       // attention and final logit soft-capping (gemma2)
	swa         swaPattern // sliding-window layers
	ropeFactors bool       // rope_factors_long/short (Phi-3 LongRoPE)
}

var archs = map[string]archInfo{
	"llama":  {},
	"qwen2":  {ropeNeox: true},
	"qwen3":  {ropeNeox: true, qkNorm: true},
	"gemma2": {ropeNeox: true, postNorms: true, geglu: true, embdScale: true, softCaps: true, swa: swaEven},
	"phi3":   {ropeNeox: true, fusedQKV: true, fusedGateUp: true, swa: swaAll, ropeFactors: true},
}

// readHparams reads the hyper-parameters of architecture arch from f.
func readHparams(f *gguf.File, arch string) (Hparams, error) {
	info := archs[arch]
	h := Hparams{RopeFreqBase: 10000, RopeNeox: info.ropeNeox}
	var errs []error
	geti := func(key string, dst *int, def int, required bool) {
		full := arch + "." + key
		if !f.Has(full) {
			if required {
				errs = append(errs, fmt.Errorf("missing metadata key %s", full))
			}
			*dst = def
			return
		}
		v, err := f.GetUint32(full)
		if err != nil {
			errs = append(errs, err)
			return
		}
		*dst = int(v)
	}
	getf := func(key string, dst *float32, required bool) {
		full := arch + "." + key
		if !f.Has(full) {
			if required {
				errs = append(errs, fmt.Errorf("missing metadata key %s", full))
			}
			return
		}
		v, err := f.GetFloat32(full)
		if err != nil {
			errs = append(errs, err)
			return
		}
		*dst = v
	}
	geti("context_length", &h.NCtxTrain, 0, true)
	geti("embedding_length", &h.NEmbd, 0, true)
	geti("block_count", &h.NLayer, 0, true)
	geti("feed_forward_length", &h.NFF, 0, true)
	geti("attention.head_count", &h.NHead, 0, true)
	if len(errs) > 0 {
		return h, errors.Join(errs...)
	}
	geti("attention.head_count_kv", &h.NHeadKV, h.NHead, false)
	if h.NHead <= 0 || h.NEmbd <= 0 || h.NLayer <= 0 || h.NFF <= 0 || h.NHeadKV <= 0 {
		return h, fmt.Errorf("bad hyper-parameters: n_embd %d, n_layer %d, n_head %d, n_head_kv %d, n_ff %d", h.NEmbd, h.NLayer, h.NHead, h.NHeadKV, h.NFF)
	}
	if h.NHead%h.NHeadKV != 0 {
		return h, fmt.Errorf("head_count %d is not a multiple of head_count_kv %d", h.NHead, h.NHeadKV)
	}
	geti("attention.key_length", &h.HeadDim, h.NEmbd/h.NHead, false)
	var vlen int
	geti("attention.value_length", &vlen, h.HeadDim, false)
	geti("rope.dimension_count", &h.NRot, h.HeadDim, false)
	getf("rope.freq_base", &h.RopeFreqBase, false)
	getf("attention.layer_norm_rms_epsilon", &h.NormEps, true)
	if len(errs) > 0 {
		return h, errors.Join(errs...)
	}
	if vlen != h.HeadDim {
		return h, fmt.Errorf("value_length %d != key_length %d is not supported", vlen, h.HeadDim)
	}
	if h.HeadDim%2 != 0 {
		return h, fmt.Errorf("head dim %d is odd", h.HeadDim)
	}
	if h.NRot <= 0 || h.NRot > h.HeadDim || h.NRot%2 != 0 {
		return h, fmt.Errorf("%s.rope.dimension_count %d: want an even count of at most the head dim %d", arch, h.NRot, h.HeadDim)
	}
	if err := readRopeScaling(f, arch, &h); err != nil {
		return h, err
	}
	if info.swa == swaEven {
		h.NSWA = 4096 // llama.cpp's gemma2 default
	}
	if info.swa != swaNone {
		geti("attention.sliding_window", &h.NSWA, h.NSWA, false)
	}
	if info.softCaps {
		// llama.cpp load_hparams: 50 and 30 unless the file says otherwise.
		h.AttnSoftCap, h.FinalSoftCap = 50, 30
		getf("attn_logit_softcapping", &h.AttnSoftCap, false)
		getf("final_logit_softcapping", &h.FinalSoftCap, false)
	}
	if info.embdScale {
		h.EmbdScale = float32(math.Sqrt(float64(h.NEmbd)))
	}
	switch arch {
	case "gemma2":
		// The query scale: attention.query_pre_attn_scalar when present (as
		// later llama.cpp reads it); else llama.cpp's rule by model size:
		// 27B (46 layers) scales by n_embd/n_head, the others by head_dim.
		scalar := float64(h.HeadDim)
		if h.NLayer == 46 {
			scalar = float64(h.NEmbd / h.NHead)
		}
		if k := arch + ".attention.query_pre_attn_scalar"; f.Has(k) {
			if v, err := f.GetUint32(k); err == nil {
				scalar = float64(v)
			} else if v, err := f.GetFloat32(k); err == nil {
				scalar = float64(v)
			} else {
				return h, fmt.Errorf("%s: want a number", k)
			}
			if !(scalar > 0) {
				return h, fmt.Errorf("%s = %g: must be > 0", k, scalar)
			}
		}
		h.QueryScale = float32(1 / math.Sqrt(scalar))
	case "phi3":
		// build_phi3 scales Qcur by 1/sqrt(head_dim) and attends with kq_scale 1.
		h.QueryScale = float32(1 / math.Sqrt(float64(h.HeadDim)))
	}
	if len(errs) > 0 {
		return h, errors.Join(errs...)
	}
	return h, nil
}

// readRopeScaling reads RoPE scaling as llama.cpp's load_hparams and
// llama_context do: rope.scaling.type (absent: linear), factor → freq_scale
// = 1/factor, original_context_length, attn_factor; YaRN's ext_factor is
// 1 (its beta_fast/slow 32 and 1 are context defaults, not in the file).
func readRopeScaling(f *gguf.File, arch string, h *Hparams) error {
	p := arch + ".rope.scaling."
	h.RopeScalingType = "linear"
	if f.Has(p + "type") {
		s, err := f.GetString(p + "type")
		if err != nil {
			return err
		}
		h.RopeScalingType = s
	}
	switch h.RopeScalingType {
	case "none", "linear", "yarn":
	case "longrope":
		// llama.cpp maps "longrope" to its own type; its angles come from the
		// rope_factors tensors, which phi3 loads whatever the type says.
		if !archs[arch].ropeFactors {
			return fmt.Errorf("%stype %q is supported only with phi3's rope_factors tensors", p, h.RopeScalingType)
		}
	default:
		return fmt.Errorf("%stype %q is not supported (supported: none, linear, yarn; longrope with phi3)", p, h.RopeScalingType)
	}
	factor := float32(0)
	for _, k := range []string{p + "factor", arch + ".rope.scale_linear"} {
		if f.Has(k) {
			v, err := f.GetFloat32(k)
			if err != nil {
				return err
			}
			factor = v
			break
		}
	}
	if factor < 0 || math.IsNaN(float64(factor)) {
		return fmt.Errorf("%sfactor %g: must be >= 0", p, factor)
	}
	h.RopeFreqScale = 1
	if factor != 0 {
		h.RopeFreqScale = 1 / factor
	}
	if h.RopeScalingType == "none" {
		h.RopeFreqScale = 1
	}
	h.NCtxOrigYarn = h.NCtxTrain
	if f.Has(p + "original_context_length") {
		v, err := f.GetUint32(p + "original_context_length")
		if err != nil {
			return err
		}
		if v > 0 {
			h.NCtxOrigYarn = int(v)
		}
	}
	h.RopeAttnFactor = 1
	if f.Has(p + "attn_factor") {
		v, err := f.GetFloat32(p + "attn_factor")
		if err != nil {
			return err
		}
		if !(v > 0) {
			return fmt.Errorf("%sattn_factor %g: must be > 0", p, v)
		}
		h.RopeAttnFactor = v
	}
	h.YarnBetaFast, h.YarnBetaSlow = 32, 1
	if h.RopeScalingType == "yarn" {
		h.YarnExtFactor = 1
	}
	return nil
}
