package ops

import (
	"fmt"

	"ladder-engine/gguf"
)

// gemmMinRows is the batch from which MatMul packs weights into panels and
// runs the register-blocked kernel; below it each weight byte serves too few
// activation rows to repay the unpacking, and the row dot kernels
// (bandwidth-bound) are faster.
const gemmMinRows = 4

// Panel geometry of the batched kernel: gemmNR weight rows side by side
// (two 16-lane vectors) times gemmMR activation rows: 10 accumulators, two
// weight vectors and a broadcast fit the 15 vector registers Go's register
// allocator uses (6 rows spill; BenchmarkGemmKernel: 91 vs 115 GFLOP/s per
// core, the one 512-bit FMA port of this CPU kind being the limit).
const (
	gemmNR = 32
	gemmMR = 5
)

// gemmScratch is the pool's reusable buffers for batched matmuls (guarded
// by Pool.mmu): the decoded activations, and per-worker weight panels.
type gemmScratch struct {
	act    []float32       // (n, cols) activations as the dot kernel sees them
	panel  [][]float32     // per worker: (kc, gemmNR) packed weights + a row buffer
	apack  []float32       // the activations in groups of 6 rows (matmulGEMMPacked)
	rows6  [][]float32     // per worker: one group's 6 rounded rows
	i8     i8Scratch       // the int8 path's buffers (matmul_gemm_i8.go)
	q6k    q6kScratch      // the Q6_K integer path's (matmul_gemm_q6k.go)
	q6kBwd []q6kBwdScratch // per worker: its backward's (matmul_gemm_q6k_bwd.go)
}

// sizeWorkers gives panel and rows6 a slot per worker, keeping the
// buffers already there.
func (g *gemmScratch) sizeWorkers(threads int) {
	if n := threads - len(g.panel); n > 0 {
		g.panel = append(g.panel, make([][]float32, n)...)
	}
	if n := threads - len(g.rows6); n > 0 {
		g.rows6 = append(g.rows6, make([][]float32, n)...)
	}
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		DefaultMeter.Add(Scratch, int64(4*(n-cap(b))))
		return make([]float32, n)
	}
	return b[:n]
}

// gemmKC is the depth of one pass: a (kc, 32) float32 panel takes 32 KiB,
// two thirds of a typical L1, and the activations' (n, kc) slice stays in
// L2 while every panel of the worker passes over it. A multiple of 256, the
// largest quantization block.
const gemmKC = 256

// matmulGEMM is MatMul for n >= gemmMinRows: out (n, Rows) = in (n, Cols) · Wᵀ.
// Caller holds p.mmu.
//
// As in llama.cpp, activations are first rounded to the kernel's encoding
// (Q8_0, Q8_1, Q8_K, F16, BF16); we then decode both sides to float32
// (exactly: a half or 8-bit value times an f16 scale fits a float32) and
// run a packed float GEMM (the Goto scheme): weights in panels of 32 rows ×
// kc columns, laid out column-major so one load gives a column of 32 weight
// rows, times 5 activation rows broadcast one value at a time. No
// horizontal sums; each output vector is 16 consecutive outputs. Products
// are exact in float32 (up to one rounding of weights that carry a block
// minimum, d·q − m) and sums are float32, like ggml's dot kernels, so the
// results differ from llama.cpp's by summation order only, except for
// Q4_1/Q5_1, whose minimum term llama.cpp takes from the Q8_1 activation's
// f16-rounded block sum where we use the exact one (~1e-4 relative).
// Q4_0 and Q8_0 weights instead take the int8 path of matmul_gemm_i8.go
// where the CPU has one (AVX2): llama.cpp's arithmetic exactly, faster.
func matmulGEMM(p *Pool, out, in []float32, n int, w *Matrix) {
	matmulGEMMOpt(p, out, in, n, w, false)
}

// matmulGEMMOpt is matmulGEMM; exact skips the activations' rounding to the
// weight's dot-kernel type (training: a smooth function of the input), and
// with it the int8 path, whose products are of the rounded activations.
func matmulGEMMOpt(p *Pool, out, in []float32, n int, w *Matrix, exact bool) {
	if !exact && w.F32 == nil {
		if kernel, ok := i8Weight(w); ok {
			matmulGEMMI8(p, out, in, n, w, kernel)
			return
		}
	}
	if gemmPackedActs {
		matmulGEMMPacked(p, out, in, n, w, exact)
		return
	}
	cols, rows := w.Cols, w.Rows
	g := &p.gemm
	g.sizeWorkers(p.threads)
	a := in
	if w.F32 == nil && !exact {
		g.act = growF32(g.act, n*cols)
		a = g.act
		actBytes, err := gguf.RowSize(w.kernel.ActType, cols)
		if err != nil {
			panic(fmt.Sprintf("ops.MatMul %q: %v", w.Name, err))
		}
		roundActs(p, a, in, n, cols, w.kernel, p.actScratch(n*actBytes), actBytes)
	}
	kc := min(gemmKC, cols)
	// One panel a chunk: a panel is a long task (all n rows), and with
	// ForWorker's four chunks per worker one worker idled for up to a
	// chunk at the end of every product.
	p.ForChunks(rows, gemmNR, func(wk, lo, hi int) {
		g.panel[wk] = growF32(g.panel[wk], kc*gemmNR+kc)
		panel, rowBuf := g.panel[wk][:kc*gemmNR], g.panel[wk][kc*gemmNR:]
		var ctile [gemmMR * gemmNR]float32
		for k0 := 0; k0 < cols; k0 += kc {
			k1 := min(k0+kc, cols)
			depth := k1 - k0
			for j0 := lo; j0 < hi; j0 += gemmNR {
				nr := min(gemmNR, hi-j0)
				packPanel(panel[:depth*gemmNR], rowBuf[:depth], w, j0, nr, k0, k1)
				for i0 := 0; i0 < n; i0 += gemmMR {
					mr := min(gemmMR, n-i0)
					if nr == gemmNR { // full panel: straight into out
						gemmKernel(panel[:depth*gemmNR], a[i0*cols+k0:], cols, depth, mr, out[i0*rows+j0:], rows, k0 > 0)
						continue
					}
					gemmKernel(panel[:depth*gemmNR], a[i0*cols+k0:], cols, depth, mr, ctile[:], gemmNR, false)
					putTile(out[i0*rows+j0:], rows, ctile[:], mr, nr, k0 > 0)
				}
			}
		}
	})
}

// gemmPackedRows is the activation rows per kernel call of
// matmulGEMMPacked.
const gemmPackedRows = 6

// tailParts is how many row ranges matmulGEMMPacked splits each of its
// last panels into.
const tailParts = 4

// matmulGEMMPacked is matmulGEMMOpt where gemmPackedActs (AVX2 without
// AVX-512): the activations, rounded as there, are first packed in groups
// of 6 rows, k-major (packActs6: ap[g·gs + 6k + i] = row 6g+i at k, rows
// past n zero), so that the 6×16 kernel (gemmKernelPacked) reads one
// sequential stream of them instead of six rows cols apart, which shared
// cache sets with each other and the panel. Each output is the same sum in
// the same order as gemmKernelAVX2's (one FMA per term, k ascending, kc
// blocks accumulated in out).
func matmulGEMMPacked(p *Pool, out, in []float32, n int, w *Matrix, exact bool) {
	cols, rows := w.Cols, w.Rows
	g := &p.gemm
	g.sizeWorkers(p.threads)
	const mr6 = gemmPackedRows
	ng := (n + mr6 - 1) / mr6
	gs := mr6*cols + 8 // a group's stride, with room for packActs6's overrun
	g.apack = growF32(g.apack, ng*gs)
	ap := g.apack
	round := w.F32 == nil && !exact
	var enc []byte
	actBytes := 0
	if round {
		var err error
		actBytes, err = gguf.RowSize(w.kernel.ActType, cols)
		if err != nil {
			panic(fmt.Sprintf("ops.MatMul %q: %v", w.Name, err))
		}
		enc = p.actScratch(n * actBytes)
	}
	p.ForWorker(ng, 1, func(wk, lo, hi int) {
		g.rows6[wk] = growF32(g.rows6[wk], mr6*cols)
		tmp := g.rows6[wk]
		for gi := lo; gi < hi; gi++ {
			i0 := gi * mr6
			mr := min(mr6, n-i0)
			src := in[i0*cols:]
			if round || mr < mr6 {
				for i := 0; i < mr; i++ {
					r := i0 + i
					x, y := in[r*cols:(r+1)*cols], tmp[i*cols:(i+1)*cols]
					if round {
						roundActRow(w.kernel, x, y, enc[r*actBytes:(r+1)*actBytes])
					} else {
						copy(y, x)
					}
				}
				clear(tmp[mr*cols:])
				src = tmp
			}
			packActs6(ap[gi*gs:(gi+1)*gs], src, cols, cols)
		}
	})
	kc := min(gemmKC, cols)
	// Work units: one panel (all rows) each, as in matmulGEMMOpt, except
	// the last threads panels, which are split by rows into tailParts units
	// (each packing the panel again) so that the workers finish together:
	// the last units taken are a fraction of a panel.
	panels := (rows + gemmNR - 1) / gemmNR
	tail, parts := 0, 1
	if p.threads > 1 && ng >= 2*tailParts {
		tail, parts = min(panels, p.threads), tailParts
	}
	units := panels - tail + tail*parts
	p.ForChunks(units, 1, func(wk, lo, hi int) {
		g.panel[wk] = growF32(g.panel[wk], kc*gemmNR+kc)
		panel, rowBuf := g.panel[wk][:kc*gemmNR], g.panel[wk][kc*gemmNR:]
		var ctile [mr6 * gemmNR]float32
		for u := lo; u < hi; u++ {
			pi, g0, g1 := u, 0, ng
			if v := u - (panels - tail); v >= 0 {
				pi = panels - tail + v/parts
				g0, g1 = ng*(v%parts)/parts, ng*(v%parts+1)/parts
			}
			j0 := pi * gemmNR
			nr := min(gemmNR, rows-j0)
			for k0 := 0; k0 < cols; k0 += kc {
				k1 := min(k0+kc, cols)
				depth := k1 - k0
				pp := panel[:depth*gemmNR]
				packPanel(pp, rowBuf[:depth], w, j0, nr, k0, k1)
				for gi := g0; gi < g1; gi++ {
					i0 := gi * mr6
					mr := min(mr6, n-i0)
					apg := ap[gi*gs+k0*mr6 : gi*gs+k1*mr6]
					if mr == mr6 && nr == gemmNR { // full tile: straight into out
						gemmKernelPacked(pp, apg, depth, out[i0*rows+j0:], rows, k0 > 0)
						continue
					}
					gemmKernelPacked(pp, apg, depth, ctile[:], gemmNR, false)
					putTile(out[i0*rows+j0:], rows, ctile[:], mr, nr, k0 > 0)
				}
			}
		}
	})
}

// packActs6Go is packActs6: dst[6k+i] = src[i*lda+k] for i < 6, k < cols.
func packActs6Go(dst, src []float32, lda, cols int) {
	for i := range gemmPackedRows {
		row := src[i*lda : i*lda+cols]
		for k, v := range row {
			dst[k*gemmPackedRows+i] = v
		}
	}
}

// gemmKernelPackedGo is gemmKernelPacked's reference: for i < 6, j < 32,
// c[i*ldc+j] (+)= Σ_{k<depth} ap[6k+i]·panel[k*32+j], k ascending.
func gemmKernelPackedGo(panel, ap []float32, depth int, c []float32, ldc int, accumulate bool) {
	for i := range gemmPackedRows {
		o := c[i*ldc : i*ldc+gemmNR]
		for j := range gemmNR {
			var s float32
			if accumulate {
				s = o[j]
			}
			for k := range depth {
				s += ap[k*gemmPackedRows+i] * panel[k*gemmNR+j]
			}
			o[j] = s
		}
	}
}

// matmulBackwardGEMM is MatMulBackwardInput for n >= gemmMinRows:
// dIn (n, Cols) += dOut (n, Rows) · W, the same packed kernel with W's rows
// as the depth: each worker owns a range of dIn's columns (whole blocks),
// dequantizes kc weight rows of that range at a time straight into 32-column
// panels, and accumulates every dIn row's 32 columns through them. Caller
// holds p.mmu.
func matmulBackwardGEMM(p *Pool, dIn, dOut []float32, n int, w *Matrix) {
	if gemmPackedActs {
		matmulBackwardGEMMPacked(p, dIn, dOut, n, w)
		return
	}
	cols, rows := w.Cols, w.Rows
	g := &p.gemm
	g.sizeWorkers(p.threads)
	kc := min(gemmKC, rows)
	align := max(w.Type.BlockSize(), gemmNR)
	p.ForWorker(cols, align, func(wk, c0, c1 int) {
		width := c1 - c0
		nPanels := (width + gemmNR - 1) / gemmNR
		g.panel[wk] = growF32(g.panel[wk], nPanels*kc*gemmNR+width)
		panels, rowBuf := g.panel[wk][:nPanels*kc*gemmNR], g.panel[wk][nPanels*kc*gemmNR:]
		var ctile [gemmMR * gemmNR]float32
		for k0 := 0; k0 < rows; k0 += kc {
			depth := min(kc, rows-k0)
			packRowPanels(panels, rowBuf, w, k0, depth, c0, c1, kc)
			for pi := 0; pi < nPanels; pi++ {
				panel := panels[pi*kc*gemmNR : pi*kc*gemmNR+depth*gemmNR]
				j0 := c0 + pi*gemmNR
				nr := min(gemmNR, c1-j0)
				for i0 := 0; i0 < n; i0 += gemmMR {
					mr := min(gemmMR, n-i0)
					a := dOut[i0*rows+k0:]
					if nr == gemmNR {
						gemmKernel(panel, a, rows, depth, mr, dIn[i0*cols+j0:], cols, true)
						continue
					}
					gemmKernel(panel, a, rows, depth, mr, ctile[:], gemmNR, false)
					putTile(dIn[i0*cols+j0:], cols, ctile[:], mr, nr, true)
				}
			}
		}
	})
}

// matmulBackwardGEMMPacked is matmulBackwardGEMM with the 6-row packed
// kernel (where gemmPackedActs): per kc block of W's rows, each worker
// packs dOut's kc columns in groups of 6 rows, k-major, as
// matmulGEMMPacked packs activations. Full tiles sum as matmulBackwardGEMM
// does (one FMA per term, k ascending within a block, the blocks
// accumulated in dIn); rows in a partial tile (of either path's row
// grouping, 6 here, 5 there) are summed apart and added to dIn, so they
// may differ from it by a rounding.
func matmulBackwardGEMMPacked(p *Pool, dIn, dOut []float32, n int, w *Matrix) {
	gemmAccPacked(p, dIn, dOut, n, w, false)
}

// gemmAccPacked is dst (n, W.Cols) += A·W for W (K = W.Rows, W.Cols) on the
// 6-row packed kernel: A (n, K) is a row-major, or with aT a (K, n)
// row-major matrix read transposed, so the weight gradient of a linear,
// doutᵀ·inp, needs no transposed copies (each k's six values of a group
// are adjacent). Workers share W's columns in units of align (a quant
// block, or a panel); when there are too few units to balance the pool
// (the LM head's 768 columns are three Q6_K blocks; the side network's
// layers three panels), each unit's rows are cut in parts too, and each
// part packs (decodes) the unit's panels again.
func gemmAccPacked(p *Pool, dst, a []float32, n int, w *Matrix, aT bool) {
	cols, rows := w.Cols, w.Rows
	g := &p.gemm
	g.sizeWorkers(p.threads)
	const mr6 = gemmPackedRows
	kc := min(gemmKC, rows)
	ng := (n + mr6 - 1) / mr6
	gs := mr6*kc + 8 // a group's stride, with room for packActs6's overrun
	align := max(w.Type.BlockSize(), gemmNR)
	units := (cols + align - 1) / align
	parts := 1
	if p.threads > 1 && units < 4*p.threads {
		parts = min(ng, (2*p.threads+units-1)/units)
	}
	run := func(wk, c0, c1, g0, g1 int) {
		width := c1 - c0
		nPanels := (width + gemmNR - 1) / gemmNR
		g.panel[wk] = growF32(g.panel[wk], nPanels*kc*gemmNR+width)
		panels, rowBuf := g.panel[wk][:nPanels*kc*gemmNR], g.panel[wk][nPanels*kc*gemmNR:]
		g.rows6[wk] = growF32(g.rows6[wk], (g1-g0)*gs+mr6*kc)
		ap, tmp := g.rows6[wk][:(g1-g0)*gs], g.rows6[wk][(g1-g0)*gs:]
		var ctile [mr6 * gemmNR]float32
		for k0 := 0; k0 < rows; k0 += kc {
			depth := min(kc, rows-k0)
			packRowPanels(panels, rowBuf, w, k0, depth, c0, c1, kc)
			for gi := g0; gi < g1; gi++ {
				i0 := gi * mr6
				mr := min(mr6, n-i0)
				apg := ap[(gi-g0)*gs : (gi-g0+1)*gs]
				if aT {
					packActs6T(apg, a[k0*n+i0:], n, mr, depth)
					continue
				}
				src, lda := a[i0*rows+k0:], rows
				if mr < mr6 {
					for i := 0; i < mr6; i++ {
						t := tmp[i*depth : (i+1)*depth]
						if i < mr {
							copy(t, a[(i0+i)*rows+k0:])
						} else {
							clear(t)
						}
					}
					src, lda = tmp, depth
				}
				packActs6(apg, src, lda, depth)
			}
			for pi := 0; pi < nPanels; pi++ {
				panel := panels[pi*kc*gemmNR : pi*kc*gemmNR+depth*gemmNR]
				j0 := c0 + pi*gemmNR
				nr := min(gemmNR, c1-j0)
				for gi := g0; gi < g1; gi++ {
					i0 := gi * mr6
					mr := min(mr6, n-i0)
					apg := ap[(gi-g0)*gs : (gi-g0)*gs+depth*mr6+2]
					if mr == mr6 && nr == gemmNR {
						gemmKernelPacked(panel, apg, depth, dst[i0*cols+j0:], cols, true)
						continue
					}
					gemmKernelPacked(panel, apg, depth, ctile[:], gemmNR, false)
					putTile(dst[i0*cols+j0:], cols, ctile[:], mr, nr, true)
				}
			}
		}
	}
	if parts == 1 {
		// One range of columns per worker: each range packs all of A again.
		chunk := (units + p.threads - 1) / p.threads * align
		p.ForChunks(cols, chunk, func(wk, c0, c1 int) { run(wk, c0, c1, 0, ng) })
		return
	}
	p.ForChunks(units*parts, 1, func(wk, lo, hi int) {
		for u := lo; u < hi; u++ {
			c0, part := u%units*align, u/units
			run(wk, c0, min(c0+align, cols), part*ng/parts, (part+1)*ng/parts)
		}
	})
}

// packActs6T is packActs6 for A given transposed: dst[6k+i] = src[k*lda+i]
// for i < mr (six values adjacent in src), zero for mr <= i < 6, k < depth.
func packActs6T(dst, src []float32, lda, mr, depth int) {
	for k := range depth {
		d, s := dst[k*gemmPackedRows:(k+1)*gemmPackedRows], src[k*lda:]
		if mr == gemmPackedRows {
			d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
			continue
		}
		clear(d[copy(d[:mr], s[:mr]):])
	}
}

// putTile writes the mr×nr corner of a kernel's tile (rows gemmNR apart)
// into out (rows ld apart), or with add adds it: the partial tiles at the
// GEMMs' edges.
func putTile(out []float32, ld int, ctile []float32, mr, nr int, add bool) {
	for i := 0; i < mr; i++ {
		o, c := out[i*ld:i*ld+nr], ctile[i*gemmNR:i*gemmNR+nr]
		if !add {
			copy(o, c)
			continue
		}
		for j, v := range c {
			o[j] += v
		}
	}
}

// packRowPanels writes columns c0..c1 of W's rows k0..k0+depth-1 into
// the backward GEMMs' panels: panel pi holds columns c0+32pi.. of each row,
// at panels[pi·kc·32 + k·32 + j]; columns past c1 are zero. rowBuf holds
// a decoded row range (c1−c0 values).
func packRowPanels(panels, rowBuf []float32, w *Matrix, k0, depth, c0, c1, kc int) {
	cols, width := w.Cols, c1-c0
	nPanels := (width + gemmNR - 1) / gemmNR
	for k := 0; k < depth; k++ {
		var src []float32
		if w.F32 != nil {
			src = w.F32[(k0+k)*cols+c0 : (k0+k)*cols+c1]
		} else {
			w.dequantizeRange(k0+k, c0, c1, rowBuf)
			src = rowBuf[:width]
		}
		for pi := 0; pi < nPanels; pi++ {
			dst := panels[pi*kc*gemmNR+k*gemmNR : pi*kc*gemmNR+(k+1)*gemmNR]
			m := copy(dst, src[min(pi*gemmNR, width):min((pi+1)*gemmNR, width)])
			clear(dst[m:])
		}
	}
}

// packPanel writes columns [k0,k1) of weight rows j0..j0+nr-1 as float32
// into panel (k1-k0, gemmNR), column-major: panel[k*32+j] = W[j0+j][k0+k].
// Rows past nr are zero.
func packPanel(panel, rowBuf []float32, w *Matrix, j0, nr, k0, k1 int) {
	if packPanelFast(panel, w, j0, nr, k0, k1) {
		return
	}
	packPanelGo(panel, rowBuf, w, j0, nr, k0, k1)
}

// packPanelGo is packPanel row by row: each row decoded into rowBuf
// (len >= k1-k0), then scattered into the panel's column.
func packPanelGo(panel, rowBuf []float32, w *Matrix, j0, nr, k0, k1 int) {
	depth := k1 - k0
	for j := 0; j < gemmNR; j++ {
		var src []float32
		switch {
		case j >= nr:
			for k := 0; k < depth; k++ {
				panel[k*gemmNR+j] = 0
			}
			continue
		case w.F32 != nil:
			src = w.F32[(j0+j)*w.Cols+k0 : (j0+j)*w.Cols+k1]
		default:
			w.dequantizeRange(j0+j, k0, k1, rowBuf)
			src = rowBuf[:depth]
		}
		for k, v := range src {
			panel[k*gemmNR+j] = v
		}
	}
}

// gemmKernelGo is the reference panel kernel: for i < mr, j < 32,
// c[i*ldc+j] (+)= Σ_k a[i*lda+k]·panel[k*32+j]. Eight columns at a time in
// local accumulators, which the compiler keeps in registers.
func gemmKernelGo(panel, a []float32, lda, depth, mr int, c []float32, ldc int, accumulate bool) {
	panel = panel[:depth*gemmNR]
	for i := 0; i < mr; i++ {
		row := a[i*lda : i*lda+depth]
		o := c[i*ldc : i*ldc+gemmNR]
		for j0 := 0; j0 < gemmNR; j0 += 8 {
			var s0, s1, s2, s3, s4, s5, s6, s7 float32
			if accumulate {
				s0, s1, s2, s3, s4, s5, s6, s7 = o[j0], o[j0+1], o[j0+2], o[j0+3], o[j0+4], o[j0+5], o[j0+6], o[j0+7]
			}
			for k, v := range row {
				p := panel[k*gemmNR+j0 : k*gemmNR+j0+8]
				s0 += v * p[0]
				s1 += v * p[1]
				s2 += v * p[2]
				s3 += v * p[3]
				s4 += v * p[4]
				s5 += v * p[5]
				s6 += v * p[6]
				s7 += v * p[7]
			}
			o[j0], o[j0+1], o[j0+2], o[j0+3], o[j0+4], o[j0+5], o[j0+6], o[j0+7] = s0, s1, s2, s3, s4, s5, s6, s7
		}
	}
}

// GemmMR and GemmNR are the tile of GemmKernel: rows of a times columns of
// a packed panel.
const (
	GemmMR = gemmMR
	GemmNR = gemmNR
)

// GemmKernel is the batched matmul's register-blocked kernel, for other
// hot loops (the engine's attention): ctile[i*GemmNR+j] = Σ_{k<depth}
// a[i*lda+k] · panel[k*GemmNR+j] for i < mr (mr <= GemmMR), the panel laid
// out column by column (GemmNR values per k).
func GemmKernel(panel, a []float32, lda, depth, mr int, ctile *[GemmMR * GemmNR]float32) {
	gemmKernel(panel[:depth*gemmNR], a, lda, depth, mr, ctile[:], gemmNR, false)
}
