package ladder

import (
	"fmt"

	"ladder-engine/gguf"
	"ladder-engine/ops"
)

// ladderInput keeps one backbone layer's output for a batch, (rows, d), in
// the storage type of Config.LadderType: the only backbone activations kept
// for the backward pass (dDown = dYᵀ·X). F16/BF16 halve the memory; the
// forward always projects the exact f32 values while they are at hand.
type ladderInput struct {
	typ  gguf.Type
	d    int
	rows int
	f32  []float32 // F32 storage (ops.Activations)
	raw  []byte    // F16/BF16 storage (counted as ops.Activations)
}

func newLadderInput(typ gguf.Type, rows, d int) *ladderInput {
	x := &ladderInput{typ: typ, d: d, rows: rows}
	if typ == gguf.TypeF32 {
		x.f32 = ops.Alloc(ops.Activations, rows*d)
	} else {
		x.raw = make([]byte, rows*d*2)
		ops.DefaultMeter.Add(ops.Activations, int64(len(x.raw)))
	}
	return x
}

func (x *ladderInput) free() {
	ops.Free(ops.Activations, x.f32)
	ops.DefaultMeter.Add(ops.Activations, -int64(len(x.raw)))
	x.f32, x.raw = nil, nil
}

// put stores n rows of h at row r0.
func (x *ladderInput) put(r0 int, h []float32, n int) {
	d := x.d
	if x.f32 != nil {
		copy(x.f32[r0*d:(r0+n)*d], h[:n*d])
		return
	}
	if err := gguf.Quantize(x.typ, h[:n*d], x.raw[r0*d*2:(r0+n)*d*2]); err != nil {
		panic(fmt.Sprintf("ladder: storing ladder input as %s: %v", x.typ, err))
	}
}

// zero clears rows r0..r1-1 (padding).
func (x *ladderInput) zero(r0, r1 int) {
	if r1 <= r0 {
		return
	}
	if x.f32 != nil {
		clear(x.f32[r0*x.d : r1*x.d])
	} else {
		clear(x.raw[r0*x.d*2 : r1*x.d*2])
	}
}

// matrix views the first rows rows as an ops.Matrix (rows, d) in its
// storage type, for MatMulBackwardInput.
func (x *ladderInput) matrix(rows int) *ops.Matrix {
	if x.f32 != nil {
		return ops.NewMatrixF32("ladder_input", rows, x.d, x.f32[:rows*x.d])
	}
	m, err := ops.NewMatrix("ladder_input", x.typ, rows, x.d, x.raw[:rows*x.d*2])
	if err != nil {
		panic(fmt.Sprintf("ladder: %v", err))
	}
	return m
}

// downBackward accumulates dw (d_s, d) += dyᵀ (d_s, rows) · x (rows, d):
// the gradient of a ladder projection y = x·wᵀ whose input is frozen.
// dyT is scratch of d_s·rows values.
func downBackward(p *ops.Pool, dw, dy, dyT []float32, x *ops.Matrix, rows, ds int) {
	for r := 0; r < rows; r++ {
		for o := 0; o < ds; o++ {
			dyT[o*rows+r] = dy[r*ds+o]
		}
	}
	ops.MatMulBackwardInput(p, dw, dyT[:ds*rows], ds, x)
}
