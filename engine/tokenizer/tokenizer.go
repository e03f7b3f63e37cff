// Package tokenizer turns text into token ids and back exactly as llama.cpp
// (commit c392e509, src/llama-vocab.cpp) does for the vocabularies stored in
// GGUF files: SentencePiece-style BPE by score with byte fallback
// (tokenizer.ggml.model = "llama") and GPT-2 byte-level BPE with merge ranks
// and the pre-tokenizer named by tokenizer.ggml.pre ("gpt2").
//
// Encode(text, addSpecial, parseSpecial) is llama_tokenize; Decode is the
// concatenation of llama_token_to_piece for each id (special tokens
// rendered); Detokenize is llama_detokenize. A Tokenizer is immutable after
// construction and safe for concurrent use.
package tokenizer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Token attributes, llama_token_attr.
const (
	attrUndefined   uint16 = 0
	attrUnknown     uint16 = 1 << 0
	attrUnused      uint16 = 1 << 1
	attrNormal      uint16 = 1 << 2
	attrControl     uint16 = 1 << 3
	attrUserDefined uint16 = 1 << 4
	attrByte        uint16 = 1 << 5
	attrLStrip      uint16 = 1 << 7
	attrRStrip      uint16 = 1 << 8
)

// GGUF token types (tokenizer.ggml.token_type), llama_token_type.
const (
	TypeUndefined   = 0
	TypeNormal      = 1
	TypeUnknown     = 2
	TypeControl     = 3
	TypeUserDefined = 4
	TypeUnused      = 5
	TypeByte        = 6
)

// Kind is the tokenization algorithm.
type Kind int

const (
	KindSPM Kind = iota // tokenizer.ggml.model = "llama"
	KindBPE             // tokenizer.ggml.model = "gpt2"
)

// Config is a vocabulary as GGUF stores it, with the metadata that changes
// tokenization. FromGGUF fills it from a file; tests can build one directly.
type Config struct {
	Model  string    // tokenizer.ggml.model: "llama" or "gpt2"
	Pre    string    // tokenizer.ggml.pre ("" = "default")
	Tokens []string  // tokenizer.ggml.tokens
	Scores []float32 // tokenizer.ggml.scores (nil = all 0)
	Types  []int32   // tokenizer.ggml.token_type (nil = all normal)
	Merges []string  // tokenizer.ggml.merges, "left right" (BPE only)
	// IDs holds the special-token ids present in the metadata, keyed by
	// their GGUF key ("tokenizer.ggml.bos_token_id", ...). Missing keys keep
	// llama.cpp's defaults for the model; out-of-range ids are ignored as
	// llama.cpp ignores them.
	IDs map[string]uint32
	// Flags holds the booleans present in the metadata, keyed by GGUF key:
	// tokenizer.ggml.add_bos_token, add_eos_token, add_space_prefix.
	Flags map[string]bool
	Name  string // general.name (llama.cpp strips spaces after specials for Phi-3)
}

// Tokenizer is a loaded vocabulary.
type Tokenizer struct {
	kind   Kind
	steps  []splitStep // BPE pre-tokenizer passes
	tokens []string
	scores []float32
	attrs  []uint16
	pieces []string // llama_token_to_piece(id, special=true), cached
	ids    map[string]int32
	ranks  map[mergeKey]int32

	bos, eos, eot, eom, unk, pad int32
	fimPre, fimSuf, fimMid       int32
	fimPad, fimRep, fimSep       int32
	addBOS, addEOS               bool
	addSpacePrefix               bool
	cleanSpaces                  bool
	ignoreMerges                 bool
	eog                          map[int32]bool
	specials                     []int32 // control/user-defined/unknown ids, longest text first
	byteIDs                      [256]int32
	// spmJoins holds every string of 1-4 bytes that some token has right
	// before a "▁"; a "▁" preceded by anything else starts an independent
	// SPM segment (see spmSegments).
	spmJoins map[string]bool
}

type mergeKey struct{ left, right string }

// Special-token metadata keys and the field each sets.
var specialKeys = []struct {
	key   string
	field func(t *Tokenizer) *int32
}{
	{"tokenizer.ggml.bos_token_id", func(t *Tokenizer) *int32 { return &t.bos }},
	{"tokenizer.ggml.eos_token_id", func(t *Tokenizer) *int32 { return &t.eos }},
	{"tokenizer.ggml.eot_token_id", func(t *Tokenizer) *int32 { return &t.eot }},
	{"tokenizer.ggml.eom_token_id", func(t *Tokenizer) *int32 { return &t.eom }},
	{"tokenizer.ggml.unknown_token_id", func(t *Tokenizer) *int32 { return &t.unk }},
	{"tokenizer.ggml.padding_token_id", func(t *Tokenizer) *int32 { return &t.pad }},
	{"tokenizer.ggml.fim_pre_token_id", func(t *Tokenizer) *int32 { return &t.fimPre }},
	{"tokenizer.ggml.fim_suf_token_id", func(t *Tokenizer) *int32 { return &t.fimSuf }},
	{"tokenizer.ggml.fim_mid_token_id", func(t *Tokenizer) *int32 { return &t.fimMid }},
	{"tokenizer.ggml.fim_pad_token_id", func(t *Tokenizer) *int32 { return &t.fimPad }},
	{"tokenizer.ggml.fim_rep_token_id", func(t *Tokenizer) *int32 { return &t.fimRep }},
	{"tokenizer.ggml.fim_sep_token_id", func(t *Tokenizer) *int32 { return &t.fimSep }},
	// deprecated spellings
	{"tokenizer.ggml.prefix_token_id", func(t *Tokenizer) *int32 { return &t.fimPre }},
	{"tokenizer.ggml.suffix_token_id", func(t *Tokenizer) *int32 { return &t.fimSuf }},
	{"tokenizer.ggml.middle_token_id", func(t *Tokenizer) *int32 { return &t.fimMid }},
}

// specialIDKeys lists the metadata keys Config.IDs may hold.
func specialIDKeys() []string {
	keys := make([]string, 0, len(specialKeys)+2)
	for _, s := range specialKeys {
		keys = append(keys, s.key)
	}
	// read by llama.cpp but unused for text: kept so FromGGUF validates them alike
	return append(keys, "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.mask_token_id")
}

// flagKeys lists the metadata keys Config.Flags may hold.
var flagKeys = []string{
	"tokenizer.ggml.add_bos_token",
	"tokenizer.ggml.add_eos_token",
	"tokenizer.ggml.add_space_prefix",
}

// New builds a tokenizer from a vocabulary, following llama_vocab::load.
func New(cfg Config) (*Tokenizer, error) {
	n := len(cfg.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: empty vocabulary (tokenizer.ggml.tokens)")
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: %d tokens is too many", n)
	}
	if cfg.Scores != nil && len(cfg.Scores) < n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens (tokenizer.ggml.scores)", len(cfg.Scores), n)
	}
	if cfg.Types != nil && len(cfg.Types) < n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens (tokenizer.ggml.token_type)", len(cfg.Types), n)
	}
	t := &Tokenizer{
		bos: -1, eos: -1, eot: -1, eom: -1, unk: -1, pad: -1,
		fimPre: -1, fimSuf: -1, fimMid: -1, fimPad: -1, fimRep: -1, fimSep: -1,
	}
	switch cfg.Model {
	case "llama":
		t.kind = KindSPM
		t.bos, t.eos, t.unk = 1, 2, 0
		t.addSpacePrefix, t.addBOS = true, true
	case "gpt2":
		t.kind = KindBPE
		t.bos, t.eos = 11, 11
		if cfg.Merges == nil {
			return nil, fmt.Errorf("tokenizer: BPE vocabulary without merges (tokenizer.ggml.merges)")
		}
		pre, err := findPreType(cfg.Pre)
		if err != nil {
			return nil, err
		}
		if t.steps, err = compileSplitSteps(pre.regexes); err != nil {
			return nil, err
		}
		t.cleanSpaces, t.ignoreMerges, t.addBOS = pre.cleanSpaces, pre.ignoreMerges, pre.addBOS
		if pre.noBOS {
			t.bos = -1
		}
		t.ranks = make(map[mergeKey]int32, len(cfg.Merges))
		for i, m := range cfg.Merges {
			// llama.cpp splits at the first space after the first byte; a
			// merge without one becomes ("", ""). The first rank wins.
			var k mergeKey
			if len(m) > 1 {
				if sp := strings.IndexByte(m[1:], ' '); sp >= 0 {
					k = mergeKey{m[:sp+1], m[sp+2:]}
				}
			}
			if _, dup := t.ranks[k]; !dup {
				t.ranks[k] = int32(i)
			}
		}
	case "":
		return nil, fmt.Errorf("tokenizer: missing tokenizer.ggml.model")
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q (want \"llama\" or \"gpt2\")", cfg.Model)
	}
	if v, ok := cfg.Flags["tokenizer.ggml.add_space_prefix"]; ok {
		t.addSpacePrefix = v
	}

	t.tokens = make([]string, n)
	t.scores = make([]float32, n)
	t.attrs = make([]uint16, n)
	t.ids = make(map[string]int32, n)
	for i, w := range cfg.Tokens {
		if w == "" {
			w = "[EMPTY_" + strconv.Itoa(i) + "]" // as llama.cpp
		}
		t.tokens[i] = w
		t.ids[w] = int32(i) // a duplicate text maps to its last id, as llama.cpp's token_to_id[word] = i
		if cfg.Scores != nil {
			t.scores[i] = cfg.Scores[i]
		}
		t.attrs[i] = attrNormal
		if cfg.Types != nil {
			t.attrs[i] = typeToAttr(cfg.Types[i])
		}
	}

	for _, s := range specialKeys {
		p := s.field(t)
		if *p >= int32(n) {
			*p = -1 // a default id outside this vocabulary
		}
		if v, ok := cfg.IDs[s.key]; ok && uint64(v) < uint64(n) {
			*p = int32(v)
		}
	}
	if v, ok := cfg.Flags["tokenizer.ggml.add_bos_token"]; ok {
		t.addBOS = v
	}
	if v, ok := cfg.Flags["tokenizer.ggml.add_eos_token"]; ok {
		t.addEOS = v
	}
	// add_bos/add_eos without the token: llama.cpp asserts when tokenizing;
	// we add nothing instead (AddBOS/AddEOS report false).
	t.addBOS = t.addBOS && t.bos >= 0
	t.addEOS = t.addEOS && t.eos >= 0
	t.detectSpecials()
	t.buildSpecialCache(cfg.Pre, strings.ToLower(cfg.Name))

	for b := 0; b < 256; b++ {
		t.byteIDs[b] = t.findByteToken(byte(b))
	}
	if t.kind == KindSPM {
		t.spmJoins = map[string]bool{}
		for _, w := range t.tokens {
			for k := 1; k < len(w); k++ {
				if strings.HasPrefix(w[k:], "\u2581") {
					for l := 1; l <= 4 && l <= k; l++ {
						t.spmJoins[w[k-l:k]] = true
					}
				}
			}
		}
	}
	t.pieces = make([]string, n)
	for i := range t.pieces {
		t.pieces[i] = t.piece(int32(i))
	}
	return t, nil
}

func typeToAttr(tt int32) uint16 {
	switch tt {
	case TypeUnknown:
		return attrUnknown
	case TypeUnused:
		return attrUnused
	case TypeNormal:
		return attrNormal
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUserDefined
	case TypeByte:
		return attrByte
	}
	return attrUndefined
}

// detectSpecials finds end-of-turn and fill-in-the-middle tokens by their
// text when the metadata does not name them, forces them to control type,
// and builds the end-of-generation set (llama_vocab::load).
func (t *Tokenizer) detectSpecials() {
	byText := func(id *int32, texts ...string) {
		if *id >= 0 {
			return
		}
		// llama.cpp walks an unordered_map here; with several candidates
		// present the one it picks is unspecified. We take the lowest id.
		for _, s := range texts {
			if v, ok := t.ids[s]; ok && (*id < 0 || v < *id) {
				*id = v
			}
		}
		if *id >= 0 && t.attrs[*id]&attrControl == 0 {
			t.attrs[*id] = attrControl
		}
	}
	byText(&t.eot, "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>")
	byText(&t.eom, "<|eom_id|>")
	byText(&t.fimPre, "<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>")
	byText(&t.fimSuf, "<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>")
	byText(&t.fimMid, "<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>")
	byText(&t.fimPad, "<|fim_pad|>", "<fim-pad>", "<PAD>")
	byText(&t.fimRep, "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>")
	byText(&t.fimSep, "<|file_sep|>")

	t.eog = map[int32]bool{}
	for _, id := range []int32{t.fimPad, t.fimRep, t.fimSep} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
	for _, s := range []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"} {
		if id, ok := t.ids[s]; ok {
			t.eog[id] = true
			if t.attrs[id]&attrControl == 0 {
				t.attrs[id] = attrControl
			}
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
}

// buildSpecialCache lists the tokens tokenizer_st_partition looks for, longest
// text first (ties by id; llama.cpp's std::sort leaves them unspecified), and
// applies llama.cpp's per-model strip attributes.
func (t *Tokenizer) buildSpecialCache(pre, name string) {
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.specials = append(t.specials, int32(id))
		}
	}
	sort.SliceStable(t.specials, func(i, j int) bool {
		return len(t.tokens[t.specials[i]]) > len(t.tokens[t.specials[j]])
	})
	setAttr := func(text string, a uint16, on bool) {
		if id, ok := t.ids[text]; ok {
			if on {
				t.attrs[id] |= a
			} else {
				t.attrs[id] &^= a
			}
		}
	}
	switch {
	case containsAny(pre, "jina-v2-de", "jina-v2-es", "jina-v2-code"):
		setAttr("<mask>", attrLStrip, true)
	case containsAny(name, "phi-3", "phi3"):
		for _, id := range t.specials {
			t.attrs[id] |= attrRStrip
		}
		setAttr("</s>", attrRStrip, true)
		for _, s := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			setAttr(s, attrRStrip, false)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// findByteToken is llama_vocab::byte_to_token: "<0xXX>" or the raw byte for
// SPM, the byte's GPT-2 character for BPE; -1 when the vocabulary has neither
// (where llama.cpp would throw).
func (t *Tokenizer) findByteToken(b byte) int32 {
	if t.kind == KindBPE {
		if id, ok := t.ids[byteToUTF8[b]]; ok {
			return id
		}
		return -1
	}
	const hex = "0123456789ABCDEF"
	if id, ok := t.ids[string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})]; ok {
		return id
	}
	if id, ok := t.ids[string([]byte{b})]; ok {
		return id
	}
	return -1
}

// piece is llama_token_to_piece(id, special=true) without the cache.
func (t *Tokenizer) piece(id int32) string {
	a := t.attrs[id]
	text := t.tokens[id]
	if a&(attrUnknown|attrControl|attrUserDefined) != 0 {
		return text
	}
	switch {
	case a&attrNormal != 0:
		if t.kind == KindSPM {
			return strings.ReplaceAll(text, "\u2581", " ")
		}
		return decodeByteLevel(text)
	case a&attrByte != 0:
		if t.kind == KindSPM {
			// token_to_byte: strtol of the two characters after "<0x"
			if len(text) >= 5 {
				if v, err := strconv.ParseUint(text[3:5], 16, 8); err == nil {
					return string([]byte{byte(v)})
				}
			}
			return string([]byte{0})
		}
		return "" // llama.cpp aborts on byte tokens in BPE vocabularies
	}
	return "" // unused and undefined tokens render as nothing
}

// decodeByteLevel maps GPT-2 byte characters back to bytes
// (llama_decode_text), marking characters outside the alphabet as llama.cpp
// does.
func decodeByteLevel(text string) string {
	var out []byte
	var cbuf [8]rune
	for _, c := range decodeCpts(cbuf[:0], text) {
		if b, ok := runeToByte[c]; ok {
			out = append(out, b)
			continue
		}
		u := appendCpt(nil, c)
		out = append(out, "[UNK_BYTE_0x"...)
		for _, x := range u {
			out = append(out, fmt.Sprintf("%02x", x)...)
		}
		out = append(out, text...)
		out = append(out, ']')
	}
	return string(out)
}

// Kind reports the tokenization algorithm.
func (t *Tokenizer) Kind() Kind { return t.kind }

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS is the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS is the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOT is the end-of-turn id, or -1.
func (t *Tokenizer) EOT() int32 { return t.eot }

// AddBOS reports whether Encode with addSpecial prepends BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial appends EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether id ends generation (EOS, EOT, EOM and the
// end-looking tokens llama.cpp recognises by text).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// IsControl reports whether id is a control token.
func (t *Tokenizer) IsControl(id int32) bool {
	return id >= 0 && int(id) < len(t.attrs) && t.attrs[id]&attrControl != 0
}

// TokenText is the token's text as stored in the vocabulary ("" if out of range).
func (t *Tokenizer) TokenText(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenID returns the id of a token text.
func (t *Tokenizer) TokenID(text string) (int32, bool) {
	id, ok := t.ids[text]
	return id, ok
}

// TokenPiece is llama_token_to_piece(id, special=true): the bytes the token
// stands for ("" for ids out of range). A piece can be part of a UTF-8
// sequence.
func (t *Tokenizer) TokenPiece(id int32) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// Decode concatenates the pieces of ids.
func (t *Tokenizer) Decode(ids []int32) string {
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(t.TokenPiece(id))
	}
	return sb.String()
}
