package ops

import (
	"fmt"
	"sync"
)

// Tensor is a row-major float32 array with an optional gradient. Rows() is
// the product of all dimensions but the last, Cols() the last: every op
// treats a tensor as a (rows, cols) matrix.
//
// Three kinds exist:
//   - frozen inputs (NewTensor): backbone weights or hidden states; no Grad.
//   - parameters (NewParam, ParamFrom): trainable; Grad accumulates over
//     Backward calls until ZeroGrad (gradient accumulation).
//   - op outputs: owned by the Tape that made them; their Data and Grad are
//     released by Backward or Reset.
type Tensor struct {
	Shape []int
	Data  []float32
	Grad  []float32 // nil for frozen tensors; intermediates get one lazily in Backward

	requiresGrad bool
	owned        bool     // Data (and Grad) were allocated by a Tape
	class        MemClass // the meter class Data is counted in, when owned
}

// NewTensor wraps data as a frozen input of the given shape (no copy, not
// counted: the caller owns data). Gradients never flow into it.
func NewTensor(data []float32, shape ...int) *Tensor {
	checkShape(len(data), shape)
	return &Tensor{Shape: shape, Data: data}
}

// NewParam allocates a zeroed trainable parameter, its values counted as
// SideParams and its gradient as Gradients.
func NewParam(shape ...int) *Tensor {
	n := shapeLen(shape)
	return &Tensor{Shape: shape, Data: Alloc(SideParams, n), Grad: Alloc(Gradients, n), requiresGrad: true}
}

// ParamFrom makes a trainable parameter from caller-owned buffers (for
// example views into one llm.c-style allocation of all parameters and one
// of all gradients); they are not counted here.
func ParamFrom(data, grad []float32, shape ...int) *Tensor {
	checkShape(len(data), shape)
	if len(grad) != len(data) {
		panic(fmt.Sprintf("ops.ParamFrom: grad has %d values, data %d", len(grad), len(data)))
	}
	return &Tensor{Shape: shape, Data: data, Grad: grad, requiresGrad: true}
}

// FreeParam returns the meter counts of a NewParam's buffers.
func (t *Tensor) FreeParam() {
	Free(SideParams, t.Data)
	Free(Gradients, t.Grad)
	t.Data, t.Grad = nil, nil
}

// RequiresGrad reports whether gradients flow into t.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// Len is the number of values.
func (t *Tensor) Len() int { return len(t.Data) }

// Cols is the last dimension.
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// Rows is the product of all dimensions but the last.
func (t *Tensor) Rows() int {
	if c := t.Cols(); c > 0 {
		return len(t.Data) / c
	}
	return 0
}

// ZeroGrad clears the gradient (before a new accumulation).
func (t *Tensor) ZeroGrad() {
	clear(t.Grad)
}

func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor%v", t.Shape)
}

func shapeLen(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("ops: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

func checkShape(n int, shape []int) {
	if shapeLen(shape) != n {
		panic(fmt.Sprintf("ops: shape %v does not hold %d values", shape, n))
	}
}

// Tape records differentiable ops as they run eagerly, so Backward can walk
// them in reverse. A nil *Tape is valid and means inference: ops compute
// their outputs (plain, uncounted allocations) and record nothing.
//
// Memory: op outputs and what ops save for backward are counted as
// Activations on a recording tape (Scratch on a no-grad tape); gradients of
// intermediates are counted as Scratch. Backward releases each record's
// buffers as soon as its backward has run; Reset releases everything (a
// forward pass without backward).
type Tape struct {
	// Pool spreads the kernels over workers; nil runs them on the caller.
	Pool *Pool

	noGrad  bool
	records []record
	owned   []*Tensor   // every tensor whose buffers this tape allocated
	extra   [][]float32 // saved buffers not attached to a record (no-grad ops)
}

// record is one op: its output and the closure that pushes out.Grad into
// the inputs' gradients, plus extra buffers it saved (freed after it runs).
type record struct {
	out      *Tensor
	backward func()
	saved    [][]float32
}

// NewTape returns a recording tape whose kernels run on pool (may be nil).
func NewTape(pool *Pool) *Tape { return &Tape{Pool: pool} }

// NewNoGradTape returns a tape that records nothing (evaluation, inference)
// but still counts and releases its outputs (Reset) and uses pool.
func NewNoGradTape(pool *Pool) *Tape { return &Tape{Pool: pool, noGrad: true} }

// Recording reports whether ops on this tape record their backward.
func (tp *Tape) Recording() bool { return tp != nil && !tp.noGrad }

// Len is the number of recorded ops.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.records)
}

// pool returns the tape's pool, or a one-worker pool for kernels that need one.
func (tp *Tape) pool() *Pool {
	if tp != nil && tp.Pool != nil {
		return tp.Pool
	}
	return serialPool()
}

var serialPool = sync.OnceValue(func() *Pool { return NewPool(1) })

// activationClass is the meter class of op outputs and saved buffers.
func (tp *Tape) activationClass() MemClass {
	if tp.noGrad {
		return Scratch
	}
	return Activations
}

// newTensor allocates an op output.
func (tp *Tape) newTensor(shape ...int) *Tensor {
	n := shapeLen(shape)
	if tp == nil {
		return &Tensor{Shape: shape, Data: make([]float32, n)}
	}
	c := tp.activationClass()
	t := &Tensor{Shape: shape, Data: Alloc(c, n), owned: true, class: c}
	tp.owned = append(tp.owned, t)
	return t
}

// newLike allocates an op output shaped like x.
func (tp *Tape) newLike(x *Tensor) *Tensor {
	return tp.newTensor(append([]int(nil), x.Shape...)...)
}

// save allocates a buffer an op keeps for its backward (attention
// probabilities, RMSNorm's 1/rms). It is released with the record made by
// the following call to record, or by Reset.
func (tp *Tape) save(n int) []float32 {
	if tp == nil {
		return make([]float32, n)
	}
	buf := Alloc(tp.activationClass(), n)
	tp.extra = append(tp.extra, buf)
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

// grad returns x's gradient buffer, allocating it (Scratch) for an
// intermediate the first time; nil when x needs no gradient, so a backward
// can skip that input.
func (tp *Tape) grad(x *Tensor) []float32 {
	if x == nil || !x.requiresGrad {
		return nil
	}
	if x.Grad == nil {
		if !x.owned {
			panic(fmt.Sprintf("ops: %v requires a gradient but has no Grad buffer", x))
		}
		x.Grad = Alloc(Scratch, len(x.Data))
	}
	return x.Grad
}

// Backward seeds d(loss)/d(loss) = 1 for a one-value loss, runs the
// recorded backwards in reverse order, accumulating into every parameter's
// Grad, and then releases the tape (all outputs but loss, whose Data stays
// readable). The tape can be reused for the next forward pass.
func (tp *Tape) Backward(loss *Tensor) {
	if len(loss.Data) != 1 {
		panic(fmt.Sprintf("ops: Backward of %v, want a single value", loss))
	}
	tp.BackwardFrom(loss, []float32{1})
}

// BackwardFrom is Backward with a given gradient of out (len(out.Data)).
func (tp *Tape) BackwardFrom(out *Tensor, dOut []float32) {
	if tp == nil || !tp.Recording() {
		panic("ops: Backward on a tape that does not record")
	}
	if out.requiresGrad {
		accumulate(tp.grad(out), dOut)
	}
	for i := len(tp.records) - 1; i >= 0; i-- {
		r := &tp.records[i]
		if r.out.Grad != nil {
			r.backward()
		}
		// Nothing earlier on the tape reads r's output or saved buffers,
		// so they can go now, bounding the peak to the forward's.
		for _, b := range r.saved {
			Free(Activations, b)
		}
		if r.out != out {
			tp.release(r.out)
		}
		tp.records[i] = record{}
	}
	tp.records = tp.records[:0]
	tp.releaseAll(out)
}

// Reset drops the records and releases all outputs (a forward pass
// without backward, such as an evaluation step).
func (tp *Tape) Reset() {
	if tp == nil {
		return
	}
	for i := range tp.records {
		for _, b := range tp.records[i].saved {
			Free(Activations, b)
		}
		tp.records[i] = record{}
	}
	tp.records = tp.records[:0]
	tp.releaseAll(nil)
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
		Free(keep.class, keep.Data)
		if keep.Grad != nil {
			Free(Scratch, keep.Grad)
			keep.Grad = nil
		}
		keep.owned = false
	}
	for _, b := range tp.extra {
		Free(tp.activationClass(), b)
	}
	clear(tp.extra)
	tp.extra = tp.extra[:0]
}

// release frees an owned tensor's buffers (once).
func (tp *Tape) release(t *Tensor) {
	if !t.owned {
		return
	}
	Free(t.class, t.Data)
	if t.Grad != nil {
		Free(Scratch, t.Grad)
	}
	t.Data, t.Grad, t.owned = nil, nil, false
}

// parallel runs fn over [0,n) on the tape's pool, or inline without one.
func (tp *Tape) parallel(n int, fn func(lo, hi int)) {
	if tp == nil || tp.Pool == nil {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	tp.Pool.For(n, fn)
}

// parallelWorker is parallel with the worker index, for per-worker scratch;
// workers() says how many indexes to provide for.
func (tp *Tape) parallelWorker(n int, fn func(worker, lo, hi int)) {
	if tp == nil || tp.Pool == nil {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	tp.Pool.ForWorker(n, 1, fn)
}

func (tp *Tape) workers() int {
	if tp == nil || tp.Pool == nil {
		return 1
	}
	return tp.Pool.Threads()
}

// mustMatch panics when two tensors an op combines differ in size
// (a programmer error the tests catch).
func mustMatch(op string, a, b *Tensor) {
	if len(a.Data) != len(b.Data) {
		panic(fmt.Sprintf("ops.%s: %v and %v differ in size", op, a, b))
	}
}
