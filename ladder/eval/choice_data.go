package eval

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ChoiceItem is one multiple-choice question: score each choice as the
// continuation of the question, pick the best, compare with Answer.
type ChoiceItem struct {
	ID       string   `json:"id,omitempty"`
	Question string   `json:"question"`
	Choices  []string `json:"choices"`
	Labels   []string `json:"labels"` // "A", "B", ... or "1", "2", ... as the file names them
	Answer   int      `json:"answer"` // index into Choices
}

// maxLine bounds one JSONL line, so a file without newlines cannot make us
// buffer it whole.
const maxLine = 16 << 20

// ReadARC reads the AI2 ARC JSONL format, one question a line:
//
//	{"id": "...", "question": {"stem": "...", "choices": [{"text": "...", "label": "A"}, ...]}, "answerKey": "A"}
//
// Blank lines are skipped. name is used in errors ("arc.jsonl:12: ...").
func ReadARC(r io.Reader, name string) ([]ChoiceItem, error) {
	var items []ChoiceItem
	err := eachLine(r, name, func(line []byte, lineNo int) error {
		var rec struct {
			ID       string `json:"id"`
			Question *struct {
				Stem    *string `json:"stem"`
				Choices []struct {
					Text  *string `json:"text"`
					Label string  `json:"label"`
				} `json:"choices"`
			} `json:"question"`
			AnswerKey json.RawMessage `json:"answerKey"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				// json's own message names a Go struct type, which tells a user nothing.
				return fmt.Errorf("field %q is a JSON %s; want the ARC layout {\"question\": {\"stem\": ..., \"choices\": [...]}, \"answerKey\": ...}", te.Field, te.Value)
			}
			return err
		}
		if rec.Question == nil || rec.Question.Stem == nil {
			return errors.New(`no "question": {"stem": ...}`)
		}
		if len(rec.Question.Choices) < 2 {
			return fmt.Errorf("%d choices, need at least 2", len(rec.Question.Choices))
		}
		key, err := answerKey(rec.AnswerKey)
		if err != nil {
			return err
		}
		it := ChoiceItem{ID: rec.ID, Question: *rec.Question.Stem, Answer: -1}
		for i, c := range rec.Question.Choices {
			if c.Text == nil {
				return fmt.Errorf("choice %d has no \"text\"", i)
			}
			label := c.Label
			if label == "" {
				label = string(rune('A' + i))
			}
			for _, l := range it.Labels {
				if l == label {
					return fmt.Errorf("choice label %q appears twice", label)
				}
			}
			if label == key {
				it.Answer = i
			}
			it.Choices = append(it.Choices, *c.Text)
			it.Labels = append(it.Labels, label)
		}
		if it.Answer < 0 {
			return fmt.Errorf("answerKey %q is none of the labels %s", key, strings.Join(it.Labels, ","))
		}
		items = append(items, it)
		return nil
	})
	return items, err
}

// answerKey accepts "A" or 1 (some ARC exports write numeric keys unquoted).
func answerKey(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New(`no "answerKey"`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.TrimSpace(s), nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("answerKey %s is neither a string nor a number", raw)
}

// ReadMMLU reads the MMLU CSV format: question,A,B,C,D,answer with no
// header, RFC 4180 quoting (fields with commas, quotes or newlines are
// quoted, quotes doubled), answer one of A B C D.
func ReadMMLU(r io.Reader, name string) ([]ChoiceItem, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3) // a UTF-8 byte-order mark from spreadsheet exports
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = 6
	var items []ChoiceItem
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return items, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s:%d: %w (want question,A,B,C,D,answer)", name, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		ans := strings.ToUpper(strings.TrimSpace(rec[5]))
		if len(ans) != 1 || ans[0] < 'A' || ans[0] > 'D' {
			return nil, fmt.Errorf("%s:%d: answer %q is not one of A B C D", name, line, rec[5])
		}
		items = append(items, ChoiceItem{
			ID:       fmt.Sprintf("%s:%d", name, line),
			Question: rec[0],
			Choices:  []string{rec[1], rec[2], rec[3], rec[4]},
			Labels:   []string{"A", "B", "C", "D"},
			Answer:   int(ans[0] - 'A'),
		})
	}
}

// eachLine calls fn for every non-blank line, prefixing its errors with
// name:line.
func eachLine(r io.Reader, name string, fn func(line []byte, lineNo int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) == 0 {
			continue
		}
		if err := fn(line, n); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: line longer than %d bytes", name, n+1, maxLine)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
