package tokenizer

import "fmt"

// Byte-level BPE vocabularies split text into words before merging. Which
// split depends on tokenizer.ggml.pre; the regex lists below are llama.cpp's
// (llm_tokenizer_bpe at c392e509). Two patterns llama.cpp never hands to
// std::regex: the GPT-2 and Llama-3 ones run through hand-written splitters
// (unicode.cpp's unicode_regex_split_custom_gpt2/_llama3), whose corner cases
// differ slightly from the regex; splitGPT2 and splitLlama3 below reproduce
// those splitters. Every other pattern goes through our regex engine.

const (
	patGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`

	patLlama3 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

	// llama3's original spelling, also routed to the custom splitter.
	patLlama3CI = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

	patQwen2 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

	// The letter ranges of deepseek-llm's tokenizer.json. Six endpoints are
	// written as escapes because NFC normalization would replace them
	// (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) and break the ranges.
	patDeepseekLLMLetters = "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"

	patCJK = `[一-龥ࠀ-一가-퟿]+`

	patTekken = `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`

	patBloom = ` ?[^(\s|.,!?…。，、।۔،)]+`
)

// preType is one pre-tokenizer: its regexes and the vocab flags llama.cpp
// sets with it.
type preType struct {
	names        []string // tokenizer.ggml.pre values
	regexes      []string
	cleanSpaces  bool // llama_vocab clean_spaces (detokenize cleanup)
	ignoreMerges bool // a word that is a whole token skips merging
	addBOS       bool // default add_bos before metadata overrides it
	noBOS        bool // chatglm: no BOS id at all
}

var preTypes = []preType{
	{names: []string{"default"}, cleanSpaces: true, regexes: []string{
		`[\p{P}\$\+<=>\^~\|]+`, patGPT2, `\p{N}+`, `[0-9][0-9][0-9]`}},
	{names: []string{"llama3", "llama-v3", "llama-bpe", "falcon3"}, cleanSpaces: true, ignoreMerges: true, addBOS: true,
		regexes: []string{patLlama3}},
	{names: []string{"dbrx", "smaug-bpe"}, cleanSpaces: true, regexes: []string{patLlama3}},
	{names: []string{"deepseek-llm"}, regexes: []string{
		"[\r\n]", patDeepseekLLMLetters, `\s?[!-/:-~！-／：-～‘-‟　-。]+`, `\s+$`, patCJK, `\p{N}+`}},
	{names: []string{"deepseek-coder"}, regexes: []string{
		"[\r\n]", `\s?\p{L}+`, `\s?\p{P}+`, patCJK, `\p{N}`}},
	{names: []string{"deepseek-v3"}, regexes: []string{
		`\p{N}{1,3}`, `[一-龥぀-ゟ゠-ヿ]+`,
		"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
	{names: []string{"falcon"}, cleanSpaces: true, regexes: []string{
		"[\\p{P}\\$\\+<=>\\^~\\|`]+", patGPT2, `[0-9][0-9][0-9]`}},
	{names: []string{"starcoder", "refact", "codeshell", "exaone", "minerva-7b"}, cleanSpaces: true,
		regexes: []string{`\p{N}`, patGPT2}},
	{names: []string{"command-r", "smollm"}, regexes: []string{`\p{N}`, patGPT2}},
	{names: []string{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
		"jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"}, cleanSpaces: true, regexes: []string{patGPT2}},
	{names: []string{"qwen2"}, regexes: []string{patQwen2}},
	{names: []string{"stablelm2", "megrez"}, cleanSpaces: true, regexes: []string{patQwen2}},
	{names: []string{"poro-chat"}, regexes: []string{patBloom}},
	{names: []string{"bloom", "gpt3-finnish"}, cleanSpaces: true, regexes: []string{patBloom}},
	{names: []string{"chatglm-bpe"}, cleanSpaces: true, noBOS: true, regexes: []string{patLlama3}},
	{names: []string{"viking"}, regexes: []string{patBloom, `\p{N}`}},
	{names: []string{"tekken"}, ignoreMerges: true, addBOS: true, regexes: []string{patTekken}},
	{names: []string{"chameleon"}, addBOS: true, regexes: []string{
		`<sentinel:[0-9]+>`, `(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z`, `([\t\n]|    |  )`, `\p{N}`,
		"[\\p{P}!-/:-@\\[-`{-~]", patGPT2}},
}

func findPreType(name string) (*preType, error) {
	if name == "" {
		name = "default" // llama.cpp warns and uses the default pre-tokenizer
	}
	for i := range preTypes {
		for _, n := range preTypes[i].names {
			if n == name {
				return &preTypes[i], nil
			}
		}
	}
	return nil, fmt.Errorf("tokenizer: unknown pre-tokenizer type %q (tokenizer.ggml.pre)", name)
}

// splitStep is one pass of the pre-tokenizer: a custom splitter or a regex.
type splitStep struct {
	custom func(cpts []rune, flags []uint16, chunks, out []int) []int
	prog   *reProg
}

func compileSplitSteps(regexes []string) ([]splitStep, error) {
	steps := make([]splitStep, 0, len(regexes))
	for _, src := range regexes {
		switch src {
		case patGPT2:
			steps = append(steps, splitStep{custom: splitGPT2})
		case patLlama3, patLlama3CI:
			steps = append(steps, splitStep{custom: splitLlama3})
		default:
			prog, err := compileRegex(src)
			if err != nil {
				return nil, err
			}
			steps = append(steps, splitStep{prog: prog})
		}
	}
	return steps, nil
}

// splitter holds per-call scratch for pre-tokenizing one text fragment.
type splitter struct {
	cpts   []rune
	flags  []uint16
	chars  []reChar
	chunks []int
	tmp    []int
	re     reMatcher
}

// split returns the word lengths (in codepoints of s.cpts) of text, as
// llama.cpp's unicode_regex_split computes its offsets.
func (s *splitter) split(steps []splitStep, text string) []int {
	s.cpts = decodeCpts(s.cpts, text)
	s.flags = s.flags[:0]
	for _, c := range s.cpts {
		s.flags = append(s.flags, cptFlags(c))
	}
	s.chunks = append(s.chunks[:0], len(s.cpts))
	charsReady := false
	for _, st := range steps {
		if st.custom != nil {
			s.tmp = st.custom(s.cpts, s.flags, s.chunks, s.tmp[:0])
		} else {
			if !charsReady {
				s.chars = s.chars[:0]
				for i, c := range s.cpts {
					if c >= 0x80 && s.flags[i]&flagWhitespace != 0 {
						c = '\v' // llama.cpp's stand-in for non-ASCII whitespace
					}
					s.chars = append(s.chars, reChar{r: c, flags: s.flags[i]})
				}
				charsReady = true
			}
			s.tmp = s.re.split(st.prog, s.chars, s.chunks, s.tmp[:0])
		}
		s.chunks, s.tmp = s.tmp, s.chunks
	}
	return s.chunks
}

// splitGPT2 is unicode_regex_split_custom_gpt2, the hand-written form of
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Positions outside the chunk read as codepoint -1 with flags 0.
func splitGPT2(cpts []rune, flags []uint16, chunks, out []int) []int {
	start := 0
	for _, n := range chunks {
		ini, end := start, start+n
		start = end
		cpt := func(p int) rune {
			if p >= ini && p < end {
				return cpts[p]
			}
			return -1
		}
		flg := func(p int) uint16 {
			if p >= ini && p < end {
				return flags[p]
			}
			return 0
		}
		prev := ini
		add := func(e int) int {
			l := e - prev
			if l > 0 {
				out = append(out, l)
			}
			prev = e
			return l
		}
		for pos := ini; pos < end; {
			c := cpt(pos)
			f := flg(pos)
			if c == '\'' && pos+1 < end {
				c1 := cpt(pos + 1)
				if c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd' {
					pos += add(pos + 2)
					continue
				}
				if pos+2 < end {
					c2 := cpt(pos + 2)
					if c1 == 'r' && c2 == 'e' || c1 == 'v' && c2 == 'e' || c1 == 'l' && c2 == 'l' {
						pos += add(pos + 3)
						continue
					}
				}
			}
			f2 := f
			if c == ' ' {
				f2 = flg(pos + 1)
			}
			if f2&flagLetter != 0 { // ' ?\p{L}+'
				if c == ' ' {
					pos++
				}
				for f2&flagLetter != 0 {
					pos++
					f2 = flg(pos)
				}
				add(pos)
				continue
			}
			if f2&flagNumber != 0 { // ' ?\p{N}+'
				if c == ' ' {
					pos++
				}
				for f2&flagNumber != 0 {
					pos++
					f2 = flg(pos)
				}
				add(pos)
				continue
			}
			if isOther(f2) { // ' ?[^\s\p{L}\p{N}]+'
				if c == ' ' {
					pos++
				}
				for isOther(f2) {
					pos++
					f2 = flg(pos)
				}
				add(pos)
				continue
			}
			nws := 0
			for flg(pos+nws)&flagWhitespace != 0 {
				nws++
			}
			if nws > 1 && cpt(pos+nws) != -1 { // '\s+(?!\S)'
				pos += nws - 1
				add(pos)
				continue
			}
			if nws > 0 { // '\s+'
				pos += nws
				add(pos)
				continue
			}
			pos++
			add(pos)
		}
	}
	return out
}

// isOther is [^\s\p{L}\p{N}] for a position inside the chunk.
func isOther(f uint16) bool {
	return f != 0 && f&(flagWhitespace|flagLetter|flagNumber) == 0
}

// splitLlama3 is unicode_regex_split_custom_llama3, the hand-written form of
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(cpts []rune, flags []uint16, chunks, out []int) []int {
	start := 0
	for _, n := range chunks {
		ini, end := start, start+n
		start = end
		cpt := func(p int) rune {
			if p >= ini && p < end {
				return cpts[p]
			}
			return -1
		}
		flg := func(p int) uint16 {
			if p >= ini && p < end {
				return flags[p]
			}
			return 0
		}
		prev := ini
		add := func(e int) int {
			l := e - prev
			if l > 0 {
				out = append(out, l)
			}
			prev = e
			return l
		}
		for pos := ini; pos < end; {
			c := cpt(pos)
			f := flg(pos)
			if c == '\'' && pos+1 < end { // contractions, ASCII case-insensitive
				c1 := asciiLower(cpt(pos + 1))
				if c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd' {
					pos += add(pos + 2)
					continue
				}
				if pos+2 < end {
					c2 := asciiLower(cpt(pos + 2))
					if c1 == 'r' && c2 == 'e' || c1 == 'v' && c2 == 'e' || c1 == 'l' && c2 == 'l' {
						pos += add(pos + 3)
						continue
					}
				}
			}
			// [^\r\n\p{L}\p{N}]?\p{L}+
			if !(c == '\r' || c == '\n' || f&flagNumber != 0) {
				if f&flagLetter != 0 || flg(pos+1)&flagLetter != 0 {
					pos++
					for flg(pos)&flagLetter != 0 {
						pos++
					}
					add(pos)
					continue
				}
			}
			if f&flagNumber != 0 { // \p{N}{1,3}
				run := pos
				for flg(pos)&flagNumber != 0 {
					pos++
					if pos-run >= 3 {
						add(pos)
						run = pos
					}
				}
				add(pos)
				continue
			}
			// ' ?[^\s\p{L}\p{N}]+[\r\n]*'. llama.cpp tests the first
			// position's own flags for being in range here, not f2's.
			f2 := f
			if c == ' ' {
				f2 = flg(pos + 1)
			}
			if f2&(flagWhitespace|flagLetter|flagNumber) == 0 && f != 0 {
				if c == ' ' {
					pos++
				}
				for isOther(f2) {
					pos++
					f2 = flg(pos)
				}
				for c2 := cpt(pos); c2 == '\r' || c2 == '\n'; c2 = cpt(pos) {
					pos++
				}
				add(pos)
				continue
			}
			nws, lastNL := 0, 0
			for flg(pos+nws)&flagWhitespace != 0 {
				if c2 := cpt(pos + nws); c2 == '\r' || c2 == '\n' {
					lastNL = pos + nws + 1
				}
				nws++
			}
			if lastNL > 0 { // \s*[\r\n]+
				pos = lastNL
				add(pos)
				continue
			}
			if nws > 1 && cpt(pos+nws) != -1 { // \s+(?!\S)
				pos += nws - 1
				add(pos)
				continue
			}
			if nws > 0 { // \s+
				pos += nws
				add(pos)
				continue
			}
			pos++
			add(pos)
		}
	}
	return out
}

// asciiLower lowers A-Z. llama.cpp calls unicode_tolower, but no non-ASCII
// codepoint lowers to one of the ASCII letters the contractions test.
func asciiLower(c rune) rune {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
