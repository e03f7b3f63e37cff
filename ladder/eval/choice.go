package eval

import (
	"path/filepath"
	"strings"

	"ladder-engine/ladder/data"
)

// ReadChoiceFile reads a multiple-choice file: MMLU CSV when the name ends
// in .csv (before any .gz/.zst), else ARC JSONL.
func ReadChoiceFile(path string) ([]ChoiceItem, error) {
	rc, err := openData(path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	base := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(filepath.Base(path)), ".gz"), ".zst")
	if strings.HasSuffix(base, ".csv") {
		return ReadMMLU(rc, path)
	}
	return ReadARC(rc, path)
}

// choicePrompt is lm-evaluation-harness's ARC prompt; each choice is
// scored as " "+text after it. MMLU uses the same form so that both read
// the answer's text rather than a letter a small model cannot map.
func choicePrompt(q string) string { return data.QAPrompt(q) }

// runChoice picks the choice with the highest length-normalised
// log-likelihood: sum log p over the choice's tokens divided by its length
// in bytes (lm-evaluation-harness acc_norm; bytes rather than tokens so the
// score does not depend on the tokenizer). The unnormalised pick is kept
// as RawAcc.
func (s *Set) runChoice(lm *LM, r *Result) error {
	items := s.choice
	correct, rawCorrect := 0, 0
	for lo := 0; lo < len(items); lo += chunk {
		hi := min(lo+chunk, len(items))
		var spans []Span
		for _, it := range items[lo:hi] {
			trunc := false
			for _, c := range it.Choices {
				sp, t := continuation(lm.tok, choicePrompt(it.Question), " "+c, lm.NCtx())
				spans = append(spans, sp)
				trunc = trunc || t
			}
			if trunc {
				r.Truncated++
			}
		}
		lps, err := lm.LogProbs(spans)
		if err != nil {
			return err
		}
		k := 0
		for i, it := range items[lo:hi] {
			norm := make([]float64, len(it.Choices))
			raw := make([]float64, len(it.Choices))
			for j, c := range it.Choices {
				raw[j] = sum(lps[k])
				norm[j] = raw[j] / float64(max(1, len(" "+c)))
				k++
			}
			pred, rawPred := argmax64(norm), argmax64(raw)
			if pred == it.Answer {
				correct++
			}
			if rawPred == it.Answer {
				rawCorrect++
			}
			r.Chance += 1 / float64(len(it.Choices))
			r.Examples = append(r.Examples, Prediction{
				Index: lo + i, ID: it.ID, Input: it.Question, Gold: it.Labels[it.Answer], Pred: it.Labels[pred],
				Correct: pred == it.Answer, Scores: norm, Raw: raw,
			})
		}
		s.progress(hi, len(items))
	}
	if len(items) > 0 {
		r.Chance /= float64(len(items))
		r.RawAcc = float64(rawCorrect) / float64(len(items))
	}
	r.finish(correct, len(items))
	return nil
}
