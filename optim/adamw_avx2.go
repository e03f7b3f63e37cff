//go:build goexperiment.simd && amd64

package optim

import "simd/archsimd"

var hasAVX2 = archsimd.X86.AVX2()

// adamUpdate is adamUpdateGo on 8 lanes: no fused multiply-adds, and
// VSQRTPS is the correctly rounded float32 square root that
// float32(math.Sqrt(float64(v))) also is, so every value is the same.
// AdamW's step streams the parameters, gradients and both moments once;
// the scalar loop, not memory, bounded it.
func adamUpdate(p, g, m, v []float32, decay float32, k adamConsts) {
	n := len(p)
	if !hasAVX2 || n < 8 {
		adamUpdateGo(p, g, m, v, decay, k)
		return
	}
	g, m, v = g[:n], m[:n], v[:n]
	b1, c1 := archsimd.BroadcastFloat32x8(k.b1), archsimd.BroadcastFloat32x8(1-k.b1)
	b2, c2 := archsimd.BroadcastFloat32x8(k.b2), archsimd.BroadcastFloat32x8(1-k.b2)
	bc2, eps := archsimd.BroadcastFloat32x8(k.bc2Sqrt), archsimd.BroadcastFloat32x8(k.eps)
	dec, step := archsimd.BroadcastFloat32x8(decay), archsimd.BroadcastFloat32x8(k.stepSize)
	i := 0
	for ; i+8 <= n; i += 8 {
		gi := archsimd.LoadFloat32x8Slice(g[i : i+8])
		mi := b1.Mul(archsimd.LoadFloat32x8Slice(m[i : i+8])).Add(c1.Mul(gi))
		vi := b2.Mul(archsimd.LoadFloat32x8Slice(v[i : i+8])).Add(c2.Mul(gi).Mul(gi))
		mi.StoreSlice(m[i : i+8])
		vi.StoreSlice(v[i : i+8])
		denom := vi.Sqrt().Div(bc2).Add(eps)
		pi := archsimd.LoadFloat32x8Slice(p[i : i+8]).Mul(dec)
		pi.Sub(step.Mul(mi.Div(denom))).StoreSlice(p[i : i+8])
	}
	archsimd.ClearAVXUpperBits()
	adamUpdateGo(p[i:], g[i:], m[i:], v[i:], decay, k)
}
