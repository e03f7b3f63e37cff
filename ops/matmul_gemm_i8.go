package ops

import (
	"encoding/binary"
	"math"

	"ladder-engine/gguf"
)

// The int8 batched matmul for Q4_0 and Q8_0 weights (llama.cpp's AVX2
// path multiplies in int8 too): activations quantized to Q8_0 per 32-block,
// and per block and output an exact integer dot Σ q_w·q_a, converted to
// float32 and added with one FMA by d_w·d_a. That is the arithmetic of
// ggml's vec_dot_q4_0_q8_0 / q8_0_q8_0, so results differ from llama.cpp's
// by the float32 summation order over blocks only.
//
// Weights are repacked per call into panels of i8NR = 8 rows (worker
// scratch, like the float GEMM's panels; the GGUF bytes stay as they are):
// per 32-block, 8 chunks of 32 bytes, chunk c holding elements 4c..4c+3 of
// each of the 8 rows (row r at bytes 4r..4r+3), then the 8 row scales as
// float32. One 32-byte load thus feeds 8 weight rows; each activation row
// broadcasts its 4 bytes, VPMADDUBSW multiplies, and the lanes stay the 8
// outputs of the tile: no horizontal sums, and the block's conversion and
// FMA serve 8 outputs. Q4_0 keeps its nibbles unsigned (0..15) so that the
// unsigned operand of VPMADDUBSW needs no sign trick; the −8 offset comes
// back per activation block as −8·Σq_a (i8Act.corr). Q8_0 weights are
// signed bytes and take ggml's sign trick (|w| times a with w's sign).
const (
	i8NR         = 8                // weight rows per panel (the lanes)
	i8MR         = 4                // activation rows per kernel call
	i8BlockBytes = 32*i8NR + 4*i8NR // packed bytes per 32-block of a panel
	i8PanelRows  = 64               // weight rows packed at a time (8 panels, ~55 KiB at 768 columns)
)

// i8Scratch holds the int8 matmul's buffers (guarded by Pool.mmu).
type i8Scratch struct {
	q     []byte    // (nPad, cols) activation int8 values
	d     []float32 // (nPad, cols/32) activation block scales
	corr  []int32   // (nPad, cols/32) integer term added to each block sum
	panel [][]byte  // per worker: i8PanelRows/i8NR packed panels
}

func (s *i8Scratch) bytes() int64 {
	b := int64(cap(s.q)) + 4*int64(cap(s.d)) + 4*int64(cap(s.corr))
	for _, p := range s.panel {
		b += int64(cap(p))
	}
	return b
}

func growBytes(b []byte, n int) []byte {
	if cap(b) < n {
		DefaultMeter.Add(Scratch, int64(n-cap(b)))
		return make([]byte, n)
	}
	return b[:n]
}

func growI32(b []int32, n int) []int32 {
	if cap(b) < n {
		DefaultMeter.Add(Scratch, int64(4*(n-cap(b))))
		return make([]int32, n)
	}
	return b[:n]
}

// i8Kernel computes a tile of the int8 matmul: for i < i8MR, r < i8NR,
// c[i*ldc+r] = Σ_b fma(float32(Σ_k panel(b,r,k)·q[i*lda+32b+k] + corr[i*ldd+b]),
// d[i*ldd+b]·dw(b,r)) over nb blocks, the panel laid out as above.
// Activations must lie in [−127, 127] for Q8_0 (the sign trick; Q8_0
// encoding never gives −128) and in [−128, 127] for Q4_0.
type i8Kernel func(panel []byte, q []byte, lda int, d []float32, corr []int32, ldd, nb int, c []float32, ldc int)

// i8Weight returns w's int8 kernel, and false when it has none (other
// types; builds and CPUs without the assembly, where the float GEMM is
// faster than the Go kernel).
func i8Weight(w *Matrix) (i8Kernel, bool) {
	switch w.Type {
	case gguf.TypeQ4_0:
		return i8KernelQ4_0, i8KernelQ4_0 != nil
	case gguf.TypeQ8_0:
		return i8KernelQ8_0, i8KernelQ8_0 != nil
	}
	return nil, false
}

// matmulGEMMI8 is matmulGEMM for Q4_0/Q8_0 weights with an int8 kernel:
// out (n, Rows) = in (n, Cols) · Wᵀ. Caller holds p.mmu.
func matmulGEMMI8(p *Pool, out, in []float32, n int, w *Matrix, kernel i8Kernel) {
	cols, rows := w.Cols, w.Rows
	nb := cols / 32
	nPad := (n + i8MR - 1) / i8MR * i8MR
	s := &p.gemm.i8
	s.q = growBytes(s.q, nPad*cols)
	s.d = growF32(s.d, nPad*nb)
	s.corr = growI32(s.corr, nPad*nb)
	if len(s.panel) < p.threads {
		s.panel = append(s.panel, make([][]byte, p.threads-len(s.panel))...)
	}
	quantizeActsI8(p, s, in, n, nPad, cols, w.Type == gguf.TypeQ4_0)
	p.ForWorker(rows, i8NR, func(wk, lo, hi int) {
		s.panel[wk] = growBytes(s.panel[wk], i8PanelRows/i8NR*nb*i8BlockBytes)
		var ctile [i8MR * i8NR]float32
		for j0 := lo; j0 < hi; j0 += i8PanelRows {
			j1 := min(j0+i8PanelRows, hi)
			nPanels := (j1 - j0 + i8NR - 1) / i8NR
			for pi := 0; pi < nPanels; pi++ {
				packI8Panel(s.panel[wk][pi*nb*i8BlockBytes:(pi+1)*nb*i8BlockBytes], w, j0+pi*i8NR, min(i8NR, j1-j0-pi*i8NR))
			}
			for i0 := 0; i0 < n; i0 += i8MR {
				q, d, corr := s.q[i0*cols:], s.d[i0*nb:], s.corr[i0*nb:]
				mr := min(i8MR, n-i0)
				for pi := 0; pi < nPanels; pi++ {
					panel := s.panel[wk][pi*nb*i8BlockBytes : (pi+1)*nb*i8BlockBytes]
					r0 := j0 + pi*i8NR
					nr := min(i8NR, j1-r0)
					if mr == i8MR && nr == i8NR {
						kernel(panel, q, cols, d, corr, nb, nb, out[i0*rows+r0:], rows)
						continue
					}
					kernel(panel, q, cols, d, corr, nb, nb, ctile[:], i8NR)
					for i := 0; i < mr; i++ {
						copy(out[(i0+i)*rows+r0:(i0+i)*rows+r0+nr], ctile[i*i8NR:i*i8NR+nr])
					}
				}
			}
		}
	})
}

// quantizeActsI8 encodes the n rows of in as Q8_0 (the weight's dot type,
// as llama.cpp does) and spreads them into s: int8 values, float32 scales,
// and for Q4_0 (offset nibbles) corr = −8·Σq per block. Rows n..nPad-1 are
// zero.
func quantizeActsI8(p *Pool, s *i8Scratch, in []float32, n, nPad, cols int, q4 bool) {
	nb := cols / 32
	enc := p.actScratch(n * 34 * nb)
	p.For(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			corr := s.corr[i*nb : (i+1)*nb]
			quantizeRowI8(in[i*cols:(i+1)*cols], s.q[i*cols:(i+1)*cols], s.d[i*nb:(i+1)*nb], corr, enc[i*34*nb:(i+1)*34*nb])
			for b, sum := range corr {
				if q4 {
					corr[b] = -8 * sum
				} else {
					corr[b] = 0
				}
			}
		}
	})
	clear(s.q[n*cols : nPad*cols])
	clear(s.d[n*nb : nPad*nb])
	clear(s.corr[n*nb : nPad*nb])
}

// quantizeRowI8Go is QuantizeActQ8_0 of x into enc (34 bytes a block),
// spread into q (the int8 values), d (the scales as float32) and sum (Σq
// per block).
func quantizeRowI8Go(x []float32, q []byte, d []float32, sum []int32, enc []byte) {
	if !quantizeActFast(gguf.TypeQ8_0, x, enc) {
		QuantizeActQ8_0(x, enc)
	}
	for b := range d {
		blk := enc[34*b : 34*b+34]
		d[b] = gguf.F16ToF32(binary.LittleEndian.Uint16(blk))
		copy(q[32*b:32*b+32], blk[2:])
		var t int32
		for _, v := range blk[2:] {
			t += int32(int8(v))
		}
		sum[b] = t
	}
}

// packI8Panel writes weight rows j0..j0+nr-1 of w (Q4_0 or Q8_0) into
// panel in the int8 layout; rows nr..i8NR-1 are zero (weights and scales).
func packI8Panel(panel []byte, w *Matrix, j0, nr int) {
	if packI8PanelFast(panel, w, j0, nr) {
		return
	}
	packI8PanelGo(panel, w, j0, nr)
}

// packI8PanelGo is packI8Panel in Go (the reference of packI8PanelFast).
func packI8PanelGo(panel []byte, w *Matrix, j0, nr int) {
	nb := w.Cols / 32
	panel = panel[:nb*i8BlockBytes]
	for r := 0; r < i8NR; r++ {
		if r >= nr {
			for b := 0; b < nb; b++ {
				blk := panel[b*i8BlockBytes : (b+1)*i8BlockBytes]
				for c := 0; c < 8; c++ {
					clear(blk[32*c+4*r : 32*c+4*r+4])
				}
				binary.LittleEndian.PutUint32(blk[32*i8NR+4*r:], 0)
			}
			continue
		}
		row := w.Raw[(j0+r)*w.rowBytes : (j0+r+1)*w.rowBytes]
		for b := 0; b < nb; b++ {
			blk := panel[b*i8BlockBytes : (b+1)*i8BlockBytes]
			var src []byte
			if w.Type == gguf.TypeQ4_0 {
				// byte k holds elements k (low nibble) and k+16 (high):
				// four bytes give chunk c's and chunk c+4's elements.
				src = row[18*b : 18*b+18]
				for c := 0; c < 4; c++ {
					v := binary.LittleEndian.Uint32(src[2+4*c:])
					binary.LittleEndian.PutUint32(blk[32*c+4*r:], v&0x0f0f0f0f)
					binary.LittleEndian.PutUint32(blk[32*(c+4)+4*r:], v>>4&0x0f0f0f0f)
				}
			} else {
				src = row[34*b : 34*b+34]
				for c := 0; c < 8; c++ {
					binary.LittleEndian.PutUint32(blk[32*c+4*r:], binary.LittleEndian.Uint32(src[2+4*c:]))
				}
			}
			dw := gguf.F16ToF32(binary.LittleEndian.Uint16(src))
			binary.LittleEndian.PutUint32(blk[32*i8NR+4*r:], math.Float32bits(dw))
		}
	}
}

// i8KernelGo is the reference int8 tile kernel (the i8Kernel contract):
// exact integer block sums, then one fused multiply-add per block by
// d_a·d_w, in block order, as the assembly does.
func i8KernelGo(signed bool, panel []byte, q []byte, lda int, d []float32, corr []int32, ldd, nb int, c []float32, ldc int) {
	_ = panel[nb*i8BlockBytes-1]
	for i := 0; i < i8MR; i++ {
		var acc [i8NR]float32
		for b := 0; b < nb; b++ {
			blk := panel[b*i8BlockBytes : (b+1)*i8BlockBytes]
			qa := q[i*lda+32*b : i*lda+32*b+32]
			da := d[i*ldd+b]
			for r := 0; r < i8NR; r++ {
				sum := corr[i*ldd+b]
				for k, a := range qa {
					wv := int32(blk[32*(k/4)+4*r+k%4])
					if signed {
						wv = int32(int8(wv))
					}
					sum += wv * int32(int8(a))
				}
				dw := math.Float32frombits(binary.LittleEndian.Uint32(blk[32*i8NR+4*r:]))
				acc[r] = fma32(float32(sum), da*dw, acc[r])
			}
		}
		copy(c[i*ldc:i*ldc+i8NR], acc[:])
	}
}

// fma32 is x·y+z rounded once to float32 (x·y is exact in float64 and the
// double rounding of the sum differs from a fused float32 FMA only on exact
// float64 ties, which tests tolerate).
func fma32(x, y, z float32) float32 { return float32(math.FMA(float64(x), float64(y), float64(z))) }

func i8KernelQ4_0Go(panel []byte, q []byte, lda int, d []float32, corr []int32, ldd, nb int, c []float32, ldc int) {
	i8KernelGo(false, panel, q, lda, d, corr, ldd, nb, c, ldc)
}

func i8KernelQ8_0Go(panel []byte, q []byte, lda int, d []float32, corr []int32, ldd, nb int, c []float32, ldc int) {
	i8KernelGo(true, panel, q, lda, d, corr, ldd, nb, c, ldc)
}
