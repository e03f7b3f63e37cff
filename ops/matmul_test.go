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
		t.Run(w.Type.String(), func(t *testing.T) {
			wd := make([]float32, w.Rows*w.Cols)
			for r := 0; r < w.Rows; r++ {
				w.DequantizeRow(r, wd[r*w.Cols:(r+1)*w.Cols])
			}
			for _, n := range []int{1, 5} {
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
	ws = append(ws, NewMatrixF32("f32-odd", 13, 172, randVec(rng, 13*172)))
	for _, w := range ws {
		t.Run(fmt.Sprint(w.Type, "/", w.Cols), func(t *testing.T) {
			n := 3
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
