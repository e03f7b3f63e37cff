package ladder

import (
	"fmt"

	"ladder-engine/gguf"
	"ladder-engine/ops"
)

// ladderInput keeps one backbone layer's output for a batch, (rows, d), in
// the storage type of Config.LadderType, on the model's backend: the only
// backbone activations kept for the backward pass (dDown = dYᵀ·X). F16/BF16
// halve the memory; the forward always projects the exact f32 values while
// they are at hand.
type ladderInput struct {
	t *ops.Tensor // (rows, d), counted as ops.Activations
}

func newLadderInput(be ops.Backend, typ gguf.Type, rows, d int) *ladderInput {
	return &ladderInput{t: ops.TensorOn(be, ops.Activations, storageDType(typ), rows, d)}
}

// storageDType maps --ladder-type to a buffer type.
func storageDType(typ gguf.Type) ops.DType {
	switch typ {
	case gguf.TypeF16:
		return ops.F16
	case gguf.TypeBF16:
		return ops.BF16
	case gguf.TypeF32:
		return ops.F32
	}
	panic(fmt.Sprintf("ladder: ladder inputs stored as %s", typ)) // Config validation rejects it
}

func (x *ladderInput) free() { x.t.FreeTensor() }

// put stores the n rows of h at row r0 (converted to the storage type).
func (x *ladderInput) put(r0 int, h *ops.Tensor, n int) {
	x.t.Backend().Copy(x.t.RowsView(r0, r0+n).Buf(), h.RowsView(0, n).Buf())
}

// zero clears rows r0..r1-1 (padding).
func (x *ladderInput) zero(r0, r1 int) {
	if r1 > r0 {
		x.t.Backend().Zero(x.t.RowsView(r0, r1).Buf())
	}
}

// rows views the first n rows.
func (x *ladderInput) rows(n int) *ops.Tensor { return x.t.RowsView(0, n) }

// bytes is the memory the kept input takes.
func (x *ladderInput) bytes() int64 { return int64(x.t.Len() * x.t.DType().Size()) }

// downBackward accumulates dw (d_s, d) += dyᵀ (d_s, rows) · x (rows, d):
// the gradient of a ladder projection y = x·wᵀ whose input is frozen (x in
// any float type).
func downBackward(dw, dy, x *ops.Tensor) {
	rows, d, ds := x.Rows(), x.Cols(), dy.Cols()
	dw.Backend().LinearBackwardWeight(dw.GradBuf(), dy.Buf(), x.Buf(), rows, d, ds)
}
