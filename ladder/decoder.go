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

// project computes y (n, d_s) = x (n, d) · Wᵀ for a ladder.
func project(p *ops.Pool, y, x []float32, n int, w *ops.Tensor) {
	ops.MatMul(p, y, x, n, ops.NewMatrixF32("ladder_down", w.Rows(), w.Cols(), w.Data))
}

// Decoder runs a base model with a ladder adapter: the backbone with its KV
// cache and the side network with one KV cache per side block, token by
// token or in batches. It implements engine.Decoder (generate, perplexity)
// and Truncate (eval's prefix reuse).
type Decoder struct {
	M      *engine.Model
	S      *Side
	KV     *engine.KVCache
	caches []blockCache
	cache  []float32 // the side caches' one allocation (ops.KVCache)
	projs  []projection
	tape   *ops.Tape // no-grad: counts and releases each call's buffers

	ownSide bool // Free releases S too (OpenDecoder)

	rows int       // tokens the buffers below hold
	base []float32 // (rows, d) output_norm of the backbone
	emb  []float32 // (rows, d) token embeddings (start from embeddings)
	ys   [][]float32
	ping []float32 // (rows, d_s) block outputs, alternating
	pong []float32
	pos  []int32
}

// NewDecoder makes a decoder over m and the adapter s with room for nCtx
// tokens (<= 0: the model's training context). Free releases its memory.
func NewDecoder(m *engine.Model, s *Side, nCtx int) *Decoder {
	d := &Decoder{M: m, S: s, KV: m.NewKVCache(nCtx), projs: s.projections(), tape: ops.NewNoGradTape(m.Pool)}
	nCtx = d.KV.NCtx
	kvDim := s.H.KVDim()
	per := nCtx * kvDim
	d.cache = ops.Alloc(ops.KVCache, 2*len(s.Blocks)*per)
	d.caches = make([]blockCache, len(s.Blocks))
	for i := range d.caches {
		d.caches[i] = blockCache{k: d.cache[2*i*per : (2*i+1)*per], v: d.cache[(2*i+1)*per : (2*i+2)*per]}
	}
	d.ys = make([][]float32, len(d.projs))
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
	if n == 0 {
		d.KV.Reset()
	}
	for i := range d.caches {
		d.caches[i].n = min(d.caches[i].n, n)
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
	ops.Free(ops.KVCache, d.cache)
	d.cache, d.caches = nil, nil
	d.grow(0)
}

// grow sizes the per-call buffers for n tokens (0: release them).
func (d *Decoder) grow(n int) {
	if n != 0 && n <= d.rows {
		return
	}
	ops.Free(ops.Scratch, d.base)
	ops.Free(ops.Scratch, d.emb)
	ops.Free(ops.Scratch, d.ping)
	ops.Free(ops.Scratch, d.pong)
	for i := range d.ys {
		ops.Free(ops.Scratch, d.ys[i])
		d.ys[i] = nil
	}
	d.base, d.emb, d.ping, d.pong, d.pos, d.rows = nil, nil, nil, nil, nil, n
	if n == 0 {
		return
	}
	dm, ds := d.M.NEmbd, d.S.H.NEmbd
	d.base = ops.Alloc(ops.Scratch, n*dm)
	d.ping, d.pong = ops.Alloc(ops.Scratch, n*ds), ops.Alloc(ops.Scratch, n*ds)
	if d.S.H.StartLayer < 0 {
		d.emb = ops.Alloc(ops.Scratch, n*dm)
	}
	for i := range d.ys {
		d.ys[i] = ops.Alloc(ops.Scratch, n*ds)
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
	copy(out, z)
	d.tape.Reset()
	return nil
}

// hidden runs the backbone and the side network over tokens and returns the
// head's input for every token (all) or the last one, valid until the tape
// is reset.
func (d *Decoder) hidden(tokens []int32, all bool) ([]float32, int, error) {
	n := len(tokens)
	if err := d.checkRoom(n); err != nil {
		return nil, 0, err
	}
	d.grow(n)
	m, s := d.M, d.S
	dm, ds := m.NEmbd, s.H.NEmbd
	pos0 := d.KV.Len()
	err := m.Forward(tokens, d.KV, d.base, func(l int, h []float32) {
		for i, p := range d.projs {
			if p.layer == l {
				project(m.Pool, d.ys[i][:n*ds], h, n, p.w)
			}
		}
	})
	if err != nil {
		return nil, 0, err
	}
	if s.H.StartLayer < 0 {
		m.EmbedTokens(tokens, d.emb[:n*dm])
		project(m.Pool, d.ys[0][:n*ds], d.emb[:n*dm], n, d.projs[0].w)
	}
	for i := range n {
		d.pos[i] = int32(pos0 + i)
	}
	ladder := make([]*ops.Tensor, len(s.Blocks))
	for i, p := range d.projs[1:] {
		ladder[p.out] = ops.NewTensor(d.ys[i+1][:n*ds], n, ds)
	}
	start := ops.NewTensor(d.ys[0][:n*ds], n, ds)
	hs := s.forwardNoGrad(d.tape, start, ladder, d.pos[:n], 1, d.caches, d.ping, d.pong)
	base := ops.NewTensor(d.base[:n*dm], n, dm)
	rows := n
	if !all {
		hs = ops.NewTensor(hs.Data[(n-1)*ds:n*ds], 1, ds)
		base = ops.NewTensor(d.base[(n-1)*dm:n*dm], 1, dm)
		rows = 1
	}
	z := s.headForward(d.tape, hs, base)
	return z.Data, rows, nil
}

// checkRoom fails before anything runs when n more tokens do not fit, so
// the backbone and side caches never disagree.
func (d *Decoder) checkRoom(n int) error {
	if d.cache == nil {
		return fmt.Errorf("ladder: decoder used after Free")
	}
	if d.KV.Len()+n > d.KV.NCtx {
		return fmt.Errorf("ladder: context full: %d tokens cached + %d new > context size %d (raise -c)", d.KV.Len(), n, d.KV.NCtx)
	}
	for i := range d.caches {
		if d.caches[i].n != d.KV.Len() {
			return fmt.Errorf("ladder: side cache %d holds %d tokens, backbone %d (a failed call left them apart; Reset)", i, d.caches[i].n, d.KV.Len())
		}
	}
	return nil
}

var _ engine.Decoder = (*Decoder)(nil)
