package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"ladder-engine/gguf"
)

// prepareRows returns the activation row as DotRows takes it: the encoded
// row itself, or its PrepareRows layout.
func prepareRows(k *DotKernel, n int, enc []byte) []byte {
	if k.PrepareRows == nil {
		return enc
	}
	prep := make([]byte, k.RowsActBytes(n))
	k.PrepareRows(n, enc, prep)
	return prep
}

// DotRows (the decode row kernels) against the float64 dot of the
// dequantized operands, for row and block counts that exercise whole
// groups of blocks and the leftovers; same tolerance as
// TestDotKernelsMatchDequantized (integer block sums are exact, only the
// float32 scale products and accumulation round).
func TestDotRowsMatchDequantized(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, typ := range dotTypes {
		k, err := DotKernelFor(typ)
		if err != nil {
			t.Fatal(err)
		}
		bs := typ.BlockSize()
		for _, n := range []int{bs, 3 * bs, 11 * bs, 768, 2048} {
			if n%bs != 0 {
				continue
			}
			for _, rows := range []int{1, 3, 9} {
				rb, _ := gguf.RowSize(typ, n)
				w := make([]byte, 0, rows*rb)
				for r := 0; r < rows; r++ {
					w = append(w, randomWeightRow(rng, typ, n)...)
				}
				ab, _ := gguf.RowSize(k.ActType, n)
				a := make([]byte, ab)
				k.Quantize(randomActivations(rng, n), a)
				out := make([]float32, rows)
				k.DotRows(n, w, rb, prepareRows(k, n, a), out)
				for r := range out {
					want, mag := expectedDot(t, typ, k, n, w[r*rb:(r+1)*rb], a)
					if math.Abs(float64(out[r])-want) > 1e-5*mag+1e-30 {
						t.Errorf("%s n=%d rows=%d row %d: %g, want %g (tol %g)", typ, n, rows, r, out[r], want, 1e-5*mag)
					}
				}
			}
		}
	}
}

// The scale conversion of the Q4_0 row kernel (f16 bits moved into a
// float32, the 2^112 folded into the activation scale) rounds each block's
// scale product once, like half(x)*half(y): for every finite weight scale
// (subnormals included), in one block of eight whose other scales are zero,
// the row kernel equals the reference kernel bit for bit.
func TestDotRowsQ4_0Scales(t *testing.T) {
	k, _ := DotKernelFor(gguf.TypeQ4_0)
	if k.PrepareRows == nil {
		t.Skip("no Q4_0 row kernel in this build")
	}
	const n = 256 // one group of eight blocks
	rng := rand.New(rand.NewPCG(17, 18))
	a := make([]byte, 34*8)
	k.Quantize(randomActivations(rng, n), a)
	a[34*7], a[34*7+1] = 0x01, 0x00 // the smallest subnormal activation scale
	prep := prepareRows(k, n, a)
	w := make([]byte, 18*8)
	for i := range w {
		w[i] = byte(rng.Uint32())
	}
	out := make([]float32, 1)
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 {
			continue // infinities and NaNs: never block scales
		}
		b := h % 8
		for j := 0; j < 8; j++ {
			w[18*j], w[18*j+1] = 0, 0
		}
		w[18*b], w[18*b+1] = byte(h), byte(h>>8)
		k.DotRows(n, w, len(w), prep, out)
		want := dotQ4_0Ref(n, w, a)
		if math.Float32bits(out[0]) != math.Float32bits(want) {
			t.Fatalf("scale %#04x in block %d: %g, want %g", h, b, out[0], want)
		}
	}
}

// BenchmarkDotRows: decode-shaped matrices (rows × cols, 160m and 1b
// shapes) against one activation row with DotKernel.DotRows on one thread,
// in weights and bytes per CPU-second, and the one-row Dot in a loop for
// comparison. The largest matrices exceed the L3 cache.
func BenchmarkDotRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(15, 16))
	shapes := []struct{ rows, cols int }{{2048, 768}, {32000, 768}, {160000, 768}, {65536, 2048}, {16384, 8192}}
	for _, typ := range []gguf.Type{gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeQ8_0} {
		k, _ := DotKernelFor(typ)
		for _, sh := range shapes {
			rb, _ := gguf.RowSize(typ, sh.cols)
			w := make([]byte, 0, sh.rows*rb)
			var row []byte
			for r := 0; r < sh.rows; r++ {
				if r%64 == 0 {
					row = randomWeightRow(rng, typ, sh.cols)
				}
				w = append(w, row...)
			}
			ab, _ := gguf.RowSize(k.ActType, sh.cols)
			a := make([]byte, ab)
			k.Quantize(randomActivations(rng, sh.cols), a)
			out := make([]float32, sh.rows)
			impls := []struct {
				name string
				fn   func(int, []byte, int, []byte, []float32)
				a    []byte
			}{{"rows", k.DotRows, prepareRows(k, sh.cols, a)}, {"loop", dotRowsLoop(k.Dot), a}}
			for _, im := range impls {
				b.Run(fmt.Sprintf("%s/%dx%d/%s", typ, sh.rows, sh.cols, im.name), func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					cpu0 := threadCPUSeconds()
					for b.Loop() {
						im.fn(sh.cols, w, rb, im.a, out)
					}
					cpu := threadCPUSeconds() - cpu0
					if cpu > 0 {
						b.ReportMetric(float64(sh.rows*sh.cols)*float64(b.N)/cpu/1e9, "cpu-Gweights/s")
						b.ReportMetric(float64(len(w))*float64(b.N)/cpu/1e9, "cpu-GB/s")
					}
				})
			}
		}
	}
}
