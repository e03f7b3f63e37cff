package eval

import (
	"fmt"
	"math"
	"slices"

	"ladder-engine/engine"
)

// The models are engine.Decoders: the plain model (engine.ModelDecoder,
// wrapped by NewEngineLM) and a model with a ladder adapter (backbone and
// side caches kept together) both implement it, so every task runs on
// either through LM.

// Truncater is implemented by decoders that can forget the end of their
// sequence, keeping positions 0..n-1 (llama_kv_cache_seq_rm(ctx, 0, n, -1));
// a ladder adapter's decoder must truncate its side caches too. LM then
// reuses the prefix a request shares with the previous one; without it, a
// request that does not extend the cached sequence starts over (Reset).
type Truncater interface {
	Truncate(n int)
}

// Tokenizer is what the tasks need to turn text into tokens and back;
// *tokenizer.Tokenizer implements it.
type Tokenizer interface {
	Encode(text string, addSpecial, parseSpecial bool) []int32
	Decode(ids []int32) string
	IsEOG(id int32) bool
	BOS() int32
	AddBOS() bool
}

// Span asks for the log-probability of each token of Tokens[From:] given
// every token before it. From >= 1: the first token has no context.
type Span struct {
	Tokens []int32
	From   int
}

// LM scores and generates with an engine.Decoder, reusing its cache
// between requests: a request that shares a prefix with what the cache
// holds only runs its new tokens, and the logits after the cached sequence
// are kept too. So label-word classification with single-token label words
// costs one forward of the prompt for all labels, and a few-shot prefix
// shared by every question is run once (with a Truncater).
type LM struct {
	dec    engine.Decoder
	trunc  Truncater // nil: dec cannot truncate
	tok    Tokenizer
	nVocab int

	cached    []int32   // the tokens the decoder holds, position by position
	last      []float32 // logits after cached[len(cached)-1], when lastValid
	lastValid bool
	logits    []float32 // scratch for the rows returned by run

	// Tokens counts the tokens run through the decoder, for tokens/s.
	Tokens int64
}

// NewLM wraps a decoder and its tokenizer; it takes over the decoder's
// sequence (resetting it).
func NewLM(dec engine.Decoder, tok Tokenizer) *LM {
	dec.Reset()
	lm := &LM{dec: dec, tok: tok, nVocab: dec.NVocab(), last: make([]float32, dec.NVocab())}
	lm.trunc, _ = dec.(Truncater)
	return lm
}

// engineDecoder adds truncation to the plain model's decoder.
type engineDecoder struct{ *engine.ModelDecoder }

func (d engineDecoder) Truncate(n int) { d.KV.Truncate(n) }

// NewEngineLM is an LM over the plain model m with a cache of nCtx
// positions (<= 0: the training context). Free releases the cache.
func NewEngineLM(m *engine.Model, nCtx int) *LM {
	return NewLM(engineDecoder{m.NewDecoder(nCtx)}, m.Tok)
}

// Free releases the decoder's memory when it can (engine.ModelDecoder).
func (lm *LM) Free() {
	if f, ok := lm.dec.(interface{ Free() }); ok {
		f.Free()
	}
}

// Tokenizer returns the tokenizer the LM was made with.
func (lm *LM) Tokenizer() Tokenizer { return lm.tok }

// NCtx is the longest sequence the LM can score or generate.
func (lm *LM) NCtx() int { return lm.dec.NCtx() }

// forget empties the cache, after an error left it in an unknown state.
func (lm *LM) forget() {
	lm.dec.Reset()
	lm.cached = lm.cached[:0]
	lm.lastValid = false
}

// cut makes the decoder hold only cached[:n] (or nothing, when it cannot
// truncate) and returns how many positions it kept.
func (lm *LM) cut(n int) int {
	if n < len(lm.cached) {
		if lm.trunc != nil {
			lm.trunc.Truncate(n)
		} else {
			lm.dec.Reset()
			n = 0
		}
		lm.cached = lm.cached[:n]
		lm.lastValid = false
	}
	return n
}

// run makes the decoder hold seq (len(seq) >= 1) and returns the logit
// rows after positions first..len(seq)-1, (len(seq)-first, nVocab). Only
// what the decoder does not already hold is run; the row after the cached
// sequence is reused when it is the first one asked for.
func (lm *LM) run(seq []int32, first int) ([]float32, error) {
	nv := lm.nVocab
	nOut := len(seq) - first
	if cap(lm.logits) < nOut*nv {
		lm.logits = make([]float32, nOut*nv)
	}
	out := lm.logits[:nOut*nv]
	keep := commonPrefix(lm.cached, seq)
	reuse := lm.lastValid && keep == len(lm.cached) && keep == first+1
	if !reuse {
		keep = lm.cut(min(keep, first))
	}
	todo := seq[keep:]
	lm.cached = append(lm.cached, todo...)
	lm.lastValid = false
	lm.Tokens += int64(len(todo))
	var err error
	switch {
	case reuse:
		copy(out, lm.last)
		if len(todo) > 0 {
			err = lm.dec.Decode(todo, true, out[nv:])
		}
	case first == keep:
		err = lm.dec.Decode(todo, true, out)
	default:
		// Context first, asking only for its last row (the LM head on every
		// context token would be wasted), then the rest with all rows.
		ctxLen := first - keep + 1
		err = lm.dec.Decode(todo[:ctxLen], false, out[:nv])
		if err == nil && ctxLen < len(todo) {
			err = lm.dec.Decode(todo[ctxLen:], true, out[nv:])
		}
	}
	if err != nil {
		lm.forget()
		return nil, err
	}
	copy(lm.last, out[(nOut-1)*nv:])
	lm.lastValid = true
	return out, nil
}

// LogProbs returns, for each span, the natural-log probability of every
// token of Tokens[From:] (len(Tokens)-From values). Spans are run in
// lexicographic order, which maximises prefix sharing, so callers may pass
// them in any order.
func (lm *LM) LogProbs(spans []Span) ([][]float32, error) {
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return slices.Compare(spans[a].Tokens, spans[b].Tokens) })
	out := make([][]float32, len(spans))
	for _, i := range order {
		s := spans[i]
		if s.From < 1 || s.From > len(s.Tokens) {
			return nil, fmt.Errorf("eval: span %d: from %d outside 1..%d", i, s.From, len(s.Tokens))
		}
		// The last token is never run: nCtx+1 tokens fit.
		if len(s.Tokens)-1 > lm.dec.NCtx() {
			return nil, fmt.Errorf("eval: span %d: %d tokens exceed the context of %d (+1)", i, len(s.Tokens), lm.dec.NCtx())
		}
		lp := make([]float32, len(s.Tokens)-s.From)
		out[i] = lp
		if len(lp) == 0 {
			continue
		}
		// The last token predicts nothing we score, so it is never run.
		logits, err := lm.run(s.Tokens[:len(s.Tokens)-1], s.From-1)
		if err != nil {
			return nil, fmt.Errorf("eval: span %d: %w", i, err)
		}
		for j := range lp {
			lp[j] = float32(logSoftmaxAt(logits[j*lm.nVocab:(j+1)*lm.nVocab], s.Tokens[s.From+j]))
		}
	}
	return out, nil
}

// Greedy generates up to maxNew tokens after prompt, taking the most likely
// token each step (temperature 0), and stops early at an end-of-generation
// token (not returned), when stop(generated) says so, or at the end of the
// context.
func (lm *LM) Greedy(prompt []int32, maxNew int, stop func(generated []int32) bool) ([]int32, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("eval: empty prompt")
	}
	if len(prompt) > lm.dec.NCtx() {
		return nil, fmt.Errorf("eval: prompt of %d tokens exceeds the context of %d", len(prompt), lm.dec.NCtx())
	}
	// The k-th new token needs a run over prompt+k-1 tokens.
	maxNew = min(maxNew, lm.dec.NCtx()-len(prompt)+1)
	seq := slices.Clone(prompt)
	var gen []int32
	for len(gen) < maxNew {
		row, err := lm.run(seq, len(seq)-1)
		if err != nil {
			return gen, err
		}
		next := engine.Argmax(row)
		if lm.tok != nil && lm.tok.IsEOG(next) {
			break
		}
		gen = append(gen, next)
		seq = append(seq, next)
		if stop != nil && stop(gen) {
			break
		}
	}
	return gen, nil
}

func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// logSoftmaxAt returns log softmax(row)[id] in float64, so that the sum
// over a continuation's tokens keeps its precision.
func logSoftmaxAt(row []float32, id int32) float64 {
	m := row[0]
	for _, v := range row[1:] {
		m = max(m, v)
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v - m))
	}
	return float64(row[id]-m) - math.Log(s)
}
