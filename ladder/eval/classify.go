package eval

import "math"

// chunk is how many examples are scored per LogProbs call: enough for the
// prefix sharing inside an example, small enough to report progress.
const chunk = 64

// runClassify scores every label word as the continuation of the prompt
// and predicts the most likely one (sum of token log-probabilities, not
// normalised: label words are compared as the model's answers, as
// finetune's classification loss trains them).
func (s *Set) runClassify(lm *LM, r *Result) error {
	words := s.labelWords()
	f, err := classifyFormatter(lm.tok, words, s.opts.Template)
	if err != nil {
		return err
	}
	items := s.records
	correct := 0
	r.Chance = 1 / float64(len(words))
	labels := make([]int, len(items))
	for lo := 0; lo < len(items); lo += chunk {
		hi := min(lo+chunk, len(items))
		var spans []Span
		for k := lo; k < hi; k++ {
			label, sp, trunc, err := classifySpans(f, &items[k], lm.NCtx())
			if err != nil {
				return err
			}
			labels[k] = label
			spans = append(spans, sp...)
			if trunc {
				r.Truncated++
			}
		}
		lps, err := lm.LogProbs(spans)
		if err != nil {
			return err
		}
		for k := lo; k < hi; k++ {
			scores := make([]float64, len(words))
			for j := range words {
				scores[j] = sum(lps[(k-lo)*len(words)+j])
			}
			pred, gold := argmax64(scores), labels[k]
			if pred == gold {
				correct++
			}
			r.Examples = append(r.Examples, Prediction{
				Index: k, ID: items[k].Source, Input: items[k].Text, Gold: words[gold], Pred: words[pred],
				Correct: pred == gold, Scores: scores,
			})
		}
		s.progress(hi, len(items))
	}
	r.finish(correct, len(items))
	return nil
}

func sum(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	return s
}

func argmax64(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] || math.IsNaN(v[best]) {
			best = i
		}
	}
	return best
}
