package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strings"
)

// MathItem is one GSM8K problem: Answer is the worked solution ending in
// "#### N", Gold the final number N as written.
type MathItem struct {
	Question string `json:"question"`
	Answer   string `json:"answer"`
	Gold     string `json:"gold"`
}

// ReadGSM8K reads GSM8K JSONL: {"question": "...", "answer": "... #### 18"}.
// The gold answer is the number after "####" (else the last number).
func ReadGSM8K(r io.Reader, name string) ([]MathItem, error) {
	var items []MathItem
	err := eachLine(r, name, func(line []byte, _ int) error {
		var rec struct {
			Question *string `json:"question"`
			Answer   *string `json:"answer"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return err
		}
		if rec.Question == nil || rec.Answer == nil {
			return errors.New(`need "question" and "answer"`)
		}
		gold, ok := ExtractAnswer(*rec.Answer)
		if !ok {
			return fmt.Errorf("answer %q has no final number (\"#### N\")", clip(*rec.Answer, 60))
		}
		items = append(items, MathItem{Question: *rec.Question, Answer: *rec.Answer, Gold: gold})
		return nil
	})
	return items, err
}

// numberRE matches a number as people write them in GSM8K: optional sign
// and dollar sign, thousands commas, decimals.
var numberRE = regexp.MustCompile(`-?\$?[0-9][0-9,]*(?:\.[0-9]+)?`)

// ExtractAnswer returns the final numeric answer of a solution: the first
// number after the last "####" (GSM8K's answer marker; lm-evaluation-harness
// "strict-match"), else the last number anywhere in the text
// ("flexible-extract"). Commas and "$" are removed; ok is false when the
// text holds no number.
func ExtractAnswer(text string) (answer string, ok bool) {
	if i := strings.LastIndex(text, "####"); i >= 0 {
		if m := numberRE.FindString(text[i+4:]); m != "" {
			return normalizeNumber(m), true
		}
	}
	all := numberRE.FindAllString(text, -1)
	if len(all) == 0 {
		return "", false
	}
	return normalizeNumber(all[len(all)-1]), true
}

func normalizeNumber(s string) string {
	s = strings.ReplaceAll(s, ",", "")
	s = strings.ReplaceAll(s, "$", "")
	return s
}

// SameNumber reports whether two extracted answers are the same number
// exactly ("18" = "18.0" = "18.00"; "0.5" ≠ "0.50001"), comparing as
// rationals so no float rounding decides a match.
func SameNumber(a, b string) bool {
	ra, okA := new(big.Rat).SetString(a)
	rb, okB := new(big.Rat).SetString(b)
	if okA && okB {
		return ra.Cmp(rb) == 0
	}
	return a == b
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
