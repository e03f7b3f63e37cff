// Package data turns training and evaluation files into token sequences with
// a loss mask, and those into (B, T) batches.
//
// The path of a file through the package:
//
//	ReadFile      file (plain, gzip or zstd) → []Record, one per line/element
//	Formatter     Record → Segments (text pieces, trained or not) → Example
//	              (token ids + per-token loss mask), truncated to the context
//	Load          both of the above for a training file, plus the validation
//	              split, shuffling and packing
//	Batcher       []Example → Batch (B, T) of inputs and next-token targets,
//	              deterministic by seed, resumable from a Position
//
// Record kinds, recognised from the fields of each JSON object or from the
// file type:
//
//	{"text": ...}                                  KindText: loss on every token
//	{"prompt": ..., "completion": ...}             KindPrompt: loss on the completion
//	{"instruction", "input", "output"|"response"}  Alpaca, rendered to KindPrompt
//	{"question": ..., "answer": ...}               rendered to KindPrompt (GSM8K)
//	{"messages": [{"role", "content"}...]}         KindChat: the model's chat template;
//	                                               loss on assistant turns
//	{"text": ..., "label": ...} or TSV text<TAB>label  KindClassify: the label word is
//	                                               the completion of a prompt template
//	*.txt                                          KindRaw: windows of the context length
//
// The package does not tokenize by itself: an Encoder wraps the model's
// tokenizer (tokenizer.(*Tokenizer).Encode has the right signature).
package data

import "fmt"

// Encoder is what the package needs of a tokenizer.
type Encoder struct {
	// Encode tokenizes text as llama_tokenize does. The package always
	// passes addSpecial=false and adds BOS/EOS itself; parseSpecial is true
	// only for text rendered by a chat template.
	Encode func(text string, addSpecial, parseSpecial bool) []int32
	BOS    int32 // -1 if the vocabulary has none
	EOS    int32 // -1 if the vocabulary has none
	AddBOS bool  // the vocabulary wants BOS first (tokenizer.ggml.add_bos_token)
	// ChatTemplate is the model's tokenizer.chat_template ("" if none).
	ChatTemplate string
}

// Kind says how a record becomes tokens.
type Kind int

const (
	KindText     Kind = iota // plain text, loss on all of it
	KindPrompt               // prompt (no loss) + completion (loss)
	KindChat                 // messages rendered by a chat template
	KindClassify             // text + label, scored through label words
	KindRaw                  // a whole text file, cut into context windows
)

var kindNames = [...]string{"text", "prompt/completion", "chat", "classification", "raw text"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Message is one chat turn. Role is "system", "user" or "assistant" (other
// roles are passed to the template as they are and never trained on).
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Record is one example as read from a file, before tokenization.
type Record struct {
	Source string // "file:line", for messages
	Kind   Kind

	Text               string    // KindText, KindClassify, KindRaw
	Label              string    // KindClassify: as written, an index or a label word
	Prompt, Completion string    // KindPrompt
	Messages           []Message // KindChat
}

// Segment is a piece of an example's text; Train marks pieces whose tokens
// carry loss.
type Segment struct {
	Text  string
	Train bool
}

// Example is one training or scoring sequence.
type Example struct {
	Tokens []int32
	// Mask[i] is true when token i is a loss target (predicted from
	// Tokens[:i]); Mask[0] is always false.
	Mask []bool
	// Label is the gold label index of a classification example, else -1.
	Label int
}

// Targets counts the tokens that carry loss.
func (e *Example) Targets() int {
	n := 0
	for _, m := range e.Mask[min(1, len(e.Mask)):] {
		if m {
			n++
		}
	}
	return n
}

// Stats describes what became of one split's records.
type Stats struct {
	Records   int   // records read
	Examples  int   // sequences after formatting (and packing)
	Truncated int   // examples cut to the context length
	Dropped   int   // examples with no loss target left (e.g. the completion was cut off)
	Tokens    int64 // input tokens over all examples
	Targets   int64 // tokens carrying loss
}

func (s Stats) String() string {
	return fmt.Sprintf("%d records → %d sequences, %d tokens (%d with loss), %d truncated, %d dropped",
		s.Records, s.Examples, s.Tokens, s.Targets, s.Truncated, s.Dropped)
}
