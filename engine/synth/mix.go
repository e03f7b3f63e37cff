package synth

import (
	"strconv"
	"strings"

	"ladder-engine/gguf"
)

// quantMix picks each weight matrix's type the way llama-quantize does
// for a file type (llama_tensor_get_type, llama.cpp c392e509), so a synth
// model has the same tensor types as a real model quantized to that file
// type, and its speed compares with llama-bench figures on such files. Only
// the rules for dense llama/qwen2 models and the file types we can write
// are kept (no MoE, Falcon, 70B, IQ2/IQ3 or imatrix rules).
type quantMix struct {
	fileType  gguf.FileType
	base      gguf.Type
	pure      bool // llama-quantize --pure: every matrix gets base
	nLayer    int
	nGQA      int  // n_head / n_head_kv
	hasOutput bool // false when output shares token_embd
}

// useMoreBits is llama.cpp's use_more_bits: the first and last eighth of
// the layers and every third one between get more bits.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// typeOf returns the type of a 2-D weight with rows of ne0 elements.
func (m *quantMix) typeOf(name string, ne0 int64) gguf.Type {
	t := m.base
	if !m.pure && isQuantized(m.base) {
		t = m.rule(name, ne0)
	}
	return compatibleType(t, ne0)
}

func (m *quantMix) rule(name string, ne0 int64) gguf.Type {
	t := m.base
	layer := -1
	if rest, ok := strings.CutPrefix(name, "blk."); ok {
		if i := strings.IndexByte(rest, '.'); i > 0 {
			layer, _ = strconv.Atoi(rest[:i])
		}
	}
	switch {
	case name == "output.weight" || !m.hasOutput && name == "token_embd.weight":
		// The output matrix gets 6 bits (Q8_0 stays Q8_0).
		if ne0%int64(t.BlockSize()) != 0 {
			return gguf.TypeQ8_0
		}
		if t != gguf.TypeQ8_0 {
			return gguf.TypeQ6_K
		}
	case strings.Contains(name, "attn_v.weight"):
		switch {
		case m.fileType == gguf.FileTypeQ2_K:
			if m.nGQA >= 4 {
				return gguf.TypeQ4_K
			}
			return gguf.TypeQ3_K
		case m.fileType == gguf.FileTypeQ3_K_M:
			if layer < 2 {
				return gguf.TypeQ5_K
			}
			return gguf.TypeQ4_K
		case (m.fileType == gguf.FileTypeIQ4_NL || m.fileType == gguf.FileTypeIQ4_XS) && m.nGQA >= 4:
			return gguf.TypeQ5_K
		case (m.fileType == gguf.FileTypeQ4_K_M || m.fileType == gguf.FileTypeQ5_K_M) && useMoreBits(layer, m.nLayer):
			return gguf.TypeQ6_K
		}
	case strings.Contains(name, "ffn_down"):
		n := m.nLayer
		switch {
		case m.fileType == gguf.FileTypeQ2_K:
			return gguf.TypeQ3_K
		case m.fileType == gguf.FileTypeQ3_K_M:
			if layer < n/16 {
				return gguf.TypeQ5_K
			}
			return gguf.TypeQ4_K
		case m.fileType == gguf.FileTypeQ4_K_M:
			if useMoreBits(layer, n) {
				return gguf.TypeQ6_K
			}
		case layer < n/8 && (m.fileType == gguf.FileTypeIQ4_NL || m.fileType == gguf.FileTypeIQ4_XS):
			return gguf.TypeQ5_K
		case m.fileType == gguf.FileTypeQ5_K_M && useMoreBits(layer, n):
			return gguf.TypeQ6_K
		}
	case strings.Contains(name, "attn_qkv.weight"):
		switch m.fileType {
		case gguf.FileTypeQ3_K_M:
			return gguf.TypeQ4_K
		case gguf.FileTypeQ4_K_M:
			return gguf.TypeQ5_K
		case gguf.FileTypeQ5_K_M:
			return gguf.TypeQ6_K
		}
	case strings.Contains(name, "attn_output.weight"):
		switch m.fileType {
		case gguf.FileTypeQ2_K:
			return gguf.TypeQ3_K
		case gguf.FileTypeQ3_K_M:
			return gguf.TypeQ4_K
		}
	}
	return t
}

func isQuantized(t gguf.Type) bool { return t.BlockSize() > 1 }

// compatibleType is t, or llama-quantize's fallback when ne0 is not a
// multiple of t's block size (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, other K and
// IQ types→IQ4_NL, F16 when even that does not fit). A fallback we cannot
// encode also becomes F16.
func compatibleType(t gguf.Type, ne0 int64) gguf.Type {
	if ne0%int64(t.BlockSize()) == 0 {
		return t
	}
	var fb gguf.Type
	switch t {
	case gguf.TypeQ4_K:
		fb = gguf.TypeQ5_0
	case gguf.TypeQ5_K:
		fb = gguf.TypeQ5_1
	case gguf.TypeQ6_K:
		fb = gguf.TypeQ8_0
	case gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeIQ4_XS:
		fb = gguf.TypeIQ4_NL
	default:
		return gguf.TypeF16
	}
	if ne0%int64(fb.BlockSize()) != 0 || !gguf.CanQuantize(fb) {
		return gguf.TypeF16
	}
	return fb
}
