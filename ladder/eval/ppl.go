package eval

import (
	"io"
	"math"

	"ladder-engine/engine"
)

func (s *Set) loadText() error {
	rc, err := openData(s.opts.Data)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	s.text = string(b)
	return nil
}

// runPPL is the perplexity command's protocol (engine.Perplexity, after
// llama-perplexity): chunks of Ctx tokens (default: the LM's context), BOS
// first when the vocabulary adds one, second half of each chunk scored.
// The text is tokenized as llama-perplexity does: special tokens added,
// not parsed. Limit, when set, caps the number of chunks.
func (s *Set) runPPL(lm *LM, r *Result) error {
	tokens := lm.tok.Encode(s.text, true, false)
	nCtx := s.opts.Ctx
	if nCtx <= 0 {
		nCtx = lm.NCtx()
	}
	o := engine.PerplexityOptions{NCtx: nCtx, NChunks: s.opts.Limit, AddBOS: lm.tok.AddBOS(), BOS: lm.tok.BOS()}
	if s.opts.Progress != nil {
		o.Progress = func(chunk int, _ float64) { s.opts.Progress(chunk, len(tokens)/nCtx) }
	}
	lm.forget() // Perplexity resets the decoder for every chunk
	res, err := engine.Perplexity(lm.dec, tokens, o)
	lm.forget()
	if err != nil {
		return err
	}
	lm.Tokens += int64(res.NChunks * nCtx)
	r.N = res.Count
	r.PPL, r.PPLStderr = res.PPL, res.Stderr
	// The interval of exp(mean NLL) from the NLL's standard error
	// (llama.cpp's stderr is that error times PPL).
	se := res.Stderr / res.PPL
	r.CILow, r.CIHigh = res.PPL*math.Exp(-z95*se), res.PPL*math.Exp(z95*se)
	return nil
}
