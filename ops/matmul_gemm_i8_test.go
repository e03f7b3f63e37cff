package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// randI8Weight makes a (rows, cols) Q4_0 or Q8_0 matrix with random blocks
// and, every few blocks, an edge case: a zero scale, every nibble 0 or 15
// (Q4_0), every value −128 or 127 (Q8_0).
func randI8Weight(t *testing.T, rng *rand.Rand, typ gguf.Type, rows, cols int) *Matrix {
	t.Helper()
	bb := map[gguf.Type]int{gguf.TypeQ4_0: 18, gguf.TypeQ8_0: 34}[typ]
	nb := rows * cols / 32
	raw := make([]byte, nb*bb)
	for b := 0; b < nb; b++ {
		blk := raw[b*bb : (b+1)*bb]
		d := float32(rng.NormFloat64() * 0.02)
		for i := 2; i < bb; i++ {
			blk[i] = byte(rng.IntN(256))
		}
		switch rng.IntN(8) {
		case 0:
			d = 0
		case 1:
			for i := 2; i < bb; i++ {
				blk[i] = 0x00
				if typ == gguf.TypeQ8_0 {
					blk[i] = 0x80 // −128
				}
			}
		case 2:
			for i := 2; i < bb; i++ {
				blk[i] = 0xff
				if typ == gguf.TypeQ8_0 {
					blk[i] = 0x7f
				}
			}
		}
		binary.LittleEndian.PutUint16(blk, gguf.F32ToF16(d))
	}
	m, err := NewMatrix("w", typ, rows, cols, raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randI8Acts returns n rows of activations, some rows with outliers (so
// that their other values quantize to small integers) and one block all zero.
func randI8Acts(rng *rand.Rand, n, cols int) []float32 {
	x := randVec(rng, n*cols)
	for i := 0; i < n; i++ {
		if i%3 == 1 {
			x[i*cols+rng.IntN(cols)] = 40
		}
	}
	if n*cols >= 64 {
		clear(x[32:64])
	}
	return x
}

// i8Want is out = in · Wᵀ computed in float64 from independent decodings:
// the activations Q8_0-encoded and decoded, the weights decoded by gguf;
// and mag, Σ|w·a| per output, for tolerances.
func i8Want(t *testing.T, w *Matrix, in []float32, n int) (want, mag []float64) {
	t.Helper()
	cols := w.Cols
	a := make([]float32, n*cols)
	enc := make([]byte, cols/32*34)
	for i := 0; i < n; i++ {
		QuantizeActQ8_0(in[i*cols:(i+1)*cols], enc)
		if err := gguf.Dequantize(gguf.TypeQ8_0, enc, a[i*cols:(i+1)*cols]); err != nil {
			t.Fatal(err)
		}
	}
	wr := make([]float32, cols)
	want, mag = make([]float64, n*w.Rows), make([]float64, n*w.Rows)
	for r := 0; r < w.Rows; r++ {
		if err := gguf.Dequantize(w.Type, w.Raw[r*w.rowBytes:(r+1)*w.rowBytes], wr); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			for k, v := range wr {
				p := float64(v) * float64(a[i*cols+k])
				want[i*w.Rows+r] += p
				mag[i*w.Rows+r] += math.Abs(p)
			}
		}
	}
	return want, mag
}

// TestMatMulGEMMI8: the int8 matmul with the Go kernel (and the assembly,
// where the CPU has it) against float64 sums of the decoded operands, over
// row counts that leave partial tiles (n not a multiple of 4, weight rows
// not a multiple of 8 or of the 64-row pack), one-block depth, and two
// workers. Tolerance: the block scale product d_w·d_a and the float32
// accumulation round, |Δ| <= 1e-5·Σ|w·a|; the integer sums are exact.
func TestMatMulGEMMI8(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 8))
	type kern struct {
		name string
		k    i8Kernel
	}
	for _, typ := range []gguf.Type{gguf.TypeQ4_0, gguf.TypeQ8_0} {
		kernels := []kern{{"go", map[gguf.Type]i8Kernel{gguf.TypeQ4_0: i8KernelQ4_0Go, gguf.TypeQ8_0: i8KernelQ8_0Go}[typ]}}
		if k, ok := i8Weight(&Matrix{Type: typ}); ok {
			kernels = append(kernels, kern{"fast", k})
		}
		for _, sz := range []struct{ n, rows, cols int }{
			{4, 8, 32}, {1, 3, 32}, {5, 13, 64}, {7, 70, 96}, {13, 130, 256}, {8, 64, 128},
		} {
			w := randI8Weight(t, rng, typ, sz.rows, sz.cols)
			in := randI8Acts(rng, sz.n, sz.cols)
			want, mag := i8Want(t, w, in, sz.n)
			for _, kn := range kernels {
				for _, threads := range []int{1, 2} {
					t.Run(fmt.Sprintf("%s/%s/n%d/rows%d/cols%d/t%d", typ, kn.name, sz.n, sz.rows, sz.cols, threads), func(t *testing.T) {
						p := NewPool(threads)
						defer p.Close()
						out := make([]float32, sz.n*sz.rows)
						p.mmu.Lock()
						matmulGEMMI8(p, out, in, sz.n, w, kn.k)
						p.mmu.Unlock()
						for i, g := range out {
							if math.Abs(float64(g)-want[i]) > 1e-5*mag[i]+1e-30 {
								t.Fatalf("out[%d][%d] = %g, want %g (Σ|w·a| %g)", i/sz.rows, i%sz.rows, g, want[i], mag[i])
							}
						}
					})
				}
			}
		}
	}
}

// TestPackI8PanelAVX2: the assembly panel packers give packI8PanelGo's
// bytes for Q4_0 and Q8_0 panels at any row offset, one to nine blocks,
// random quant bytes and f16 scales including zero, −0, a subnormal, the
// largest finite value and infinity.
func TestPackI8PanelAVX2(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 8))
	specials := []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x3c00}
	for _, typ := range []gguf.Type{gguf.TypeQ4_0, gguf.TypeQ8_0} {
		for _, nb := range []int{1, 2, 5, 9} {
			rows, cols := 19, 32*nb
			rb, _ := gguf.RowSize(typ, cols)
			raw := make([]byte, rows*rb)
			for i := range raw {
				raw[i] = byte(rng.IntN(256))
			}
			bs := 2 + 16 // block bytes
			if typ == gguf.TypeQ8_0 {
				bs = 2 + 32
			}
			for b := 0; b < rows*nb; b++ { // scales: random finite, some special
				h := uint16(rng.IntN(0x7c00))
				if rng.IntN(3) == 0 {
					h = specials[rng.IntN(len(specials))]
				}
				binary.LittleEndian.PutUint16(raw[b*bs:], h)
			}
			w, err := NewMatrix("w", typ, rows, cols, raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, j0 := range []int{0, 3, 11} {
				want, got := make([]byte, nb*i8BlockBytes), make([]byte, nb*i8BlockBytes)
				packI8PanelGo(want, w, j0, i8NR)
				if !packI8PanelFast(got, w, j0, i8NR) {
					t.Skip("no AVX2/F16C")
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%v, %d blocks, rows from %d: byte %d (block %d, offset %d) = %#x, Go %#x",
							typ, nb, j0, i, i/i8BlockBytes, i%i8BlockBytes, got[i], want[i])
					}
				}
			}
		}
	}
}
