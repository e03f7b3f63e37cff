package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// TestLMHeadCrossEntropy runs the fused head + cross-entropy in chunks of 2
// rows over 5 (the last chunk ragged), one target ignored, against double
// logits from gguf's dequantized Q8_0 head. Tolerances: the logits carry
// float32 sums of 64 terms (1e-5 relative on losses and on dhidden, which
// adds a second such product).
func TestLMHeadCrossEntropy(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(23, 24))
	const n, dim, vocab, chunk = 5, 64, 50, 2
	enc, w := quantWeight(t, r, gguf.TypeQ8_0, vocab, dim)
	head := Weight{Data: uploadBytes(t, d, enc), Type: gguf.TypeQ8_0, Rows: vocab, Cols: dim}
	hidden := randF32(r, n*dim, 1)
	targets := []int32{3, -100, 49, 0, 17}
	const scale = 1.0 / 4 // four targets count

	logits, _ := refMatMul(hidden, w, n, vocab, dim)
	wantLoss := make([]float64, n)
	wantDh := make([]float32, n*dim)
	for i, tg := range targets {
		if tg < 0 {
			continue
		}
		x := logits[i*vocab : i*vocab+vocab]
		mx := math.Inf(-1)
		for _, v := range x {
			mx = math.Max(mx, float64(v))
		}
		var s float64
		for _, v := range x {
			s += math.Exp(float64(v) - mx)
		}
		lse := math.Log(s)
		wantLoss[i] = mx + lse - float64(x[tg])
		for j, v := range x {
			g := scale * math.Exp(float64(v)-mx-lse)
			if j == int(tg) {
				g -= scale
			}
			for k := 0; k < dim; k++ {
				wantDh[i*dim+k] += float32(g * float64(w[j*dim+k]))
			}
		}
	}
	loss, dh := alloc(t, d, 8*n), upload(t, d, make([]float32, n*dim))
	scratch := alloc(t, d, 4*chunk*vocab)
	if err := d.LMHeadCrossEntropy(loss, dh, upload(t, d, hidden), n, head, uploadI32(t, d, targets), scale, scratch, chunk); err != nil {
		t.Fatal(err)
	}
	got := make([]float64, n)
	if err := d.ReadF64(got, loss); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if math.Abs(got[i]-wantLoss[i]) > 1e-5*math.Abs(wantLoss[i])+1e-6 {
			t.Fatalf("loss[%d] = %g, want %g", i, got[i], wantLoss[i])
		}
	}
	within(t, "dhidden", download(t, d, dh, n*dim), wantDh, 1e-5, 1e-6)
}

// TestAdamW checks two steps against optim's update formula, bit for bit
// (the kernel does the same float operations in the same order).
func TestAdamW(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(25, 26))
	const n = 300
	p, m, v := randF32(r, n, 1), make([]float32, n), make([]float32, n)
	pb, mb, vb := upload(t, d, p), upload(t, d, m), upload(t, d, v)
	for step := 1; step <= 2; step++ {
		g := randF32(r, n, 0.1)
		k := NewAdamWStep(1e-3, 0.9, 0.999, 1e-8, 0.01, step, step == 1)
		for i := range p {
			mi := k.Beta1*m[i] + (1-k.Beta1)*g[i]
			vi := k.Beta2*v[i] + (1-k.Beta2)*g[i]*g[i]
			m[i], v[i] = mi, vi
			denom := float32(math.Sqrt(float64(vi)))/k.BC2Sqrt + k.Eps
			p[i] = p[i]*k.Decay - k.StepSize*(mi/denom)
		}
		if err := d.AdamW(pb, upload(t, d, g), mb, vb, n, k); err != nil {
			t.Fatal(err)
		}
	}
	bitExact(t, "p", download(t, d, pb, n), p)
	bitExact(t, "m", download(t, d, mb, n), m)
	bitExact(t, "v", download(t, d, vb, n), v)
}

// TestSum checks the double reductions (sum, sum of squares, accumulated
// over two buffers) to 1e-12 relative: double sums in another order.
func TestSum(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(27, 28))
	a, b := randF32(r, 3001, 3), randF32(r, 77, 3)
	var sa, sq float64
	for _, v := range a {
		sa += float64(v)
		sq += float64(v) * float64(v)
	}
	for _, v := range b {
		sq += float64(v) * float64(v)
	}
	out := alloc(t, d, 8)
	ab, bb := upload(t, d, a), upload(t, d, b)
	got := make([]float64, 1)
	if err := d.Sum(out, ab, int64(len(a)), false, false); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadF64(got, out); err != nil || math.Abs(got[0]-sa) > 1e-12*math.Abs(sa) {
		t.Fatalf("sum = %g (%v), want %g", got[0], err, sa)
	}
	if err := d.Sum(out, ab, int64(len(a)), true, false); err != nil {
		t.Fatal(err)
	}
	if err := d.Sum(out, bb, int64(len(b)), true, true); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadF64(got, out); err != nil || math.Abs(got[0]-sq) > 1e-12*sq {
		t.Fatalf("sum of squares = %g (%v), want %g", got[0], err, sq)
	}
}

// TestAdamW8bit runs two 8-bit steps over 600 values in blocks of 256 (the
// last one ragged) against a reference restating optim's 8-bit update, with
// a brute-force nearest-code search instead of optim's bucket walk. Codes,
// scales and parameters must match exactly.
func TestAdamW8bit(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(29, 30))
	const n, bs = 600, 256
	nb := (n + bs - 1) / bs
	codes := DynamicCodes()
	sc, uc := codes[:256], codes[256:]
	if sc[127] != 0 || sc[255] != 1 || uc[0] != 0 || uc[255] != 1 {
		t.Fatalf("code books: signed[127] %g, signed[255] %g, unsigned[0] %g, unsigned[255] %g", sc[127], sc[255], uc[0], uc[255])
	}
	nearest := func(book []float32, x float32) int {
		best := 0
		for j := range book {
			dj, db := abs(x-book[j]), abs(x-book[best])
			if dj <= db {
				best = j
			}
		}
		return best
	}
	p := randF32(r, n, 1)
	c1, c2 := make([]byte, n), make([]byte, n)
	for i := range c1 {
		c1[i] = 127
	}
	max1, max2 := make([]float32, nb), make([]float32, nb)
	pb, c1b, c2b := upload(t, d, p), uploadBytes(t, d, c1), uploadBytes(t, d, c2)
	m1b, m2b, cb := upload(t, d, max1), upload(t, d, max2), upload(t, d, codes)
	for step := 1; step <= 2; step++ {
		g := randF32(r, n, 0.1)
		k := NewAdamWStep(1e-3, 0.9, 0.999, 1e-8, 0.01, step, true)
		for b := 0; b < nb; b++ {
			lo, hi := b*bs, min(n, (b+1)*bs)
			m, v := make([]float32, hi-lo), make([]float32, hi-lo)
			var a1, a2 float32
			for i := lo; i < hi; i++ {
				mi := k.Beta1*(sc[c1[i]]*max1[b]) + (1-k.Beta1)*g[i]
				vi := k.Beta2*(uc[c2[i]]*max2[b]) + (1-k.Beta2)*g[i]*g[i]
				denom := float32(math.Sqrt(float64(vi)))/k.BC2Sqrt + k.Eps
				p[i] = p[i]*k.Decay - k.StepSize*(mi/denom)
				m[i-lo], v[i-lo] = mi, vi
				a1, a2 = max(a1, abs(mi)), max(a2, vi)
			}
			max1[b], max2[b] = a1, a2
			for i := lo; i < hi; i++ {
				c := nearest(sc, m[i-lo]*(1/a1))
				if mv := m[i-lo]; mv > 0 && sc[c] < 0 {
					c++
				} else if mv < 0 && sc[c] > 0 {
					c--
				}
				c1[i] = byte(c)
				u := nearest(uc, v[i-lo]*(1/a2))
				if u == 0 && v[i-lo] > 0 {
					u = 1
				}
				c2[i] = byte(u)
			}
		}
		if err := d.AdamW8bit(pb, upload(t, d, g), c1b, c2b, m1b, m2b, cb, n, bs, k); err != nil {
			t.Fatal(err)
		}
	}
	bitExact(t, "p", download(t, d, pb, n), p)
	bitExact(t, "max1", download(t, d, m1b, nb), max1)
	bitExact(t, "max2", download(t, d, m2b, nb), max2)
	for _, c := range []struct {
		name string
		buf  Buffer
		want []byte
	}{{"c1", c1b, c1}, {"c2", c2b, c2}} {
		got := make([]byte, n)
		if err := d.Read(got, c.buf); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%s[%d] = %d, want %d", c.name, i, got[i], c.want[i])
			}
		}
	}
}
