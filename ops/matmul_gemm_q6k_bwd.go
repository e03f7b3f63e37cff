package ops

import (
	"encoding/binary"
	"math"

	"ladder-engine/gguf"
)

// The LM head's backward for a Q6_K head on an integer kernel:
// dIn (n, Cols) += dOut (n, Rows) · W, the sum running over the
// vocabulary. It is the head's forward (matmul_gemm_q6k.go) turned around:
// each weight is the exact int16 sc·(q−32) and VPMADDWD multiplies pairs
// of them (two vocabulary rows) by pairs of gradient values. The float
// GEMM it replaces decodes W to float32 and runs one FMA per product;
// this runs sixteen products per instruction (512 × 32000 × 768 here:
// 107–112 ms against 171–180).
//
// The gradient is what gets rounded. Per row i, per super-block s of
// the columns and per block of q6kBwdBlock vocabulary rows v, the values
// h_v = dOut[i,v]·d_{v,s} (d the weight row's f16 scale) are stored as
// k_v = round(h_v/e) with e = max|h|/q6kBwdMax, so each term is off by
// at most e/2 (2⁻¹³ of the block's largest), and the block's integer sum
// Σ k_v·w_v,j goes back as one fma by e. That is finer than the bf16
// gradients a QLoRA run computes the same product with (8 bits), and the
// same kind of rounding the training forward already applies to the
// activations (Q8_K, 8 bits). Blocks and chunks are added in vocabulary
// order, so the result does not depend on the number of threads.
const (
	q6kBwdMR    = 6    // gradient rows per tile
	q6kBwdBlock = 64   // vocabulary rows per gradient scale (32 pairs)
	q6kBwdKC    = 256  // vocabulary rows packed at once (8 KB per panel)
	q6kBwdMax   = 4095 // |k| ≤ 4095, |w| ≤ 4096: 32 pairs of products stay below 2³¹
)

// Layouts, per chunk of q6kBwdKC vocabulary rows:
//   - panel, per 16 columns j0..j0+15: for each pair t (rows 2t, 2t+1 of
//     the chunk) 64 bytes, the int16 w(2t+par, j0+8h+l) at 32h + 4l + 2par:
//     one 32-byte load is eight columns' pairs, as VPMADDWD takes them.
//   - k, per group of q6kBwdMR gradient rows: row r's q6kBwdKC int16 at
//     r·q6kBwdKC (a pair is one 32-bit broadcast).
//   - e, per group: block b's scales at q6kBwdMR·b + r.

// q6kBwdKernel computes a tile: for r < q6kBwdMR, j < q6kNR, for each of
// nblk blocks in order, c[r*ldc+j] = fma(float32(Σ_{v in block} k(r,v)·w(v,j)), e(b,r), c[r*ldc+j]).
// ldk is the k rows' stride in elements.
type q6kBwdKernel func(panel []byte, k []int16, ldk int, e []float32, nblk int, c []float32, ldc int)

// q6kBwdScratch holds a worker's buffers (guarded by Pool.mmu).
type q6kBwdScratch struct {
	panel []byte    // the chunk's panels for the worker's columns
	k     []int16   // (groups, q6kBwdMR, q6kBwdKC) gradient values
	e     []float32 // (groups, q6kBwdKC/q6kBwdBlock, q6kBwdMR) their scales
	dv    []float32 // the chunk's row scales d of one super-block
}

func (s *q6kBwdScratch) bytes() int64 {
	return int64(cap(s.panel)) + 2*int64(cap(s.k)) + 4*int64(cap(s.e)+cap(s.dv))
}

// matmulTrainingHeadBackward is MatMulBackwardInput for the LM head in
// training: a Q6_K head takes the integer kernel (rounding the gradient
// as above); anything else the float path.
func matmulTrainingHeadBackward(p *Pool, dIn, dOut []float32, n int, w *Matrix) {
	if w.Type != gguf.TypeQ6_K || q6kBwdKernelAVX2 == nil || w.F32 != nil || n < gemmMinRows || w.Cols%256 != 0 ||
		len(dIn) < n*w.Cols || len(dOut) < n*w.Rows {
		MatMulBackwardInput(p, dIn, dOut, n, w)
		return
	}
	p.mmu.Lock()
	defer p.mmu.Unlock()
	q6kBackwardGEMM(p, dIn, dOut, n, w, q6kBwdKernelAVX2, q6kBwdQuant)
}

// q6kBackwardGEMM is the integer backward with the given tile kernel and
// block quantizer. Each worker takes one range of columns (so the
// gradient is rounded once per worker and super-block, not per chunk of a
// finer split) and walks the vocabulary in chunks: pack the chunk's
// weights, then per super-block round the chunk's gradient and run the
// tiles. Caller holds p.mmu.
func q6kBackwardGEMM(p *Pool, dIn, dOut []float32, n int, w *Matrix, kernel q6kBwdKernel, quant func(g, dv []float32, k []int16) float32) {
	cols, rows := w.Cols, w.Rows
	ng := (n + q6kBwdMR - 1) / q6kBwdMR
	const kc, nbk = q6kBwdKC, q6kBwdKC / q6kBwdBlock
	units := cols / 128 // half super-blocks: the packer's unit
	if len(p.gemm.q6kBwd) < p.threads {
		p.gemm.q6kBwd = append(p.gemm.q6kBwd, make([]q6kBwdScratch, p.threads-len(p.gemm.q6kBwd))...)
	}
	p.ForChunks(cols, (units+p.threads-1)/p.threads*128, func(wk, c0, c1 int) {
		s := &p.gemm.q6kBwd[wk]
		nPanels := (c1 - c0) / q6kNR
		s.panel = growBytes(s.panel, nPanels*kc*32)
		s.k = growI16(s.k, ng*q6kBwdMR*kc)
		s.e = growF32(s.e, ng*q6kBwdMR*nbk)
		s.dv = growF32(s.dv, kc)
		// Rows past n stay zero: their tile rows are computed and dropped.
		clear(s.k[n*kc:])
		var g64 [q6kBwdBlock]float32
		var ctile [q6kBwdMR * q6kNR]float32
		for v0 := 0; v0 < rows; v0 += kc {
			depth := min(kc, rows-v0)
			nblk := (depth + q6kBwdBlock - 1) / q6kBwdBlock
			packQ6KBwdPanels(s.panel, w, v0, depth, nblk*q6kBwdBlock, c0, c1)
			for sb := c0 / 256; sb*256 < c1; sb++ {
				dv := s.dv[:nblk*q6kBwdBlock]
				clear(dv)
				for v := 0; v < depth; v++ {
					dv[v] = gguf.F16ToF32(binary.LittleEndian.Uint16(w.Raw[(v0+v)*w.rowBytes+210*sb+208:]))
				}
				for i := 0; i < n; i++ {
					g := dOut[i*rows+v0 : i*rows+v0+depth]
					gr, r := i/q6kBwdMR, i%q6kBwdMR
					kr := s.k[(gr*q6kBwdMR+r)*kc:]
					er := s.e[gr*q6kBwdMR*nbk:]
					for b := 0; b < nblk; b++ {
						blk := g[b*q6kBwdBlock : min(depth, (b+1)*q6kBwdBlock)]
						if len(blk) < q6kBwdBlock {
							g64 = [q6kBwdBlock]float32{}
							copy(g64[:], blk)
							blk = g64[:]
						}
						er[q6kBwdMR*b+r] = quant(blk, dv[b*q6kBwdBlock:], kr[b*q6kBwdBlock:])
					}
				}
				for j := max(c0, 256*sb); j < min(c1, 256*sb+256); j += q6kNR {
					panel := s.panel[(j-c0)/q6kNR*kc*32:][:nblk*q6kBwdBlock*32]
					for gr := 0; gr < ng; gr++ {
						i0 := gr * q6kBwdMR
						kg := s.k[i0*kc:]
						eg := s.e[gr*q6kBwdMR*nbk:]
						if i0+q6kBwdMR <= n {
							kernel(panel, kg, kc, eg, nblk, dIn[i0*cols+j:], cols)
							continue
						}
						mr := n - i0
						ctile = [q6kBwdMR * q6kNR]float32{}
						for r := 0; r < mr; r++ {
							copy(ctile[r*q6kNR:(r+1)*q6kNR], dIn[(i0+r)*cols+j:])
						}
						kernel(panel, kg, kc, eg, nblk, ctile[:], q6kNR)
						for r := 0; r < mr; r++ {
							copy(dIn[(i0+r)*cols+j:(i0+r)*cols+j+q6kNR], ctile[r*q6kNR:])
						}
					}
				}
			}
		}
	})
}

// packQ6KBwdPanels writes rows v0..v0+depth−1, columns c0..c1−1 (whole
// half super-blocks) of w into the panels (layout above), rows
// depth..pad−1 as zeros: two rows' halves decoded, then interleaved.
func packQ6KBwdPanels(panel []byte, w *Matrix, v0, depth, pad, c0, c1 int) {
	const stride = q6kBwdKC * 32 // bytes per panel
	var a, b [128]int16
	half := func(v, h0 int, dst *[128]int16) {
		if v >= depth {
			*dst = [128]int16{}
			return
		}
		o := (v0+v)*w.rowBytes + 210*(h0/256)
		q6KHalfValuesFast(w.Raw[o:o+210], h0/128%2, dst)
	}
	for t := 0; t < pad/2; t++ {
		for h0 := c0; h0 < c1; h0 += 128 {
			half(2*t, h0, &a)
			half(2*t+1, h0, &b)
			q6kBwdInterleave(panel[(h0-c0)/q6kNR*stride+64*t:], stride, &a, &b)
		}
	}
}

// q6kBwdInterleaveGo writes one pair of rows, a and b (128 columns), into
// eight panels stride bytes apart: column l of a panel at 32(l/8) + 4(l%8),
// a's value then b's.
func q6kBwdInterleaveGo(dst []byte, stride int, a, b *[128]int16) {
	for p := 0; p < 8; p++ {
		for l := 0; l < q6kNR; l++ {
			o := p*stride + 32*(l/8) + 4*(l%8)
			binary.LittleEndian.PutUint16(dst[o:], uint16(a[q6kNR*p+l]))
			binary.LittleEndian.PutUint16(dst[o+2:], uint16(b[q6kNR*p+l]))
		}
	}
}

// q6kBwdQuantGo rounds one block: k = round(g·dv/e) with e = max|g·dv|/q6kBwdMax
// (0 and all-zero k when the block is zero); it returns e. A value that is
// not finite makes e NaN (k zero), so a diverged gradient stays NaN
// through the product instead of turning into integers.
func q6kBwdQuantGo(g, dv []float32, k []int16) float32 {
	var h [q6kBwdBlock]float32
	var amax float32
	for v := range h {
		h[v] = g[v] * dv[v]
		if math.IsNaN(float64(h[v])) || math.IsInf(float64(h[v]), 0) {
			clear(k[:q6kBwdBlock])
			return float32(math.NaN())
		}
		amax = max(amax, float32(math.Abs(float64(h[v]))))
	}
	k = k[:q6kBwdBlock]
	if amax == 0 {
		clear(k)
		return 0
	}
	inv := q6kBwdMax / amax
	for v := range h {
		k[v] = int16(math.RoundToEven(float64(h[v] * inv)))
	}
	return amax / q6kBwdMax
}

// q6kBwdKernelGo is the reference tile kernel (the q6kBwdKernel contract).
func q6kBwdKernelGo(panel []byte, k []int16, ldk int, e []float32, nblk int, c []float32, ldc int) {
	_ = panel[nblk*q6kBwdBlock*32-1]
	for r := 0; r < q6kBwdMR; r++ {
		for b := 0; b < nblk; b++ {
			for j := 0; j < q6kNR; j++ {
				var sum int32
				for v := b * q6kBwdBlock; v < (b+1)*q6kBwdBlock; v++ {
					x := int16(binary.LittleEndian.Uint16(panel[64*(v/2)+32*(j/8)+4*(j%8)+2*(v%2):]))
					sum += int32(x) * int32(k[r*ldk+v])
				}
				c[r*ldc+j] = fma32(float32(sum), e[q6kBwdMR*b+r], c[r*ldc+j])
			}
		}
	}
}
