package engine

import "fmt"

// GenerateOptions control Generate.
type GenerateOptions struct {
	NPredict int // tokens to generate; < 0: until end of generation or a full context
	NBatch   int // prompt tokens per Decode call (<= 0: 512, llama.cpp's default)
	Sampler  SamplerOptions
	// IsEOG says whether a token ends generation (the tokenizer's IsEOG);
	// nil never stops early.
	IsEOG func(id int32) bool
}

// Generate feeds prompt to d (appending to the sequence it holds) and then
// samples up to NPredict tokens, calling emit with each new token as soon as
// it is chosen. It stops at an end-of-generation token (not emitted), when
// the context is full, or when emit returns false. It returns the generated
// tokens.
func Generate(d Decoder, prompt []int32, o GenerateOptions, emit func(id int32) bool) ([]int32, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("generate: empty prompt (nothing to condition on)")
	}
	if d.Len()+len(prompt) > d.NCtx() {
		return nil, fmt.Errorf("generate: prompt of %d tokens does not fit in the context of %d (raise -c)", d.Len()+len(prompt), d.NCtx())
	}
	nBatch := o.NBatch
	if nBatch <= 0 {
		nBatch = 512
	}
	logits := make([]float32, d.NVocab())
	for b := 0; b < len(prompt); b += nBatch {
		if err := d.Decode(prompt[b:min(b+nBatch, len(prompt))], false, logits); err != nil {
			return nil, err
		}
	}
	s := NewSampler(o.Sampler)
	var out []int32
	for o.NPredict < 0 || len(out) < o.NPredict {
		id := s.Sample(logits)
		if o.IsEOG != nil && o.IsEOG(id) {
			break
		}
		out = append(out, id)
		if emit != nil && !emit(id) {
			break
		}
		if len(out) == o.NPredict || d.Len() >= d.NCtx() {
			break
		}
		if err := d.Decode([]int32{id}, false, logits); err != nil {
			return out, err
		}
	}
	return out, nil
}
