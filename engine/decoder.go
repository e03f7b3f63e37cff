package engine

import (
	"fmt"

	"ladder-engine/ops"
)

// Decoder turns a growing token sequence into next-token logits, keeping
// the sequence's state (KV caches). Generation, perplexity and evaluation
// run on a Decoder, so a model with an adapter (which keeps a side network
// and its own caches next to the backbone's) plugs into the same loops by
// implementing it.
type Decoder interface {
	NVocab() int
	NCtx() int // most tokens a sequence may hold
	Len() int  // tokens in the sequence so far
	Reset()    // start a new sequence
	// Decode appends tokens at positions Len().. and writes logits: for
	// every token (n, NVocab) when all is true, else for the last one only
	// (NVocab).
	Decode(tokens []int32, all bool, logits []float32) error
}

// ModelDecoder is the base model's Decoder: the backbone, its KV cache and
// the hidden-state buffer.
type ModelDecoder struct {
	M      *Model
	KV     *KVCache
	hidden *ops.Tensor // (n, NEmbd) on the model's backend, grown as needed (ops.Scratch)
}

// NewDecoder makes a Decoder over m with a KV cache of nCtx tokens
// (<= 0: the training context). Free releases its memory.
func (m *Model) NewDecoder(nCtx int) *ModelDecoder {
	return &ModelDecoder{M: m, KV: m.NewKVCache(nCtx)}
}

func (d *ModelDecoder) NVocab() int { return d.M.NVocab }
func (d *ModelDecoder) NCtx() int   { return d.KV.NCtx }
func (d *ModelDecoder) Len() int    { return d.KV.Len() }
func (d *ModelDecoder) Reset()      { d.KV.Reset() }

// Hidden returns a tensor for n rows of hidden states on the model's
// backend, reused between calls.
func (d *ModelDecoder) Hidden(n int) *ops.Tensor {
	if d.hidden == nil || d.hidden.Rows() < n {
		if d.hidden != nil {
			d.hidden.FreeTensor()
		}
		d.hidden = ops.TensorOn(d.M.Backend, ops.Scratch, ops.F32, n, d.M.NEmbd)
	}
	return d.hidden.RowsView(0, n)
}

func (d *ModelDecoder) Decode(tokens []int32, all bool, logits []float32) error {
	n := len(tokens)
	if n == 0 {
		return nil
	}
	want := d.M.NVocab
	if all {
		want *= n
	}
	if len(logits) < want {
		return fmt.Errorf("engine: logits buffer has %d values, want %d", len(logits), want)
	}
	h := d.Hidden(n)
	if err := d.M.Forward(tokens, d.KV, h, nil); err != nil {
		return err
	}
	if all {
		d.M.Logits(h, n, logits)
	} else {
		d.M.Logits(h.RowsView(n-1, n), 1, logits)
	}
	return nil
}

// Free releases the KV cache and buffers.
func (d *ModelDecoder) Free() {
	d.KV.Free()
	if d.hidden != nil {
		d.hidden.FreeTensor()
		d.hidden = nil
	}
}

// Embed runs tokens as a new sequence and writes their final hidden states
// (after output_norm, what the LM head reads) into out (n, NEmbd): what
// `embedding` prints, as llama-embedding with --pooling none.
func (d *ModelDecoder) Embed(tokens []int32, out []float32) error {
	d.Reset()
	h := d.Hidden(len(tokens))
	if err := d.M.Forward(tokens, d.KV, h, nil); err != nil {
		return err
	}
	h.ReadInto(out[:len(tokens)*d.M.NEmbd])
	return nil
}
