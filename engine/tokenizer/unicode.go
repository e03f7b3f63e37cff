package tokenizer

import (
	"sync"
	"unicode"
)

// Codepoint classes, as llama.cpp's unicode_cpt_flags (src/unicode.h). Every
// codepoint has exactly one category bit; flagWhitespace is added on top for
// the White_Space list llama.cpp uses. A zero value means "outside the text"
// (llama.cpp's flags{} for positions past the chunk).
const (
	flagUndefined  uint16 = 0x0001 // unassigned (Cn) or beyond U+10FFFF
	flagNumber     uint16 = 0x0002 // \p{N}
	flagLetter     uint16 = 0x0004 // \p{L}
	flagSeparator  uint16 = 0x0008 // \p{Z}
	flagMark       uint16 = 0x0010 // \p{M}
	flagPunct      uint16 = 0x0020 // \p{P}
	flagSymbol     uint16 = 0x0040 // \p{S}
	flagControl    uint16 = 0x0080 // \p{C} except Cn
	flagWhitespace uint16 = 0x0100
)

const maxCodepoint = 0x110000

// isWhitespaceCpt is llama.cpp's unicode_set_whitespace: the Unicode
// White_Space property (PropList.txt), nothing else.
func isWhitespaceCpt(c rune) bool {
	switch {
	case c >= 0x09 && c <= 0x0D, c == 0x20:
		return true
	case c < 0x85:
		return false
	case c == 0x85, c == 0xA0, c == 0x1680, c >= 0x2000 && c <= 0x200A,
		c == 0x2028, c == 0x2029, c == 0x202F, c == 0x205F, c == 0x3000:
		return true
	}
	return false
}

// categoryFlag computes the category bit from Go's Unicode tables (15.0),
// patched with the few codepoints Unicode 15.1 added, because llama.cpp's
// unicode-data.cpp at c392e509 was generated from Unicode 15.1.
func categoryFlag(c rune) uint16 {
	switch {
	case c < 0 || c >= maxCodepoint:
		return flagUndefined
	case c >= 0x2EBF0 && c <= 0x2EE5D: // CJK Extension I (15.1), Lo
		return flagLetter
	case c >= 0x2FFC && c <= 0x2FFF, c == 0x31EF: // ideographic description characters (15.1), So
		return flagSymbol
	case unicode.IsLetter(c):
		return flagLetter
	case unicode.IsMark(c):
		return flagMark
	case unicode.IsNumber(c):
		return flagNumber
	case unicode.IsPunct(c):
		return flagPunct
	case unicode.IsSymbol(c):
		return flagSymbol
	case unicode.In(c, unicode.Zs, unicode.Zl, unicode.Zp):
		return flagSeparator
	case unicode.In(c, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs):
		return flagControl
	}
	return flagUndefined
}

var (
	bmpFlagsOnce sync.Once
	bmpFlags     []uint16 // flags of U+0000..U+FFFF, built on first use
)

// cptFlags returns the flags of one codepoint (never zero).
func cptFlags(c rune) uint16 {
	if c >= 0 && c < 0x10000 {
		bmpFlagsOnce.Do(func() {
			t := make([]uint16, 0x10000)
			for i := range t {
				t[i] = categoryFlag(rune(i))
				if isWhitespaceCpt(rune(i)) {
					t[i] |= flagWhitespace
				}
			}
			bmpFlags = t
		})
		return bmpFlags[c]
	}
	return categoryFlag(c)
}

// decodeCpts splits text into codepoints the way llama.cpp's
// unicode_cpts_from_utf8 does: lead bytes decide the length, continuation
// bytes are checked, but overlong forms, surrogates and values up to
// 0x1FFFFF are accepted as they are. An invalid sequence yields U+FFFD and
// skips one byte. dst is reused.
func decodeCpts(dst []rune, text string) []rune {
	dst = dst[:0]
	n := len(text)
	for i := 0; i < n; {
		b0 := text[i]
		switch {
		case b0 < 0x80:
			dst = append(dst, rune(b0))
			i++
			continue
		case b0&0x40 == 0: // stray continuation byte
		case b0&0x20 == 0:
			if i+1 < n && text[i+1]&0xC0 == 0x80 {
				dst = append(dst, rune(b0&0x1F)<<6|rune(text[i+1]&0x3F))
				i += 2
				continue
			}
		case b0&0x10 == 0:
			if i+2 < n && text[i+1]&0xC0 == 0x80 && text[i+2]&0xC0 == 0x80 {
				dst = append(dst, rune(b0&0x0F)<<12|rune(text[i+1]&0x3F)<<6|rune(text[i+2]&0x3F))
				i += 3
				continue
			}
		case b0&0x08 == 0:
			if i+3 < n && text[i+1]&0xC0 == 0x80 && text[i+2]&0xC0 == 0x80 && text[i+3]&0xC0 == 0x80 {
				dst = append(dst, rune(b0&0x07)<<18|rune(text[i+1]&0x3F)<<12|rune(text[i+2]&0x3F)<<6|rune(text[i+3]&0x3F))
				i += 4
				continue
			}
		}
		dst = append(dst, 0xFFFD)
		i++
	}
	return dst
}

// appendCpt appends the UTF-8 form of c as llama.cpp's unicode_cpt_to_utf8
// writes it (no surrogate check). llama.cpp throws for c > 0x10FFFF; we write
// the 4-byte form, which gives back the bytes decodeCpts read.
func appendCpt(dst []byte, c rune) []byte {
	switch {
	case c < 0x80:
		return append(dst, byte(c))
	case c < 0x800:
		return append(dst, 0xC0|byte(c>>6&0x1F), 0x80|byte(c&0x3F))
	case c < 0x10000:
		return append(dst, 0xE0|byte(c>>12&0x0F), 0x80|byte(c>>6&0x3F), 0x80|byte(c&0x3F))
	}
	return append(dst, 0xF0|byte(c>>18&0x07), 0x80|byte(c>>12&0x3F), 0x80|byte(c>>6&0x3F), 0x80|byte(c&0x3F))
}

// utf8Len is llama.cpp's unicode_len_utf8: the sequence length a lead byte
// announces (1 for continuation bytes).
func utf8Len(b byte) int {
	return [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[b>>4]
}

// GPT-2's byte-level alphabet: printable Latin-1 bytes map to themselves,
// the other 68 bytes to U+0100.. in byte order.
var (
	byteToRune [256]rune
	byteToUTF8 [256]string
	runeToByte = map[rune]byte{}
)

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !(b >= 0x21 && b <= 0x7E || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF) {
			r = 256 + n
			n++
		}
		byteToRune[b] = r
		byteToUTF8[b] = string(r)
		runeToByte[r] = byte(b)
	}
}
