// Package engine runs a frozen GGUF transformer (llama, qwen2, qwen3) on the
// CPU: batched prompt processing and single-token decoding with a KV cache,
// logits through the frozen LM head, sampling, and llama.cpp's perplexity
// protocol. Every number is checked against llama.cpp.
package engine

import (
	"errors"
	"fmt"

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
	NRot      int // {arch}.rope.dimension_count (default HeadDim); only full rotation is supported

	RopeFreqBase float32 // {arch}.rope.freq_base (default 10000)
	RopeNeox     bool    // RoPE pairs (i, i+d/2) instead of (2i, 2i+1): llama_rope_type
	NormEps      float32 // {arch}.attention.layer_norm_rms_epsilon
}

// QDim is the width of the query projection output (NHead*HeadDim).
func (h *Hparams) QDim() int { return h.NHead * h.HeadDim }

// KVDim is the width of the key and value projections (NHeadKV*HeadDim).
func (h *Hparams) KVDim() int { return h.NHeadKV * h.HeadDim }

// archInfo is what differs between the supported architectures. Adding an
// architecture is one entry here plus, if it has new tensors, a few lines in
// loadLayer and the block.
type archInfo struct {
	ropeNeox bool // llama_rope_type: LLAMA_ROPE_TYPE_NEOX
	qkNorm   bool // per-head RMSNorm of Q and K before RoPE (qwen3: attn_q_norm, attn_k_norm)
}

var archs = map[string]archInfo{
	"llama": {},
	"qwen2": {ropeNeox: true},
	"qwen3": {ropeNeox: true, qkNorm: true},
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
	if h.NRot != h.HeadDim {
		return h, fmt.Errorf("partial rotary embeddings (rope.dimension_count %d < head dim %d) are not supported", h.NRot, h.HeadDim)
	}
	if h.HeadDim%2 != 0 {
		return h, fmt.Errorf("head dim %d is odd", h.HeadDim)
	}
	// RoPE scaling other than none changes positions; we do not implement it
	// (Llama 3.1's scaling comes as rope_freqs.weight, which we do).
	if k := arch + ".rope.scaling.type"; f.Has(k) {
		if s, err := f.GetString(k); err == nil && s != "none" {
			factor := float32(1)
			if fk := arch + ".rope.scaling.factor"; f.Has(fk) {
				factor, _ = f.GetFloat32(fk)
			}
			if factor != 0 && factor != 1 {
				return h, fmt.Errorf("rope scaling %q (factor %g) is not supported", s, factor)
			}
		}
	}
	return h, nil
}
