package ladder

import (
	"fmt"

	"ladder-engine/engine"
	"ladder-engine/ops"
)

// projection is one ladder down-projection: the backbone output it reads
// and its weight (d_s, d).
type projection struct {
	layer int // backbone layer; -1: the token embeddings
	w     *ops.Tensor
	out   int // -1: the start of the side stream; else the side block it feeds
}

// projections lists the side network's ladders: Down_0 first, then the
// blocks' Down_i in block order.
func (s *Side) projections() []projection {
	ps := []projection{{layer: s.H.StartLayer, w: s.In, out: -1}}
	for i := range s.Blocks {
		if b := &s.Blocks[i]; b.Down != nil {
			ps = append(ps, projection{layer: b.Layer, w: b.Down, out: i})
		}
	}
	return ps
}

// project computes y (n, d_s) = x (n, d) · Wᵀ for a ladder into dst, on
// a no-grad tape (reset by the caller).
func project(tp *ops.Tape, dst, x *ops.Tensor, w *ops.Tensor) {
	tp.Backend().Copy(dst.Buf(), tp.Linear(x, w).Buf())
}

// Decoder runs a base model with a ladder adapter: the backbone with its KV
// cache and the side network with one KV cache per side block, token by
// token or in batches. It implements engine.Decoder (generate, perplexity)
// and Truncate (eval's prefix reuse).
type Decoder struct {
	M     *engine.Model
	S     *Side
	KV    *engine.KVCache
	sKV   *ops.KVCache // the side blocks' keys and values (exact f32)
	projs []projection
	tape  *ops.Tape // no-grad: counts and releases each call's buffers

	ownSide bool // Free releases S too (OpenDecoder)

	rows int         // tokens the buffers below hold (on the model's backend)
	base *ops.Tensor // (rows, d) output_norm of the backbone
	ys   []*ops.Tensor
	ping *ops.Tensor // (rows, d_s) block outputs, alternating
	pong *ops.Tensor
	pos  []int32
}

// NewDecoder makes a decoder over m and the adapter s with room for nCtx
// tokens (<= 0: the model's training context). Free releases its memory.
func NewDecoder(m *engine.Model, s *Side, nCtx int) *Decoder {
	s.place(m.Backend)
	d := &Decoder{M: m, S: s, KV: m.NewKVCache(nCtx), projs: s.projections(), tape: ops.NewNoGradTape(m.Backend)}
	h := &s.H
	d.sKV = m.Backend.NewKVCache(len(s.Blocks), d.KV.NCtx, h.NHeadKV, h.HeadDim, false)
	d.ys = make([]*ops.Tensor, len(d.projs))
	return d
}

func (d *Decoder) NVocab() int { return d.M.NVocab }
func (d *Decoder) NCtx() int   { return d.KV.NCtx }
func (d *Decoder) Len() int    { return d.KV.Len() }

// Reset starts a new sequence.
func (d *Decoder) Reset() { d.Truncate(0) }

// Truncate keeps the first n tokens in the backbone and side caches.
func (d *Decoder) Truncate(n int) {
	if n < 0 || n > d.KV.Len() {
		return
	}
	d.KV.Truncate(n)
	d.sKV.Truncate(n)
	if n == 0 {
		d.KV.Reset()
		d.sKV.Reset()
	}
}

// OpenDecoder loads the adapter file at path for m (checking that it was
// trained on m) and returns a decoder over both; Free releases the adapter
// too.
func OpenDecoder(m *engine.Model, path string, nCtx int) (*Decoder, error) {
	s, err := LoadAdapter(path, m)
	if err != nil {
		return nil, err
	}
	d := NewDecoder(m, s, nCtx)
	d.ownSide = true
	return d, nil
}

// Free releases the caches and buffers (and the adapter, from OpenDecoder).
func (d *Decoder) Free() {
	if d.ownSide {
		d.S.Free()
		d.ownSide = false
	}
	d.KV.Free()
	d.sKV.Free()
	d.grow(0)
	d.tape.Close()
}

// grow sizes the per-call buffers for n tokens (0: release them).
func (d *Decoder) grow(n int) {
	if n != 0 && n <= d.rows {
		return
	}
	for _, t := range append([]*ops.Tensor{d.base, d.ping, d.pong}, d.ys...) {
		if t != nil {
			t.FreeTensor()
		}
	}
	for i := range d.ys {
		d.ys[i] = nil
	}
	d.base, d.ping, d.pong, d.pos, d.rows = nil, nil, nil, nil, n
	if n == 0 {
		return
	}
	be := d.M.Backend
	dm, ds := d.M.NEmbd, d.S.H.NEmbd
	d.base = ops.TensorOn(be, ops.Scratch, ops.F32, n, dm)
	d.ping, d.pong = ops.TensorOn(be, ops.Scratch, ops.F32, n, ds), ops.TensorOn(be, ops.Scratch, ops.F32, n, ds)
	for i := range d.ys {
		d.ys[i] = ops.TensorOn(be, ops.Scratch, ops.F32, n, ds)
	}
	d.pos = make([]int32, n)
}

// Decode appends tokens at positions Len().. and writes logits for every
// token (all) or the last one.
func (d *Decoder) Decode(tokens []int32, all bool, logits []float32) error {
	n := len(tokens)
	if n == 0 {
		return nil
	}
	want := d.M.NVocab
	if all {
		want *= n
	}
	if len(logits) < want {
		return fmt.Errorf("ladder: logits buffer has %d values, want %d", len(logits), want)
	}
	z, rows, err := d.hidden(tokens, all)
	if err != nil {
		return err
	}
	d.M.Logits(z, rows, logits)
	d.tape.Reset()
	return nil
}

// Embed runs tokens as a new sequence and writes the hidden states the LM
// head reads, with the adapter applied (n, NEmbd): what `embedding` prints.
func (d *Decoder) Embed(tokens []int32, out []float32) error {
	d.Reset()
	z, _, err := d.hidden(tokens, true)
	if err != nil {
		return err
	}
	z.ReadInto(out[:z.Len()])
	d.tape.Reset()
	return nil
}

// hidden runs the backbone and the side network over tokens and returns the
// head's input for every token (all) or the last one, valid until the tape
// is reset.
func (d *Decoder) hidden(tokens []int32, all bool) (*ops.Tensor, int, error) {
	n := len(tokens)
	if err := d.checkRoom(n); err != nil {
		return nil, 0, err
	}
	d.grow(n)
	m, s, tp := d.M, d.S, d.tape
	pos0 := d.KV.Len()
	ys := make([]*ops.Tensor, len(d.ys))
	for i := range ys {
		ys[i] = d.ys[i].RowsView(0, n)
	}
	err := m.Forward(tokens, d.KV, d.base, func(l int, h *ops.Tensor) {
		for i, p := range d.projs {
			if p.layer == l {
				project(tp, ys[i], h, p.w)
				tp.Reset()
			}
		}
	})
	if err != nil {
		return nil, 0, err
	}
	if s.H.StartLayer < 0 {
		project(tp, ys[0], m.EmbedTokens(tp, tokens), d.projs[0].w)
		tp.Reset()
	}
	for i := range n {
		d.pos[i] = int32(pos0 + i)
	}
	ladder := make([]*ops.Tensor, len(s.Blocks))
	for i, p := range d.projs[1:] {
		ladder[p.out] = ys[i+1]
	}
	hs := s.forwardNoGrad(tp, ys[0], ladder, d.pos[:n], 1, d.sKV, d.ping, d.pong)
	d.sKV.Advance(n)
	base := d.base.RowsView(0, n)
	rows := n
	if !all {
		hs = hs.RowsView(n-1, n)
		base = d.base.RowsView(n-1, n)
		rows = 1
	}
	z := s.headForward(tp, hs, base)
	return z, rows, nil
}

// checkRoom fails before anything runs when n more tokens do not fit, so
// the backbone and side caches never disagree.
func (d *Decoder) checkRoom(n int) error {
	if d.sKV == nil || d.sKV.Bytes() == 0 {
		return fmt.Errorf("ladder: decoder used after Free")
	}
	if d.KV.Len()+n > d.KV.NCtx {
		return fmt.Errorf("ladder: context full: %d tokens cached + %d new > context size %d (raise -c)", d.KV.Len(), n, d.KV.NCtx)
	}
	if d.sKV.Len() != d.KV.Len() {
		return fmt.Errorf("ladder: side cache holds %d tokens, backbone %d (a failed call left them apart; Reset)", d.sKV.Len(), d.KV.Len())
	}
	return nil
}

var _ engine.Decoder = (*Decoder)(nil)
