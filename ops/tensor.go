package ops

import (
	"fmt"
)

// Tensor is a row-major array in a backend's buffer, with an optional
// gradient buffer on the same backend. Rows() is the product of all
// dimensions but the last, Cols() the last: every op treats a tensor as a
// (rows, cols) matrix.
//
// Three kinds exist:
//   - frozen inputs (NewTensor, TensorOn): backbone weights or hidden
//     states; no gradient.
//   - parameters (NewParam, ParamFrom, ParamOn): trainable; the gradient
//     accumulates over Backward calls until ZeroGrad (gradient accumulation).
//   - op outputs: owned by the Tape that made them; their buffers are
//     released by Backward or Reset.
//
// Host access is explicit: Read and Write copy out and in on any backend
// (a read waits for queued work); F32 and GradF32 are live views that exist
// only for tensors of the CPU backend.
type Tensor struct {
	Shape []int

	buf, grad    Buffer
	requiresGrad bool
	owned        bool     // buf (and grad) were allocated by a Tape
	class        MemClass // the meter class buf is counted in, when owned
}

// NewTensor wraps host data as a frozen tensor of the CPU backend (no copy,
// not counted: the caller owns data). Gradients never flow into it.
func NewTensor(data []float32, shape ...int) *Tensor {
	checkShape(len(data), shape)
	return &Tensor{Shape: shape, buf: DefaultCPU().wrap(data)}
}

// TensorOn allocates a zeroed frozen tensor on be, counted in class c;
// FreeTensor returns the count.
func TensorOn(be Backend, c MemClass, dt DType, shape ...int) *Tensor {
	return &Tensor{Shape: shape, buf: be.Alloc(c, dt, shapeLen(shape)), class: c}
}

// TensorFrom makes a frozen tensor over an existing buffer (a view, not
// counted again).
func TensorFrom(buf Buffer, shape ...int) *Tensor {
	checkShape(buf.Len(), shape)
	return &Tensor{Shape: shape, buf: buf}
}

// FreeTensor returns the meter count of a TensorOn.
func (t *Tensor) FreeTensor() {
	if t.buf != nil {
		t.buf.Backend().Free(t.class, t.buf)
	}
	t.buf = nil
}

// NewParam allocates a zeroed trainable parameter on the CPU backend, its
// values counted as SideParams and its gradient as Gradients.
func NewParam(shape ...int) *Tensor { return ParamOn(DefaultCPU(), shape...) }

// ParamOn allocates a zeroed trainable parameter on be.
func ParamOn(be Backend, shape ...int) *Tensor {
	n := shapeLen(shape)
	return &Tensor{Shape: shape, buf: be.Alloc(SideParams, F32, n), grad: be.Alloc(Gradients, F32, n), requiresGrad: true}
}

// ParamFrom makes a trainable CPU parameter from caller-owned host slices
// (views into one llm.c-style allocation, say); they are not counted here.
func ParamFrom(data, grad []float32, shape ...int) *Tensor {
	cpu := DefaultCPU()
	return ParamFromBuffers(cpu.wrap(data), cpu.wrap(grad), shape...)
}

// ParamFromBuffers makes a trainable parameter from buffers of one backend
// (views into one allocation of values and one of gradients).
func ParamFromBuffers(data, grad Buffer, shape ...int) *Tensor {
	checkShape(data.Len(), shape)
	if grad.Len() != data.Len() {
		panic(fmt.Sprintf("ops.ParamFromBuffers: grad has %d values, data %d", grad.Len(), data.Len()))
	}
	if grad.Backend().Device() != data.Backend().Device() {
		panic(fmt.Sprintf("ops.ParamFromBuffers: data on %s, grad on %s", data.Backend().Device(), grad.Backend().Device()))
	}
	return &Tensor{Shape: shape, buf: data, grad: grad, requiresGrad: true}
}

// FreeParam returns the meter counts of a NewParam's buffers.
func (t *Tensor) FreeParam() {
	be := t.buf.Backend()
	be.Free(SideParams, t.buf)
	be.Free(Gradients, t.grad)
	t.buf, t.grad = nil, nil
}

// RequiresGrad reports whether gradients flow into t.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// Backend is the backend t's buffer belongs to.
func (t *Tensor) Backend() Backend { return t.buf.Backend() }

// Buf is t's buffer (for a backend's kernels and for views).
func (t *Tensor) Buf() Buffer { return t.buf }

// GradBuf is t's gradient buffer, nil when it has none (yet).
func (t *Tensor) GradBuf() Buffer { return t.grad }

// DType is the element type of t's buffer.
func (t *Tensor) DType() DType { return t.buf.DType() }

// Len is the number of values.
func (t *Tensor) Len() int {
	if t.buf == nil {
		return 0
	}
	return t.buf.Len()
}

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
		return t.Len() / c
	}
	return 0
}

// RowsView returns a frozen view of rows r0..r1-1 (no copy, no gradient).
func (t *Tensor) RowsView(r0, r1 int) *Tensor {
	c := t.Cols()
	return &Tensor{Shape: []int{r1 - r0, c}, buf: t.buf.Slice(r0*c, (r1-r0)*c)}
}

// ZeroGrad clears the gradient (before a new accumulation).
func (t *Tensor) ZeroGrad() {
	if t.grad != nil {
		t.grad.Backend().Zero(t.grad)
	}
}

// F32 is the live host view of a CPU tensor's values. It panics for a
// tensor of any other backend: there the values are reachable only by
// copying (Read, Write).
func (t *Tensor) F32() []float32 { return hostF32(t.buf) }

// GradF32 is the live host view of a CPU tensor's gradient (nil when none).
func (t *Tensor) GradF32() []float32 { return hostF32(t.grad) }

// Read copies the values out to a new host slice (waits for queued work).
func (t *Tensor) Read() []float32 {
	out := make([]float32, t.Len())
	t.buf.Backend().Download(out, t.buf)
	return out
}

// ReadInto copies the values out into dst (len t.Len()).
func (t *Tensor) ReadInto(dst []float32) { t.buf.Backend().Download(dst, t.buf) }

// ReadGrad copies the gradient out into dst (len t.Len()).
func (t *Tensor) ReadGrad(dst []float32) { t.grad.Backend().Download(dst, t.grad) }

// Write copies src (len t.Len()) in.
func (t *Tensor) Write(src []float32) { t.buf.Backend().Upload(t.buf, src) }

// WriteGrad copies src (len t.Len()) into the gradient.
func (t *Tensor) WriteGrad(src []float32) { t.grad.Backend().Upload(t.grad, src) }

// Scalar reads value 0 (a loss): a host read, so it waits.
func (t *Tensor) Scalar() float32 {
	var v [1]float32
	t.buf.Backend().Download(v[:], t.buf.Slice(0, 1))
	return v[0]
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
