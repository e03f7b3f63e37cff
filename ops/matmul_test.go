package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
)

// fixtureMatrices returns one weight of every tensor type found in the synth
// models (real llama-quantize output: every type the engine must multiply).
func fixtureMatrices(t *testing.T) []*Matrix {
	t.Helper()
	seen := map[gguf.Type]bool{}
	var out []*Matrix
	for _, path := range fixtures.Glob(t, "models/synth/*.gguf") {
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		for _, ti := range f.Tensors {
			if len(ti.Ne) != 2 || seen[ti.Type] {
				continue
			}
			m, err := MatrixFromGGUF(f, ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			seen[ti.Type] = true
			out = append(out, m)
			// and a view of 45 rows: partial panels and tiles
			var part *Matrix
			if m.F32 != nil {
				part = NewMatrixF32(m.Name+"[:45]", 45, m.Cols, m.F32[:45*m.Cols])
			} else if part, err = NewMatrix(m.Name+"[:45]", m.Type, 45, m.Cols, m.Raw[:45*m.rowBytes]); err != nil {
				t.Fatal(err)
			}
			out = append(out, part)
		}
	}
	return out
}

// MatMul equals a float64 product of the dequantized weight with the
// activations as the dot kernel encodes them (so the only difference left
// is float32 accumulation), for every weight type, with several thread
// counts and batch sizes that exercise the tiling edges. Against the
// unencoded activations it is within the activation quantization error
// (Q8_0/Q8_K: ~1% relative of a row's dot magnitude).
func TestMatMulTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, w := range fixtureMatrices(t) {
		t.Run(fmt.Sprint(w.Type, "/", w.Rows), func(t *testing.T) {
			wd := make([]float32, w.Rows*w.Cols)
			for r := 0; r < w.Rows; r++ {
				w.DequantizeRow(r, wd[r*w.Cols:(r+1)*w.Cols])
			}
			for _, n := range []int{1, 3, 4, 13} {
				in := randVec(rng, n*w.Cols)
				enc := in
				if w.kernel != nil { // what the kernel sees: encode, decode
					k := w.kernel
					ab, _ := gguf.RowSize(k.ActType, w.Cols)
					buf := make([]byte, ab)
					enc = make([]float32, len(in))
					for i := 0; i < n; i++ {
						k.Quantize(in[i*w.Cols:(i+1)*w.Cols], buf)
						if err := gguf.Dequantize(k.ActType, buf, enc[i*w.Cols:(i+1)*w.Cols]); err != nil {
							t.Fatal(err)
						}
					}
				}
				for _, threads := range []int{1, 3} {
					p := NewPool(threads)
					out := make([]float32, n*w.Rows)
					MatMul(p, out, in, n, w)
					p.Close()
					var maxErr, maxQErr, scale float64
					for i := 0; i < n; i++ {
						for r := 0; r < w.Rows; r++ {
							var s, sq, mag float64
							for c := 0; c < w.Cols; c++ {
								wv := float64(wd[r*w.Cols+c])
								s += wv * float64(enc[i*w.Cols+c])
								sq += wv * float64(in[i*w.Cols+c])
								mag += math.Abs(wv * float64(in[i*w.Cols+c]))
							}
							got := float64(out[i*w.Rows+r])
							maxErr = max(maxErr, math.Abs(got-s)/mag)
							maxQErr = max(maxQErr, math.Abs(got-sq)/mag)
							scale = max(scale, mag)
						}
					}
					// float32 accumulation of Cols products, relative to Σ|products|;
					// Q8_1 activations also carry d·Σq rounded to f16, which the
					// Q4_1/Q5_1 dots use for the weight minimum term (~1e-4).
					tol := 1e-5
					if w.kernel != nil && w.kernel.ActType == gguf.TypeQ8_1 {
						tol = 5e-4
					}
					if maxErr > tol {
						t.Errorf("%s n=%d threads=%d: error vs encoded activations %.3g (relative to Σ|w·x|)", w.Name, n, threads, maxErr)
					}
					if maxQErr > 1e-2 {
						t.Errorf("%s n=%d threads=%d: error vs exact activations %.3g", w.Name, n, threads, maxQErr)
					}
				}
			}
		})
	}
}

// MatMulBackwardInput adds dOut · W (dequantized) to dIn.
func TestMatMulBackwardInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ws := fixtureMatrices(t)
	ws = append(ws, NewMatrixF32("f32-odd", 13, 172, randVec(rng, 13*172)), NewMatrixF32("f32-deep", 300, 40, randVec(rng, 300*40)))
	for _, w := range ws {
		for _, n := range []int{3, 13, 40} {
			t.Run(fmt.Sprint(w.Type, "/", w.Rows, "x", w.Cols, "/n=", n), func(t *testing.T) {
				dOut := randVec(rng, n*w.Rows)
				dIn0 := randVec(rng, n*w.Cols)
				row := make([]float32, w.Cols)
				want := make([]float64, n*w.Cols)
				for i := range want {
					want[i] = float64(dIn0[i])
				}
				for r := 0; r < w.Rows; r++ {
					w.DequantizeRow(r, row)
					for i := 0; i < n; i++ {
						for c, v := range row {
							want[i*w.Cols+c] += float64(dOut[i*w.Rows+r]) * float64(v)
						}
					}
				}
				for _, threads := range []int{1, 2} {
					p := NewPool(threads)
					dIn := append([]float32(nil), dIn0...)
					MatMulBackwardInput(p, dIn, dOut, n, w)
					p.Close()
					for i, v := range dIn {
						if math.Abs(float64(v)-want[i]) > 1e-4*(1+math.Abs(want[i]))*math.Sqrt(float64(w.Rows)) {
							t.Fatalf("threads %d: dIn[%d] = %g, want %g", threads, i, v, want[i])
						}
					}
				}
			})
		}
	}
}

// The fused activation rounding of the batched path equals the dot
// kernel's own encoding followed by decoding, bit for bit, including
// zeros, ties, tiny and large values.
func TestRoundActs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const cols = 512
	plain := randVec(rng, cols)
	x := randVec(rng, cols)
	for i := range x {
		switch i % 37 {
		case 0:
			x[i] = 0
		case 1:
			x[i] *= 1e-6
		case 2:
			x[i] *= 1e3
		case 3:
			x[i] = 0.5 // ties for some scales
		}
	}
	clear(x[256:288]) // an all-zero block
	for _, x := range [][]float32{plain, x} {
		for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ8_K, gguf.TypeF16, gguf.TypeBF16} {
			checkRoundActs(t, typ, x)
		}
	}
}

func checkRoundActs(t *testing.T, typ gguf.Type, x []float32) {
	t.Helper()
	cols := len(x)
	var k *DotKernel
	for _, wt := range []gguf.Type{gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeF16, gguf.TypeBF16} {
		kk, err := DotKernelFor(wt)
		if err == nil && kk.ActType == typ {
			k = kk
		}
	}
	if k == nil {
		t.Fatalf("no kernel with activation type %s", typ)
	}
	ab, _ := gguf.RowSize(typ, cols)
	enc := make([]byte, ab)
	k.Quantize(x, enc)
	want := make([]float32, cols)
	if err := gguf.Dequantize(typ, enc, want); err != nil {
		t.Fatal(err)
	}
	if fast := make([]byte, ab); quantizeActFast(typ, x, fast) && string(fast) != string(enc) {
		t.Errorf("%s: quantizeActFast differs from the kernel's Quantize", typ)
	}
	got := make([]float32, cols)
	if !roundActsFast(typ, x, got) {
		t.Fatalf("%s: no fast path", typ)
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: value %d (%g): got %g, want %g", typ, i, x[i], got[i], want[i])
		}
	}
}
