package ops

import (
	"fmt"

	"ladder-engine/gguf"
)

// MatMul computes out = in · Wᵀ for a frozen weight in any encoding.
// in is (n, Cols), out is (n, Rows).
//
// As llama.cpp's ggml_compute_forward_mul_mat, every activation row is
// first encoded into the weight's dot-kernel activation type (Q8_0, Q8_K,
// F16, ...), so the numbers match llama.cpp's. Small batches (decoding)
// then dot weight rows with activation rows directly (ops.DotKernel), the
// weight rows split over the pool in tiles that stay in L1 while every
// activation row passes, so each weight byte leaves memory once. Batches of
// gemmMinRows rows or more go through the packed, register-blocked kernel
// of matmul_gemm.go.
func MatMul(p *Pool, out, in []float32, n int, w *Matrix) {
	if n == 0 {
		return
	}
	if len(in) < n*w.Cols || len(out) < n*w.Rows {
		panic(fmt.Sprintf("ops.MatMul %q: in %d / out %d values, want %d×%d / %d×%d", w.Name, len(in), len(out), n, w.Cols, n, w.Rows))
	}
	if w.F32 != nil {
		matmulF32(p, out, in, n, w)
		return
	}
	p.mmu.Lock()
	defer p.mmu.Unlock()
	if n >= gemmMinRows {
		matmulGEMM(p, out, in, n, w)
		return
	}
	k := w.kernel
	encBytes, err := gguf.RowSize(k.ActType, w.Cols)
	if err != nil {
		panic(fmt.Sprintf("ops.MatMul %q: %v", w.Name, err))
	}
	cols, rows := w.Cols, w.Rows
	// Each activation row encoded in the kernel's ActType; then, when the
	// row kernel has a layout of its own, prepared in it, after the encoded
	// rows in the same scratch (rows 64-byte aligned).
	prepOff, prepBytes := 0, 0
	if k.PrepareRows != nil {
		prepOff, prepBytes = (n*encBytes+63)&^63, (k.RowsActBytes(cols)+63)&^63
	}
	scratch := p.actScratch(max(n*encBytes, prepOff+n*prepBytes))
	for i := 0; i < n; i++ {
		x, e := in[i*cols:(i+1)*cols], scratch[i*encBytes:(i+1)*encBytes]
		if !quantizeActFast(k.ActType, x, e) {
			k.Quantize(x, e)
		}
	}
	act, actBytes := scratch, encBytes
	if k.PrepareRows != nil {
		act, actBytes = scratch[prepOff:], prepBytes
		for i := 0; i < n; i++ {
			k.PrepareRows(cols, scratch[i*encBytes:(i+1)*encBytes], act[i*prepBytes:(i+1)*prepBytes])
		}
	}
	tile := weightTileRows(w.rowBytes)
	dotRows, rb := k.DotRows, w.rowBytes
	p.ForWorker(rows, tile, func(_, lo, hi int) {
		if n == 1 { // decoding: no other activation rows to share tiles with
			dotRows(cols, w.Raw[lo*rb:hi*rb], rb, act, out[lo:hi])
			return
		}
		for r0 := lo; r0 < hi; r0 += tile {
			r1 := min(r0+tile, hi)
			for i := 0; i < n; i++ {
				dotRows(cols, w.Raw[r0*rb:r1*rb], rb, act[i*actBytes:(i+1)*actBytes], out[i*rows+r0:i*rows+r1])
			}
		}
	})
}

// weightTileRows is how many weight rows fit in about 16 KiB, a third of a
// typical L1 data cache, leaving room for the activation row.
func weightTileRows(rowBytes int) int {
	return max(1, min(64, 16<<10/max(1, rowBytes)))
}

// matmulF32: out (n, Rows) = in (n, Cols) · Wᵀ, W float32 (Rows, Cols).
// Four weight rows share each load of the activation row.
func matmulF32(p *Pool, out, in []float32, n int, w *Matrix) {
	cols, rows := w.Cols, w.Rows
	if n >= gemmMinRows {
		p.mmu.Lock()
		defer p.mmu.Unlock()
		matmulGEMM(p, out, in, n, w)
		return
	}
	tile := weightTileRows(4*cols) &^ 3
	tile = max(tile, 4)
	p.ForWorker(rows, tile, func(_, lo, hi int) {
		for r0 := lo; r0 < hi; r0 += tile {
			r1 := min(r0+tile, hi)
			for i := 0; i < n; i++ {
				x := in[i*cols : (i+1)*cols]
				o := out[i*rows : (i+1)*rows]
				r := r0
				for ; r+4 <= r1; r += 4 {
					o[r], o[r+1], o[r+2], o[r+3] = dot4F32(
						w.F32[r*cols:(r+1)*cols], w.F32[(r+1)*cols:(r+2)*cols],
						w.F32[(r+2)*cols:(r+3)*cols], w.F32[(r+3)*cols:(r+4)*cols], x)
				}
				for ; r < r1; r++ {
					o[r] = dotF32(w.F32[r*cols:(r+1)*cols], x)
				}
			}
		}
	})
}

// MatMulBackwardInput accumulates the gradient of MatMul's input for a
// frozen weight: dIn (n, Cols) += dOut (n, Rows) · W. Used for the frozen LM
// head and for frozen weights under LoRA. Weight rows are dequantized block
// by block on the fly (no dequantized copy of W); the columns of dIn are
// split over the pool at block boundaries, so workers never write the same
// values. Batches of gemmMinRows rows or more run the batched matmul's
// packed kernel with W's rows as the depth.
func MatMulBackwardInput(p *Pool, dIn, dOut []float32, n int, w *Matrix) {
	if n == 0 {
		return
	}
	if len(dIn) < n*w.Cols || len(dOut) < n*w.Rows {
		panic(fmt.Sprintf("ops.MatMulBackwardInput %q: dIn %d / dOut %d values, want %d×%d / %d×%d", w.Name, len(dIn), len(dOut), n, w.Cols, n, w.Rows))
	}
	p.mmu.Lock()
	defer p.mmu.Unlock()
	if n >= gemmMinRows {
		matmulBackwardGEMM(p, dIn, dOut, n, w)
		return
	}
	cols, rows := w.Cols, w.Rows
	align := max(w.Type.BlockSize(), 16)
	if w.F32 != nil {
		p.ForWorker(cols, align, func(_, c0, c1 int) {
			for r := 0; r < rows; r++ {
				wr := w.F32[r*cols+c0 : r*cols+c1]
				for i := 0; i < n; i++ {
					if g := dOut[i*rows+r]; g != 0 {
						axpyF32(dIn[i*cols+c0:i*cols+c1], g, wr)
					}
				}
			}
		})
		return
	}
	const tile = 8 // weight rows dequantized at once
	p.ForWorker(cols, align, func(worker, c0, c1 int) {
		width := c1 - c0
		buf := p.workerScratch(worker, tile*width)
		for r0 := 0; r0 < rows; r0 += tile {
			r1 := min(r0+tile, rows)
			for r := r0; r < r1; r++ {
				w.dequantizeRange(r, c0, c1, buf[(r-r0)*width:(r-r0+1)*width])
			}
			for i := 0; i < n; i++ {
				d := dIn[i*cols+c0 : i*cols+c1]
				g := dOut[i*rows : (i+1)*rows]
				for r := r0; r < r1; r++ {
					if g[r] != 0 {
						axpyF32(d, g[r], buf[(r-r0)*width:(r-r0+1)*width])
					}
				}
			}
		}
	})
}

// MatMulExact is MatMul without llama.cpp's rounding of the activations
// to 8 bits (or f16): out (n, Rows) = in (n, Cols) · Wᵀ with W dequantized
// block by block and every product in float32, as QLoRA computes with a
// frozen quantized weight. Training takes it, because the rounded product
// is piecewise constant in the input (its steps would break finite-
// difference checks and are no part of the gradient MatMulBackwardInput
// gives).
func MatMulExact(p *Pool, out, in []float32, n int, w *Matrix) {
	if n == 0 {
		return
	}
	if len(in) < n*w.Cols || len(out) < n*w.Rows {
		panic(fmt.Sprintf("ops.MatMulExact %q: in %d / out %d values, want %d×%d / %d×%d", w.Name, len(in), len(out), n, w.Cols, n, w.Rows))
	}
	if w.F32 != nil {
		matmulF32(p, out, in, n, w)
		return
	}
	p.mmu.Lock()
	defer p.mmu.Unlock()
	matmulGEMMOpt(p, out, in, n, w, true)
}

// DotF32 returns Σ x[i]·y[i] over len(x) with the matmul's float32 kernel
// (AVX-512 in the GOEXPERIMENT=simd build), for other packages' hot loops.
func DotF32(x, y []float32) float32 { return dotF32(x, y) }

// AxpyF32 does y += a·x over len(y) with the matmul's float32 kernel.
func AxpyF32(y []float32, a float32, x []float32) { axpyF32(y, a, x) }
