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
	rb := uintptr(32 * hd) // bytes between two rows' broadcast coefficients
	m := unsafe.Pointer(&mT[0])
	o0, o1, o2, o3 := unsafe.Pointer(&out[0][0]), unsafe.Pointer(&out[1][0]), unsafe.Pointer(&out[2][0]), unsafe.Pointer(&out[3][0])
	j := lo
	for ; j+8 <= hi; j += 8 {
		var a0, a1, a2, a3 archsimd.Float32x8
		kp, cp := unsafe.Add(m, 4*j), b
		for d := 0; d < hd; d++ {
			k := ld8(kp)
			a0 = ld8(cp).MulAdd(k, a0)
			a1 = ld8(unsafe.Add(cp, rb)).MulAdd(k, a1)
			a2 = ld8(unsafe.Add(cp, 2*rb)).MulAdd(k, a2)
			a3 = ld8(unsafe.Add(cp, 3*rb)).MulAdd(k, a3)
			kp, cp = unsafe.Add(kp, 4*stride), unsafe.Add(cp, 32)
		}
		st8(a0, unsafe.Add(o0, 4*j))
		st8(a1, unsafe.Add(o1, 4*j))
		st8(a2, unsafe.Add(o2, 4*j))
		st8(a3, unsafe.Add(o3, 4*j))
	}
	archsimd.ClearAVXUpperBits()
	if j < hi {
		scoresTGo(out, c, mT, stride, hd, j, hi)
	}
}

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
	rb := uintptr(32 * hd)
	m := unsafe.Pointer(&mT[0])
	x0, x1, x2, x3 := unsafe.Pointer(&x[0][0]), unsafe.Pointer(&x[1][0]), unsafe.Pointer(&x[2][0]), unsafe.Pointer(&x[3][0])
	j := lo
	for ; j+8 <= hi; j += 8 {
		off := uintptr(4 * j)
		y0, y1, y2, y3 := ld8(unsafe.Add(x0, off)), ld8(unsafe.Add(x1, off)), ld8(unsafe.Add(x2, off)), ld8(unsafe.Add(x3, off))
		mp, cp := unsafe.Add(m, off), b
		for d := 0; d < hd; d++ {
			v := ld8(mp)
			v = ld8(cp).MulAdd(y0, v)
			v = ld8(unsafe.Add(cp, rb)).MulAdd(y1, v)
			v = ld8(unsafe.Add(cp, 2*rb)).MulAdd(y2, v)
			v = ld8(unsafe.Add(cp, 3*rb)).MulAdd(y3, v)
			st8(v, mp)
			mp, cp = unsafe.Add(mp, 4*stride), unsafe.Add(cp, 32)
		}
	}
	archsimd.ClearAVXUpperBits()
	if j < hi {
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
	m := n &^ 7
	sum := float64(expSumLanesAVX2(x[:m], bcast8(maxv)))
	for i := m; i < n; i++ {
		e := float32(math.Exp(float64(x[i] - maxv)))
		x[i] = e
		sum += float64(e)
	}
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

// expSumLanesAVX2 replaces x (a multiple of 8 long) by exp(x − mx) and
// returns their sum, accumulated lane-wise. Not inlined, for the reason
// given at expSumBlocksAVX2.
//
//go:noinline
func expSumLanesAVX2(x []float32, mx archsimd.Float32x8) float32 {
	var acc archsimd.Float32x8
	for i := 0; i+8 <= len(x); i += 8 {
		v := expV8(archsimd.LoadFloat32x8Slice(x[i : i+8]).Sub(mx))
		v.StoreSlice(x[i : i+8])
		acc = acc.Add(v)
	}
	return hsum8(acc)
}
