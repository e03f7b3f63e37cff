package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Result is what an evaluation measured. Accuracy tasks fill Correct,
// Accuracy and the Wilson interval; ppl fills PPL and an interval from the
// standard error of the mean token log-likelihood.
type Result struct {
	Task      string
	Data      string
	N         int     // examples scored (ppl: tokens scored)
	Correct   int     // accuracy tasks
	Accuracy  float64 // Correct/N
	CILow     float64 // 95% interval of Accuracy (Wilson) or of PPL
	CIHigh    float64
	Chance    float64 // expected accuracy of a uniform guess (0 when unknown)
	RawAcc    float64 // choice: accuracy without length normalisation
	PPL       float64 // ppl task
	PPLStderr float64 // ppl: llama-perplexity's ± (stderr of ppl)
	Truncated int     // examples cut to fit the context (gsm8k: also shots dropped)
	Tokens    int64   // tokens run through the model
	Seconds   float64
	Examples  []Prediction // per-example predictions, for --dump
}

// Prediction is one example's outcome, one JSONL line of --dump.
type Prediction struct {
	Index   int       `json:"index"`
	ID      string    `json:"id,omitempty"`
	Input   string    `json:"input"`
	Gold    string    `json:"gold"`
	Pred    string    `json:"pred"`
	Correct bool      `json:"correct"`
	Scores  []float64 `json:"scores,omitempty"`       // classify: sum log p per label; choice: normalised
	Raw     []float64 `json:"raw_scores,omitempty"`   // choice: sum log p per choice
	Output  string    `json:"output,omitempty"`       // gsm8k: the generated text
	NTokens int       `json:"prompt_tokens,omitzero"` // gsm8k: tokens of the prompt as run
	Shots   int       `json:"shots,omitzero"`         // gsm8k: worked examples that fit before the question
}

// TokensPerSec is Tokens/Seconds (0 before anything ran).
func (r *Result) TokensPerSec() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Tokens) / r.Seconds
}

func (r *Result) finish(correct, n int) {
	r.Correct, r.N = correct, n
	if n > 0 {
		r.Accuracy = float64(correct) / float64(n)
	}
	r.CILow, r.CIHigh = Wilson(correct, n)
}

// MarshalJSON writes the --json object: task, n, accuracy (or ppl),
// ci_low, ci_high, then the details.
func (r *Result) MarshalJSON() ([]byte, error) {
	type acc struct {
		Task         string   `json:"task"`
		Data         string   `json:"data,omitempty"`
		N            int      `json:"n"`
		Accuracy     float64  `json:"accuracy"`
		CILow        float64  `json:"ci_low"`
		CIHigh       float64  `json:"ci_high"`
		Correct      int      `json:"correct"`
		Chance       float64  `json:"chance,omitempty"`
		RawAcc       *float64 `json:"accuracy_unnormalised,omitempty"`
		Truncated    int      `json:"truncated"`
		Tokens       int64    `json:"tokens"`
		Seconds      float64  `json:"seconds"`
		TokensPerSec float64  `json:"tokens_per_s"`
	}
	type ppl struct {
		Task         string  `json:"task"`
		Data         string  `json:"data,omitempty"`
		N            int     `json:"n"`
		PPL          float64 `json:"ppl"`
		CILow        float64 `json:"ci_low"`
		CIHigh       float64 `json:"ci_high"`
		PPLStderr    float64 `json:"ppl_stderr"`
		Tokens       int64   `json:"tokens"`
		Seconds      float64 `json:"seconds"`
		TokensPerSec float64 `json:"tokens_per_s"`
	}
	if r.Task == TaskPPL {
		return json.Marshal(ppl{r.Task, r.Data, r.N, r.PPL, r.CILow, r.CIHigh, r.PPLStderr, r.Tokens, r.Seconds, r.TokensPerSec()})
	}
	a := acc{Task: r.Task, Data: r.Data, N: r.N, Accuracy: r.Accuracy, CILow: r.CILow, CIHigh: r.CIHigh,
		Correct: r.Correct, Chance: r.Chance, Truncated: r.Truncated, Tokens: r.Tokens, Seconds: r.Seconds,
		TokensPerSec: r.TokensPerSec()}
	if r.Task == TaskChoice {
		a.RawAcc = &r.RawAcc
	}
	return json.Marshal(a)
}

// String is the one-paragraph human summary.
func (r *Result) String() string {
	var b strings.Builder
	if r.Task == TaskPPL {
		fmt.Fprintf(&b, "%s: ppl %.4f ± %.4f (95%% CI %.4f–%.4f) over %d tokens", r.Task, r.PPL, r.PPLStderr, r.CILow, r.CIHigh, r.N)
	} else {
		fmt.Fprintf(&b, "%s: accuracy %.4f (%d/%d), 95%% Wilson CI %.4f–%.4f", r.Task, r.Accuracy, r.Correct, r.N, r.CILow, r.CIHigh)
		if r.Chance > 0 {
			fmt.Fprintf(&b, ", chance %.4f", r.Chance)
		}
		if r.Task == TaskChoice {
			fmt.Fprintf(&b, ", unnormalised %.4f", r.RawAcc)
		}
		if r.Truncated > 0 {
			fmt.Fprintf(&b, ", %d truncated to fit the context", r.Truncated)
		}
	}
	fmt.Fprintf(&b, "\n%d tokens in %.2f s, %.0f tokens/s", r.Tokens, r.Seconds, r.TokensPerSec())
	return b.String()
}

// WriteDump writes the per-example predictions as JSONL.
func (r *Result) WriteDump(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range r.Examples {
		if err := enc.Encode(&r.Examples[i]); err != nil {
			return err
		}
	}
	return nil
}

// Metrics returns the result as named values for a metrics.jsonl record's
// eval map (report.Record.Eval): "TASK/accuracy", "TASK/ci_low",
// "TASK/ci_high", "TASK/n" (ppl: "ppl/ppl" and its interval).
func (r *Result) Metrics() map[string]float64 {
	m := map[string]float64{r.Task + "/n": float64(r.N), r.Task + "/ci_low": r.CILow, r.Task + "/ci_high": r.CIHigh}
	if r.Task == TaskPPL {
		m[r.Task+"/ppl"] = r.PPL
	} else {
		m[r.Task+"/accuracy"] = r.Accuracy
	}
	return m
}
