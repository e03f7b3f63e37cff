//go:build goexperiment.simd && amd64

package ops

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"simd/archsimd"
	"testing"

	"ladder-engine/gguf"
)

// The AVX2 kernels against their plain Go twins, called directly (not
// through the dispatch, which prefers AVX-512 where present), so these
// tests run on any CPU with AVX2 and FMA.

func needAVX2(t *testing.T) {
	t.Helper()
	if !hasAVX2 {
		t.Skip("CPU has no AVX2+FMA")
	}
}

// TestGemmKernelAVX2: every row count, fresh and accumulating, short and
// odd depths, ldc wider than the panel; outputs within float32 rounding of
// the Go kernel (same terms in the same order, fused roundings only:
// |Δ| <= 1e-5·Σ|a·w|).
func TestGemmKernelAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(21, 22))
	for _, depth := range []int{1, 2, 7, 32, 255, 256} {
		for mr := 1; mr <= gemmMR; mr++ {
			for _, acc := range []bool{false, true} {
				const lda, ldc = 300, 41
				panel := randVec(rng, depth*gemmNR)
				a := randVec(rng, gemmMR*lda)
				a[0] = 0
				panel[1] = 1e30 // a huge weight: the tolerance scales with it
				c0 := randVec(rng, gemmMR*ldc)
				got := append([]float32(nil), c0...)
				want := append([]float32(nil), c0...)
				gemmKernelAVX2(panel, a, lda, depth, mr, got, ldc, acc)
				gemmKernelGo(panel, a, lda, depth, mr, want, ldc, acc)
				for i := 0; i < gemmMR; i++ {
					for j := 0; j < ldc; j++ {
						g, w := got[i*ldc+j], want[i*ldc+j]
						if i >= mr || j >= gemmNR { // untouched
							if g != c0[i*ldc+j] {
								t.Fatalf("depth %d mr %d: wrote c[%d][%d]", depth, mr, i, j)
							}
							continue
						}
						var mag float64
						for k := 0; k < depth; k++ {
							mag += math.Abs(float64(a[i*lda+k] * panel[k*gemmNR+j]))
						}
						if acc {
							mag += math.Abs(float64(c0[i*ldc+j]))
						}
						if math.Abs(float64(g-w)) > 1e-5*mag+1e-30 {
							t.Fatalf("depth %d mr %d acc %v: c[%d][%d] = %g, want %g", depth, mr, acc, i, j, g, w)
						}
					}
				}
			}
		}
	}
}

// TestF16ToF32x8Exhaustive: the 8-lane half->float widening equals the
// scalar conversion bit for bit on all 65536 halves.
func TestF16ToF32x8Exhaustive(t *testing.T) {
	needAVX2(t)
	var buf [16]byte
	var out [8]float32
	for base := 0; base < 1<<16; base += 8 {
		for i := 0; i < 8; i++ {
			binary.LittleEndian.PutUint16(buf[2*i:], uint16(base+i))
		}
		f16ToF32x8(archsimd.LoadUint8x16Slice(buf[:]).AsUint16x8()).Store(&out)
		for i, f := range out {
			if want := gguf.F16ToF32(uint16(base + i)); math.Float32bits(f) != math.Float32bits(want) {
				t.Fatalf("half %#04x: %g, want %g", base+i, f, want)
			}
		}
	}
}

// TestDotAVX2: every AVX2 dot kernel against the reference kernel and the
// float64 dot of the dequantized operands (tolerance as
// TestDotKernelsMatchDequantized: 1e-5 of Σ|w·a|), on one block, odd
// block counts (pairs and a leftover), all-zero weights (zero scales), and
// activations at full scale (every quant ±127, the VPMADDUBSW bound).
func TestDotAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(23, 24))
	for _, typ := range dotTypes {
		fast := avx2Dots[typ]
		if fast == nil {
			t.Errorf("%s: no AVX2 kernel", typ)
			continue
		}
		e := dotTable[typ]
		k := &e.kernel
		bs := typ.BlockSize()
		for _, n := range []int{bs, 3 * bs, 5 * bs, 33 * bs} {
			for c := 0; c < 3; c++ {
				w := randomWeightRow(rng, typ, n)
				x := randomActivations(rng, n)
				switch c {
				case 1:
					clear(w)
				case 2:
					for i := range x {
						x[i] = float32(1-2*(i%2)) * 1e4
					}
				}
				ab, _ := gguf.RowSize(k.ActType, n)
				a := make([]byte, ab)
				k.Quantize(x, a)
				want, mag := expectedDot(t, typ, k, n, w, a)
				got, ref := fast(n, w, a), e.ref(n, w, a)
				tol := 1e-5*mag + 1e-30
				if math.Abs(float64(got)-want) > tol || math.Abs(float64(got-ref)) > tol {
					t.Errorf("%s n=%d case %d: avx2 %g, ref %g, want %g (tol %g)", typ, n, c, got, ref, want, tol)
				}
			}
		}
	}
}

// On a CPU with AVX2 but no AVX-512 every weight type gets an AVX2 kernel.
func TestAVX2DotsInstalled(t *testing.T) {
	needAVX2(t)
	if hasAVX512 {
		t.Skip("AVX-512 kernels take precedence")
	}
	for _, typ := range dotTypes {
		if k, _ := DotKernelFor(typ); k.Impl != "avx2" {
			t.Errorf("%s: kernel %s, want avx2", typ, k.Impl)
		}
	}
}

// TestRoundActsAVX2: the AVX2 activation rounding equals the plain Go one
// bit for bit (it models llama.cpp's encodings exactly), on values spread
// over 40 binades, zeros of both signs, ties, float32 and half subnormals,
// the half overflow edge (65504, 65519, 65520), infinities and NaNs (F16,
// BF16 only: the 8-bit encodings never see them), an all-zero block, a
// block whose largest magnitudes tie with opposite signs (Q8_K takes the
// first), and lengths that leave a scalar tail.
func TestRoundActsAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(25, 26))
	const cols = 1024
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(40)-20)))
		switch i % 41 {
		case 0:
			x[i] = 0
		case 1:
			x[i] = float32(math.Copysign(0, -1))
		case 2:
			x[i] = 0.5
		case 3:
			x[i] = 0x1p-130
		case 4:
			x[i] = -0x1p-20
		case 5:
			x[i] = 3 * 0x1p-25 // a half-subnormal tie
		}
	}
	clear(x[256:288])
	x[512], x[600] = -7, 7 // Q8_K block 2: the first of largest magnitude is −7
	x[100] = 1e7           // Q8_0 block 3: amax/127 overflows the f16 scale
	for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ8_K, gguf.TypeF16, gguf.TypeBF16} {
		inputs := [][]float32{x}
		if typ == gguf.TypeF16 || typ == gguf.TypeBF16 {
			e := append([]float32(nil), x[:1003]...)
			e[8], e[9], e[10], e[11] = 65504, 65519, 65520, -70000
			e[20], e[30] = float32(math.Inf(-1)), float32(math.NaN())
			e[40] = 0x1p-127
			inputs = append(inputs, e)
		}
		for _, in := range inputs {
			got := make([]float32, len(in))
			want := make([]float32, len(in))
			if !roundActsAVX2(typ, in, got) || !roundActsGo(typ, in, want) {
				t.Fatalf("%s: not handled", typ)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s len %d: value %d (%g): got %g, want %g", typ, len(in), i, in[i], got[i], want[i])
				}
			}
		}
	}
}

// TestExpV8: ggml's AVX2 exp within 2 ulps of libm's (ggml claims 1.45 +
// 0.5), including the two-step scaling of |n| > 126 (results below 2^-126
// to within 2^-148 absolute), +Inf past the float32 range and 0 beneath
// about −104 (ggml flushes there).
func TestExpV8(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(27, 28))
	xs := []float32{0, -0.0, 1, -1, 0.5, 88, 88.5, 88.7, 89, 100, 200, -87, -87.5, -100, -103.9, -104, -110, -200, -1e30, 1e30}
	for range 20000 {
		xs = append(xs, float32(rng.Float64()*210-110))
	}
	for len(xs)%8 != 0 {
		xs = append(xs, 0)
	}
	var out [8]float32
	for i := 0; i < len(xs); i += 8 {
		expV8(archsimd.LoadFloat32x8Slice(xs[i : i+8])).Store(&out)
		for l, got := range out {
			x := xs[i+l]
			want := math.Exp(float64(x))
			switch {
			case x > 88.8:
				if !math.IsInf(float64(got), 1) {
					t.Fatalf("exp(%g) = %g, want +Inf", x, got)
				}
			case x < -104.5:
				if got != 0 {
					t.Fatalf("exp(%g) = %g, want 0", x, got)
				}
			case want < 0x1p-126:
				if math.Abs(float64(got)-want) > 0x1p-148 {
					t.Fatalf("exp(%g) = %g, want %g", x, got, want)
				}
			case want > math.MaxFloat32:
				// overflow edge: Inf or the largest floats both fine
			default:
				if math.Abs(float64(got)-want) > 2*0x1p-23*want {
					t.Fatalf("exp(%g) = %g, want %g (%.2g ulp)", x, got, want, (float64(got)-want)/want/0x1p-23)
				}
			}
		}
	}
}

// The AVX2 softmax, SiLU·up and f16 rounding against the Go ones (as
// TestElementwiseKernels, called directly): softmax and SiLU within a few
// float32 ulps (ggml's exp is within 2 ulps of libm's), f16 rounding bit for
// bit; lengths around the 8-lane width and the scalar tails.
func TestElementwiseAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(29, 30))
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 100, 333, 1000, 4099} {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64() * 5)
		}
		s[0] = -1e4 // underflows to 0 after the max subtraction
		for _, r16 := range []bool{false, true} {
			a, b := append([]float32(nil), s...), append([]float32(nil), s...)
			softmaxRowAVX2(a, 0.125, r16)
			softmaxRowGo(b, 0.125, r16)
			for i := range a {
				tol := 1e-6*float64(b[i]) + 1e-12
				if r16 {
					tol = 0x1p-10*float64(b[i]) + 0x1p-24 // one f16 ulp: a ulp-close input can round the other way
				}
				if math.Abs(float64(a[i]-b[i])) > tol {
					t.Fatalf("n %d round16 %v: softmax[%d] = %g, want %g", n, r16, i, a[i], b[i])
				}
			}
		}
		up := randVec(rng, n)
		g := append([]float32(nil), s...)
		g[n-1] = 100
		a, b := append([]float32(nil), g...), append([]float32(nil), g...)
		siluMulAVX2(a, up)
		siluMulGo(b, up)
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-6*math.Abs(float64(b[i]))+1e-7 {
				t.Fatalf("n %d: silu·up[%d] = %g, want %g", n, i, a[i], b[i])
			}
		}
		f := make([]float32, n)
		for i := range f {
			f[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-8)))
		}
		f[0] = 65520
		a, b = append([]float32(nil), f...), append([]float32(nil), f...)
		roundF16InPlaceAVX2(a)
		roundF16InPlaceGo(b)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("n %d: roundF16(%g) = %g, want %g", n, f[i], a[i], b[i])
			}
		}
	}
}

// BenchmarkRoundActsAVX2: the activation rounding of a 64×768 batch, AVX2
// against plain Go, in values per thread CPU second.
func BenchmarkRoundActsAVX2(b *testing.B) {
	if !hasAVX2 {
		b.Skip("CPU has no AVX2+FMA")
	}
	rng := rand.New(rand.NewPCG(31, 32))
	x := randVec(rng, 64*768)
	y := make([]float32, len(x))
	for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ8_K, gguf.TypeF16, gguf.TypeBF16} {
		for _, im := range []struct {
			name string
			fn   func(gguf.Type, []float32, []float32) bool
		}{{"avx2", roundActsAVX2}, {"go", roundActsGo}} {
			b.Run(typ.String()+"/"+im.name, func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPUSeconds()
				for b.Loop() {
					im.fn(typ, x, y)
				}
				if cpu := threadCPUSeconds() - cpu0; cpu > 0 {
					b.ReportMetric(float64(len(x)*b.N)/cpu/1e9, "cpu-Gvalues/s")
				}
			})
		}
	}
}

// f16b8 equals the scalar conversion on every finite half.
func TestF16B8Exhaustive(t *testing.T) {
	needAVX2(t)
	var out [8]float32
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 {
			continue // infinities and NaNs: never block scales
		}
		f16b8(uint16(h)).Store(&out)
		for _, f := range out {
			if want := gguf.F16ToF32(uint16(h)); math.Float32bits(f) != math.Float32bits(want) {
				t.Fatalf("half %#04x: %g, want %g", h, f, want)
			}
		}
	}
}

// The F16C and the integer-widening F16 dots against the reference, on
// lengths with and without a tail, with infinities, NaNs and subnormals
// among the halves (both must agree on which are NaN, and within float32
// rounding elsewhere).
func TestDotF16AVX2Variants(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(33, 34))
	for _, n := range []int{1, 15, 16, 17, 48, 1000, 4096} {
		w := randomWeightRow(rng, gguf.TypeF16, n)
		x := randomActivations(rng, n)
		a := make([]byte, 2*n)
		encodeActF16(x, a)
		want, mag := expectedDot(t, gguf.TypeF16, &dotTable[gguf.TypeF16].kernel, n, w, a)
		kernels := map[string]func(int, []byte, []byte) float32{"bits": dotF16AVX2Bits}
		if hasF16C {
			kernels["f16c"] = dotF16F16CRow
		}
		for name, k := range kernels {
			if got := k(n, w, a); math.Abs(float64(got)-want) > 1e-5*mag+1e-30 {
				t.Errorf("%s n=%d: %g, want %g", name, n, got, want)
			}
		}
		// specials: a subnormal, +Inf·0 = NaN, NaN
		if n >= 3 {
			binary.LittleEndian.PutUint16(w[0:], 0x0001)
			binary.LittleEndian.PutUint16(w[2:], 0x7c00)
			binary.LittleEndian.PutUint16(a[2:], 0x0000)
			for name, k := range kernels {
				if got := k(n, w, a); !math.IsNaN(float64(got)) {
					t.Errorf("%s n=%d: Inf·0 gave %g, want NaN", name, n, got)
				}
			}
		}
	}
}

// TestI8KernelAVX2: the int8 tile kernels against i8KernelGo on random and
// extreme panels and activations (Q4_0 nibbles 0 and 15 with activations
// −128 and 127; Q8_0 bytes −128 and 127 with activations ±127, the sign
// trick's range; zero scales), depths of 1 to 9 blocks, ldc wider than the
// tile. Same integer sums, same FMA order: the outputs must be equal.
func TestI8KernelAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(23, 24))
	for _, signed := range []bool{false, true} {
		k := i8KernelQ4_0
		if signed {
			k = i8KernelQ8_0
		}
		for _, nb := range []int{1, 2, 9} {
			for trial := 0; trial < 6; trial++ {
				const ldc = 11
				lda, ldd := 32*nb+32, nb+3
				panel := make([]byte, nb*i8BlockBytes)
				q := make([]byte, i8MR*lda)
				d := make([]float32, i8MR*ldd)
				corr := make([]int32, i8MR*ldd)
				for b := 0; b < nb; b++ {
					blk := panel[b*i8BlockBytes:]
					for j := 0; j < 32*i8NR; j++ {
						switch {
						case trial == 1 && signed:
							blk[j] = 0x80
						case trial == 1:
							blk[j] = 15
						case trial == 2 && signed:
							blk[j] = 0x7f
						case trial == 2:
							blk[j] = 0
						case signed:
							blk[j] = byte(rng.IntN(256))
						default:
							blk[j] = byte(rng.IntN(16))
						}
					}
					for r := 0; r < i8NR; r++ {
						dw := float32(rng.NormFloat64() * 0.01)
						if trial == 3 && r%2 == 0 {
							dw = 0
						}
						binary.LittleEndian.PutUint32(blk[32*i8NR+4*r:], math.Float32bits(dw))
					}
				}
				lo := -128
				if signed {
					lo = -127
				}
				for i := range q {
					switch trial {
					case 1:
						q[i] = byte(int8(lo))
					case 2:
						q[i] = 127
					default:
						q[i] = byte(int8(lo + rng.IntN(256+(-128-lo))))
					}
				}
				for i := range d {
					d[i] = float32(rng.Float64() * 0.1)
					if !signed {
						corr[i] = int32(rng.IntN(1<<15)) - 1<<14
					}
				}
				got, want := make([]float32, i8MR*ldc), make([]float32, i8MR*ldc)
				for i := range got {
					got[i], want[i] = -7, -7
				}
				k(panel, q, lda, d, corr, ldd, nb, got, ldc)
				i8KernelGo(signed, panel, q, lda, d, corr, ldd, nb, want, ldc)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("signed %v nb %d trial %d: c[%d][%d] = %g, want %g", signed, nb, trial, i/ldc, i%ldc, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestQuantizeQ8_0I8AVX2: the assembly activation quantizer equals
// QuantizeActQ8_0 spread out (quantizeRowI8Go) bit for bit: random rows,
// an all-zero block, tiny values (subnormal half scales), ties of x·id.
func TestQuantizeQ8_0I8AVX2(t *testing.T) {
	needAVX2(t)
	if !hasF16C {
		t.Skip("CPU has no F16C")
	}
	rng := rand.New(rand.NewPCG(25, 26))
	const nb = 12
	for trial := 0; trial < 20; trial++ {
		x := randVec(rng, 32*nb)
		clear(x[32:64])
		for i := 64; i < 96; i++ {
			x[i] *= 1e-6
		}
		for i := 96; i < 128; i++ {
			x[i] = float32(rng.IntN(255)-127) / 2 // x·id lands on halves
		}
		x[128] = -1e4
		x[200] = 3e-9
		gq, wq := make([]byte, 32*nb), make([]byte, 32*nb)
		gd, wd := make([]float32, nb), make([]float32, nb)
		gs, ws := make([]int32, nb), make([]int32, nb)
		quantizeRowI8(x, gq, gd, gs, nil)
		quantizeRowI8Go(x, wq, wd, ws, make([]byte, 34*nb))
		for b := 0; b < nb; b++ {
			if math.Float32bits(gd[b]) != math.Float32bits(wd[b]) || gs[b] != ws[b] || string(gq[32*b:32*b+32]) != string(wq[32*b:32*b+32]) {
				t.Fatalf("trial %d block %d: d %g sum %d q %v, want d %g sum %d q %v", trial, b, gd[b], gs[b], gq[32*b:32*b+32], wd[b], ws[b], wq[32*b:32*b+32])
			}
		}
	}
}

// TestCrossEntropyAVX2: the vectorised log-softmax and cross-entropy (loss
// and dlogits, in place and into another buffer) against the Go row
// functions, on odd lengths, targets at both ends and at the maximum,
// rows of one repeated value and rows with a huge spread.
func TestCrossEntropyAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(31, 32))
	for _, n := range []int{8, 9, 15, 16, 17, 100, 513, 4099, 32000} {
		for c := 0; c < 4; c++ {
			x := make([]float32, n)
			for i := range x {
				switch c {
				case 0:
					x[i] = float32(rng.NormFloat64() * 3)
				case 1:
					x[i] = 2.5 // all equal: uniform softmax
				case 2:
					x[i] = float32(rng.NormFloat64() * 80) // most exps underflow
				default:
					x[i] = float32(rng.NormFloat64()*3) - 40
				}
			}
			for _, target := range []int32{0, int32(n - 1), int32(n / 2)} {
				m1, l1, ok := logSoftmaxFast(x)
				m2, l2 := logSoftmaxRowGo(x)
				if !ok || m1 != m2 || math.Abs(float64(l1-l2)) > 1e-6*math.Max(1, math.Abs(float64(l2))) {
					t.Fatalf("n %d case %d: logSoftmax (%g, %g), want (%g, %g)", n, c, m1, l1, m2, l2)
				}
				for _, inPlace := range []bool{false, true} {
					want := make([]float32, n)
					wantLoss := crossentropyRowGo(want, x, target, 0.25, 0)
					in := append([]float32(nil), x...)
					got := make([]float32, n)
					if inPlace {
						got = in
					}
					loss, ok := crossentropyFast(got, in, target, 0.25, 0)
					if !ok || math.Abs(loss-wantLoss) > 1e-5*math.Max(1, math.Abs(wantLoss)) {
						t.Fatalf("n %d case %d target %d: loss %g, want %g", n, c, target, loss, wantLoss)
					}
					for i := range got {
						if math.Abs(float64(got[i]-want[i])) > 2e-6*math.Abs(float64(want[i]))+1e-12 {
							t.Fatalf("n %d case %d target %d in place %v: dx[%d] = %g, want %g", n, c, target, inPlace, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestDotBF16Asm: the assembly BF16 row dot equals its archsimd twin bit
// for bit (same lanes, same order) and the reference within rounding, on
// odd lengths and with Inf·0 and NaN halves.
func TestDotBF16Asm(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(35, 36))
	for _, n := range []int{1, 15, 16, 17, 48, 1000, 4096} {
		w := randomWeightRow(rng, gguf.TypeBF16, n)
		x := randomActivations(rng, n)
		a := make([]byte, 2*n)
		encodeActBF16(x, a)
		want, mag := expectedDot(t, gguf.TypeBF16, &dotTable[gguf.TypeBF16].kernel, n, w, a)
		got, twin := dotBF16AVX2(n, w, a), dotBF16Vec(n, w, a)
		if math.Float32bits(got) != math.Float32bits(twin) {
			t.Errorf("n=%d: assembly %g, archsimd twin %g", n, got, twin)
		}
		if math.Abs(float64(got)-want) > 1e-5*mag+1e-30 {
			t.Errorf("n=%d: %g, want %g", n, got, want)
		}
		if n >= 3 { // +Inf·0 = NaN
			binary.LittleEndian.PutUint16(w[2:], 0x7f80)
			binary.LittleEndian.PutUint16(a[2:], 0x0000)
			if got := dotBF16AVX2(n, w, a); !math.IsNaN(float64(got)) {
				t.Errorf("n=%d: Inf·0 gave %g, want NaN", n, got)
			}
		}
	}
}

// expSubAVX2 (the assembly loop, expV8 for groups it hands back) is expV8
// bit for bit, sums included, on values that take every path: ordinary
// ones, exponents past ±126 (two-step scaling) and past ±192 (0, +Inf),
// infinities and NaN, with the special groups first, last and in between.
func TestExpSubAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(61, 62))
	specials := []float32{-87.5, -88.7, -100, -140, 88.5, 89, 140, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0, -0.0}
	for _, n := range []int{0, 7, 8, 16, 40, 203} {
		for _, mode := range []string{"plain", "special first", "special last", "mixed"} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 10)
			}
			switch mode {
			case "special first":
				for i := 0; i < min(n, 8); i++ {
					x[i] = specials[rng.IntN(len(specials))]
				}
			case "special last":
				for i := max(0, n/8*8-8); i < n; i++ {
					x[i] = specials[rng.IntN(len(specials))]
				}
			case "mixed":
				for i := range x {
					if rng.IntN(9) == 0 {
						x[i] = specials[rng.IntN(len(specials))]
					}
				}
			}
			mx := float32(rng.NormFloat64())
			got, want := make([]float32, n), make([]float32, n)
			var accGot, accWant [8]float32
			accGot[3], accWant[3] = 1.5, 1.5
			expSubAVX2(got, x, mx, &accGot)
			av := archsimd.LoadFloat32x8(&accWant)
			for i := 0; i+8 <= n; i += 8 {
				v := expV8(archsimd.LoadFloat32x8Slice(x[i : i+8]).Sub(bcast8(mx)))
				v.StoreSlice(want[i : i+8])
				av = av.Add(v)
			}
			av.Store(&accWant)
			archsimd.ClearAVXUpperBits()
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n %d %s: exp(%g − %g) = %g, expV8 gives %g", n, mode, x[i], mx, got[i], want[i])
				}
			}
			for l := range accGot {
				if math.Float32bits(accGot[l]) != math.Float32bits(accWant[l]) {
					t.Fatalf("n %d %s: sum lane %d = %g, want %g", n, mode, l, accGot[l], accWant[l])
				}
			}
		}
	}
}
