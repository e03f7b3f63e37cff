package eval

import (
	"fmt"
	"math"

	"ladder-engine/ladder/data"
)

// loadClassify reads TSV (text<TAB>label) or JSONL (text/label) with the
// data package's reader, the one finetune uses, so both see the same
// records.
func (s *Set) loadClassify() error {
	recs, err := data.ReadFile(s.opts.Data)
	if err != nil {
		return err
	}
	if recs[0].Kind != data.KindClassify {
		return fmt.Errorf("eval: %s holds %s records; --task classify needs TSV text<TAB>label or JSONL {\"text\", \"label\"}", s.opts.Data, recs[0].Kind)
	}
	s.records = limit(recs, s.opts.Limit)
	// Check every label now, before a model is loaded.
	words := s.labelWords()
	for _, r := range s.records {
		if _, err := data.ParseLabel(r.Label, words); err != nil {
			return fmt.Errorf("eval: %s: %v", r.Source, err)
		}
	}
	return nil
}

func (s *Set) labelWords() []string {
	if len(s.opts.LabelWords) > 0 {
		return s.opts.LabelWords
	}
	return data.DefaultLabelWords
}

// classifySpans tokenizes one record's label-word continuations exactly as
// finetune trains them (data.Formatter.Choices: prompt template, label word
// after a space, loss mask on the word's tokens) and cuts each to
// nCtx+1 tokens by dropping the oldest prompt tokens, as finetune does at
// -c nCtx. The last token is never run, so nCtx+1 tokens fit.
func classifySpans(f *data.Formatter, r *data.Record, nCtx int) (label int, spans []Span, truncated bool, err error) {
	label, exs, err := f.Choices(r)
	if err != nil {
		return 0, nil, false, err
	}
	for _, ex := range exs {
		from := 0
		for from < len(ex.Mask) && !ex.Mask[from] {
			from++
		}
		if from == len(ex.Mask) {
			return 0, nil, false, fmt.Errorf("eval: %s: a label word has no tokens", r.Source)
		}
		toks := ex.Tokens
		if cut := len(toks) - (nCtx + 1); cut > 0 {
			toks = toks[cut:]
			from = max(from-cut, 1)
			truncated = true
		}
		spans = append(spans, Span{Tokens: toks, From: from})
	}
	return label, spans, truncated, nil
}

// classifyFormatter is finetune's formatter for the label words and
// template; it does not truncate (classifySpans cuts to the LM's context).
func classifyFormatter(tok Tokenizer, words []string, template string) (*data.Formatter, error) {
	enc := data.Encoder{Encode: tok.Encode, BOS: tok.BOS(), EOS: -1, AddBOS: tok.AddBOS()}
	return data.NewFormatter(enc, data.Options{Context: math.MaxInt32, LabelWords: words, PromptTemplate: template})
}
