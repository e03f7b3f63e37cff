package ops

import (
	"encoding/binary"
	"math"

	"ladder-engine/gguf"
)

// The integer batched matmul for Q6_K weights: activations quantized to
// Q8_K (the weight's dot type, as llama.cpp does), and per super-block of
// 256 and output the exact integer Σ_j sc_j·Σ_{16} (q−32)·q_a, converted
// to float32 and added with one fused multiply-add by d_w·d_a. That is the
// arithmetic of ggml's vec_dot_q6_K_q8_K, so results differ from
// llama.cpp's by the float32 summation order over super-blocks only; the
// float GEMM this replaces (Q8_K-rounded activations times decoded
// weights, in float32) computes the same sum with more roundings.
//
// The products are 16-bit: each weight is stored as sc_j·(q−32) (at most
// 128·32 = 4096 in magnitude) and VPMADDWD multiplies pairs of them by
// pairs of activation values, summing into int32 lanes. On CPUs without
// VNNI that costs the same multiplier work per product as the 8-bit
// VPMADDUBSW + VPMADDWD pair, without the sign and offset tricks.
//
// Weights are repacked per call into panels of q6kNR = 16 rows (worker
// scratch; the GGUF bytes stay as they are): per super-block, 128 chunks of
// 64 bytes, chunk p holding elements 2p and 2p+1 of each row as int16 (row
// r at bytes 4r..4r+3 of the first 32 bytes for r < 8, of the second for
// the rest), then the 16 row scales d_w as float32.
const (
	q6kNR         = 16
	q6kMR         = 4
	q6kSuperBytes = 128*64 + 4*q6kNR // packed bytes per super-block of a panel
)

// matmulTrainingHead is MatMul for the LM head's forward in training: a
// Q6_K head (llama-quantize's choice for most types) takes the integer
// kernel. Inference keeps MatMul's float path: the integer sums are
// ggml's, but rounding per super-block instead of per product moves the
// perplexity of random-weight reference models by ~1e-4 relative, and
// synth-gemma2-Q4_K_M sits at 0.096% of its 0.1% limit against llama.cpp
// (750.30; 750.24 with this kernel; llama.cpp 751.02), an offset from
// elsewhere that this would push across.
func matmulTrainingHead(p *Pool, out, in []float32, n int, w *Matrix) {
	if w.Type != gguf.TypeQ6_K || q6kKernelAVX2 == nil || w.F32 != nil || n < gemmMinRows || w.Cols%256 != 0 ||
		len(in) < n*w.Cols || len(out) < n*w.Rows {
		MatMul(p, out, in, n, w)
		return
	}
	p.mmu.Lock()
	defer p.mmu.Unlock()
	matmulGEMMQ6K(p, out, in, n, w, q6kKernelAVX2)
}

// q6kScratch holds the Q6_K matmul's buffers (guarded by Pool.mmu).
type q6kScratch struct {
	a     []int16   // (nPad, cols) activation values
	d     []float32 // (nPad, cols/256) activation scales
	panel [][]byte  // per worker: one panel
}

func (s *q6kScratch) bytes() int64 {
	b := 2*int64(cap(s.a)) + 4*int64(cap(s.d))
	for _, p := range s.panel {
		b += int64(cap(p))
	}
	return b
}

func growI16(b []int16, n int) []int16 {
	if cap(b) < n {
		DefaultMeter.Add(Scratch, int64(2*(n-cap(b))))
		return make([]int16, n)
	}
	return b[:n]
}

// q6kKernel computes a tile: for i < q6kMR, r < q6kNR,
// c[i*ldc+r] (+)= Σ_s fma(float32(Σ_k panel(s,r,k)·a[i*lda+256s+k]), dw(s,r)·d[i*ldd+s])
// over nsb super-blocks, in order; without accumulate c starts at 0.
type q6kKernel func(panel []byte, a []int16, lda int, d []float32, ldd, nsb int, c []float32, ldc int, accumulate bool)

// matmulGEMMQ6K is matmulGEMM for Q6_K weights with an integer kernel:
// out (n, Rows) = in (n, Cols) · Wᵀ. Caller holds p.mmu.
func matmulGEMMQ6K(p *Pool, out, in []float32, n int, w *Matrix, kernel q6kKernel) {
	cols, rows := w.Cols, w.Rows
	nsb := cols / 256
	nPad := (n + q6kMR - 1) / q6kMR * q6kMR
	s := &p.gemm.q6k
	s.a = growI16(s.a, nPad*cols)
	s.d = growF32(s.d, nPad*nsb)
	if len(s.panel) < p.threads {
		s.panel = append(s.panel, make([][]byte, p.threads-len(s.panel))...)
	}
	enc := p.actScratch(n * q8KBlock * nsb)
	p.For(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			e := enc[i*q8KBlock*nsb : (i+1)*q8KBlock*nsb]
			QuantizeActQ8_K(in[i*cols:(i+1)*cols], e)
			for b := 0; b < nsb; b++ {
				blk := e[b*q8KBlock : (b+1)*q8KBlock]
				s.d[i*nsb+b] = math.Float32frombits(binary.LittleEndian.Uint32(blk))
				a := s.a[i*cols+256*b : i*cols+256*b+256]
				for k := range a {
					a[k] = int16(int8(blk[4+k]))
				}
			}
		}
	})
	clear(s.a[n*cols : nPad*cols])
	clear(s.d[n*nsb : nPad*nsb])
	p.ForWorker(rows, q6kNR, func(wk, lo, hi int) {
		s.panel[wk] = growBytes(s.panel[wk], nsb*q6kSuperBytes)
		panel := s.panel[wk]
		var ctile [q6kMR * q6kNR]float32
		for r0 := lo; r0 < hi; r0 += q6kNR {
			nr := min(q6kNR, hi-r0)
			packQ6KPanel(panel, w, r0, nr)
			for i0 := 0; i0 < n; i0 += q6kMR {
				mr := min(q6kMR, n-i0)
				a, d := s.a[i0*cols:], s.d[i0*nsb:]
				if mr == q6kMR && nr == q6kNR {
					kernel(panel, a, cols, d, nsb, nsb, out[i0*rows+r0:], rows, false)
					continue
				}
				kernel(panel, a, cols, d, nsb, nsb, ctile[:], q6kNR, false)
				for i := 0; i < mr; i++ {
					copy(out[(i0+i)*rows+r0:(i0+i)*rows+r0+nr], ctile[i*q6kNR:i*q6kNR+nr])
				}
			}
		}
	})
}

// packQ6KPanel writes weight rows j0..j0+nr-1 of w (Q6_K) into panel in the
// layout above; rows nr..q6kNR-1 are zero (weights and scales).
func packQ6KPanel(panel []byte, w *Matrix, j0, nr int) {
	nsb := w.Cols / 256
	panel = panel[:nsb*q6kSuperBytes]
	var vals [256]int16
	for r := 0; r < q6kNR; r++ {
		half, lane := r/8, r%8
		for s := 0; s < nsb; s++ {
			sb := panel[s*q6kSuperBytes : (s+1)*q6kSuperBytes]
			var dw float32
			if r < nr {
				blk := w.Raw[(j0+r)*w.rowBytes+210*s : (j0+r)*w.rowBytes+210*(s+1)]
				q6KValuesFast(blk, &vals)
				dw = gguf.F16ToF32(binary.LittleEndian.Uint16(blk[208:]))
			} else {
				vals = [256]int16{}
			}
			scatterQ6KPairs(sb, 32*half+4*lane, &vals)
			binary.LittleEndian.PutUint32(sb[128*64+4*r:], math.Float32bits(dw))
		}
	}
}

// q6KValues decodes one Q6_K super-block (210 bytes) into its 256 weights
// without d: sc_j·(q−32), j = element/16 (the layout of dotQ6_KRef).
func q6KValues(x []byte, v *[256]int16) {
	x = x[:210]
	for h := 0; h < 2; h++ {
		ql, qh := x[64*h:64*h+64], x[128+32*h:128+32*h+32]
		for l := 0; l < 32; l++ {
			q := [4]int{
				int(ql[l]&0xf | (qh[l]&3)<<4),
				int(ql[l+32]&0xf | (qh[l]>>2&3)<<4),
				int(ql[l]>>4 | (qh[l]>>4&3)<<4),
				int(ql[l+32]>>4 | (qh[l]>>6)<<4),
			}
			for k, qv := range q {
				e := 128*h + 32*k + l
				v[e] = int16(int(int8(x[192+e/16])) * (qv - 32))
			}
		}
	}
}

// q6KHalfValues is half h of q6KValues (elements 128h..128h+127).
func q6KHalfValues(x []byte, h int, v *[128]int16) {
	var all [256]int16
	q6KValues(x, &all)
	copy(v[:], all[128*h:])
}

// q6kKernelGo is the reference tile kernel (the q6kKernel contract), in
// the assembly's order.
func q6kKernelGo(panel []byte, a []int16, lda int, d []float32, ldd, nsb int, c []float32, ldc int, accumulate bool) {
	_ = panel[nsb*q6kSuperBytes-1]
	for i := 0; i < q6kMR; i++ {
		var acc [q6kNR]float32
		if accumulate {
			copy(acc[:], c[i*ldc:i*ldc+q6kNR])
		}
		for s := 0; s < nsb; s++ {
			sb := panel[s*q6kSuperBytes : (s+1)*q6kSuperBytes]
			av := a[i*lda+256*s : i*lda+256*s+256]
			for r := 0; r < q6kNR; r++ {
				var sum int32
				for p := 0; p < 128; p++ {
					o := 64*p + 32*(r/8) + 4*(r%8)
					sum += int32(int16(binary.LittleEndian.Uint16(sb[o:])))*int32(av[2*p]) +
						int32(int16(binary.LittleEndian.Uint16(sb[o+2:])))*int32(av[2*p+1])
				}
				dw := math.Float32frombits(binary.LittleEndian.Uint32(sb[128*64+4*r:]))
				acc[r] = fma32(float32(sum), dw*d[i*ldd+s], acc[r])
			}
		}
		copy(c[i*ldc:i*ldc+q6kNR], acc[:])
	}
}
