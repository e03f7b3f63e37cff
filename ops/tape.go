package ops

import (
	"fmt"
)

// Tape records differentiable ops as they run eagerly, so Backward can walk
// them in reverse. A nil *Tape is valid and means inference: ops compute
// their outputs (plain, uncounted allocations on the inputs' backend) and
// record nothing.
//
// Memory: op outputs and what ops save for backward are counted as
// Activations on a recording tape (Scratch on a no-grad tape); gradients of
// intermediates are counted as Scratch. Backward releases each record's
// buffers as soon as its backward has run; Reset releases everything (a
// forward pass without backward). A no-grad tape keeps released buffers
// for its next ops instead of freeing them, so a forward that resets the
// tape after each layer reuses the same scratch layer after layer. Sizes
// the ops stop asking for (sequences of another length) are freed at the
// second Reset that did not see them, so a model that reads sequences of
// many lengths does not keep a set of buffers for each. A reusing tape
// (NewReusingTape) does the same while recording: what a backward
// releases (outputs, saved values, gradients) serves the next forward,
// and each Backward counts as a Reset for the ageing.
type Tape struct {
	be      Backend
	noGrad  bool
	records []record
	owned   []*Tensor // every tensor whose buffers this tape allocated
	extra   []Buffer  // saved buffers not yet attached to a record
	free    map[bufKey]*freeList
	resets  int // Reset calls so far: the age of a free list
}

// freeList is a no-grad tape's released buffers of one size, and the Reset
// count when that size was last asked for or released.
type freeList struct {
	bufs []Buffer
	seen int
}

type bufKey struct {
	c  MemClass
	dt DType
	n  int
}

// record is one op: its output and the closure that pushes out's gradient
// into the inputs' gradients, plus extra buffers it saved (freed after it runs).
type record struct {
	out      *Tensor
	backward func()
	saved    []Buffer
}

// NewTape returns a recording tape whose ops run on be (nil: the CPU).
func NewTape(be Backend) *Tape { return &Tape{be: orCPU(be)} }

// NewReusingTape returns a recording tape that keeps the buffers its
// backward releases for its next ops: for a loop that records the same
// ops again and again (a training step's blocks), which would otherwise
// allocate and zero every output, saved value and gradient anew. Close
// frees what it keeps.
func NewReusingTape(be Backend) *Tape {
	return &Tape{be: orCPU(be), free: map[bufKey]*freeList{}}
}

// NewNoGradTape returns a tape that records nothing (evaluation, inference)
// but still counts, releases (Reset) and reuses its outputs' memory.
func NewNoGradTape(be Backend) *Tape {
	return &Tape{be: orCPU(be), noGrad: true, free: map[bufKey]*freeList{}}
}

func orCPU(be Backend) Backend {
	if be == nil {
		return DefaultCPU()
	}
	return be
}

// Backend is the backend the tape's ops run on.
func (tp *Tape) Backend() Backend {
	if tp == nil {
		return nil
	}
	return tp.be
}

// Recording reports whether ops on this tape record their backward.
func (tp *Tape) Recording() bool { return tp != nil && !tp.noGrad }

// Len is the number of recorded ops.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.records)
}

// activationClass is the meter class of op outputs and saved buffers.
func (tp *Tape) activationClass() MemClass {
	if tp.noGrad {
		return Scratch
	}
	return Activations
}

// alloc takes a buffer for an op output or a saved value: from the
// tape's kept buffers (a no-grad or reusing tape) when one of that size is
// there.
func (tp *Tape) alloc(be Backend, dt DType, n int) Buffer {
	if b := tp.reuse(be, tp.activationClass(), dt, n); b != nil {
		return b
	}
	return be.Alloc(tp.activationClass(), dt, n)
}

// reuse takes a kept buffer of class c and size n, nil when there is none
// (or the tape keeps none); its contents are stale.
func (tp *Tape) reuse(be Backend, c MemClass, dt DType, n int) Buffer {
	if tp.free == nil || tp.be != be {
		return nil
	}
	l := tp.free[bufKey{c, dt, n}]
	if l == nil {
		return nil
	}
	l.seen = tp.resets
	if len(l.bufs) == 0 {
		return nil
	}
	b := l.bufs[len(l.bufs)-1]
	l.bufs = l.bufs[:len(l.bufs)-1]
	return b
}

// drop releases a buffer of class c: kept for reuse on a no-grad or
// reusing tape.
func (tp *Tape) drop(c MemClass, b Buffer) {
	if b == nil {
		return
	}
	if tp.free != nil && b.Backend() == tp.be {
		k := bufKey{c, b.DType(), b.Len()}
		l := tp.free[k]
		if l == nil {
			l = &freeList{}
			tp.free[k] = l
		}
		l.bufs = append(l.bufs, b)
		l.seen = tp.resets
		return
	}
	b.Backend().Free(c, b)
}

// Close frees the buffers a no-grad tape keeps for reuse (after Reset).
func (tp *Tape) Close() {
	if tp == nil {
		return
	}
	tp.Reset()
	tp.freeOlder(tp.resets + 1)
}

// freeOlder frees the kept buffers of every size last seen before Reset
// number r.
func (tp *Tape) freeOlder(r int) {
	for k, l := range tp.free {
		if l.seen >= r {
			continue
		}
		for _, b := range l.bufs {
			b.Backend().Free(k.c, b)
		}
		delete(tp.free, k)
	}
}

// newTensor allocates an f32 op output on be.
func (tp *Tape) newTensor(be Backend, shape ...int) *Tensor {
	n := shapeLen(shape)
	if tp == nil {
		return &Tensor{Shape: shape, buf: be.Alloc(-1, F32, n)}
	}
	c := tp.activationClass()
	t := &Tensor{Shape: shape, buf: tp.alloc(be, F32, n), owned: true, class: c}
	tp.owned = append(tp.owned, t)
	return t
}

// newLike allocates an op output shaped like x.
func (tp *Tape) newLike(be Backend, x *Tensor) *Tensor {
	return tp.newTensor(be, append([]int(nil), x.Shape...)...)
}

// save allocates a buffer an op keeps for its backward (attention
// probabilities, RMSNorm's 1/rms), to be written in full by the op: a
// reusing tape hands back stale values. It is released with the record
// made by the following call to record, or by Reset.
func (tp *Tape) save(be Backend, n int) Buffer {
	if tp == nil {
		return be.Alloc(-1, F32, n)
	}
	buf := tp.alloc(be, F32, n)
	tp.extra = append(tp.extra, buf)
	return buf
}

// saveZeroed is save for a buffer the op accumulates into.
func (tp *Tape) saveZeroed(be Backend, n int) Buffer {
	buf := tp.save(be, n)
	if tp != nil && tp.free != nil {
		be.Zero(buf)
	}
	return buf
}

// scratch allocates a transient buffer an op frees itself (freeScratch)
// before returning.
func scratch(n int) []float32 { return Alloc(Scratch, n) }

func freeScratch(buf []float32) { Free(Scratch, buf) }

// needsGrad reports whether an op with these inputs must record: the tape
// records and at least one input wants a gradient.
func (tp *Tape) needsGrad(inputs ...*Tensor) bool {
	if !tp.Recording() {
		return false
	}
	for _, x := range inputs {
		if x != nil && x.requiresGrad {
			return true
		}
	}
	return false
}

// record appends out's backward to the tape and marks out as requiring a
// gradient. Buffers from save since the last record belong to this record.
func (tp *Tape) record(out *Tensor, backward func()) {
	out.requiresGrad = true
	tp.records = append(tp.records, record{out: out, backward: backward, saved: tp.extra})
	tp.extra = nil
}

// grad returns x's gradient buffer, allocating it (Scratch, zeroed) for an
// intermediate the first time; nil when x needs no gradient, so a backward
// can skip that input.
func (tp *Tape) grad(x *Tensor) Buffer {
	if x == nil || !x.requiresGrad {
		return nil
	}
	if x.grad == nil {
		if !x.owned {
			panic(fmt.Sprintf("ops: %v requires a gradient but has no gradient buffer", x))
		}
		be := x.buf.Backend()
		if x.grad = tp.reuse(be, Scratch, F32, x.buf.Len()); x.grad != nil {
			be.Zero(x.grad)
		} else {
			x.grad = be.Alloc(Scratch, F32, x.buf.Len())
		}
	}
	return x.grad
}

// Backward seeds d(loss)/d(loss) = 1 for a one-value loss, runs the
// recorded backwards in reverse order, accumulating into every parameter's
// gradient, and then releases the tape (all outputs but loss, whose value
// stays readable). The tape can be reused for the next forward pass.
func (tp *Tape) Backward(loss *Tensor) { tp.BackwardScaled(loss, 1) }

// BackwardScaled is Backward with d(out)/d(loss) = s.
func (tp *Tape) BackwardScaled(loss *Tensor, s float32) {
	if loss.Len() != 1 {
		panic(fmt.Sprintf("ops: Backward of %v, want a single value", loss))
	}
	tp.backward(loss, func(g Buffer) { loss.Backend().Fill(g, s) })
}

// BackwardFrom is Backward with a given gradient of out (a tensor of out's
// size on its backend).
func (tp *Tape) BackwardFrom(out, dOut *Tensor) {
	if dOut.Len() != out.Len() {
		panic(fmt.Sprintf("ops: BackwardFrom %v with a gradient of %d values", out, dOut.Len()))
	}
	mustSameDevice("BackwardFrom", out.Backend(), dOut)
	tp.backward(out, func(g Buffer) { out.Backend().Accumulate(g, dOut.buf) })
}

func (tp *Tape) backward(out *Tensor, seed func(g Buffer)) {
	if tp == nil || !tp.Recording() {
		panic("ops: Backward on a tape that does not record")
	}
	if out.requiresGrad {
		seed(tp.grad(out))
	}
	for i := len(tp.records) - 1; i >= 0; i-- {
		r := &tp.records[i]
		if r.out.grad != nil {
			r.backward()
		}
		// Nothing earlier on the tape reads r's output or saved buffers,
		// so they can go now, bounding the peak to the forward's.
		for _, b := range r.saved {
			tp.drop(Activations, b)
		}
		if r.out != out {
			tp.release(r.out)
		}
		tp.records[i] = record{}
	}
	tp.records = tp.records[:0]
	tp.releaseAll(out)
	if tp.free != nil {
		tp.resets++
		tp.freeOlder(tp.resets - 2)
	}
}

// Reset drops the records and releases all outputs (a forward pass
// without backward, such as an evaluation step).
func (tp *Tape) Reset() {
	if tp == nil {
		return
	}
	for i := range tp.records {
		for _, b := range tp.records[i].saved {
			tp.drop(Activations, b)
		}
		tp.records[i] = record{}
	}
	tp.records = tp.records[:0]
	tp.releaseAll(nil)
	if tp.free != nil {
		tp.resets++
		tp.freeOlder(tp.resets - 2)
	}
}

// releaseAll frees every owned tensor except keep and saved buffers of
// ops that did not record.
func (tp *Tape) releaseAll(keep *Tensor) {
	for _, t := range tp.owned {
		if t != keep {
			tp.release(t)
		}
	}
	clear(tp.owned)
	tp.owned = tp.owned[:0]
	if keep != nil && keep.owned {
		// keep's values stay readable but no longer count as held by the tape.
		be := keep.buf.Backend()
		be.Meter().Add(keep.class, -int64(keep.buf.Len()*keep.buf.DType().Size()))
		if keep.grad != nil {
			be.Free(Scratch, keep.grad)
			keep.grad = nil
		}
		keep.owned = false
	}
	for _, b := range tp.extra {
		tp.drop(tp.activationClass(), b)
	}
	clear(tp.extra)
	tp.extra = tp.extra[:0]
}

// release frees an owned tensor's buffers (once).
func (tp *Tape) release(t *Tensor) {
	if !t.owned {
		return
	}
	tp.drop(t.class, t.buf)
	tp.drop(Scratch, t.grad)
	t.buf, t.grad, t.owned = nil, nil, false
}

// mustMatch panics when two tensors an op combines differ in size
// (a programmer error the tests catch).
func mustMatch(op string, a, b *Tensor) {
	if a.Len() != b.Len() {
		panic(fmt.Sprintf("ops.%s: %v and %v differ in size", op, a, b))
	}
}
