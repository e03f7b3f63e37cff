// Package report writes and reads a training run's metrics.jsonl and draws
// its loss curves (loss.png) and comparisons of several runs.
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// MetricsFile is the name of the metrics log in a run folder.
const MetricsFile = "metrics.jsonl"

// Record is one line of metrics.jsonl. A zero field means "not measured"
// and is left out of the line, so a line can carry only a train step, only
// a validation, or both, and callers fill in just what they have:
//
//	w.Write(report.Record{Step: 120, TrainLoss: 2.31, LR: 3e-4, TokensPerSec: 5120})
//
// (A loss is never exactly 0 and a zero learning rate is no loss to omit.)
// Non-finite values (a diverged loss) are written as the strings "NaN",
// "+Inf", "-Inf" since JSON has no such numbers. Eval keeps every key,
// zeros included.
type Record struct {
	Step         int                `json:"step"`
	Epoch        float64            `json:"epoch"`          // fractional epochs done
	TrainLoss    float64            `json:"train_loss"`     // mean loss of the step's batch
	ValLoss      float64            `json:"val_loss"`       // mean loss on the validation split
	LR           float64            `json:"lr"`             // learning rate used at this step
	TokensPerSec float64            `json:"tokens_per_s"`   // training throughput
	MemBytes     int64              `json:"mem_bytes"`      // engine-accounted bytes held (ops meter)
	RSSBytes     int64              `json:"peak_rss_bytes"` // process peak RSS
	Elapsed      float64            `json:"elapsed_s"`      // seconds since the run started
	Eval         map[string]float64 `json:"eval"`           // e.g. "classify/accuracy": 0.71
}

// Has reports whether a field was measured (is not zero).
func Has(v float64) bool { return v != 0 }

type recordJSON struct {
	Step         int                  `json:"step"`
	Epoch        *jsonFloat           `json:"epoch,omitempty"`
	TrainLoss    *jsonFloat           `json:"train_loss,omitempty"`
	ValLoss      *jsonFloat           `json:"val_loss,omitempty"`
	LR           *jsonFloat           `json:"lr,omitempty"`
	TokensPerSec *jsonFloat           `json:"tokens_per_s,omitempty"`
	MemBytes     int64                `json:"mem_bytes,omitempty"`
	RSSBytes     int64                `json:"peak_rss_bytes,omitempty"`
	Elapsed      *jsonFloat           `json:"elapsed_s,omitempty"`
	Eval         map[string]jsonFloat `json:"eval,omitempty"`
}

// jsonFloat encodes non-finite values as strings (JSON has no NaN).
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(v)
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*f = jsonFloat(math.NaN())
		return nil
	case `"+Inf"`, `"Inf"`:
		*f = jsonFloat(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = jsonFloat(math.Inf(-1))
		return nil
	case "null":
		*f = 0
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*f = jsonFloat(v)
	return nil
}

// opt leaves out the zero ("not measured") values.
func opt(v float64) *jsonFloat {
	if v == 0 {
		return nil
	}
	f := jsonFloat(v)
	return &f
}

func get(p *jsonFloat) float64 {
	if p == nil {
		return 0
	}
	return float64(*p)
}

// MarshalJSON writes the record with only its measured fields.
func (r Record) MarshalJSON() ([]byte, error) {
	j := recordJSON{
		Step: r.Step, Epoch: opt(r.Epoch), TrainLoss: opt(r.TrainLoss), ValLoss: opt(r.ValLoss),
		LR: opt(r.LR), TokensPerSec: opt(r.TokensPerSec), MemBytes: r.MemBytes, RSSBytes: r.RSSBytes,
		Elapsed: opt(r.Elapsed),
	}
	if len(r.Eval) > 0 {
		j.Eval = make(map[string]jsonFloat, len(r.Eval))
		for k, v := range r.Eval {
			j.Eval[k] = jsonFloat(v)
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a record; missing fields stay zero.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	j.Step = -1
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Step < 0 {
		return errors.New(`no "step" (or a negative one)`)
	}
	*r = Record{
		Step: j.Step, Epoch: get(j.Epoch), TrainLoss: get(j.TrainLoss), ValLoss: get(j.ValLoss),
		LR: get(j.LR), TokensPerSec: get(j.TokensPerSec), MemBytes: j.MemBytes, RSSBytes: j.RSSBytes,
		Elapsed: get(j.Elapsed),
	}
	if len(j.Eval) > 0 {
		r.Eval = make(map[string]float64, len(j.Eval))
		for k, v := range j.Eval {
			r.Eval[k] = float64(v)
		}
	}
	return nil
}

// MetricsWriter appends records to a metrics.jsonl, one line each, written
// through to the file at once so a crash loses at most the line in flight.
type MetricsWriter struct {
	f    *os.File
	path string
}

// CreateMetrics starts dir/metrics.jsonl afresh (a new run).
func CreateMetrics(dir string) (*MetricsWriter, error) {
	return openMetrics(dir, os.O_CREATE|os.O_WRONLY|os.O_TRUNC)
}

// AppendMetrics continues dir/metrics.jsonl (a resumed run). Steps logged
// again after the resume point supersede the earlier lines when read.
func AppendMetrics(dir string) (*MetricsWriter, error) {
	return openMetrics(dir, os.O_CREATE|os.O_WRONLY|os.O_APPEND)
}

func openMetrics(dir string, flag int) (*MetricsWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	path := filepath.Join(dir, MetricsFile)
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return &MetricsWriter{f: f, path: path}, nil
}

// Path is the file being written.
func (w *MetricsWriter) Path() string { return w.path }

// Write appends one record as a line.
func (w *MetricsWriter) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("report: step %d: %w", r.Step, err)
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("report: %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *MetricsWriter) Close() error { return w.f.Close() }

// ReadMetrics reads a metrics.jsonl and returns one record per step, in
// step order. Lines for the same step are merged, later measurements
// winning (a train line and a validation line at one step; a resumed run
// logging steps again). A last line cut short by a crash (no newline, not
// valid JSON) is ignored; any other bad line is an error naming it.
func ReadMetrics(r io.Reader, name string) ([]Record, error) {
	br := bufio.NewReader(r)
	byStep := map[int]*Record{}
	var steps []int
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("report: %s: %w", name, err)
		}
		complete := err == nil
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var rec Record
			if uerr := json.Unmarshal(t, &rec); uerr != nil {
				if !complete {
					break // torn last line
				}
				return nil, fmt.Errorf("report: %s:%d: %v", name, lineNo, uerr)
			}
			if old, ok := byStep[rec.Step]; ok {
				old.merge(&rec)
			} else {
				byStep[rec.Step] = &rec
				steps = append(steps, rec.Step)
			}
		}
		if !complete {
			break
		}
	}
	sort.Ints(steps)
	out := make([]Record, len(steps))
	for i, s := range steps {
		out[i] = *byStep[s]
	}
	return out, nil
}

// ReadMetricsFile reads a metrics.jsonl by path.
func ReadMetricsFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	return ReadMetrics(f, path)
}

func (r *Record) merge(o *Record) {
	set := func(dst *float64, v float64) {
		if Has(v) {
			*dst = v
		}
	}
	set(&r.Epoch, o.Epoch)
	set(&r.TrainLoss, o.TrainLoss)
	set(&r.ValLoss, o.ValLoss)
	set(&r.LR, o.LR)
	set(&r.TokensPerSec, o.TokensPerSec)
	set(&r.Elapsed, o.Elapsed)
	if o.MemBytes != 0 {
		r.MemBytes = o.MemBytes
	}
	if o.RSSBytes != 0 {
		r.RSSBytes = o.RSSBytes
	}
	for k, v := range o.Eval {
		if r.Eval == nil {
			r.Eval = map[string]float64{}
		}
		r.Eval[k] = v
	}
}
