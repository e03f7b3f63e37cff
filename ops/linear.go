package ops

import (
	"fmt"
	"unsafe"

	"ladder-engine/gguf"
)

// Linear computes x·wᵀ: x (n, in), w (out, in) → (n, out), llama's
// convention (ggml_mul_mat with the weight's rows as output features).
// w is usually a trainable parameter; x may be frozen (a backbone hidden
// state, in f32, f16 or bf16) or an intermediate.
func (tp *Tape) Linear(x, w *Tensor) *Tensor {
	be := tp.backendFor("Linear", x, w)
	in, outF := w.Cols(), w.Rows()
	if x.Cols() != in {
		panic(fmt.Sprintf("ops.Linear: input %v, weight %v: want input columns %d", x, w, in))
	}
	n := x.Rows()
	out := tp.newTensor(be, append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), outF)...)
	be.LinearF32(out.buf, x.buf, w.buf, n, in, outF)
	if tp.needsGrad(x, w) {
		tp.record(out, func() {
			if dx := tp.grad(x); dx != nil {
				be.LinearBackwardInput(dx, out.grad, w.buf, n, in, outF)
			}
			if dw := tp.grad(w); dw != nil {
				be.LinearBackwardWeight(dw, out.grad, x.buf, n, in, outF)
			}
		})
	}
	return out
}

// LinearMatrix computes x·wᵀ for a frozen weight in any GGUF encoding
// (the LM head, backbone weights under LoRA): x (n, w.Cols) → (n, w.Rows).
// The gradient flows to x only. Inference rounds x as llama.cpp does (to
// the weight's 8-bit or f16 activation type); when x needs a gradient the
// product is exact (MatMulExact), QLoRA's numerics.
func (tp *Tape) LinearMatrix(x *Tensor, w *Matrix) *Tensor {
	be := tp.backendFor("LinearMatrix", x)
	if x.Cols() != w.Cols {
		panic(fmt.Sprintf("ops.LinearMatrix: input %v, weight %q (%d×%d): want input columns %d", x, w.Name, w.Rows, w.Cols, w.Cols))
	}
	n := x.Rows()
	out := tp.newTensor(be, append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), w.Rows)...)
	if tp.needsGrad(x) {
		be.MatMulExact(out.buf, x.buf, n, w)
	} else {
		be.MatMul(out.buf, x.buf, n, w)
	}
	if tp.needsGrad(x) {
		tp.record(out, func() { be.MatMulBackwardInput(tp.grad(x), out.grad, n, w) })
	}
	return out
}

// linearForward: out (n, oc) = inp (n, c) · weightᵀ, weight (oc, c).
// The float32 weight goes through the same kernel as a frozen F32 matrix.
func linearForward(p *Pool, out, inp, weight []float32, n, c, oc int) {
	MatMul(p, out, inp, n, NewMatrixF32("", oc, c, weight))
}

// linearBackward accumulates dinp (n, c) += dout (n, oc) · weight and
// dweight (oc, c) += doutᵀ · inp. Either may be nil when not wanted.
// Where the 6-row packed kernel runs (gemmPackedActs), both products are
// its accumulating GEMM on the operands as they lie (dout read transposed
// for dweight). Elsewhere they go through the forward's kernel on
// transposed copies (dot products of contiguous rows, several outputs per
// load), which runs about twice as fast as accumulating outer products
// row by row.
func linearBackward(p *Pool, dinp, dweight, dout, inp, weight []float32, n, c, oc int) {
	if gemmPackedActs && n >= gemmMinRows {
		p.mmu.Lock()
		defer p.mmu.Unlock()
		if dinp != nil {
			gemmAccPacked(p, dinp, dout, n, NewMatrixF32("", oc, c, weight[:oc*c]), false)
		}
		if dweight != nil {
			gemmAccPacked(p, dweight, dout, oc, NewMatrixF32("", n, c, inp[:n*c]), true)
		}
		return
	}
	if dinp != nil {
		wT := scratch(c * oc) // (c, oc)
		transposeF32(p, wT, weight, oc, c)
		tmp := scratch(n * c)
		MatMul(p, tmp, dout, n, NewMatrixF32("", c, oc, wT)) // dout · (wT)ᵀ = dout · weight
		accumulate(dinp, tmp)
		freeScratch(tmp)
		freeScratch(wT)
	}
	if dweight != nil {
		doutT := scratch(oc * n) // (oc, n)
		transposeF32(p, doutT, dout, n, oc)
		inpT := scratch(c * n) // (c, n)
		transposeF32(p, inpT, inp, n, c)
		tmp := scratch(oc * c)
		MatMul(p, tmp, doutT, oc, NewMatrixF32("", c, n, inpT)) // doutᵀ · inp
		accumulate(dweight, tmp)
		freeScratch(tmp)
		freeScratch(inpT)
		freeScratch(doutT)
	}
}

// transposeF32 writes dst (cols, rows) = srcᵀ, src (rows, cols), in
// cache-sized tiles, split over the pool by source columns.
func transposeF32(p *Pool, dst, src []float32, rows, cols int) {
	const tile = 32
	p.For((cols+tile-1)/tile, func(lo, hi int) {
		for c0 := lo * tile; c0 < min(hi*tile, cols); c0 += tile {
			c1 := min(c0+tile, cols)
			for r0 := 0; r0 < rows; r0 += tile {
				r1 := min(r0+tile, rows)
				for r := r0; r < r1; r++ {
					row := src[r*cols : r*cols+cols]
					for j := c0; j < c1; j++ {
						dst[j*rows+r] = row[j]
					}
				}
			}
		}
	})
}

// BF16Weight is a trainable weight kept twice: the f32 master (a parameter
// the optimizer updates, gradients accumulate in f32) and a bf16 copy the
// forward and the input gradient multiply with, as mixed-precision training
// does on accelerators. Call Sync after every optimizer step.
type BF16Weight struct {
	Master *Tensor  // (rows, cols) f32 parameter
	Half   *Matrix  // bf16 copy of Master.Data
	raw    []uint16 // Half's storage, counted as SideParams
}

// NewBF16Weight makes the bf16 copy of master (rows, cols) and syncs it.
func NewBF16Weight(name string, master *Tensor) *BF16Weight {
	hostF32(master.buf) // CPU only
	rows, cols := master.Rows(), master.Cols()
	raw := make([]uint16, rows*cols)
	DefaultMeter.Add(SideParams, int64(2*len(raw)))
	m, err := NewMatrix(name, gguf.TypeBF16, rows, cols, uint16Bytes(raw))
	if err != nil {
		panic(fmt.Sprintf("ops.NewBF16Weight %q: %v", name, err)) // bf16 has a kernel; cannot fail
	}
	w := &BF16Weight{Master: master, Half: m, raw: raw}
	w.Sync()
	return w
}

// Sync rounds the master weights into the bf16 copy (nearest even).
func (w *BF16Weight) Sync() {
	if err := gguf.Quantize(gguf.TypeBF16, w.Master.F32(), w.Half.Raw); err != nil {
		panic(fmt.Sprintf("ops: bf16 weight %q: %v", w.Half.Name, err))
	}
}

// Free returns the bf16 copy's meter count (the master is the caller's).
func (w *BF16Weight) Free() {
	DefaultMeter.Add(SideParams, -int64(2*len(w.raw)))
	w.raw, w.Half = nil, nil
}

func uint16Bytes(u []uint16) []byte {
	if len(u) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&u[0])), 2*len(u))
}

// LinearBF16 is Linear with the bf16 copy of w in the products: x (n, cols)
// → (n, rows). The weight gradient is the f32 doutᵀ·x into w.Master's
// gradient. (CPU backend: the bf16 copy is a host Matrix.)
func (tp *Tape) LinearBF16(x *Tensor, w *BF16Weight) *Tensor {
	be := tp.backendFor("LinearBF16", x, w.Master)
	out := tp.LinearMatrix(x, w.Half)
	if !tp.needsGrad(w.Master) {
		return out
	}
	n, c, oc := x.Rows(), w.Half.Cols, w.Half.Rows
	if !out.requiresGrad { // x frozen: LinearMatrix recorded nothing
		tp.record(out, func() { be.LinearBackwardWeight(tp.grad(w.Master), out.grad, x.buf, n, c, oc) })
		return out
	}
	// LinearMatrix recorded the input gradient; add the weight's to it.
	r := &tp.records[len(tp.records)-1]
	inputBackward := r.backward
	r.backward = func() {
		inputBackward()
		be.LinearBackwardWeight(tp.grad(w.Master), out.grad, x.buf, n, c, oc)
	}
	return out
}
