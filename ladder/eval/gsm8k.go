package eval

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"ladder-engine/ladder/data"
)

// defaultMaxNew bounds a GSM8K answer: worked solutions run to about 100
// words, 150-250 tokens on small vocabularies.
const defaultMaxNew = 256

// gsm8k stop strings: the next few-shot question, or the blank line that
// separates shots (lm-evaluation-harness gsm8k stops at "Question:").
var gsm8kStops = []string{"Question:", "\n\n"}

func (s *Set) loadGSM8K() error {
	rc, err := openData(s.opts.Data)
	if err != nil {
		return err
	}
	defer rc.Close()
	if s.math, err = ReadGSM8K(rc, s.opts.Data); err != nil {
		return err
	}
	s.math = limit(s.math, s.opts.Limit)
	if s.opts.Shots <= 0 {
		return nil
	}
	shots := s.opts.ShotsData
	if shots == "" {
		shots = filepath.Join(filepath.Dir(s.opts.Data), "train.jsonl")
		if _, err := os.Stat(shots); err != nil {
			return fmt.Errorf("eval: --shots %d needs worked examples: no %s, pass --shots-data FILE", s.opts.Shots, shots)
		}
	}
	src, err := openData(shots)
	if err != nil {
		return err
	}
	defer src.Close()
	all, err := ReadGSM8K(src, shots)
	if err != nil {
		return err
	}
	if len(all) < s.opts.Shots {
		return fmt.Errorf("eval: --shots %d but %s holds only %d examples", s.opts.Shots, shots, len(all))
	}
	// The first k, so every question sees the same prefix (cached once).
	s.shots = all[:s.opts.Shots]
	return nil
}

// gsm8kPrompt is "Question: q\nAnswer: a\n\n" per shot, then the question
// with "Answer:" left open (lm-evaluation-harness gsm8k; data.QAPrompt,
// the form finetune trains question/answer records in).
func gsm8kPrompt(shots []MathItem, q string) string {
	var b strings.Builder
	for _, sh := range shots {
		b.WriteString(data.QAPrompt(sh.Question) + " " + sh.Answer + "\n\n")
	}
	b.WriteString(data.QAPrompt(q))
	return b.String()
}

// cutAtStop returns text up to the first stop string; done says whether
// one was found. A line after "####" also ends the answer.
func cutAtStop(text string) (string, bool) {
	cut := len(text)
	for _, st := range gsm8kStops {
		if i := strings.Index(text, st); i >= 0 && i < cut {
			cut = i
		}
	}
	if i := strings.Index(text, "####"); i >= 0 {
		if j := strings.IndexByte(text[i:], '\n'); j >= 0 && i+j < cut {
			cut = i + j
		}
	}
	return text[:cut], cut < len(text)
}

func (s *Set) runGSM8K(lm *LM, r *Result) error {
	maxNew := s.opts.MaxNew
	if maxNew <= 0 {
		maxNew = defaultMaxNew
	}
	nCtx := lm.NCtx()
	correct := 0
	for i, it := range s.math {
		// Drop shots (oldest first) until the prompt leaves room to answer
		// (maxNew, or a quarter of the context when that is less), then cut
		// the question's start if it alone is too long. Either counts as
		// truncated.
		reserve := min(maxNew, nCtx/4)
		shots := s.shots
		var prompt []int32
		for {
			prompt = lm.tok.Encode(gsm8kPrompt(shots, it.Question), true, false)
			if len(prompt)+reserve <= nCtx || len(shots) == 0 {
				break
			}
			shots = shots[1:]
		}
		cut := len(shots) < len(s.shots)
		if room := nCtx - reserve; len(prompt) > room {
			prompt = prompt[len(prompt)-room:]
			cut = true
		}
		if cut {
			r.Truncated++
		}
		gen, err := lm.Greedy(prompt, maxNew, func(g []int32) bool {
			_, done := cutAtStop(lm.tok.Decode(g))
			return done
		})
		if err != nil {
			return fmt.Errorf("eval: gsm8k question %d: %w", i, err)
		}
		out, _ := cutAtStop(lm.tok.Decode(gen))
		pred, ok := ExtractAnswer(out)
		hit := ok && SameNumber(pred, it.Gold)
		if hit {
			correct++
		}
		r.Examples = append(r.Examples, Prediction{
			Index: i, Input: it.Question, Gold: it.Gold, Pred: pred, Correct: hit,
			Output: out, NTokens: len(prompt), Shots: len(shots),
		})
		s.progress(i+1, len(s.math))
	}
	r.finish(correct, len(s.math))
	return nil
}
