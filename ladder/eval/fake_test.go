package eval

import (
	"fmt"
	"math"
	"strings"
)

// Test doubles: a byte-level tokenizer and a decoder whose next-token
// logits are any function of the whole prefix, so results can be checked
// against a direct computation with no cache at all.

const (
	fakeBOS   = 1
	fakeEOS   = 2
	fakeVocab = 256 + 3
)

type byteTok struct{}

func (byteTok) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	var ids []int32
	if addSpecial {
		ids = append(ids, fakeBOS)
	}
	for _, b := range []byte(text) {
		ids = append(ids, int32(b)+3)
	}
	return ids
}

func (byteTok) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if id >= 3 {
			b.WriteByte(byte(id - 3))
		}
	}
	return b.String()
}

func (byteTok) IsEOG(id int32) bool { return id == fakeEOS }
func (byteTok) BOS() int32          { return fakeBOS }
func (byteTok) AddBOS() bool        { return true }

// fakeDecoder implements engine.Decoder (and Truncater when canTruncate).
type fakeDecoder struct {
	nCtx   int
	seq    []int32
	logits func(prefix []int32, out []float32) // next-token logits after prefix
	ran    int                                 // tokens decoded, to see the cache at work
}

func (d *fakeDecoder) NVocab() int { return fakeVocab }
func (d *fakeDecoder) NCtx() int   { return d.nCtx }
func (d *fakeDecoder) Len() int    { return len(d.seq) }
func (d *fakeDecoder) Reset()      { d.seq = d.seq[:0] }

func (d *fakeDecoder) Decode(tokens []int32, all bool, logits []float32) error {
	if len(d.seq)+len(tokens) > d.nCtx {
		return fmt.Errorf("fake: context full")
	}
	for i, t := range tokens {
		d.seq = append(d.seq, t)
		d.ran++
		if all {
			d.logits(d.seq, logits[i*fakeVocab:(i+1)*fakeVocab])
		} else if i == len(tokens)-1 {
			d.logits(d.seq, logits[:fakeVocab])
		}
	}
	return nil
}

type truncFake struct{ *fakeDecoder }

func (d truncFake) Truncate(n int) { d.seq = d.seq[:n] }

// hashLogits makes logits that depend on every token of the prefix and on
// its order, as a real causal model's do.
func hashLogits(prefix []int32, out []float32) {
	h := uint64(1469598103934665603)
	for _, t := range prefix {
		h = (h ^ uint64(t)) * 1099511628211
	}
	for v := range out {
		out[v] = float32(3 * math.Sin(float64(h%1000003)*0.001*float64(v+1)))
	}
}

// directLogProb is log p(seq[i] | seq[:i]) computed from scratch.
func directLogProb(seq []int32, i int) float64 {
	row := make([]float32, fakeVocab)
	hashLogits(seq[:i], row)
	var m float64 = math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	return float64(row[seq[i]]) - m - math.Log(s)
}

// scriptLogits makes a model that, in the text after the last marker,
// continues the scripted answer answerFor(text before the marker) with
// logit 10 on the script's next byte (0 elsewhere), and prefers EOS (logit
// 10) once the text has left the script or before any marker.
func scriptLogits(marker string, answerFor func(text string) string) func(prefix []int32, out []float32) {
	return func(prefix []int32, out []float32) {
		for i := range out {
			out[i] = 0
		}
		text := byteTok{}.Decode(prefix)
		i := strings.LastIndex(text, marker)
		if i < 0 {
			out[fakeEOS] = 10
			return
		}
		script := answerFor(text[:i])
		done := text[i+len(marker):]
		if strings.HasPrefix(script, done) && len(done) < len(script) {
			out[int32(script[len(done)])+3] = 10
			return
		}
		out[fakeEOS] = 10
	}
}
