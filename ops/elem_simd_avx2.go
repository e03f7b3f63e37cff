//go:build goexperiment.simd && amd64

package ops

import (
	"math"
	"simd/archsimd"
)

// AVX2+FMA versions of the engine's elementwise loops (elem_simd_amd64.go
// dispatches: AVX-512, then these, then plain Go); kernels_avx2_test.go
// compares them with the Go ones.

func bcast8(x float32) archsimd.Float32x8 { return archsimd.BroadcastFloat32x8(x) }

// expV8 is ggml's AVX2 ggml_v_expf (ggml-cpu/vec.h), operation for
// operation: n = round(x/ln2) by the 1.5·2^23 shift, b = x − n·ln2 in two
// parts, j = p(b) − 1, e^x = k + k·j with k = 2^n built in the exponent
// field; |n| > 126 scales in two steps (s1, s2), |n| > 192 gives 0 or +Inf.
func expV8(x archsimd.Float32x8) archsimd.Float32x8 {
	r := bcast8(0x1.8p23)
	z := x.MulAdd(bcast8(0x1.715476p+0), r)
	n := z.Sub(r)
	var zero archsimd.Float32x8
	nn := zero.Sub(n) // fnmadd(n, c, y) = (−n)·c + y, exactly
	b := nn.MulAdd(bcast8(0x1.7f7d1cp-20), nn.MulAdd(bcast8(0x1.62e4p-1), x))
	e := shl32x8(z.AsUint32x8(), 23)
	k := e.Add(archsimd.BroadcastUint32x8(0x3f800000)).AsFloat32x8()
	an := absV8(n)
	c := an.Greater(bcast8(126))
	u := b.Mul(b)
	j := bcast8(0x1.0e4020p-7).MulAdd(b, bcast8(0x1.573e2ep-5)).
		MulAdd(u, bcast8(0x1.555e66p-3).MulAdd(b, bcast8(0x1.fffdb6p-2))).
		MulAdd(u, bcast8(0x1.ffffecp-1).Mul(b))
	res := j.MulAdd(k, k)
	if c.ToBits() == 0 {
		return res
	}
	g := n.LessEqual(zero).ToInt32x8().AsUint32x8().And(archsimd.BroadcastUint32x8(0x82000000))
	s1 := g.Add(archsimd.BroadcastUint32x8(0x7f000000)).AsFloat32x8()
	s2 := e.Sub(g).AsFloat32x8()
	res = s2.MulAdd(j, s2).Mul(s1).Merge(res, c)
	return s1.Mul(s1).Merge(res, an.Greater(bcast8(192)))
}

// softmaxRowAVX2 is softmaxRow (ggml_soft_max_f32) with the AVX2 exp.
func softmaxRowAVX2(x []float32, scale float32, round16 bool) {
	n := len(x)
	sc := bcast8(scale)
	maxv := float32(math.Inf(-1))
	i := 0
	if n >= 8 {
		mv := bcast8(maxv)
		for ; i+8 <= n; i += 8 {
			v := archsimd.LoadFloat32x8Slice(x[i : i+8]).Mul(sc)
			v.StoreSlice(x[i : i+8])
			mv = mv.Max(v)
		}
		maxv = hmaxV8(mv)
	}
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		x[i] *= scale
		maxv = max(maxv, x[i])
	}
	// e = exp(x − max) in place; each 8 values' sum in ggml's order ((hi+lo)
	// lane-wise, then (0+2)+(1+3)) is formed in vector registers, kept in
	// hs, and added into the double sum in order, 64 at a time.
	sum := expSumAVX2(x, x, maxv)
	inv := float32(1 / sum)
	iv := bcast8(inv)
	i = 0
	for ; i+8 <= n; i += 8 {
		v := archsimd.LoadFloat32x8Slice(x[i : i+8]).Mul(iv)
		if round16 {
			v = roundF16V8(v) // probabilities: in [0, 1], never NaN
		}
		v.StoreSlice(x[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		x[i] *= inv
		if round16 {
			x[i] = roundF16One(x[i])
		}
	}
}

// expSumBlocksAVX2 is softmaxRowAVX2's exp pass over up to 64 blocks of 8
// at the start of x: dst = exp(x − mx) (dst may be x, or nil to keep only
// the sums), each block's sum (ggml's order) in hs; it returns the blocks
// done. The exps come from expSubAVX2's assembly loop (expV8's roundings),
// the sums from the stored values. A function of its own so that no
// scalar float is live across the vector code: the compiler reloads such
// values with legacy-SSE moves while the upper halves of the vector
// registers are dirty, which on this machine (AMD EPYC, AVX2) made the
// loop 7× slower. It ends with VZEROUPPER for the scalar code after it.
// Not inlined: that would bring the caller's scalars back into the loop.
//
//go:noinline
func expSumBlocksAVX2(dst, x []float32, mx float32, hs *[64 + 3]float32) int {
	var tmp [64 * 8]float32
	nb := min(64, len(x)/8)
	if dst == nil {
		dst = tmp[:]
	}
	var acc [8]float32 // lane sums, unused: ggml's order sums each block
	expSubAVX2(dst[:8*nb], x[:8*nb], mx, &acc)
	for b := range nb {
		v := archsimd.LoadFloat32x8Slice(dst[8*b : 8*b+8])
		q := v.GetHi().Add(v.GetLo())
		q = q.Add(q.SelectFromPair(2, 3, 2, 3, q))
		q.Add(q.SelectFromPair(1, 1, 1, 1, q)).StoreSlice(hs[b : b+4])
	}
	archsimd.ClearAVXUpperBits()
	return nb
}

// expSumAVX2 returns Σ exp(x − maxv) (each 8 values summed in float, as
// ggml's softmax, those sums in double) and, with dst, writes the exps
// there (dst may be x).
func expSumAVX2(dst, x []float32, maxv float32) float64 {
	var hs [64 + 3]float32
	var sum float64
	i := 0
	for i+8 <= len(x) {
		var d []float32
		if dst != nil {
			d = dst[i:]
		}
		nb := expSumBlocksAVX2(d, x[i:], maxv, &hs)
		i += 8 * nb
		for _, h := range hs[:nb] {
			sum += float64(h)
		}
	}
	for ; i < len(x); i++ {
		e := float32(math.Exp(float64(x[i] - maxv)))
		if dst != nil {
			dst[i] = e
		}
		sum += float64(e)
	}
	return sum
}

// maxAVX2 is the largest value of x (−Inf when empty).
//
//go:noinline
func maxAVX2(x []float32) float32 {
	maxv := float32(math.Inf(-1))
	i := 0
	if len(x) >= 8 {
		mv := bcast8(maxv)
		for ; i+8 <= len(x); i += 8 {
			mv = mv.Max(archsimd.LoadFloat32x8Slice(x[i : i+8]))
		}
		maxv = hmaxV8(mv) // ends with VZEROUPPER
	}
	for ; i < len(x); i++ {
		maxv = max(maxv, x[i])
	}
	return maxv
}

// scaleAVX2 multiplies x by a.
//
//go:noinline
func scaleAVX2(x []float32, a float32) {
	va := bcast8(a)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		archsimd.LoadFloat32x8Slice(x[i : i+8]).Mul(va).StoreSlice(x[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
	for ; i < len(x); i++ {
		x[i] *= a
	}
}

// roundF16InPlaceAVX2 rounds every value to the nearest float16.
func roundF16InPlaceAVX2(x []float32) { roundF16AVX2(x, x) }

// siluMulAVX2 does gate = silu(gate)·up as ggml_vec_swiglu_f32 (AVX2):
// x/(1 + e^−x) with the vector exp, libm for the tail.
func siluMulAVX2(gate, up []float32) {
	n := len(gate)
	up = up[:n]
	one := bcast8(1)
	var zero archsimd.Float32x8
	i := 0
	for ; i+8 <= n; i += 8 {
		x := archsimd.LoadFloat32x8Slice(gate[i : i+8])
		s := x.Div(one.Add(expV8(zero.Sub(x))))
		s.Mul(archsimd.LoadFloat32x8Slice(up[i : i+8])).StoreSlice(gate[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
	siluMulGo(gate[i:], up[i:])
}

// swigluBackwardAVX2 is swigluBackwardGo on 8 lanes with the vector exp;
// every slice is n long (swigluBackward cuts them), dgate or dup nil.
func swigluBackwardAVX2(dgate, dup, dout, gate, up []float32, n int) {
	one := bcast8(1)
	var zero archsimd.Float32x8
	i := 0
	for ; i+8 <= n; i += 8 {
		g := archsimd.LoadFloat32x8Slice(gate[i : i+8])
		d := archsimd.LoadFloat32x8Slice(dout[i : i+8])
		s := one.Div(one.Add(expV8(zero.Sub(g))))
		if dup != nil {
			d.Mul(g).Mul(s).Add(archsimd.LoadFloat32x8Slice(dup[i : i+8])).StoreSlice(dup[i : i+8])
		}
		if dgate != nil {
			ds := d.Mul(archsimd.LoadFloat32x8Slice(up[i : i+8])).Mul(s).Mul(g.Mul(one.Sub(s)).Add(one))
			ds.Add(archsimd.LoadFloat32x8Slice(dgate[i : i+8])).StoreSlice(dgate[i : i+8])
		}
	}
	archsimd.ClearAVXUpperBits()
	if i < n {
		swigluBackwardGo(sub2(dgate, i, n), sub2(dup, i, n), dout[i:], gate[i:], up[i:], n-i)
	}
}

// dotF32sAVX2, dot4F32AVX2 and axpyF32AVX2 are dotF32, dot4F32 and axpyF32
// (matmul_f32_simd.go) on 8 lanes.
func dotF32sAVX2(x, y []float32) float32 {
	n := len(x)
	y = y[:n]
	var acc0, acc1 archsimd.Float32x8
	i := 0
	for ; i+16 <= n; i += 16 {
		acc0 = archsimd.LoadFloat32x8Slice(x[i:]).MulAdd(archsimd.LoadFloat32x8Slice(y[i:]), acc0)
		acc1 = archsimd.LoadFloat32x8Slice(x[i+8:]).MulAdd(archsimd.LoadFloat32x8Slice(y[i+8:]), acc1)
	}
	for ; i+8 <= n; i += 8 {
		acc0 = archsimd.LoadFloat32x8Slice(x[i:]).MulAdd(archsimd.LoadFloat32x8Slice(y[i:]), acc0)
	}
	s := hsum8(acc0.Add(acc1))
	for ; i < n; i++ {
		s += x[i] * y[i]
	}
	return s
}

func dot4F32AVX2(w0, w1, w2, w3, x []float32) (float32, float32, float32, float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	var a0, a1, a2, a3 archsimd.Float32x8
	i := 0
	for ; i+8 <= n; i += 8 {
		v := archsimd.LoadFloat32x8Slice(x[i:])
		a0 = archsimd.LoadFloat32x8Slice(w0[i:]).MulAdd(v, a0)
		a1 = archsimd.LoadFloat32x8Slice(w1[i:]).MulAdd(v, a1)
		a2 = archsimd.LoadFloat32x8Slice(w2[i:]).MulAdd(v, a2)
		a3 = archsimd.LoadFloat32x8Slice(w3[i:]).MulAdd(v, a3)
	}
	var t [4]float32
	hsum4(a0, a1, a2, a3, t[:])
	archsimd.ClearAVXUpperBits()
	s0, s1, s2, s3 := t[0], t[1], t[2], t[3]
	for ; i < n; i++ {
		v := x[i]
		s0 += w0[i] * v
		s1 += w1[i] * v
		s2 += w2[i] * v
		s3 += w3[i] * v
	}
	return s0, s1, s2, s3
}

func axpyF32AVX2(y []float32, a float32, x []float32) {
	n := len(y)
	x = x[:n]
	va := bcast8(a)
	i := 0
	for ; i+8 <= n; i += 8 {
		archsimd.LoadFloat32x8Slice(x[i:]).MulAdd(va, archsimd.LoadFloat32x8Slice(y[i:])).StoreSlice(y[i:])
	}
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		y[i] += a * x[i]
	}
}

// expSubKernelAVX2 is the loop of expSubAVX2 in assembly
// (expf_avx2_amd64.s).
//
//go:noescape
func expSubKernelAVX2(dst, src *float32, n8 int, mx float32, acc *[8]float32) int

// expSubAVX2 writes dst[i] = expV8(x[i] − mx) for the first 8·(len(x)/8)
// values and adds each 8 into acc lane-wise, in order: the assembly loop,
// with expV8 itself for the 8-value groups whose exponents need its
// two-step scaling. dst may be x.
func expSubAVX2(dst, x []float32, mx float32, acc *[8]float32) {
	n8 := len(x) / 8
	if n8 == 0 {
		return
	}
	dst = dst[:8*n8]
	for i := 0; i < n8; {
		i += expSubKernelAVX2(&dst[8*i], &x[8*i], n8-i, mx, acc)
		if i < n8 {
			expSubOneAVX2(dst[8*i:8*i+8], x[8*i:8*i+8], mx, acc)
			i++
		}
	}
}

// expSubOneAVX2 is one group of expSubAVX2 through expV8.
//
//go:noinline
func expSubOneAVX2(dst, x []float32, mx float32, acc *[8]float32) {
	v := expV8(archsimd.LoadFloat32x8Slice(x).Sub(bcast8(mx)))
	v.StoreSlice(dst)
	archsimd.LoadFloat32x8(acc).Add(v).Store(acc)
	archsimd.ClearAVXUpperBits()
}
