package synth

import (
	"fmt"
	"strings"

	"ladder-engine/gguf"
)

// llama.cpp's token types (llama_token_type / LLAMA_TOKEN_TYPE_*).
const (
	tokenNormal  int32 = 1
	tokenUnknown int32 = 2
	tokenControl int32 = 3
	tokenByte    int32 = 6
)

// baseSymbols are the pieces the filler tokens are built from: the word
// boundary marker (SPM "▁", GPT-2 "Ġ" for a space), then letters, digits
// and the other printable ASCII characters.
func baseSymbols(space string) []string {
	syms := []string{space}
	add := func(lo, hi byte) {
		for c := lo; c <= hi; c++ {
			syms = append(syms, string(rune(c)))
		}
	}
	add('a', 'z')
	add('A', 'Z')
	add('0', '9')
	for c := byte('!'); c <= '~'; c++ {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			syms = append(syms, string(rune(c)))
		}
	}
	return syms
}

// fillers returns n distinct pieces of two then three symbols, each with
// the two parts it merges from (the first part is itself an earlier piece
// or a symbol), in the order a BPE merge list needs.
func fillers(syms []string, n int) (pieces []string, left, right []string) {
	for _, a := range syms {
		for _, b := range syms {
			if len(pieces) == n {
				return
			}
			pieces, left, right = append(pieces, a+b), append(left, a), append(right, b)
		}
	}
	nPairs := len(pieces)
	for i := 0; i < nPairs; i++ {
		for _, c := range syms {
			if len(pieces) == n {
				return
			}
			pieces, left, right = append(pieces, pieces[i]+c), append(left, pieces[i]), append(right, c)
		}
	}
	return // more than 95·95·96 tokens is not needed by any preset
}

// setSPMVocab writes a SentencePiece ('llama') vocabulary of n tokens:
// <unk>, <s>, </s>, the 256 byte tokens <0xXX> llama.cpp's byte fallback
// needs, the printable symbols, then two- and three-symbol pieces, scored
// so shorter pieces merge first.
func setSPMVocab(w *gguf.Writer, n int) error {
	syms := baseSymbols("▁")
	if n < 3+256+len(syms) {
		return fmt.Errorf("synth: an SPM vocabulary needs at least %d tokens, preset has %d", 3+256+len(syms), n)
	}
	tokens := make([]string, 0, n)
	scores := make([]float32, 0, n)
	types := make([]int32, 0, n)
	add := func(piece string, score float32, typ int32) {
		tokens, scores, types = append(tokens, piece), append(scores, score), append(types, typ)
	}
	add("<unk>", 0, tokenUnknown)
	add("<s>", 0, tokenControl)
	add("</s>", 0, tokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, tokenByte)
	}
	rank := float32(0)
	for _, s := range syms {
		add(s, -rank, tokenNormal)
		rank++
	}
	pieces, _, _ := fillers(syms, n-len(tokens))
	for _, p := range pieces {
		add(p, -rank, tokenNormal)
		rank++
	}
	if len(tokens) != n {
		return fmt.Errorf("synth: could only make %d of %d tokens", len(tokens), n)
	}
	w.SetString("tokenizer.ggml.model", "llama")
	w.SetString("tokenizer.ggml.pre", "default")
	w.SetStrings("tokenizer.ggml.tokens", tokens)
	w.SetFloat32s("tokenizer.ggml.scores", scores)
	w.SetInt32s("tokenizer.ggml.token_type", types)
	w.SetUint32("tokenizer.ggml.bos_token_id", 1)
	w.SetUint32("tokenizer.ggml.eos_token_id", 2)
	w.SetUint32("tokenizer.ggml.unknown_token_id", 0)
	w.SetBool("tokenizer.ggml.add_bos_token", true)
	w.SetBool("tokenizer.ggml.add_eos_token", false)
	return nil
}

// byteToUnicode is GPT-2's bytes_to_unicode: printable bytes stand for
// themselves, the others are shifted to U+0100 and up, so every byte is a
// visible character (space is "Ġ", newline "Ċ").
func byteToUnicode() [256]string {
	var m [256]string
	next := 256
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
			m[b] = string(rune(b))
		} else {
			m[b] = string(rune(next))
			next++
		}
	}
	return m
}

// setGPT2Vocab writes a byte-level BPE ('gpt2', pre-tokenizer qwen2)
// vocabulary of n tokens as Qwen2's converter lays it out: the 256 byte
// characters, merged pieces with one merge rule each, then the special
// tokens <|endoftext|> (BOS/EOS/PAD, as in Qwen2 base models),
// <|im_start|>, <|im_end|>.
func setGPT2Vocab(w *gguf.Writer, n int) error {
	specials := []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
	if n < 256+len(specials) {
		return fmt.Errorf("synth: a byte-level BPE vocabulary needs at least %d tokens, preset has %d", 256+len(specials), n)
	}
	b2u := byteToUnicode()
	tokens := make([]string, 0, n)
	types := make([]int32, 0, n)
	for _, s := range b2u {
		tokens, types = append(tokens, s), append(types, tokenNormal)
	}
	pieces, left, right := fillers(baseSymbols("Ġ"), n-256-len(specials))
	merges := make([]string, len(pieces))
	for i, p := range pieces {
		tokens, types = append(tokens, p), append(types, tokenNormal)
		merges[i] = left[i] + " " + right[i]
	}
	eot := uint32(len(tokens))
	for _, s := range specials {
		tokens, types = append(tokens, s), append(types, tokenControl)
	}
	if len(tokens) != n {
		return fmt.Errorf("synth: could only make %d of %d tokens", len(tokens), n)
	}
	w.SetString("tokenizer.ggml.model", "gpt2")
	w.SetString("tokenizer.ggml.pre", "qwen2")
	w.SetStrings("tokenizer.ggml.tokens", tokens)
	w.SetInt32s("tokenizer.ggml.token_type", types)
	w.SetStrings("tokenizer.ggml.merges", merges)
	w.SetUint32("tokenizer.ggml.bos_token_id", eot)
	w.SetUint32("tokenizer.ggml.eos_token_id", eot)
	w.SetUint32("tokenizer.ggml.padding_token_id", eot)
	w.SetBool("tokenizer.ggml.add_bos_token", false)
	return nil
}

// copyVocab copies every tokenizer.* key of src (tokens, scores, types,
// merges, special ids, chat template) and returns the vocabulary size.
func copyVocab(w *gguf.Writer, src *gguf.File) (int, error) {
	tokens, err := src.GetStrings("tokenizer.ggml.tokens")
	if err != nil {
		return 0, fmt.Errorf("synth: vocabulary file %s: %w", src.Path, err)
	}
	for _, kv := range src.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			if err := w.SetKV(kv); err != nil {
				return 0, err
			}
		}
	}
	return len(tokens), nil
}
