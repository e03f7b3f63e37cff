package tokenizer

// Detokenize is llama_detokenize(ids, removeSpecial, unparseSpecial): the
// pieces concatenated, with the SPM space prefix removed from the first
// piece, BOS/EOS dropped when removeSpecial, control and unknown tokens
// rendered only when unparseSpecial, and the clean_up_tokenization_spaces
// pass for the vocabularies llama.cpp applies it to.
func (t *Tokenizer) Detokenize(ids []int32, removeSpecial, unparseSpecial bool) string {
	removeSpace := t.addSpacePrefix
	if removeSpecial && t.addBOS && len(ids) > 0 && ids[0] == t.bos {
		removeSpace = false
		ids = ids[1:]
	}
	if removeSpecial && t.addEOS && len(ids) > 0 && ids[len(ids)-1] == t.eos {
		ids = ids[:len(ids)-1]
	}
	var text []byte
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.pieces) {
			removeSpace = false
			continue
		}
		p := t.pieces[id]
		if !unparseSpecial && t.attrs[id]&(attrUnknown|attrControl) != 0 {
			p = ""
		}
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		text = append(text, p...)
	}
	if t.cleanSpaces {
		text = cleanSpaces(text)
	}
	return string(text)
}

// cleanSpaces is llama.cpp's three in-place passes, kept byte for byte
// (including how each pass reads bytes it has already rewritten).
func cleanSpaces(text []byte) []byte {
	// " ?", " !", " .", " ,": drop the space.
	n := len(text)
	total := min(n, 1)
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			total--
		}
		text[total] = x
		total++
	}
	// " ' ": drop both spaces around a lone apostrophe.
	n = total
	total = min(n, 1)
	for i := 1; i < n; i++ {
		x := text[i]
		if x == '\'' && i+1 < n && text[i-1] == ' ' && text[i+1] == ' ' {
			total--
			i++
			text[i] = 0
		}
		text[total] = x
		total++
	}
	// " 's", " 'm", " 're", " 've": drop the space ("'t", "'d", "'ll" keep it).
	n = total
	total = min(n, 1)
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < n {
			x1 := text[i+1]
			switch {
			case x1 == 's' || x1 == 'm':
				total--
			case i+2 < n && (x1 == 'r' || x1 == 'v') && text[i+2] == 'e':
				total--
			}
		}
		text[total] = x
		total++
	}
	return text[:total]
}
