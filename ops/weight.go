package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Weight is "something you can multiply by" (DESIGN.md): a frozen GGUF
// matrix, a trainable f32 matrix, or a frozen matrix plus a LoRA pair. The
// decoder block does not care which.
type Weight interface {
	// Apply returns x·Wᵀ: x (n, InDim) → (n, OutDim), recording on tp what
	// the weight's kind needs for its backward.
	Apply(tp *Tape, x *Tensor) *Tensor
	InDim() int
	OutDim() int
}

// Frozen is a GGUF weight in its file encoding: gradients flow to the
// input only.
type Frozen struct{ M *Matrix }

func (w Frozen) Apply(tp *Tape, x *Tensor) *Tensor { return tp.LinearMatrix(x, w.M) }
func (w Frozen) InDim() int                        { return w.M.Cols }
func (w Frozen) OutDim() int                       { return w.M.Rows }

// Trainable is an f32 matrix (out, in), usually a parameter.
type Trainable struct{ T *Tensor }

func (w Trainable) Apply(tp *Tape, x *Tensor) *Tensor { return tp.Linear(x, w.T) }
func (w Trainable) InDim() int                        { return w.T.Cols() }
func (w Trainable) OutDim() int                       { return w.T.Rows() }

// LoRA is a frozen base weight W (out, in) plus a trainable low-rank
// update: y = x·Wᵀ + Scale·(x·Aᵀ)·Bᵀ with A (r, in) and B (out, r), as PEFT
// and llama.cpp apply it (Scale = alpha/r). Gradients reach x, A and B,
// never W.
type LoRA struct {
	Base  Weight
	A, B  *Tensor
	Scale float32
	// Mask, when set on a recording tape, is dropout on the pair's input
	// (x ⊙ Mask, Mask of x's shape holding 0 or 1/(1-p)), as PEFT's
	// lora_dropout: the base product sees x unchanged.
	Mask *Tensor
}

func (w *LoRA) Apply(tp *Tape, x *Tensor) *Tensor {
	y := w.Base.Apply(tp, x)
	xin := x
	if w.Mask != nil && tp.Recording() {
		xin = tp.Mul(x, w.Mask)
	}
	d := tp.Linear(tp.Linear(xin, w.A), w.B)
	if w.Scale != 1 {
		d = tp.Scale(d, w.Scale)
	}
	return tp.Add(y, d)
}
func (w *LoRA) InDim() int  { return w.Base.InDim() }
func (w *LoRA) OutDim() int { return w.Base.OutDim() }

// NewLoRA makes a LoRA pair of rank r over base on be, initialised as PEFT
// does by default: A from Kaiming-uniform with a = √5 (uniform in
// ±1/√in), B zero, so the adapted weight starts equal to the base.
func NewLoRA(be Backend, base Weight, r int, alpha float32, rng *rand.Rand) *LoRA {
	if r <= 0 {
		panic(fmt.Sprintf("ops.NewLoRA: rank %d", r))
	}
	in, out := base.InDim(), base.OutDim()
	a := ParamOn(be, r, in)
	b := ParamOn(be, out, r)
	bound := 1 / math.Sqrt(float64(in))
	init := make([]float32, r*in)
	for i := range init {
		init[i] = float32((2*rng.Float64() - 1) * bound)
	}
	a.Write(init)
	return &LoRA{Base: base, A: a, B: b, Scale: alpha / float32(r)}
}

// FrozenLoRA is a LoRA pair read from an adapter file, applied at
// inference as llama.cpp's build_lora_mm does: y = x·Wᵀ, then
// y += Scale·((x·Aᵀ)·Bᵀ) with A (r, in) and B (out, r) multiplied in the
// file's encoding (f32, f16 or bf16; ggml_mul_mat rounds the activations
// to f16/bf16 for half weights, and so does LinearMatrix at inference).
// Several adapters stack by nesting: Base may itself be a FrozenLoRA.
type FrozenLoRA struct {
	Base  Weight
	A, B  *Matrix
	Scale float32
}

func (w *FrozenLoRA) Apply(tp *Tape, x *Tensor) *Tensor {
	y := w.Base.Apply(tp, x)
	d := tp.LinearMatrix(tp.LinearMatrix(x, w.A), w.B)
	if w.Scale != 1 {
		d = tp.Scale(d, w.Scale)
	}
	return tp.Add(y, d)
}
func (w *FrozenLoRA) InDim() int  { return w.Base.InDim() }
func (w *FrozenLoRA) OutDim() int { return w.Base.OutDim() }
