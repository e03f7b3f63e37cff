//go:build goexperiment.simd && amd64

package ops

import (
	"math"
	"simd/archsimd"
	"unsafe"
)

// attnBcastLen is the scratch scoresT and rankT take: each coefficient
// broadcast to 8 lanes once per block, so that the inner loops load
// vectors and no scalar float instruction sits among the vector ones (see
// softmaxRowAVX2 on this CPU's transition stalls).
func attnBcastLen(hd int) int { return attnBlock * hd * 8 }

func scoresT(out *[attnBlock][]float32, c, mT []float32, stride, hd, lo, hi int, bc []float32) {
	if !hasAVX2 || hi-lo < 8 {
		scoresTGo(out, c, mT, stride, hd, lo, hi)
		return
	}
	scoresTAVX2(out, c, mT, stride, hd, lo, hi, bc)
}

func dotsT4(out []float32, x *[attnBlock][]float32, mT []float32, stride, hd, lo, hi int) {
	if !hasAVX2 || hi-lo < 8 {
		dotsT4Go(out, x, mT, stride, hd, lo, hi)
		return
	}
	dotsT4AVX2(out, x, mT, stride, hd, lo, hi)
}

func rankT(mT []float32, stride, hd int, c []float32, x *[attnBlock][]float32, lo, hi int, bc []float32) {
	if !hasAVX2 || hi-lo < 8 {
		rankTGo(mT, stride, hd, c, x, lo, hi)
		return
	}
	rankTAVX2(mT, stride, hd, c, x, lo, hi, bc)
}

// broadcastCoefs writes each of c's attnBlock·hd values 8 times into bc,
// moving bits through integer registers.
func broadcastCoefs(bc, c []float32, hd int) unsafe.Pointer {
	n := attnBlock * hd
	c, bc = c[:n], bc[:8*n]
	for i := range c {
		archsimd.BroadcastUint32x8(*(*uint32)(unsafe.Pointer(&c[i]))).Store((*[8]uint32)(unsafe.Pointer(&bc[8*i])))
	}
	return unsafe.Pointer(&bc[0])
}

// attnBlockCheck panics (a programmer error, like an index out of range)
// unless mT has hd rows of stride reaching hi and the block's rows reach hi.
func attnBlockCheck(x *[attnBlock][]float32, mT []float32, stride, hd, lo, hi int) {
	if lo < 0 || hi > stride || len(mT) < (hd-1)*stride+hi {
		panic("ops: attention block: transposed keys or values too short")
	}
	for _, r := range x {
		if len(r) < hi {
			panic("ops: attention block: row too short")
		}
	}
}

func ld8(p unsafe.Pointer) archsimd.Float32x8    { return archsimd.LoadFloat32x8((*[8]float32)(p)) }
func st8(v archsimd.Float32x8, p unsafe.Pointer) { v.Store((*[8]float32)(p)) }

func scoresTAVX2(out *[attnBlock][]float32, c, mT []float32, stride, hd, lo, hi int, bc []float32) {
	attnBlockCheck(out, mT, stride, hd, lo, hi)
	b := broadcastCoefs(bc, c, hd)
	chunks := (hi - lo) / 8
	if chunks > 0 && hd > 0 {
		scoresTKernelAVX2(&out[0][lo], &out[1][lo], &out[2][lo], &out[3][lo], (*float32)(b), &mT[lo], stride, hd, chunks)
	}
	if j := lo + 8*chunks; j < hi {
		scoresTGo(out, c, mT, stride, hd, j, hi)
	}
}

// scoresTKernelAVX2 and rankTKernelAVX2 are the assembly loops
// (attention_block_avx2_amd64.s) of scoresTAVX2 and rankTAVX2.
//
//go:noescape
func scoresTKernelAVX2(o0, o1, o2, o3, bc, m *float32, stride, hd, chunks int)

//go:noescape
func rankTKernelAVX2(m, bc, x0, x1, x2, x3 *float32, stride, hd, chunks int)

// dotsT4AVX2 takes two dimensions per pass over the block's rows: eight
// accumulators, two loads of mT and four of the rows per eight keys.
func dotsT4AVX2(out []float32, x *[attnBlock][]float32, mT []float32, stride, hd, lo, hi int) {
	attnBlockCheck(x, mT, stride, hd, lo, hi)
	out = out[:attnBlock*hd]
	m := unsafe.Pointer(&mT[0])
	x0, x1, x2, x3 := unsafe.Pointer(&x[0][0]), unsafe.Pointer(&x[1][0]), unsafe.Pointer(&x[2][0]), unsafe.Pointer(&x[3][0])
	end := lo + (hi-lo)&^7
	var t [8]float32
	d := 0
	for ; d < hd; d += 2 {
		e := min(d+1, hd-1) // an odd last dimension pairs with itself
		m0, m1 := unsafe.Add(m, 4*(d*stride)), unsafe.Add(m, 4*(e*stride))
		var a0, a1, a2, a3, b0, b1, b2, b3 archsimd.Float32x8
		for j := lo; j < end; j += 8 {
			off := uintptr(4 * j)
			v, w := ld8(unsafe.Add(m0, off)), ld8(unsafe.Add(m1, off))
			y0, y1, y2, y3 := ld8(unsafe.Add(x0, off)), ld8(unsafe.Add(x1, off)), ld8(unsafe.Add(x2, off)), ld8(unsafe.Add(x3, off))
			a0, b0 = y0.MulAdd(v, a0), y0.MulAdd(w, b0)
			a1, b1 = y1.MulAdd(v, a1), y1.MulAdd(w, b1)
			a2, b2 = y2.MulAdd(v, a2), y2.MulAdd(w, b2)
			a3, b3 = y3.MulAdd(v, a3), y3.MulAdd(w, b3)
		}
		hsum4(a0, a1, a2, a3, t[:4])
		hsum4(b0, b1, b2, b3, t[4:])
		archsimd.ClearAVXUpperBits()
		for r := range attnBlock {
			sa, sb := t[r], t[4+r]
			xr := x[r]
			for j := end; j < hi; j++ {
				sa += xr[j] * mT[d*stride+j]
				sb += xr[j] * mT[e*stride+j]
			}
			out[r*hd+d] = sa
			if e != d {
				out[r*hd+e] = sb
			}
		}
	}
}

func rankTAVX2(mT []float32, stride, hd int, c []float32, x *[attnBlock][]float32, lo, hi int, bc []float32) {
	attnBlockCheck(x, mT, stride, hd, lo, hi)
	b := broadcastCoefs(bc, c, hd)
	chunks := (hi - lo) / 8
	if chunks > 0 && hd > 0 {
		rankTKernelAVX2(&mT[lo], (*float32)(b), &x[0][lo], &x[1][lo], &x[2][lo], &x[3][lo], stride, hd, chunks)
	}
	if j := lo + 8*chunks; j < hi {
		rankTGo(mT, stride, hd, c, x, j, hi)
	}
}

// softmaxRowBlock is the softmax of the block loops. Unlike softmaxRow it
// keeps no ggml rounding order: these attention calls are the training
// tape's (the side network's, LoRA's), which llama.cpp has no counterpart
// of, so on AVX2 the exps are summed in eight float32 lanes (one horizontal
// sum per row, not one per eight values added into a double).
func softmaxRowBlock(x []float32, scale float32) {
	if hasAVX512 || !hasAVX2 || len(x) < 8 {
		softmaxRow(x, scale, false)
		return
	}
	n := len(x)
	sc := bcast8(scale)
	mv := bcast8(float32(math.Inf(-1)))
	i := 0
	for ; i+8 <= n; i += 8 {
		v := archsimd.LoadFloat32x8Slice(x[i : i+8]).Mul(sc)
		v.StoreSlice(x[i : i+8])
		mv = mv.Max(v)
	}
	maxv := hmaxV8(mv)
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		x[i] *= scale
		maxv = max(maxv, x[i])
	}
	// The exps in eight float32 lanes; the last n%8 values through the
	// same vector exp, padded with −Inf (exp 0, nothing added).
	var acc [8]float32
	m := n &^ 7
	expSubAVX2(x[:m], x[:m], maxv, &acc)
	if m < n {
		t := [8]float32{}
		for k := range t {
			t[k] = float32(math.Inf(-1))
		}
		copy(t[:], x[m:])
		expSubAVX2(t[:], t[:], maxv, &acc)
		copy(x[m:], t[:])
	}
	sum := float64(hsum8(archsimd.LoadFloat32x8(&acc)))
	inv := float32(1 / sum)
	iv := bcast8(inv)
	for i = 0; i+8 <= n; i += 8 {
		archsimd.LoadFloat32x8Slice(x[i : i+8]).Mul(iv).StoreSlice(x[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		x[i] *= inv
	}
}

// softmaxGradRow is softmaxGradRowGo on 8 lanes, the same operations in
// the same order. Not inlined, so the caller's scalars stay out of the
// vector loop (see expSumBlocksAVX2).
//
//go:noinline
func softmaxGradRow(ds, p, dp []float32, rowsum, scale float32) {
	n := len(p)
	if !hasAVX2 || n < 8 {
		softmaxGradRowGo(ds, p, dp, rowsum, scale)
		return
	}
	dp, ds = dp[:n], ds[:n]
	rs, sc := bcast8(rowsum), bcast8(scale)
	i := 0
	for ; i+8 <= n; i += 8 {
		v := archsimd.LoadFloat32x8Slice(p[i : i+8])
		v.Mul(archsimd.LoadFloat32x8Slice(dp[i : i+8]).Sub(rs)).Mul(sc).StoreSlice(ds[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
	softmaxGradRowGo(ds[i:], p[i:], dp[i:], rowsum, scale)
}
