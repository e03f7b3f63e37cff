//go:build goexperiment.simd && amd64

package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"ladder-engine/gguf"
)

// The assembly row kernels of quant_dot_rows_avx2_amd64.s against their
// twins, called directly (not through the dispatch), on random blocks and
// edge cases: all-zero scales, extreme quants and scales, row counts 1..8,
// short rows (1..9 blocks and more) and rows further apart than their
// length (the gap filled with garbage the kernels must not read).
//
// Tolerance: integer block sums are exact and every scale product rounds
// once in both, so only the float32 summation order can differ:
// |Δ| <= 1e-5·Σ|terms|. Where the twin sums in the same order (Q8_0 with
// an even block count, F16 always) the results must be equal bit for bit.

func needF16C(t testing.TB) {
	t.Helper()
	if !hasAVX2 || !hasF16C {
		t.Skip("CPU has no AVX2+FMA+F16C")
	}
}

// f16Edge are block scales at the ends of the half range: largest finite,
// smallest normal, a subnormal and the smallest subnormal, zero.
var f16Edge = []uint16{0x7bff, 0x0400, 0x0201, 0x0001, 0x0000, 0xfbff, 0x8400, 0x8001}

// rowsCase is a set of weight rows, rb bytes apart, and the rows' float64
// |terms| sums for the tolerance.
type rowsCase struct {
	name string
	w    []byte
	rb   int
	rows int
	mag  []float64
}

// q8Cases builds Q8_0 weight rows for every (rows, blocks, gap) shape and
// fill pattern, with the Q8_0 activation row a.
func q8Cases(rng *rand.Rand, nb int, a []byte, bs int, fill func(r, b int, blk []byte)) []rowsCase {
	var cases []rowsCase
	for _, rows := range []int{1, 2, 3, 4, 5, 7, 8} {
		for _, gap := range []int{0, 5, 3*bs + 7} {
			rb := bs*nb + gap
			w := make([]byte, (rows-1)*rb+bs*nb)
			for i := range w {
				w[i] = byte(rng.Uint32()) // the gaps keep this garbage
			}
			for r := 0; r < rows; r++ {
				for b := 0; b < nb; b++ {
					fill(r, b, w[r*rb+bs*b:r*rb+bs*b+bs])
				}
			}
			cases = append(cases, rowsCase{name: fmt.Sprintf("rows=%d/gap=%d", rows, gap), w: w, rb: rb, rows: rows})
		}
	}
	return cases
}

// q8Mag is Σ|dw·da·qw·qa| of a Q8_0 (or, with nibbles, Q4_0) row.
func q8Mag(w, a []byte, nb int, q4 bool) float64 {
	var mag float64
	for b := 0; b < nb; b++ {
		y := a[34*b:]
		var s float64
		for j := 0; j < 32; j++ {
			var q int
			if q4 {
				x := w[18*b+2:]
				if j < 16 {
					q = int(x[j]&15) - 8
				} else {
					q = int(x[j-16]>>4) - 8
				}
			} else {
				q = int(int8(w[34*b+2+j]))
			}
			s += math.Abs(float64(q) * float64(int8(y[2+j])))
		}
		var dw float32
		if q4 {
			dw = half(w[18*b:])
		} else {
			dw = half(w[34*b:])
		}
		mag += s * math.Abs(float64(dw)*float64(half(y)))
	}
	return mag
}

// q8Act is a random Q8_0 activation row of nb blocks (quants within
// ±127, as the quantizer leaves them), block scales from scale.
func q8Act(rng *rand.Rand, nb int, scale func(b int) uint16, quant func(b, j int) int8) []byte {
	a := make([]byte, 34*nb)
	for b := 0; b < nb; b++ {
		binary.LittleEndian.PutUint16(a[34*b:], scale(b))
		for j := 0; j < 32; j++ {
			a[34*b+2+j] = byte(quant(b, j))
		}
	}
	return a
}

func randScale(rng *rand.Rand) uint16 {
	return gguf.F32ToF16(float32(rng.Float64()*0.1 + 1e-4))
}

// checkRows compares the kernel's outputs with the twin's.
func checkRows(t *testing.T, what string, got, want []float32, mag []float64, exact bool) {
	t.Helper()
	for r := range got {
		g, w := got[r], want[r]
		if exact || mag[r] == 0 {
			if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
				t.Fatalf("%s row %d: %g (%#x), want %g (%#x) bit for bit", what, r, g, math.Float32bits(g), w, math.Float32bits(w))
			}
			continue
		}
		if math.Abs(float64(g)-float64(w)) > 1e-5*mag[r] {
			t.Fatalf("%s row %d: %g, want %g (tol %g)", what, r, g, w, 1e-5*mag[r])
		}
	}
}

// q8Fills are the weight block patterns of the Q8_0 and Q4_0 tests:
// random, extreme quants with random and edge scales, zero scales.
func q8Fills(rng *rand.Rand, q4 bool) map[string]func(r, b int, blk []byte) {
	randq := func(blk []byte) {
		for j := 2; j < len(blk); j++ {
			blk[j] = byte(rng.Uint32())
		}
	}
	ext := func(blk []byte, r, b int) {
		for j := 2; j < len(blk); j++ {
			switch {
			case q4 && (r+b+j)%2 == 0:
				blk[j] = 0x00 // nibbles 0, 0: −8
			case q4:
				blk[j] = 0xff // nibbles 15, 15: +7
			case (r+b+j)%3 == 0:
				blk[j] = 0x80 // −128
			case (r+b+j)%3 == 1:
				blk[j] = 0x7f // +127
			default:
				blk[j] = 0x81 // −127
			}
		}
	}
	return map[string]func(r, b int, blk []byte){
		"random": func(r, b int, blk []byte) {
			binary.LittleEndian.PutUint16(blk, randScale(rng))
			randq(blk)
		},
		"extreme": func(r, b int, blk []byte) {
			binary.LittleEndian.PutUint16(blk, f16Edge[(r*3+b)%len(f16Edge)])
			ext(blk, r, b)
		},
		"extreme-quants": func(r, b int, blk []byte) {
			binary.LittleEndian.PutUint16(blk, randScale(rng))
			ext(blk, r, b)
		},
		"zero-scales": func(r, b int, blk []byte) {
			binary.LittleEndian.PutUint16(blk, 0)
			randq(blk)
		},
		"some-zero-scales": func(r, b int, blk []byte) {
			binary.LittleEndian.PutUint16(blk, randScale(rng))
			if (r+b)%3 == 1 {
				binary.LittleEndian.PutUint16(blk, 0x8000) // −0
			}
			randq(blk)
		},
	}
}

// q8Acts are the activation rows of the Q8_0 and Q4_0 tests.
func q8Acts(rng *rand.Rand, nb int) map[string][]byte {
	randq := func(b, j int) int8 { return int8(rng.IntN(255) - 127) }
	return map[string][]byte{
		"random":      q8Act(rng, nb, func(int) uint16 { return randScale(rng) }, randq),
		"extreme":     q8Act(rng, nb, func(b int) uint16 { return f16Edge[(b*5+1)%len(f16Edge)] }, func(b, j int) int8 { return int8(127 - 254*((b+j)%2)) }),
		"zero-scales": q8Act(rng, nb, func(int) uint16 { return 0 }, randq),
		"quantized": func() []byte {
			a := make([]byte, 34*nb)
			QuantizeActQ8_0(randomActivations(rng, 32*nb), a)
			return a
		}(),
	}
}

var rowsBlockCounts = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 24, 33}

func TestDotRowsQ8_0Asm(t *testing.T) {
	needF16C(t)
	rng := rand.New(rand.NewPCG(41, 42))
	twin := dotRowsLoop(dotQ8_0AVX2)
	for _, nb := range rowsBlockCounts {
		n := 32 * nb
		for an, a := range q8Acts(rng, nb) {
			prep := make([]byte, rowsActBytesQ8_0Dup(n))
			prepRowsQ8_0Dup(n, a, prep)
			for fn, fill := range q8Fills(rng, false) {
				for _, c := range q8Cases(rng, nb, a, 34, fill) {
					got := make([]float32, c.rows)
					want := make([]float32, c.rows)
					mag := make([]float64, c.rows)
					for r := range mag {
						mag[r] = q8Mag(c.w[r*c.rb:], a, nb, false)
					}
					dotRowsQ8_0AVX2(n, c.w, c.rb, prep, got)
					twin(n, c.w, c.rb, a, want)
					checkRows(t, fmt.Sprintf("nb=%d act=%s w=%s %s", nb, an, fn, c.name), got, want, mag, nb%2 == 0)
				}
			}
		}
	}
}

func TestDotRowsQ4_0Asm(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(43, 44))
	for _, nb := range append(rowsBlockCounts, 64, 65) {
		n := 32 * nb
		for an, a := range q8Acts(rng, nb) {
			prep := make([]byte, rowsActBytesQ8_0(n))
			prepRowsQ8_0(n, a, prep)
			for fn, fill := range q8Fills(rng, true) {
				for _, c := range q8Cases(rng, nb, a, 18, fill) {
					got := make([]float32, c.rows)
					want := make([]float32, c.rows)
					mag := make([]float64, c.rows)
					for r := range mag {
						mag[r] = q8Mag(c.w[r*c.rb:], a, nb, true)
					}
					dotRowsQ4_0AVX2(n, c.w, c.rb, prep, got)
					dotRowsQ4_0AVX512(n, c.w, c.rb, prep, want)
					checkRows(t, fmt.Sprintf("nb=%d act=%s w=%s %s", nb, an, fn, c.name), got, want, mag, false)
				}
			}
		}
	}
}

// f16Specials are weights at the ends of the half range, infinities
// included (a product with them is ±inf, or NaN against zero, alike in
// both kernels).
var f16Specials = []uint16{0x7bff, 0xfbff, 0x0400, 0x8400, 0x03ff, 0x0001, 0x8001, 0x0000, 0x8000, 0x7c00, 0xfc00}

// The F16 row kernel equals the F16 dot it replaces (dotF16F16CRow) bit
// for bit, on random, any-bit finite, special and zero weights.
func TestDotRowsF16Asm(t *testing.T) {
	needF16C(t)
	rng := rand.New(rand.NewPCG(45, 46))
	testDotRows16Bit(t, rng, encodeActF16, prepRowsF16, dotRowsF16AVX2, dotRowsLoop(dotF16F16CRow), map[string]func(i int) uint16{
		"random":   func(int) uint16 { return gguf.F32ToF16(float32(rng.NormFloat64() * 0.05)) },
		"bits":     func(int) uint16 { return uint16(rng.Uint32()) &^ 0x4000 }, // finite, any size
		"specials": func(i int) uint16 { return f16Specials[i%len(f16Specials)] },
		"zero":     func(int) uint16 { return 0 },
	})
}

// The BF16 row kernel equals the BF16 dot it replaces (dotBF16AVX2, whose
// assembly core has the same accumulators) bit for bit, on random, any-bit
// finite, special (±0, ±inf, subnormal, largest) and zero weights.
func TestDotRowsBF16Asm(t *testing.T) {
	needF16C(t)
	rng := rand.New(rand.NewPCG(49, 50))
	specials := []uint16{0, 0x8000, 0x7f80, 0xff80, 0x0001, 0x807f, 0x7f7f, 0xff7f, 0x3f80, 0xbf80}
	testDotRows16Bit(t, rng, encodeActBF16, prepRowsBF16, dotRowsBF16AVX2, dotRowsLoop(dotBF16AVX2), map[string]func(i int) uint16{
		"random":   func(int) uint16 { return gguf.F32ToBF16(float32(rng.NormFloat64() * 0.05)) },
		"bits":     func(int) uint16 { return uint16(rng.Uint32()) &^ 0x4000 }, // finite, any size
		"specials": func(i int) uint16 { return specials[i%len(specials)] },
		"zero":     func(int) uint16 { return 0 },
	})
}

// testDotRows16Bit checks a 16-bit float row kernel against its twin bit
// for bit: row counts 1..8, tails of every length, rows with gaps.
func testDotRows16Bit(t *testing.T, rng *rand.Rand, encode func([]float32, []byte), prepare func(int, []byte, []byte),
	kernel, twin func(int, []byte, int, []byte, []float32), fills map[string]func(i int) uint16) {
	t.Helper()
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 100, 256, 300} {
		x := randomActivations(rng, n)
		a := make([]byte, 2*n)
		encode(x, a)
		prep := make([]byte, rowsActBytesF16(n))
		prepare(n, a, prep)
		for fn, fill := range fills {
			for _, rows := range []int{1, 2, 3, 5, 7, 8} {
				for _, gap := range []int{0, 6, 34} {
					rb := 2*n + gap
					w := make([]byte, (rows-1)*rb+2*n)
					for i := range w {
						w[i] = byte(rng.Uint32())
					}
					for r := 0; r < rows; r++ {
						for i := 0; i < n; i++ {
							binary.LittleEndian.PutUint16(w[r*rb+2*i:], fill(r*n+i))
						}
					}
					got := make([]float32, rows)
					want := make([]float32, rows)
					kernel(n, w, rb, prep, got)
					twin(n, w, rb, a, want)
					checkRows(t, fmt.Sprintf("n=%d w=%s rows=%d gap=%d", n, fn, rows, gap), got, want, make([]float64, rows), true)
				}
			}
		}
	}
}

// The activation preparations and encoders in assembly equal their Go
// twins byte for byte.
func TestPrepRowsAsm(t *testing.T) {
	needF16C(t)
	rng := rand.New(rand.NewPCG(47, 48))
	for _, nb := range []int{1, 2, 3, 9, 24} {
		n := 32 * nb
		for an, a := range q8Acts(rng, nb) {
			got := make([]byte, rowsActBytesQ8_0Dup(n))
			want := make([]byte, len(got))
			prepRowsQ8_0Dup(n, a, got)
			prepRowsQ8_0DupGo(n, a, want)
			if string(got) != string(want) {
				t.Fatalf("prepRowsQ8_0Dup nb=%d act=%s differs from its Go twin", nb, an)
			}
		}
	}
	for _, n := range []int{1, 7, 8, 9, 16, 100, 2048} {
		h := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			v := uint16(rng.Uint32())
			if i < len(f16Specials) {
				v = f16Specials[i]
			}
			binary.LittleEndian.PutUint16(h[2*i:], v)
		}
		got := make([]byte, 4*n)
		prepRowsF16(n, h, got)
		for i := 0; i < n; i++ {
			g, w := binary.LittleEndian.Uint32(got[4*i:]), math.Float32bits(half(h[2*i:]))
			if g != w && !(half(h[2*i:]) != half(h[2*i:])) {
				t.Fatalf("prepRowsF16 n=%d [%d] = %#x, want %#x", n, i, g, w)
			}
		}
	}
}

// quantizeActAVX2 against QuantizeActQ8_0 and encodeActF16, byte for byte:
// random rows, zero blocks, tiny and huge values, half rounding ties,
// subnormal halves, overflow to infinity, infinities and NaNs (F16 only).
func TestQuantizeActAVX2(t *testing.T) {
	needF16C(t)
	rng := rand.New(rand.NewPCG(49, 50))
	rows := map[string]func(n int) []float32{
		"random": func(n int) []float32 { return randomActivations(rng, n) },
		"scaled": func(n int) []float32 {
			x := randVec(rng, n)
			for i := range x {
				x[i] *= float32(math.Pow(10, float64(rng.IntN(16)-10)))
			}
			return x
		},
		"ties": func(n int) []float32 {
			x := make([]float32, n)
			for i := range x {
				// halfway between two halves, normal and subnormal
				h := uint32(rng.IntN(0x7bff))
				x[i] = math.Float32frombits(math.Float32bits(gguf.F16ToF32(uint16(h)))+0x1000) * float32(1-2*(i%2))
				if h < 0x400 {
					x[i] = (float32(h) + 0.5) * 0x1p-24
				}
			}
			x[0] = 65519.99
			if n > 1 {
				x[1] = 65520 // rounds to infinity
			}
			return x
		},
		"integers": func(n int) []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.IntN(255) - 127) // x·127/amax hits ties
			}
			return x
		},
	}
	for name, gen := range rows {
		for _, n := range []int{32, 64, 96, 768, 33, 45} {
			x := gen(n)
			if n%32 == 0 {
				want := make([]byte, 34*n/32)
				got := make([]byte, len(want))
				QuantizeActQ8_0(x, want)
				if !quantizeActAVX2(gguf.TypeQ8_0, x, got) || string(got) != string(want) {
					t.Fatalf("Q8_0 %s n=%d: differs from QuantizeActQ8_0", name, n)
				}
			}
			want := make([]byte, 2*n)
			got := make([]byte, 2*n)
			encodeActF16(x, want)
			if !quantizeActAVX2(gguf.TypeF16, x, got) || string(got) != string(want) {
				t.Fatalf("F16 %s n=%d: differs from encodeActF16", name, n)
			}
		}
	}
	x := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -float32(math.NaN()), 1e-30, -1e-8, 1e10, 0, 5.960464477539063e-08, 2.980232238769531e-08, 8.940696716308594e-08}
	want := make([]byte, 2*len(x))
	got := make([]byte, 2*len(x))
	encodeActF16(x, want)
	quantizeActAVX2(gguf.TypeF16, x, got)
	if string(got) != string(want) {
		t.Fatalf("F16 specials: % x, want % x", got, want)
	}
}

// BenchmarkDotRowsAVX2: the assembly row kernels against their twins on
// decode shapes (160m: 768 columns; 1b: 2048 and 8192), one thread; the
// thread's CPU time per call too (cpu-ns/op), steadier than wall time on a
// shared machine.
func BenchmarkDotRowsAVX2(b *testing.B) {
	if !hasAVX2 || !hasF16C {
		b.Skip("no AVX2+F16C")
	}
	rng := rand.New(rand.NewPCG(51, 52))
	shapes := []struct{ rows, cols int }{{2304, 768}, {32000, 768}, {8192, 2048}, {2048, 8192}}
	type impl struct {
		name string
		fn   func(int, []byte, int, []byte, []float32)
		prep func(n int, enc []byte) []byte
	}
	prepWith := func(size func(int) int, f func(int, []byte, []byte)) func(int, []byte) []byte {
		return func(n int, enc []byte) []byte {
			p := make([]byte, size(n))
			f(n, enc, p)
			return p
		}
	}
	same := func(_ int, enc []byte) []byte { return enc }
	kernels := []struct {
		typ   gguf.Type
		impls []impl
	}{
		{gguf.TypeQ8_0, []impl{{"asm", dotRowsQ8_0AVX2, prepWith(rowsActBytesQ8_0Dup, prepRowsQ8_0Dup)}, {"twin", dotRowsLoop(dotQ8_0AVX2), same}}},
		{gguf.TypeQ4_0, []impl{{"asm", dotRowsQ4_0AVX2, prepWith(rowsActBytesQ8_0, prepRowsQ8_0)}, {"twin", dotRowsQ4_0AVX512, prepWith(rowsActBytesQ8_0, prepRowsQ8_0)}}},
		{gguf.TypeF16, []impl{{"asm", dotRowsF16AVX2, prepWith(rowsActBytesF16, prepRowsF16)}, {"twin", dotRowsLoop(dotF16F16CRow), same}}},
	}
	for _, k := range kernels {
		kern, _ := DotKernelFor(k.typ)
		for _, sh := range shapes {
			rb, _ := gguf.RowSize(k.typ, sh.cols)
			w := make([]byte, 0, sh.rows*rb)
			var row []byte
			for r := 0; r < sh.rows; r++ {
				if r%64 == 0 {
					row = randomWeightRow(rng, k.typ, sh.cols)
				}
				w = append(w, row...)
			}
			ab, _ := gguf.RowSize(kern.ActType, sh.cols)
			a := make([]byte, ab)
			kern.Quantize(randomActivations(rng, sh.cols), a)
			out := make([]float32, sh.rows)
			for _, im := range k.impls {
				act := im.prep(sh.cols, a)
				b.Run(fmt.Sprintf("%s/%dx%d/%s", k.typ, sh.rows, sh.cols, im.name), func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					b.SetBytes(int64(len(w)))
					cpu0 := threadCPUSeconds()
					for b.Loop() {
						im.fn(sh.cols, w, rb, act, out)
					}
					if cpu := threadCPUSeconds() - cpu0; cpu > 0 {
						b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/op")
					}
				})
			}
		}
	}
}
