package tokenizer

import (
	"strings"
	"sync"
)

// fragment is a piece of the input after special-token partitioning: a
// special token (id >= 0) or the text text[start:end].
type fragment struct {
	id         int32
	start, end int
}

// encodeState is the per-call scratch of Encode, pooled.
type encodeState struct {
	frags, next []fragment
	buf         []byte
	syms        []symbol
	spmHeap     []spmBigram
	bpeHeap     []bpeBigram
	split       splitter
}

var encodePool = sync.Pool{New: func() any { return new(encodeState) }}

// Encode is llama_tokenize(text, addSpecial, parseSpecial): with addSpecial
// BOS/EOS are added as the vocabulary asks (AddBOS, AddEOS); with
// parseSpecial the text of control tokens is recognised as those tokens.
// User-defined tokens are always recognised, as in llama.cpp. Invalid UTF-8
// never fails: SPM falls back to byte tokens, BPE reads each bad byte as
// U+FFFD.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	st := encodePool.Get().(*encodeState)
	defer encodePool.Put(st)

	out := make([]int32, 0, len(text)/3+2)
	frags := t.partition(st, text, parseSpecial)
	if addSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	switch t.kind {
	case KindSPM:
		prevSpecial := true // the first text gets the space prefix
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f.id)
				prevSpecial = true
				continue
			}
			// llama_escape_whitespace: every ASCII space becomes U+2581.
			buf := st.buf[:0]
			if t.addSpacePrefix && prevSpecial {
				buf = append(buf, "\u2581"...)
			}
			for i := f.start; i < f.end; i++ {
				if c := text[i]; c == ' ' {
					buf = append(buf, "\u2581"...)
				} else {
					buf = append(buf, c)
				}
			}
			st.buf = buf
			text := string(buf)
			for a := 0; a < len(text); {
				b := t.spmSegmentEnd(text, a)
				out = t.spmEncode(st, text[a:b], out)
				a = b
			}
			prevSpecial = false
		}
	case KindBPE:
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f.id)
				continue
			}
			out = t.bpeEncode(st, text[f.start:f.end], out)
		}
	}
	if addSpecial && t.addEOS {
		out = append(out, t.eos)
	}
	return out
}

// partition is tokenizer_st_partition: for each special token, longest
// first, every occurrence inside a text fragment is cut out as that token.
func (t *Tokenizer) partition(st *encodeState, text string, parseSpecial bool) []fragment {
	frags := st.frags[:0]
	if text == "" {
		return frags
	}
	frags = append(frags, fragment{id: -1, start: 0, end: len(text)})
	next := st.next[:0]
	for _, id := range t.specials {
		a := t.attrs[id]
		if !parseSpecial && a&(attrControl|attrUnknown) != 0 {
			continue // user-defined tokens are still split out
		}
		tok := t.tokens[id]
		if !strings.Contains(text, tok) {
			continue
		}
		next = next[:0]
		for _, f := range frags {
			if f.id >= 0 {
				next = append(next, f)
				continue
			}
			s, e := f.start, f.end
			for s < e {
				i := strings.Index(text[s:e], tok)
				if i < 0 {
					break
				}
				m := s + i
				l := m
				if a&attrLStrip != 0 {
					for l > s && isCSpace(text[l-1]) {
						l--
					}
				}
				if l > s {
					next = append(next, fragment{id: -1, start: s, end: l})
				}
				next = append(next, fragment{id: id})
				s = m + len(tok)
				if a&attrRStrip != 0 {
					for s < e && isCSpace(text[s]) {
						s++
					}
				}
			}
			if s < e {
				next = append(next, fragment{id: -1, start: s, end: e})
			}
		}
		frags, next = next, frags
	}
	st.frags, st.next = frags, next
	return frags
}

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// symbol is a run of bytes in the text being merged (llm_symbol): it covers
// [start, start+n) and links to its neighbours; n = 0 once merged away.
type symbol struct {
	start, n   int32
	prev, next int32
}

func (st *encodeState) splitSymbols(text string) []symbol {
	syms := st.syms[:0]
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		i := int32(len(syms))
		syms = append(syms, symbol{start: int32(off), n: int32(n), prev: i - 1, next: i + 1})
		off += n
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	st.syms = syms
	return syms
}

// spmBigram is a candidate merge of symbols left and right whose text is a
// token with the given score (llm_bigram_spm).
type spmBigram struct {
	left, right int32
	score       float32
	size        int32
}

// spmBefore orders the SPM queue: highest score first, then leftmost.
func spmBefore(a, b *spmBigram) bool {
	return a.score > b.score || a.score == b.score && a.left < b.left
}

// spmSegmentEnd returns where the SPM segment starting at a ends: at the
// next "▁" that starts a symbol and that no token can join to the symbol
// before it, or at the end. llama.cpp merges over the whole text at once; no
// token spans such a boundary, so no merge ever crosses it, and merging each
// segment alone performs the same merges (bigrams of different segments
// never interact, and within a segment the queue order is unchanged). It
// keeps the queue small: tokenizing 1 MB is many times faster.
func (t *Tokenizer) spmSegmentEnd(text string, a int) int {
	prev := a
	for j := a + min(utf8Len(text[a]), len(text)-a); j < len(text); {
		n := min(utf8Len(text[j]), len(text)-j)
		if n == 3 && text[j:j+3] == "\u2581" && !t.spmJoins[text[prev:j]] {
			return j
		}
		prev = j
		j += n
	}
	return len(text)
}

// spmEncode is llm_tokenizer_spm_session::tokenize on escaped text: merge the
// adjacent pair whose concatenation is the best-scoring token until none is
// left, then emit each symbol as its token or as byte tokens.
func (t *Tokenizer) spmEncode(st *encodeState, text string, out []int32) []int32 {
	syms := st.splitSymbols(text)
	h := st.spmHeap[:0]
	tryAdd := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		l, r := syms[left], syms[right]
		id, ok := t.ids[text[l.start:l.start+l.n+r.n]]
		if !ok {
			return
		}
		h = spmPush(h, spmBigram{left: left, right: right, score: t.scores[id], size: l.n + r.n})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		tryAdd(i-1, i)
	}
	for len(h) > 0 {
		var b spmBigram
		b, h = spmPop(h)
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue // stale: one side already merged
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		tryAdd(l.prev, b.left)
		tryAdd(b.left, l.next)
	}
	st.spmHeap = h
	for i := int32(0); len(syms) > 0 && i != -1; i = syms[i].next {
		s := syms[i]
		piece := text[s.start : s.start+s.n]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		// Byte fallback. Every merged symbol is a token, so only single
		// characters get here (llama.cpp's rev_merge path never fires).
		for j := 0; j < len(piece); j++ {
			if id := t.byteIDs[piece[j]]; id >= 0 {
				out = append(out, id)
			} else if t.unk >= 0 {
				out = append(out, t.unk) // llama.cpp throws: no byte token
			}
		}
	}
	return out
}

func spmPush(h []spmBigram, b spmBigram) []spmBigram {
	h = append(h, b)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !spmBefore(&h[i], &h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func spmPop(h []spmBigram) (spmBigram, []spmBigram) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && spmBefore(&h[c+1], &h[c]) {
			c++
		}
		if !spmBefore(&h[c], &h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	return top, h
}

// bpeBigram is a candidate merge with its rank (llm_bigram_bpe).
type bpeBigram struct {
	left, right int32
	rank        int32
	size        int32
}

// bpeBefore orders the BPE queue: lowest rank first, then leftmost.
func bpeBefore(a, b *bpeBigram) bool {
	return a.rank < b.rank || a.rank == b.rank && a.left < b.left
}

// bpeEncode is llm_tokenizer_bpe_session::tokenize: pre-tokenize into words,
// map each word's bytes to GPT-2 characters, merge by rank, emit tokens.
func (t *Tokenizer) bpeEncode(st *encodeState, text string, out []int32) []int32 {
	lens := st.split.split(t.steps, text)
	cpts := st.split.cpts
	pos := 0
	var u [4]byte
	for _, n := range lens {
		w := st.buf[:0]
		for _, c := range cpts[pos : pos+n] {
			for _, b := range appendCpt(u[:0], c) {
				w = append(w, byteToUTF8[b]...)
			}
		}
		pos += n
		st.buf = w
		out = t.bpeWord(st, string(w), out)
	}
	return out
}

func (t *Tokenizer) bpeWord(st *encodeState, word string, out []int32) []int32 {
	if t.ignoreMerges {
		if id, ok := t.ids[word]; ok {
			return append(out, id)
		}
	}
	syms := st.splitSymbols(word)
	h := st.bpeHeap[:0]
	tryAdd := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		l, r := syms[left], syms[right]
		rank, ok := t.ranks[mergeKey{word[l.start : l.start+l.n], word[r.start : r.start+r.n]}]
		if !ok {
			return
		}
		h = bpePush(h, bpeBigram{left: left, right: right, rank: rank, size: l.n + r.n})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		tryAdd(i-1, i)
	}
	for len(h) > 0 {
		var b bpeBigram
		b, h = bpePop(h)
		l, r := &syms[b.left], &syms[b.right]
		// Sizes only grow, so unchanged sizes mean unchanged text
		// (llama.cpp compares the strings).
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		tryAdd(l.prev, b.left)
		tryAdd(b.left, l.next)
	}
	st.bpeHeap = h
	for _, s := range syms {
		if s.n == 0 {
			continue
		}
		piece := word[s.start : s.start+s.n]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		// No token: llama.cpp tries each byte of the encoded text alone
		// and drops those that are not tokens either.
		for j := 0; j < len(piece); j++ {
			if id, ok := t.ids[piece[j:j+1]]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}

func bpePush(h []bpeBigram, b bpeBigram) []bpeBigram {
	h = append(h, b)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !bpeBefore(&h[i], &h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func bpePop(h []bpeBigram) (bpeBigram, []bpeBigram) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && bpeBefore(&h[c+1], &h[c]) {
			c++
		}
		if !bpeBefore(&h[c], &h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	return top, h
}
