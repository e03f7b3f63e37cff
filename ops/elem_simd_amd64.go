//go:build goexperiment.simd && amd64

package ops

import (
	"math"

	"simd/archsimd"
)

// AVX-512 versions of the engine's elementwise loops; simd_generic.go has
// the plain Go ones and simd_test.go compares them.

// vectorizedElem says whether the AVX-512 kernels are in use.
var vectorizedElem = hasAVX512

func bcast(x float32) archsimd.Float32x16 { return archsimd.BroadcastFloat32x16(x) }

// expV is ggml's ggml_v_expf (AVX-512): e^x = 2^n · p(b), n = round(x/ln2),
// b = x − n·ln2 in two parts, p a degree-5 polynomial; n beyond ±192 gives
// 0 or +Inf. Kept operation for operation so softmax and SiLU round as
// llama.cpp's do.
func expV(x archsimd.Float32x16) archsimd.Float32x16 {
	r := bcast(0x1.8p23)
	z := x.MulAdd(bcast(0x1.715476p+0), r)
	n := z.Sub(r)
	nn := bcast(0).Sub(n)
	b := nn.MulAdd(bcast(0x1.7f7d1cp-20), nn.MulAdd(bcast(0x1.62e4p-1), x))
	u := b.Mul(b)
	j := bcast(0x1.0e4020p-7).MulAdd(b, bcast(0x1.573e2ep-5)).
		MulAdd(u, bcast(0x1.555e66p-3).MulAdd(b, bcast(0x1.fffdb6p-2))).
		MulAdd(u, bcast(0x1.ffffecp-1).MulAdd(b, bcast(1)))
	res := j.Scale(n)
	d := n.Greater(bcast(192)).Or(n.Less(bcast(-192)))
	if d.ToBits() == 0 {
		return res
	}
	alt := bcast(float32(math.Inf(1))).Merge(bcast(0), n.Greater(bcast(0)))
	return alt.Merge(res, d)
}

// softmaxRow replaces x (scores) by softmax(scale·x) as ggml_soft_max_f32
// does: max, then ggml_vec_soft_max_f32 (vector exp, double sum of 16-lane
// partial sums, libm expf for the tail), then scaling by 1/sum; with round16
// the probabilities are rounded to f16 (llama.cpp's KQ·V sees them so).
func softmaxRow(x []float32, scale float32, round16 bool) {
	if !hasAVX512 {
		if hasAVX2 {
			softmaxRowAVX2(x, scale, round16)
			return
		}
		softmaxRowGo(x, scale, round16)
		return
	}
	n := len(x)
	sc := bcast(scale)
	maxv := float32(math.Inf(-1))
	i := 0
	if n >= 16 {
		mv := bcast(maxv)
		for ; i+16 <= n; i += 16 {
			v := archsimd.LoadFloat32x16Slice(x[i : i+16]).Mul(sc)
			v.StoreSlice(x[i : i+16])
			mv = mv.Max(v)
		}
		maxv = hmax16e(mv)
	}
	for ; i < n; i++ {
		x[i] *= scale
		maxv = max(maxv, x[i])
	}
	var sum float64
	mx := bcast(maxv)
	i = 0
	for ; i+16 <= n; i += 16 {
		v := expV(archsimd.LoadFloat32x16Slice(x[i : i+16]).Sub(mx))
		v.StoreSlice(x[i : i+16])
		sum += float64(hsum16(v))
	}
	for ; i < n; i++ {
		e := float32(math.Exp(float64(x[i] - maxv)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	iv := bcast(inv)
	i = 0
	for ; i+16 <= n; i += 16 {
		v := archsimd.LoadFloat32x16Slice(x[i : i+16]).Mul(iv)
		if round16 {
			v = roundF16V(v)
		}
		v.StoreSlice(x[i : i+16])
	}
	for ; i < n; i++ {
		x[i] *= inv
		if round16 {
			x[i] = roundF16One(x[i])
		}
	}
}

// roundF16V rounds to the nearest float16 value (ties to even) for
// |x| < 65504: normal halves by rounding the float32 mantissa to 10 bits,
// subnormal ones (|x| < 2^-14) to a multiple of 2^-24.
func roundF16V(v archsimd.Float32x16) archsimd.Float32x16 {
	u := v.AsUint32x16()
	odd := u.ShiftAllRight(13).And(archsimd.BroadcastUint32x16(1))
	u = u.Add(archsimd.BroadcastUint32x16(0x0fff)).Add(odd).AndNot(archsimd.BroadcastUint32x16(0x1fff))
	normal := u.AsFloat32x16()
	abs := v.AsUint32x16().And(archsimd.BroadcastUint32x16(0x7fffffff)).AsFloat32x16()
	small := abs.Less(bcast(0x1p-14))
	if small.ToBits() == 0 {
		return normal
	}
	sub := v.Mul(bcast(0x1p24)).RoundToEvenScaled(0).Mul(bcast(0x1p-24))
	return sub.Merge(normal, small)
}

// roundF16 rounds every value to the nearest float16 (ggml's f32→f16→f32).
func roundF16(x []float32) {
	if !hasAVX512 {
		if hasAVX2 && hasF16C {
			roundF16AVX2(x, x) // F16C's conversions there and back
			return
		}
		if hasAVX2 {
			roundF16InPlaceAVX2(x)
			return
		}
		roundF16InPlaceGo(x)
		return
	}
	i := 0
	for ; i+16 <= len(x); i += 16 {
		v := archsimd.LoadFloat32x16Slice(x[i : i+16])
		abs := v.AsUint32x16().And(archsimd.BroadcastUint32x16(0x7fffffff)).AsFloat32x16()
		if abs.GreaterEqual(bcast(65504)).ToBits() != 0 {
			roundF16InPlaceGo(x[i : i+16]) // overflow to Inf: the exact path
			continue
		}
		roundF16V(v).StoreSlice(x[i : i+16])
	}
	roundF16InPlaceGo(x[i:])
}

// siluMul does gate = silu(gate) · up as ggml_vec_silu_f32 then ggml_mul:
// silu(x) = x / (1 + e^−x) with the vector exp, libm for the tail.
func siluMul(gate, up []float32) {
	if !hasAVX512 {
		if hasAVX2 {
			siluMulAVX2(gate, up)
			return
		}
		siluMulGo(gate, up)
		return
	}
	n := len(gate)
	up = up[:n]
	one := bcast(1)
	i := 0
	for ; i+16 <= n; i += 16 {
		x := archsimd.LoadFloat32x16Slice(gate[i : i+16])
		s := x.Div(one.Add(expV(bcast(0).Sub(x))))
		s.Mul(archsimd.LoadFloat32x16Slice(up[i : i+16])).StoreSlice(gate[i : i+16])
	}
	siluMulGo(gate[i:], up[i:])
}

// swigluBackward is swigluBackwardGo with the vector exp (AVX2 or
// AVX-512), the same sums in the same order.
func swigluBackward(dgate, dup, dout, gate, up []float32, n int) {
	dgate, dup, dout, gate, up = sub2(dgate, 0, n), sub2(dup, 0, n), dout[:n], gate[:n], up[:n]
	if !hasAVX512 {
		if hasAVX2 {
			swigluBackwardAVX2(dgate, dup, dout, gate, up, n)
			return
		}
		swigluBackwardGo(dgate, dup, dout, gate, up, n)
		return
	}
	one := bcast(1)
	i := 0
	for ; i+16 <= n; i += 16 {
		g := archsimd.LoadFloat32x16Slice(gate[i : i+16])
		d := archsimd.LoadFloat32x16Slice(dout[i : i+16])
		s := one.Div(one.Add(expV(bcast(0).Sub(g))))
		if dup != nil {
			d.Mul(g).Mul(s).Add(archsimd.LoadFloat32x16Slice(dup[i : i+16])).StoreSlice(dup[i : i+16])
		}
		if dgate != nil {
			ds := d.Mul(archsimd.LoadFloat32x16Slice(up[i : i+16])).Mul(s).Mul(g.Mul(one.Sub(s)).Add(one))
			ds.Add(archsimd.LoadFloat32x16Slice(dgate[i : i+16])).StoreSlice(dgate[i : i+16])
		}
	}
	if i < n {
		swigluBackwardGo(sub2(dgate, i, n), sub2(dup, i, n), dout[i:], gate[i:], up[i:], n-i)
	}
}

func hmax16e(v archsimd.Float32x16) float32 {
	var t [16]float32
	v.Store(&t)
	m := t[0]
	for _, x := range t[1:] {
		m = max(m, x)
	}
	return m
}
