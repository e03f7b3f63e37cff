package data

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// DefaultPromptTemplate is the classification prompt; {text} is replaced
// by the example's text and the label word follows as the completion.
const DefaultPromptTemplate = "Review: {text}\nSentiment:"

// DefaultLabelWords are the label words when none are given (SST-2: label 0
// is negative, 1 positive).
var DefaultLabelWords = []string{"negative", "positive"}

// ClassPrompt fills a prompt template's {text} placeholder.
func ClassPrompt(template, text string) string { return strings.ReplaceAll(template, "{text}", text) }

// LabelCompletion is the completion scored for a label word after prompt:
// the word after a space, unless the prompt already ends in whitespace.
func LabelCompletion(prompt, word string) string {
	if prompt == "" || strings.LastIndexFunc(prompt, unicode.IsSpace) == len(prompt)-1 {
		return word
	}
	return " " + word
}

// ParseLabel reads a label as written in a data file: an index into the
// label words or (case-insensitively) one of the words.
func ParseLabel(s string, words []string) (int, error) {
	s = strings.TrimSpace(s)
	if i, err := strconv.Atoi(s); err == nil {
		if i < 0 || i >= len(words) {
			return 0, fmt.Errorf("label %d outside 0..%d (label words %s)", i, len(words)-1, strings.Join(words, ","))
		}
		return i, nil
	}
	for i, w := range words {
		if strings.EqualFold(s, w) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("label %q is neither an index nor one of the label words %s", s, strings.Join(words, ","))
}

// Options control formatting and loading. Zero values mean the documented
// defaults, except Context which is required.
type Options struct {
	Context int // tokens fed per sequence (-c); longer examples are truncated

	ChatTemplate   string   // chat template name, or Jinja source to detect ("" = the model's)
	LabelWords     []string // classification: the i-th word is label i (default DefaultLabelWords)
	PromptTemplate string   // classification prompt with {text} (default DefaultPromptTemplate)

	ValSplit float64 // fraction held out for validation when there is no validation file
	Seed     uint64  // shuffling and the validation split
	Pack     bool    // concatenate short examples into sequences of up to Context+1 tokens
}

// Formatter turns records into examples for one tokenizer and one set of
// options.
type Formatter struct {
	enc      Encoder
	opt      Options
	chat     string // resolved template name, "" if none
	chatFrom string // where it came from, for messages
}

// NewFormatter checks the options and resolves the chat template (an
// unknown template is an error only once a chat record needs it).
func NewFormatter(enc Encoder, opt Options) (*Formatter, error) {
	if enc.Encode == nil {
		return nil, fmt.Errorf("data: no tokenizer (Encoder.Encode is nil)")
	}
	if opt.Context < 1 {
		return nil, fmt.Errorf("data: context length %d must be >= 1", opt.Context)
	}
	if !(opt.ValSplit >= 0 && opt.ValSplit < 1) {
		return nil, fmt.Errorf("data: validation split %g must lie in [0, 1)", opt.ValSplit)
	}
	if len(opt.LabelWords) == 0 {
		opt.LabelWords = DefaultLabelWords
	}
	for i, w := range opt.LabelWords {
		if strings.TrimSpace(w) == "" {
			return nil, fmt.Errorf("data: label word %d is empty", i)
		}
	}
	if opt.PromptTemplate == "" {
		opt.PromptTemplate = DefaultPromptTemplate
	}
	if !strings.Contains(opt.PromptTemplate, "{text}") {
		return nil, fmt.Errorf("data: prompt template %q has no {text} placeholder", opt.PromptTemplate)
	}
	f := &Formatter{enc: enc, opt: opt}
	switch {
	case opt.ChatTemplate != "":
		f.chatFrom = "--chat-template " + strconv.Quote(opt.ChatTemplate)
		f.chat = DetectChatTemplate(opt.ChatTemplate)
		if f.chat == "" {
			return nil, fmt.Errorf("data: unknown chat template %q; use one of %s", opt.ChatTemplate, strings.Join(ChatTemplates(), ", "))
		}
	case enc.ChatTemplate != "":
		f.chatFrom = "the model's tokenizer.chat_template"
		f.chat = DetectChatTemplate(enc.ChatTemplate)
	}
	return f, nil
}

// Options returns the options with defaults filled in.
func (f *Formatter) Options() Options { return f.opt }

// ChatTemplate returns the resolved chat template name ("" if none).
func (f *Formatter) ChatTemplate() string { return f.chat }

// Label resolves a classification record's label to an index.
func (f *Formatter) Label(r *Record) (int, error) {
	i, err := ParseLabel(r.Label, f.opt.LabelWords)
	if err != nil {
		return 0, fmt.Errorf("data: %s: %v", r.Source, err)
	}
	return i, nil
}

// Segments renders a record to text pieces. Classification records become
// the prompt and the gold label's completion.
func (f *Formatter) Segments(r *Record) ([]Segment, error) {
	switch r.Kind {
	case KindText, KindRaw:
		return []Segment{{r.Text, true}}, nil
	case KindPrompt:
		return []Segment{{r.Prompt, false}, {r.Completion, true}}, nil
	case KindClassify:
		label, err := f.Label(r)
		if err != nil {
			return nil, err
		}
		p := ClassPrompt(f.opt.PromptTemplate, r.Text)
		return []Segment{{p, false}, {LabelCompletion(p, f.opt.LabelWords[label]), true}}, nil
	case KindChat:
		if f.chat == "" {
			if f.chatFrom == "" {
				return nil, fmt.Errorf("data: %s: chat records need a chat template, and the model has none: "+
					"pass --chat-template with one of %s", r.Source, strings.Join(ChatTemplates(), ", "))
			}
			return nil, fmt.Errorf("data: %s: the chat template of %s is not one llama.cpp recognises: "+
				"pass --chat-template with one of %s", r.Source, f.chatFrom, strings.Join(ChatTemplates(), ", "))
		}
		segs, err := RenderChat(f.chat, r.Messages)
		if err != nil {
			return nil, fmt.Errorf("data: %s: %w", r.Source, err)
		}
		return segs, nil
	}
	return nil, fmt.Errorf("data: %s: unknown record kind %d", r.Source, r.Kind)
}

// Example tokenizes a record (not KindRaw: see Windows) into one training
// sequence of at most Context+1 tokens: BOS when the vocabulary wants it,
// the segments, and EOS after text and completions so the model learns to
// stop (chat templates carry their own end-of-turn markers; classification
// scores the label word alone). truncated reports that the sequence was cut;
// an example with no target left has Targets() == 0.
func (f *Formatter) Example(r *Record) (ex Example, truncated bool, err error) {
	segs, err := f.Segments(r)
	if err != nil {
		return Example{}, false, err
	}
	eos := r.Kind == KindText || r.Kind == KindPrompt
	ex = f.encode(segs, r.Kind == KindChat, eos)
	ex.Label = -1
	if r.Kind == KindClassify {
		ex.Label, _ = f.Label(r) // checked by Segments
	}
	ex, truncated = f.truncate(ex, r.Kind == KindClassify)
	return ex, truncated, nil
}

// Choices returns a classification record's gold label and one scored
// sequence per label word (prompt + word, loss mask on the word's tokens),
// for accuracy by comparing the summed log-probabilities of the masked
// tokens.
func (f *Formatter) Choices(r *Record) (label int, choices []Example, err error) {
	if r.Kind != KindClassify {
		return 0, nil, fmt.Errorf("data: %s: %s record has no label words to choose from", r.Source, r.Kind)
	}
	if label, err = f.Label(r); err != nil {
		return 0, nil, err
	}
	p := ClassPrompt(f.opt.PromptTemplate, r.Text)
	for _, w := range f.opt.LabelWords {
		ex := f.encode([]Segment{{p, false}, {LabelCompletion(p, w), true}}, false, false)
		ex.Label = label
		ex, _ = f.truncate(ex, true)
		choices = append(choices, ex)
	}
	return label, choices, nil
}

// encode tokenizes segments so that the tokens are exactly those of the
// whole text (what the model sees at inference), and assigns each token the
// Train flag of the segment it starts in: the boundary after segment j is
// the longest common prefix of the tokens of the text up to j with the whole
// sequence (as lm-evaluation-harness splits context and continuation), so a
// token merging across a boundary belongs to the later segment.
func (f *Formatter) encode(segs []Segment, parseSpecial, eos bool) Example {
	var whole strings.Builder
	for _, s := range segs {
		whole.WriteString(s.Text)
	}
	var toks []int32
	if f.enc.AddBOS && f.enc.BOS >= 0 {
		toks = append(toks, f.enc.BOS)
	}
	start := len(toks)
	toks = append(toks, f.enc.Encode(whole.String(), false, parseSpecial)...)
	mask := make([]bool, len(toks))
	body := toks[start:]
	from, prefix := 0, 0
	for j, s := range segs {
		prefix += len(s.Text)
		to := len(body)
		if j < len(segs)-1 {
			to = max(from, commonPrefix(f.enc.Encode(whole.String()[:prefix], false, parseSpecial), body))
		}
		if s.Train {
			for i := from; i < to; i++ {
				mask[start+i] = true
			}
		}
		from = to
	}
	if eos && f.enc.EOS >= 0 {
		toks = append(toks, f.enc.EOS)
		mask = append(mask, true)
	}
	if len(mask) > 0 {
		mask[0] = false
	}
	return Example{Tokens: toks, Mask: mask}
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// truncate cuts an example to Context+1 tokens (Context inputs, each with
// its next-token target). Classification keeps the end, where the label is
// (and drops the oldest prompt tokens, as the evaluation does); everything
// else keeps the beginning.
func (f *Formatter) truncate(ex Example, keepEnd bool) (Example, bool) {
	n := f.opt.Context + 1
	if len(ex.Tokens) <= n {
		return ex, false
	}
	if keepEnd {
		cut := len(ex.Tokens) - n
		ex.Tokens, ex.Mask = ex.Tokens[cut:], ex.Mask[cut:]
		ex.Mask[0] = false
	} else {
		ex.Tokens, ex.Mask = ex.Tokens[:n], ex.Mask[:n]
	}
	return ex, true
}

// Windows cuts raw text into training sequences: the text's tokens in
// consecutive runs of Context, each scored once. With a BOS the sequence is
// BOS + Context tokens (as llama.cpp's perplexity starts every chunk with
// BOS); without one, runs overlap by one token so that the first token of a
// run is the last target of the previous one. A final run shorter than
// Context is kept if it has a target.
func (f *Formatter) Windows(text string) []Example {
	toks := f.enc.Encode(text, false, false)
	c := f.opt.Context
	bos := f.enc.AddBOS && f.enc.BOS >= 0
	var out []Example
	for lo := 0; lo < len(toks); lo += c {
		var seq []int32
		if bos {
			seq = append([]int32{f.enc.BOS}, toks[lo:min(lo+c, len(toks))]...)
		} else {
			seq = toks[lo:min(lo+c+1, len(toks))]
		}
		if len(seq) < 2 {
			break
		}
		mask := make([]bool, len(seq))
		for i := 1; i < len(mask); i++ {
			mask[i] = true
		}
		out = append(out, Example{Tokens: seq, Mask: mask, Label: -1})
	}
	return out
}

// SplitTextTail splits raw text for validation: the last valFrac of the
// bytes are held out, the cut moved forward to the next line start (or rune
// start when there is no later newline) so no line or character is split.
func SplitTextTail(text string, valFrac float64) (train, val string) {
	if valFrac <= 0 {
		return text, ""
	}
	cut := int(float64(len(text)) * (1 - valFrac))
	cut = min(max(cut, 0), len(text))
	if i := strings.IndexByte(text[cut:], '\n'); i >= 0 && cut > 0 && text[cut-1] != '\n' {
		cut += i + 1
	}
	for cut < len(text) && !isRuneStart(text[cut]) {
		cut++
	}
	return text[:cut], text[cut:]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
