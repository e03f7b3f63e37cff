package engine

import (
	"fmt"
	"math"
)

// PerplexityOptions are llama-perplexity's settings.
type PerplexityOptions struct {
	NCtx    int   // tokens per chunk (-c); required
	NBatch  int   // tokens per Decode call (-b); <= 0 or > NCtx means NCtx
	NChunks int   // chunks to score; <= 0 means all that fit
	AddBOS  bool  // the vocabulary adds BOS: the first token of every chunk becomes BOS
	BOS     int32 // the BOS id (when AddBOS)
	// Progress, if set, is called after each chunk with its 1-based index
	// and the running perplexity (what llama-perplexity prints as [i]ppl,).
	Progress func(chunk int, ppl float64)
}

// PerplexityResult is what llama-perplexity reports.
type PerplexityResult struct {
	PPL     float64   // exp(mean NLL)
	Stderr  float64   // llama.cpp's uncertainty of PPL
	NChunks int       // chunks scored
	Count   int       // tokens scored
	NLL     float64   // mean negative log-likelihood (nats)
	Running []float64 // running PPL after each chunk
}

// Perplexity scores tokens (the whole text, tokenized with BOS when the
// vocabulary adds one) with llama.cpp's llama-perplexity protocol
// (examples/perplexity/perplexity.cpp, perplexity()):
//   - the text is cut into chunks of NCtx tokens (the remainder is dropped),
//     each evaluated from an empty cache;
//   - when the vocabulary adds BOS, each chunk's first token is replaced by BOS;
//   - only the second half is scored: the logits at positions first-1..NCtx-2
//     (first = NCtx/2) predict tokens first..NCtx-1, so the first half is
//     context only;
//   - PPL = exp(mean NLL) and its stderr from the NLL variance:
//     sqrt((E[nll²] - E[nll]²) / (count-1)) · PPL.
//
// The scored range follows llama.cpp exactly: process_logits runs over
// n_ctx-1-first logits starting at row `first`, predicting tokens first+1...
func Perplexity(d Decoder, tokens []int32, o PerplexityOptions) (PerplexityResult, error) {
	var r PerplexityResult
	nCtx := o.NCtx
	if nCtx < 2 {
		return r, fmt.Errorf("perplexity: context size %d too small", nCtx)
	}
	if nCtx > d.NCtx() {
		return r, fmt.Errorf("perplexity: context size %d exceeds the decoder's %d", nCtx, d.NCtx())
	}
	if len(tokens) < 2*nCtx {
		return r, fmt.Errorf("perplexity: you need at least %d tokens to evaluate perplexity with a context of %d; the text has %d tokens", 2*nCtx, nCtx, len(tokens))
	}
	nChunk := len(tokens) / nCtx
	if o.NChunks > 0 {
		nChunk = min(nChunk, o.NChunks)
	}
	nBatch := o.NBatch
	if nBatch <= 0 || nBatch > nCtx {
		nBatch = nCtx
	}
	nVocab := d.NVocab()
	first := nCtx / 2
	logits := make([]float32, nCtx*nVocab)
	chunk := make([]int32, nCtx)
	var nll, nll2 float64
	count := 0
	for i := 0; i < nChunk; i++ {
		copy(chunk, tokens[i*nCtx:(i+1)*nCtx])
		if o.AddBOS {
			chunk[0] = o.BOS
		}
		d.Reset()
		for b := 0; b < nCtx; b += nBatch {
			e := min(b+nBatch, nCtx)
			if err := d.Decode(chunk[b:e], true, logits[b*nVocab:e*nVocab]); err != nil {
				return r, fmt.Errorf("perplexity: chunk %d: %w", i+1, err)
			}
		}
		// Scoring uses the original tokens (llama.cpp restores the one it
		// replaced by BOS before scoring; it is never a target anyway).
		for j := first; j < nCtx-1; j++ {
			v := -logSoftmaxAt(logits[j*nVocab:(j+1)*nVocab], tokens[i*nCtx+j+1])
			nll += v
			nll2 += v * v
		}
		count += nCtx - 1 - first
		ppl := math.Exp(nll / float64(count))
		r.Running = append(r.Running, ppl)
		if o.Progress != nil {
			o.Progress(i+1, ppl)
		}
	}
	r.NChunks, r.Count = nChunk, count
	mean := nll / float64(count)
	r.NLL, r.PPL = mean, math.Exp(mean)
	if v := nll2/float64(count) - mean*mean; v > 0 && count > 1 {
		r.Stderr = math.Sqrt(v/float64(count-1)) * r.PPL
	}
	return r, nil
}

// logSoftmaxAt is log softmax(logits)[tok], computed as llama.cpp's
// log_softmax: float max, double sum of float exps.
func logSoftmaxAt(logits []float32, tok int32) float64 {
	maxv := logits[0]
	for _, v := range logits[1:] {
		maxv = max(maxv, v)
	}
	var sum float64
	for _, v := range logits {
		sum += float64(float32(math.Exp(float64(v - maxv))))
	}
	return float64(logits[tok]-maxv) - math.Log(sum)
}
