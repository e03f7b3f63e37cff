package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Dataset is a training file (and its validation part) ready to batch.
type Dataset struct {
	Kind       Kind
	Train, Val []Example
	TrainStats Stats
	ValStats   Stats
	// ValRecords are the validation records before tokenization: scored by
	// Formatter.Choices for classification accuracy, or (KindRaw) the held-out
	// text for a perplexity run.
	ValRecords []Record
	Formatter  *Formatter
}

// Load reads a training file and its validation data: valPath when given,
// else the last opt.ValSplit of the text (raw text files: first part trains,
// tail validates) or a seeded random opt.ValSplit of the records. Examples
// are tokenized, truncated to opt.Context and, with opt.Pack, shuffled by
// opt.Seed and packed.
func Load(trainPath, valPath string, enc Encoder, opt Options) (*Dataset, error) {
	f, err := NewFormatter(enc, opt)
	if err != nil {
		return nil, err
	}
	trainRecs, err := ReadFile(trainPath)
	if err != nil {
		return nil, err
	}
	var valRecs []Record
	switch {
	case valPath != "":
		if valRecs, err = ReadFile(valPath); err != nil {
			return nil, err
		}
		if valRecs[0].Kind != trainRecs[0].Kind {
			return nil, fmt.Errorf("data: validation file %s holds %s records, training file %s holds %s records",
				valPath, valRecs[0].Kind, trainPath, trainRecs[0].Kind)
		}
	case opt.ValSplit > 0:
		trainRecs, valRecs = SplitRecords(trainRecs, opt.ValSplit, opt.Seed)
	}
	ds := &Dataset{Kind: trainRecs[0].Kind, ValRecords: valRecs, Formatter: f}
	if ds.Train, ds.TrainStats, err = f.Examples(trainRecs, opt.Seed); err != nil {
		return nil, err
	}
	if len(ds.Train) == 0 {
		return nil, fmt.Errorf("data: %s: no example has a token to train on (%s)", trainPath, ds.TrainStats)
	}
	if len(valRecs) > 0 {
		if ds.Val, ds.ValStats, err = f.Examples(valRecs, opt.Seed+1); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// SplitRecords holds out a fraction of the records for validation. A raw
// text record is split by SplitTextTail (the tail validates); other records
// by a permutation seeded with seed, at least one record each way when
// there are two or more. Both parts keep file order.
func SplitRecords(recs []Record, valFrac float64, seed uint64) (train, val []Record) {
	if valFrac <= 0 || len(recs) == 0 {
		return recs, nil
	}
	if len(recs) == 1 && recs[0].Kind == KindRaw {
		tr, va := SplitTextTail(recs[0].Text, valFrac)
		t, v := recs[0], recs[0]
		t.Text, v.Text = tr, va
		v.Source += " (held-out tail)"
		return []Record{t}, []Record{v}
	}
	nVal := int(math.Round(valFrac * float64(len(recs))))
	if len(recs) >= 2 {
		nVal = min(max(nVal, 1), len(recs)-1)
	}
	perm := permutation(len(recs), rand.NewPCG(seed, 0x7661_6c73_706c_6974)) // "valsplit"
	isVal := make([]bool, len(recs))
	for _, i := range perm[:nVal] {
		isVal[i] = true
	}
	for i, r := range recs {
		if isVal[i] {
			val = append(val, r)
		} else {
			train = append(train, r)
		}
	}
	return train, val
}

// Examples formats records (raw text into windows), dropping examples left
// without a target and, with Pack, packing them after a shuffle by seed.
func (f *Formatter) Examples(recs []Record, seed uint64) ([]Example, Stats, error) {
	st := Stats{Records: len(recs)}
	var out []Example
	for i := range recs {
		r := &recs[i]
		if r.Kind == KindRaw {
			out = append(out, f.Windows(r.Text)...)
			continue
		}
		ex, truncated, err := f.Example(r)
		if err != nil {
			return nil, st, err
		}
		if truncated {
			st.Truncated++
		}
		if ex.Targets() == 0 {
			st.Dropped++
			continue
		}
		out = append(out, ex)
	}
	if f.opt.Pack {
		shuffle(out, rand.NewPCG(seed, 0x7061_636b)) // "pack"
		out = Pack(out, f.opt.Context+1)
	}
	st.Examples = len(out)
	for i := range out {
		st.Tokens += int64(len(out[i].Tokens) - 1)
		st.Targets += int64(out[i].Targets())
	}
	return out, st, nil
}

// Pack concatenates consecutive examples into sequences of at most n
// tokens, in order, starting a new sequence when the next example does not
// fit; no example is split. Each example keeps its own mask (its first
// token is never a target), so no loss crosses from one example into the
// next, though attention within a packed sequence does, as in GPT
// pretraining. Packed sequences have Label -1.
func Pack(exs []Example, n int) []Example {
	var out []Example
	var cur Example
	for _, ex := range exs {
		if len(cur.Tokens) > 0 && len(cur.Tokens)+len(ex.Tokens) > n {
			out = append(out, cur)
			cur = Example{}
		}
		if len(cur.Tokens) == 0 {
			cur = Example{Tokens: slices.Clone(ex.Tokens), Mask: slices.Clone(ex.Mask), Label: -1}
			continue
		}
		cur.Tokens = append(cur.Tokens, ex.Tokens...)
		cur.Mask = append(cur.Mask, ex.Mask...)
	}
	if len(cur.Tokens) > 0 {
		out = append(out, cur)
	}
	return out
}
