package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"ladder-engine/gguf"
)

// The references below restate ops' CPU formulas (ops/rmsnorm.go, rope.go,
// swiglu.go, elementwise.go, embedding.go) in plain Go; ops is not
// imported (kernels is the leaf), so a change there must be mirrored here.

func TestRMSNorm(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(7, 8))
	const n, c, eps = 3, 300, 1e-5
	x, w, dy := randF32(r, n*c, 2), randF32(r, c, 1), randF32(r, n*c, 1)
	dx0, dw0 := randF32(r, n*c, 1), randF32(r, c, 1)

	want, rstd := make([]float32, n*c), make([]float32, n)
	for i := 0; i < n; i++ {
		var s float64
		for _, v := range x[i*c : i*c+c] {
			s += float64(v * v)
		}
		rstd[i] = 1 / float32(math.Sqrt(float64(float32(s/c)+eps)))
		for j := 0; j < c; j++ {
			want[i*c+j] = (x[i*c+j] * rstd[i]) * w[j]
		}
	}
	xb, wb := upload(t, d, x), upload(t, d, w)
	out, rs := alloc(t, d, 4*n*c), alloc(t, d, 4*n)
	if err := d.RMSNormForward(out, rs, xb, wb, n, c, eps); err != nil {
		t.Fatal(err)
	}
	// The double sum differs from the CPU's only in order: after rounding
	// to float the results agree to an ulp or two.
	within(t, "rstd", download(t, d, rs, n), rstd, 3e-7, 0)
	within(t, "out", download(t, d, out, n*c), want, 3e-7, 1e-7)

	wantDx, wantDw := append([]float32(nil), dx0...), append([]float32(nil), dw0...)
	for i := 0; i < n; i++ {
		xi, dyi, rsi := x[i*c:i*c+c], dy[i*c:i*c+c], rstd[i]
		var dot float64
		for j := range xi {
			wantDw[j] += dyi[j] * xi[j] * rsi
			dot += float64(dyi[j] * w[j] * xi[j])
		}
		k := rsi * rsi * rsi * float32(dot/c)
		for j := range xi {
			wantDx[i*c+j] += rsi*w[j]*dyi[j] - k*xi[j]
		}
	}
	dx, dw := upload(t, d, dx0), upload(t, d, dw0)
	if err := d.RMSNormBackward(dx, dw, upload(t, d, dy), xb, wb, upload(t, d, rstd), n, c); err != nil {
		t.Fatal(err)
	}
	within(t, "dx", download(t, d, dx, n*c), wantDx, 1e-5, 1e-6)
	// The column sums run in the CPU's order: same bits.
	bitExact(t, "dw", download(t, d, dw, c), wantDw)

	// No weight, no rstd kept.
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			want[i*c+j] = x[i*c+j] * rstd[i]
		}
	}
	if err := d.RMSNormForward(out, Buffer{}, xb, Buffer{}, n, c, eps); err != nil {
		t.Fatal(err)
	}
	within(t, "out without weight", download(t, d, out, n*c), want, 3e-7, 1e-7)
}

// refRoPE is ops.ropeRotate.
func refRoPE(x []float32, n, nHead, headDim int, pos []int32, base float32, neox bool, ff []float32, sinSign float32) {
	half := headDim / 2
	thetaScale := float32(math.Pow(float64(base), float64(float32(-2)/float32(headDim))))
	w := nHead * headDim
	for r := 0; r < n; r++ {
		theta := float32(pos[r])
		for i := 0; i < half; i++ {
			t := theta
			if ff != nil {
				t = theta / ff[i]
			}
			cos := float32(math.Cos(float64(t)))
			sin := float32(math.Sin(float64(t))) * sinSign
			theta *= thetaScale
			i0, i1 := 2*i, 2*i+1
			if neox {
				i0, i1 = i, i+half
			}
			for h := 0; h < nHead; h++ {
				hd := x[r*w+h*headDim:]
				x0, x1 := hd[i0], hd[i1]
				hd[i0] = x0*cos - x1*sin
				hd[i1] = x0*sin + x1*cos
			}
		}
	}
}

func TestRoPE(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(9, 10))
	const n, nHead, headDim, base = 4, 3, 10, 10000
	pos := []int32{0, 5, 17, 300}
	ff := []float32{1, 1, 2, 4, 8}
	for _, neox := range []bool{false, true} {
		for _, withFF := range []bool{false, true} {
			for _, back := range []bool{false, true} {
				x := randF32(r, n*nHead*headDim, 1)
				want := append([]float32(nil), x...)
				var f []float32
				fb := Buffer{}
				if withFF {
					f, fb = ff, upload(t, d, ff)
				}
				sign := float32(1)
				if back {
					sign = -1
				}
				refRoPE(want, n, nHead, headDim, pos, base, neox, f, sign)
				xb := upload(t, d, x)
				if err := d.RoPE(xb, uploadI32(t, d, pos), fb, n, nHead, headDim, base, neox, back); err != nil {
					t.Fatal(err)
				}
				// Angles are the same float steps; cos/sin in double on both
				// sides, so at most an ulp apart.
				within(t, "rope", download(t, d, xb, len(x)), want, 1e-6, 1e-7)
			}
		}
	}
}

func sigmoid64(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

func TestSwiGLU(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(11, 12))
	const n = 300
	g, u, dy := randF32(r, n, 6), randF32(r, n, 2), randF32(r, n, 1)
	dg0, du0 := randF32(r, n, 1), randF32(r, n, 1)
	want, wantDg, wantDu := make([]float32, n), append([]float32(nil), dg0...), append([]float32(nil), du0...)
	for i := range want {
		s := sigmoid64(g[i])
		want[i] = g[i] / (1 + float32(math.Exp(-float64(g[i])))) * u[i]
		wantDu[i] += dy[i] * g[i] * s
		wantDg[i] += dy[i] * u[i] * s * (1 + g[i]*(1-s))
	}
	gb, ub := upload(t, d, g), upload(t, d, u)
	out := alloc(t, d, 4*n)
	if err := d.SwiGLUForward(out, gb, ub, n); err != nil {
		t.Fatal(err)
	}
	// expf on the device is within 2 ulp.
	within(t, "out", download(t, d, out, n), want, 1e-6, 1e-7)
	dg, du := upload(t, d, dg0), upload(t, d, du0)
	if err := d.SwiGLUBackward(dg, du, upload(t, d, dy), gb, ub, n); err != nil {
		t.Fatal(err)
	}
	within(t, "dgate", download(t, d, dg, n), wantDg, 1e-6, 1e-6)
	within(t, "dup", download(t, d, du, n), wantDu, 1e-6, 1e-6)

	// SiLU alone: out = silu(g), dg += dout·silu'(g).
	wantDx := append([]float32(nil), dg0...)
	for i := range want {
		s := sigmoid64(g[i])
		want[i] = g[i] / (1 + float32(math.Exp(-float64(g[i]))))
		wantDx[i] += dy[i] * s * (1 + g[i]*(1-s))
	}
	if err := d.SiLUForward(out, gb, n); err != nil {
		t.Fatal(err)
	}
	within(t, "silu", download(t, d, out, n), want, 1e-6, 1e-7)
	dx := upload(t, d, dg0)
	if err := d.SiLUBackward(dx, upload(t, d, dy), gb, n); err != nil {
		t.Fatal(err)
	}
	within(t, "silu dx", download(t, d, dx, n), wantDx, 1e-6, 1e-6)
}

func TestElementwise(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(13, 14))
	const rows, c = 5, 67
	n := rows * c
	a, b, row := randF32(r, n, 1), randF32(r, n, 1), randF32(r, c, 1)
	ab, bb, rb := upload(t, d, a), upload(t, d, b), upload(t, d, row)
	out := alloc(t, d, 4*n)
	want := make([]float32, n)

	for _, bc := range []struct {
		name string
		b    []float32
		buf  Buffer
	}{{"full", b, bb}, {"row", row, rb}} {
		bn := len(bc.b)
		for i := range want {
			want[i] = a[i] + bc.b[i%bn]
		}
		if err := d.Add(out, ab, bc.buf, n, bn); err != nil {
			t.Fatal(err)
		}
		bitExact(t, "add "+bc.name, download(t, d, out, n), want)
		for i := range want {
			want[i] = a[i] * bc.b[i%bn]
		}
		if err := d.Mul(out, ab, bc.buf, n, bn); err != nil {
			t.Fatal(err)
		}
		bitExact(t, "mul "+bc.name, download(t, d, out, n), want)

		// da += dout⊙b, db += Σ dout⊙a, in the CPU's order.
		dout, da0, db0 := randF32(r, n, 1), randF32(r, n, 1), randF32(r, bn, 1)
		wantDa, wantDb := append([]float32(nil), da0...), append([]float32(nil), db0...)
		for i := range wantDa {
			wantDa[i] += dout[i] * bc.b[i%bn]
			wantDb[i%bn] += dout[i] * a[i]
		}
		da, db := upload(t, d, da0), upload(t, d, db0)
		if err := d.MulBackward(da, db, upload(t, d, dout), ab, bc.buf, n, bn); err != nil {
			t.Fatal(err)
		}
		bitExact(t, "mul da "+bc.name, download(t, d, da, n), wantDa)
		bitExact(t, "mul db "+bc.name, download(t, d, db, bn), wantDb)
	}

	for i := range want {
		want[i] = a[i] + 0.5*b[i]
	}
	acc := upload(t, d, a)
	if err := d.Axpy(acc, bb, 0.5, n); err != nil {
		t.Fatal(err)
	}
	bitExact(t, "axpy", download(t, d, acc, n), want)
	// dst += s·src and dst += s, s on the device.
	sb := upload(t, d, []float32{-0.25})
	acc = upload(t, d, a)
	if err := d.AxpyDevice(acc, bb, sb, n); err != nil {
		t.Fatal(err)
	}
	if err := d.AxpyDevice(acc, Buffer{}, sb, n); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i] = (a[i] + -0.25*b[i]) + -0.25
	}
	bitExact(t, "axpy on device", download(t, d, acc, n), want)
	for i := range want {
		want[i] = -3 * a[i]
	}
	if err := d.Scale(out, ab, -3, n); err != nil {
		t.Fatal(err)
	}
	bitExact(t, "scale", download(t, d, out, n), want)
	if err := d.Add(out, ab, rb, n, c+1); err == nil {
		t.Fatal("Add with an operand that does not divide: no error")
	}
}

func TestGatedMix(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(15, 16))
	const n, c, temp = 6, 45, 0.1
	a, b, dy := randF32(r, n*c, 1), randF32(r, n*c, 1), randF32(r, n*c, 1)
	ab, bb, dyb := upload(t, d, a), upload(t, d, b), upload(t, d, dy)
	for _, nGate := range []int{1, c} {
		alpha := randF32(r, nGate, 0.3)
		mu := make([]float32, nGate)
		for k := range mu {
			mu[k] = sigmoid64(alpha[k] / temp)
		}
		want := make([]float32, n*c)
		da0, db0, dal0 := randF32(r, n*c, 1), randF32(r, n*c, 1), randF32(r, nGate, 1)
		wantDa, wantDb, wantDal := append([]float32(nil), da0...), append([]float32(nil), db0...), append([]float32(nil), dal0...)
		dmu := make([]float64, nGate)
		for i := range want {
			m := mu[(i%c)%nGate]
			want[i] = m*a[i] + (1-m)*b[i]
			wantDa[i] += m * dy[i]
			wantDb[i] += (1 - m) * dy[i]
			dmu[(i%c)%nGate] += float64(dy[i] * (a[i] - b[i]))
		}
		for k, m := range mu {
			wantDal[k] += float32(dmu[k]) * m * (1 - m) / temp
		}
		alb := upload(t, d, alpha)
		out := alloc(t, d, 4*n*c)
		if err := d.GatedMixForward(out, ab, bb, alb, n, c, nGate, temp); err != nil {
			t.Fatal(err)
		}
		bitExact(t, "mix", download(t, d, out, n*c), want)
		da, db, dal := upload(t, d, da0), upload(t, d, db0), upload(t, d, dal0)
		if err := d.GatedMixBackward(dal, da, db, dyb, ab, bb, alb, n, c, nGate, temp); err != nil {
			t.Fatal(err)
		}
		bitExact(t, "da", download(t, d, da, n*c), wantDa)
		bitExact(t, "db", download(t, d, db, n*c), wantDb)
		// A scalar gate sums in a tree, not in order: a few ulp.
		within(t, "dalpha", download(t, d, dal, nGate), wantDal, 1e-6, 1e-7)
	}
}

func TestCasts(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(17, 18))
	x := randF32(r, 200, 10)
	x = append(x, 0, 1e-6, -3e-8, 70000, -1e9, float32(math.Inf(1)), 65504, 65520)
	n := len(x)
	h := alloc(t, d, 2*n)
	if err := d.CastF32ToF16(h, upload(t, d, x), n); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2*n)
	if err := d.Read(got, h); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, n)
	for i, v := range x {
		hb := gguf.F32ToF16(v)
		if g := uint16(got[2*i]) | uint16(got[2*i+1])<<8; g != hb {
			t.Fatalf("half of %g = %#04x, want %#04x", v, g, hb)
		}
		want[i] = gguf.F16ToF32(hb)
	}
	back := alloc(t, d, 4*n)
	if err := d.CastF16ToF32(back, h, n); err != nil {
		t.Fatal(err)
	}
	bitExact(t, "f16→f32", download(t, d, back, n), want)

	// bf16, with a NaN and subnormals (flushed) on top.
	x = append(x, float32(math.NaN()), 1e-40, -1e-39, 3.4e38)
	n = len(x)
	bh := alloc(t, d, 2*n)
	if err := d.CastF32ToBF16(bh, upload(t, d, x), n); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 2*n)
	if err := d.Read(got, bh); err != nil {
		t.Fatal(err)
	}
	want = make([]float32, n)
	for i, v := range x {
		hb := gguf.F32ToBF16(v)
		if g := uint16(got[2*i]) | uint16(got[2*i+1])<<8; g != hb {
			t.Fatalf("bf16 of %g = %#04x, want %#04x", v, g, hb)
		}
		want[i] = gguf.BF16ToF32(hb)
	}
	back = alloc(t, d, 4*n)
	if err := d.CastBF16ToF32(back, bh, n); err != nil {
		t.Fatal(err)
	}
	bitExact(t, "bf16→f32", download(t, d, back, n), want)
}

func TestEmbeddingBackward(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(19, 20))
	const vocab, c = 7, 300
	ids := []int32{2, 5, 2, 0, 6, 2}
	n := len(ids)
	dout, dt0 := randF32(r, n*c, 1), randF32(r, vocab*c, 1)
	want := append([]float32(nil), dt0...)
	for i, id := range ids {
		for j := 0; j < c; j++ {
			want[int(id)*c+j] += dout[i*c+j]
		}
	}
	dt := upload(t, d, dt0)
	if err := d.EmbeddingBackward(dt, upload(t, d, dout), uploadI32(t, d, ids), n, vocab, c); err != nil {
		t.Fatal(err)
	}
	bitExact(t, "dtable", download(t, d, dt, vocab*c), want)
}

// The double-to-float hand-offs of the losses: per-row values cast, and
// scale·Σ summed in double then rounded once.
func TestF64ToF32(t *testing.T) {
	d := device(t)
	x := []float64{1.25, -3e-9, 1e10 + 0.5, 7.000000001, 0, -2.5}
	b := alloc(t, d, 8*len(x))
	if err := d.Write(b, unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 8*len(x))); err != nil {
		t.Fatal(err)
	}
	out := alloc(t, d, 4*len(x))
	if err := d.CastF64ToF32(out, b, len(x)); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, len(x))
	var s float64
	for i, v := range x {
		want[i] = float32(v)
		s += v
	}
	bitExact(t, "f64→f32", download(t, d, out, len(x)), want)
	if err := d.SumF64(out, b, len(x), 0.5); err != nil {
		t.Fatal(err)
	}
	bitExact(t, "0.5·Σ", download(t, d, out, 1), []float32{float32(s * 0.5)})
}
