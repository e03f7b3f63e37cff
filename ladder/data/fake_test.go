package data

import (
	"sort"
	"strings"
)

// The fake tokenizer used by the tests: one token per byte (id 10+byte),
// special strings as single tokens when parseSpecial is set (ids 300+), and
// one merge, "ab" → 400, so that a token can straddle a prompt/completion
// boundary as real BPE/SPM tokens do.
const (
	fakeBOS   = 1
	fakeEOS   = 2
	fakeMerge = 400
)

var fakeSpecials = []string{"<|im_start|>", "<|im_end|>", "</s>", "<s>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"}

func fakeEncode(text string, addSpecial, parseSpecial bool) []int32 {
	var out []int32
	if addSpecial {
		out = append(out, fakeBOS)
	}
	for i := 0; i < len(text); {
		if parseSpecial {
			matched := false
			for k, s := range fakeSpecials {
				if strings.HasPrefix(text[i:], s) {
					out = append(out, int32(300+k))
					i += len(s)
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		}
		if strings.HasPrefix(text[i:], "ab") {
			out = append(out, fakeMerge)
			i += 2
			continue
		}
		out = append(out, int32(10+int(text[i])))
		i++
	}
	return out
}

// fakeDecode inverts fakeEncode (BOS/EOS as <BOS>/<EOS>).
func fakeDecode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		switch {
		case id == fakeBOS:
			b.WriteString("<BOS>")
		case id == fakeEOS:
			b.WriteString("<EOS>")
		case id == fakeMerge:
			b.WriteString("ab")
		case id >= 300:
			b.WriteString(fakeSpecials[id-300])
		default:
			b.WriteByte(byte(id - 10))
		}
	}
	return b.String()
}

func fakeEncoder() Encoder {
	return Encoder{Encode: fakeEncode, BOS: fakeBOS, EOS: fakeEOS, AddBOS: true}
}

// trainedText returns the decoded runs of masked tokens of an example.
func trainedText(ex Example) []string {
	var runs []string
	var cur []int32
	for i, id := range ex.Tokens {
		if ex.Mask[i] {
			cur = append(cur, id)
			continue
		}
		if len(cur) > 0 {
			runs = append(runs, fakeDecode(cur))
			cur = nil
		}
	}
	if len(cur) > 0 {
		runs = append(runs, fakeDecode(cur))
	}
	return runs
}

func sortedCopy(x []int) []int {
	y := append([]int(nil), x...)
	sort.Ints(y)
	return y
}
