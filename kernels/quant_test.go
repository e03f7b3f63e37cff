package kernels

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
)

// quantCase is one weight type with a column count that is a whole number
// of its blocks (and for the float types not a multiple of the 32-wide tile).
var quantCases = []struct {
	typ  gguf.Type
	cols int
}{
	{gguf.TypeF32, 45}, {gguf.TypeF16, 45}, {gguf.TypeBF16, 45},
	{gguf.TypeQ8_0, 96}, {gguf.TypeQ4_0, 96}, {gguf.TypeQ4_1, 96}, {gguf.TypeQ5_0, 96}, {gguf.TypeQ5_1, 96},
	{gguf.TypeIQ4_NL, 96},
	{gguf.TypeQ4_K, 256}, {gguf.TypeQ6_K, 256}, {gguf.TypeQ2_K, 256}, {gguf.TypeQ3_K, 256}, {gguf.TypeQ5_K, 256},
	{gguf.TypeIQ4_XS, 256},
}

// quantWeight encodes random values as typ (rows, cols) and returns the
// bytes and gguf's dequantization of them, the reference.
func quantWeight(t *testing.T, r *rand.Rand, typ gguf.Type, rows, cols int) ([]byte, []float32) {
	t.Helper()
	src := randF32(r, rows*cols, 1)
	for i := range src {
		if r.IntN(16) == 0 { // a few outliers make the block scales differ
			src[i] *= 4
		}
	}
	rb, err := gguf.RowSize(typ, cols)
	if err != nil {
		t.Fatal(err)
	}
	enc := make([]byte, rows*rb)
	if err := gguf.Quantize(typ, src, enc); err != nil {
		t.Fatal(err)
	}
	deq := make([]float32, rows*cols)
	if err := gguf.Dequantize(typ, enc, deq); err != nil {
		t.Fatal(err)
	}
	return enc, deq
}

// TestGetRows checks the dequantizing gather against gguf.Dequantize bit
// for bit, every type, rows in a shuffled order with a repeat.
func TestGetRows(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(1, 2))
	const rows = 5
	ids := []int32{3, 0, 4, 4, 1, 2}
	for _, tc := range quantCases {
		t.Run(tc.typ.String(), func(t *testing.T) {
			enc, deq := quantWeight(t, r, tc.typ, rows, tc.cols)
			w := Weight{Data: uploadBytes(t, d, enc), Type: tc.typ, Rows: rows, Cols: tc.cols}
			out := alloc(t, d, 4*len(ids)*tc.cols)
			if err := d.GetRows(out, w, uploadI32(t, d, ids), len(ids)); err != nil {
				t.Fatal(err)
			}
			want := make([]float32, 0, len(ids)*tc.cols)
			for _, id := range ids {
				want = append(want, deq[int(id)*tc.cols:int(id+1)*tc.cols]...)
			}
			bitExact(t, "rows", download(t, d, out, len(want)), want)
		})
	}
}

// refMatMul is out (n, rows) = x (n, cols) · wᵀ in double, with the bound
// Σ|x||w| per output that the tolerance scales with.
func refMatMul(x, w []float32, n, rows, cols int) (out, mag []float32) {
	out, mag = make([]float32, n*rows), make([]float32, n*rows)
	for i := 0; i < n; i++ {
		for j := 0; j < rows; j++ {
			var s, m float64
			for k := 0; k < cols; k++ {
				p := float64(x[i*cols+k]) * float64(w[j*cols+k])
				s += p
				m += math.Abs(p)
			}
			out[i*rows+j], mag[i*rows+j] = float32(s), float32(m)
		}
	}
	return
}

// closeScaled checks |got-want| <= tol·mag per value: float32 accumulation
// of k products is off by about k·2^-24 of Σ|x||w| at worst.
func closeScaled(t *testing.T, what string, got, want, mag []float32, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); math.IsNaN(float64(got[i])) || d > tol*float64(mag[i])+1e-30 {
			t.Fatalf("%s[%d] = %g, want %g (|Σ| bound %g, tolerance %g)", what, i, got[i], want[i], mag[i], tol)
		}
	}
}

// TestMatMul checks the tiled product (n = 5: one partial tile), the
// mat-vec (n = 1) and the input gradient for every type against double
// products of gguf's dequantized weights. rows = 37 spans two tiles with a
// ragged edge. Tolerance 1e-5 of Σ|x·w|: float32 sums of up to 256 terms.
func TestMatMul(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(3, 4))
	const rows = 37
	for _, tc := range quantCases {
		t.Run(tc.typ.String(), func(t *testing.T) {
			enc, deq := quantWeight(t, r, tc.typ, rows, tc.cols)
			w := Weight{Data: uploadBytes(t, d, enc), Type: tc.typ, Rows: rows, Cols: tc.cols}
			for _, n := range []int{1, 5} {
				x := randF32(r, n*tc.cols, 1)
				want, mag := refMatMul(x, deq, n, rows, tc.cols)
				out := alloc(t, d, 4*n*rows)
				if err := d.MatMul(out, upload(t, d, x), n, w, false); err != nil {
					t.Fatal(err)
				}
				closeScaled(t, "out", download(t, d, out, n*rows), want, mag, 1e-5)
			}
			// dx (n, cols) += dout (n, rows) · W: the reference is the
			// product with Wᵀ as a (cols, rows) matrix; dx starts at 1 to
			// check accumulation.
			const n = 3
			wt := make([]float32, tc.cols*rows)
			for j := 0; j < rows; j++ {
				for k := 0; k < tc.cols; k++ {
					wt[k*rows+j] = deq[j*tc.cols+k]
				}
			}
			dout := randF32(r, n*rows, 1)
			want, mag := refMatMul(dout, wt, n, tc.cols, rows)
			ones := make([]float32, n*tc.cols)
			for i := range ones {
				ones[i] = 1
				want[i]++
				mag[i]++
			}
			dx := upload(t, d, ones)
			if err := d.MatMulBackwardInput(dx, upload(t, d, dout), n, w, true); err != nil {
				t.Fatal(err)
			}
			closeScaled(t, "dx", download(t, d, dx, n*tc.cols), want, mag, 1e-5)
		})
	}
}

// TestGetRowsModelTensors dequantizes rows of real model tensors (the
// synthetic llama files, one per encoding, as llama-quantize wrote them)
// on the device and compares them bit for bit with gguf.Dequantize: one
// tensor of each type per file, its first 3 rows.
func TestGetRowsModelTensors(t *testing.T) {
	d := device(t)
	files := fixtures.Glob(t, "models/synth/synth-llama-*.gguf")
	seen := map[gguf.Type]bool{}
	for _, path := range files {
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			if len(ti.Ne) != 2 || seen[ti.Type] || !Supports(ti.Type) {
				continue
			}
			seen[ti.Type] = true
			cols, rows := int(ti.Ne[0]), min(int(ti.Ne[1]), 3)
			rb, err := gguf.RowSize(ti.Type, cols)
			if err != nil {
				t.Fatal(err)
			}
			data := f.Data(ti)[:rows*rb]
			want := make([]float32, rows*cols)
			if err := gguf.Dequantize(ti.Type, data, want); err != nil {
				t.Fatal(err)
			}
			w := Weight{Data: uploadBytes(t, d, data), Type: ti.Type, Rows: rows, Cols: cols}
			out := alloc(t, d, 4*rows*cols)
			if err := d.GetRows(out, w, uploadI32(t, d, []int32{0, 1, 2}[:rows]), rows); err != nil {
				t.Fatal(err)
			}
			bitExact(t, filepath.Base(path)+" "+ti.Name, download(t, d, out, rows*cols), want)
		}
		f.Close()
	}
	t.Logf("checked %d types", len(seen))
}
