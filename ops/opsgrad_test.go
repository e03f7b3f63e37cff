package ops

import (
	"math"
	"testing"

	"ladder-engine/gguf"
)

// Every differentiable op against finite differences (gradcheck_test.go),
// with respect to every input that can take a gradient.
func TestOpGradients(t *testing.T) {
	type tc struct {
		name   string
		params []*Tensor
		names  []string
		build  func(tp *Tape) *Tensor
	}
	var cases []tc
	add := func(name string, build func(tp *Tape) *Tensor, names []string, params ...*Tensor) {
		cases = append(cases, tc{name, params, names, build})
	}
	{
		x, w := gcParam(1, 1, 5, 7), gcParam(2, 0.5, 3, 7)
		add("Linear", func(tp *Tape) *Tensor { return tp.Linear(x, w) }, []string{"x", "w"}, x, w)
	}
	{
		// A frozen input (a backbone hidden state) and a trainable weight.
		x, w := NewTensor(gcRand(3, 4*6, 1), 4, 6), gcParam(4, 0.5, 5, 6)
		add("Linear/frozen input", func(tp *Tape) *Tensor { return tp.Linear(x, w) }, []string{"w"}, w)
	}
	{
		x := gcParam(5, 1, 4, 8)
		m := NewMatrixF32("head", 6, 8, gcRand(6, 48, 0.5))
		add("LinearMatrix", func(tp *Tape) *Tensor { return tp.LinearMatrix(x, m) }, []string{"x"}, x)
	}
	{
		a, b, bias := gcParam(7, 1, 3, 5), gcParam(8, 1, 3, 5), gcParam(9, 1, 5)
		add("Add", func(tp *Tape) *Tensor { return tp.Add(a, b) }, []string{"a", "b"}, a, b)
		add("Add/row", func(tp *Tape) *Tensor { return tp.Add(a, bias) }, []string{"a", "bias"}, a, bias)
		add("Mul", func(tp *Tape) *Tensor { return tp.Mul(a, b) }, []string{"a", "b"}, a, b)
		add("Mul/row", func(tp *Tape) *Tensor { return tp.Mul(a, bias) }, []string{"a", "bias"}, a, bias)
		add("Mul/same", func(tp *Tape) *Tensor { return tp.Mul(a, a) }, []string{"a"}, a)
		add("Scale", func(tp *Tape) *Tensor { return tp.Scale(a, -1.5) }, []string{"a"}, a)
		add("Sum", func(tp *Tape) *Tensor { return tp.Sum(a) }, []string{"a"}, a)
	}
	{
		// The ladder gate: α/T with T = 0.1 makes σ steep, so α stays small.
		a, b := gcParam(10, 1, 3, 6), gcParam(11, 1, 3, 6)
		scalar, vector := gcParam(12, 0.1, 1), gcParam(13, 0.1, 6)
		add("GatedMix/scalar", func(tp *Tape) *Tensor { return tp.GatedMix(scalar, a, b, 0.1) }, []string{"alpha", "a", "b"}, scalar, a, b)
		add("GatedMix/vector", func(tp *Tape) *Tensor { return tp.GatedMix(vector, a, b, 0.1) }, []string{"alpha", "a", "b"}, vector, a, b)
		add("GatedMix/T=1", func(tp *Tape) *Tensor { return tp.GatedMix(vector, a, b, 1) }, []string{"alpha", "a", "b"}, vector, a, b)
	}
	{
		x, w := gcParam(14, 1, 4, 8), gcParam(15, 1, 8)
		add("RMSNorm", func(tp *Tape) *Tensor { return tp.RMSNorm(x, w, 1e-5) }, []string{"x", "w"}, x, w)
		add("RMSNorm/no weight", func(tp *Tape) *Tensor { return tp.RMSNorm(x, nil, 1e-5) }, []string{"x"}, x)
	}
	{
		x := gcParam(16, 1, 3, 2*8)
		pos := []int32{0, 5, 17}
		ff := []float32{1, 2, 4, 8}
		add("RoPE/norm", func(tp *Tape) *Tensor { return tp.RoPE(x, 2, pos, &RoPEConfig{Base: 10000}) }, []string{"x"}, x)
		add("RoPE/neox+freq factors", func(tp *Tape) *Tensor {
			return tp.RoPE(x, 2, pos, &RoPEConfig{Base: 10000, Neox: true, FreqFactors: ff})
		}, []string{"x"}, x)
		// Linear interpolation with a magnitude factor, partial rotary (6 of 8 dims).
		add("RoPE/linear+attn factor+partial", func(tp *Tape) *Tensor {
			return tp.RoPE(x, 2, pos, &RoPEConfig{NRot: 6, Base: 10000, Neox: true, FreqScale: 0.5, AttnFactor: 1.2})
		}, []string{"x"}, x)
		add("RoPE/yarn", func(tp *Tape) *Tensor {
			return tp.RoPE(x, 2, pos, &RoPEConfig{Base: 10000, FreqScale: 0.25, ExtFactor: 1, BetaFast: 32, BetaSlow: 1, NCtxOrig: 64})
		}, []string{"x"}, x)
	}
	{
		// Two sequences of 4 tokens, 4 query heads over 2 kv heads (GQA), head size 4.
		q, k, v := gcParam(17, 1, 8, 16), gcParam(18, 1, 8, 8), gcParam(19, 1, 8, 8)
		add("Attention/GQA batch", func(tp *Tape) *Tensor { return tp.Attention(q, k, v, 2, 4, 2, 0, nil) }, []string{"q", "k", "v"}, q, k, v)
		// Queries at positions 2..3 against 4 cached keys (generation with a cache).
		q2 := gcParam(20, 1, 2, 8)
		k2, v2 := gcParam(21, 1, 4, 8), gcParam(22, 1, 4, 8)
		add("Attention/pos0", func(tp *Tape) *Tensor { return tp.Attention(q2, k2, v2, 1, 2, 2, 2, nil) }, []string{"q", "k", "v"}, q2, k2, v2)
		// gemma2's options: soft-capped scores, a query scale, a sliding window of 2.
		g := &AttnOptions{Scale: 0.7, SoftCap: 1.5, Window: 2}
		add("Attention/softcap+window", func(tp *Tape) *Tensor { return tp.Attention(q, k, v, 2, 4, 2, 0, g) }, []string{"q", "k", "v"}, q, k, v)
		// One sequence of 10 ≥ attnTransposeMin tokens (keys and values
		// transposed in forward), head size 6 (dotsT's tail after 4).
		q3, k3, v3 := gcParam(40, 1, 10, 24), gcParam(41, 1, 10, 12), gcParam(42, 1, 10, 12)
		add("Attention/transposed", func(tp *Tape) *Tensor { return tp.Attention(q3, k3, v3, 1, 4, 2, 0, nil) }, []string{"q", "k", "v"}, q3, k3, v3)
		g3 := &AttnOptions{SoftCap: 2, Window: 3}
		add("Attention/transposed softcap+window", func(tp *Tape) *Tensor { return tp.Attention(q3, k3, v3, 1, 4, 2, 0, g3) }, []string{"q", "k", "v"}, q3, k3, v3)
	}
	{
		g, u := gcParam(23, 2, 3, 6), gcParam(24, 1, 3, 6)
		add("SwiGLU", func(tp *Tape) *Tensor { return tp.SwiGLU(g, u) }, []string{"gate", "up"}, g, u)
		add("SiLU", func(tp *Tape) *Tensor { return tp.SiLU(g) }, []string{"x"}, g)
		add("GeGLU", func(tp *Tape) *Tensor { return tp.GeGLU(g, u, false) }, []string{"gate", "up"}, g, u)
	}
	{
		table := gcParam(25, 1, 7, 4)
		ids := []int32{3, 0, 3, 6}
		add("Embedding", func(tp *Tape) *Tensor { return tp.Embedding(table, ids) }, []string{"table"}, table)
	}
	{
		logits := gcParam(26, 2, 5, 9)
		targets := []int32{1, -100, 8, 0, 8}
		add("CrossEntropy", func(tp *Tape) *Tensor { return tp.CrossEntropy(logits, targets) }, []string{"logits"}, logits)
		h := gcParam(27, 1, 5, 8)
		head := NewMatrixF32("output", 9, 8, gcRand(28, 72, 1))
		add("LMHeadCrossEntropy", func(tp *Tape) *Tensor { return tp.LMHeadCrossEntropy(h, head, 0, targets) }, []string{"hidden"}, h)
		add("LMHeadCrossEntropy/softcap", func(tp *Tape) *Tensor { return tp.LMHeadCrossEntropy(h, head, 1.5, targets) }, []string{"hidden"}, h)
		add("SoftCap", func(tp *Tape) *Tensor { return tp.SoftCap(logits, 1.5) }, []string{"x"}, logits)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkGrads(t, c.build, c.params, c.names, gcDefaultTol)
		})
	}
}

// LinearBF16 multiplies with the bf16-rounded weights and returns the f32
// gradient: the same as Linear on a weight holding those rounded values.
// (Its rounding has no derivative, so there is no finite difference to take.)
func TestLinearBF16(t *testing.T) {
	const n, c, oc = 5, 32, 6
	x := gcParam(1, 1, n, c)
	master := gcParam(2, 1, oc, c)
	w := NewBF16Weight("w", master)
	defer w.Free()
	rounded := make([]float32, oc*c)
	w.Half.DequantizeRow(0, rounded) // first row: check the rounding itself
	for i, v := range rounded[:c] {
		// bf16 keeps 8 significant bits: rounding moves a value by at most half
		// an ulp, 2^-9 of the binade start, so ≤ 2^-8 of the value.
		if m := master.F32()[i]; math.Abs(float64(v-m)) > math.Abs(float64(m))/256 {
			t.Fatalf("bf16 value %g far from master %g", v, master.F32()[i])
		}
	}
	for r := 0; r < oc; r++ {
		w.Half.DequantizeRow(r, rounded[r*c:(r+1)*c])
	}
	ref := ParamFrom(rounded, make([]float32, oc*c), oc, c)
	r := NewTensor(gcRand(3, n*oc, 1), n, oc)

	run := func(lin func(tp *Tape) *Tensor) (out, dx, dw []float32) {
		x.ZeroGrad()
		master.ZeroGrad()
		ref.ZeroGrad()
		tp := NewTape(NewCPU(nil))
		y := lin(tp)
		out = append([]float32(nil), y.F32()...)
		tp.Backward(tp.Sum(tp.Mul(y, r)))
		return out, append([]float32(nil), x.GradF32()...), append(append([]float32(nil), master.GradF32()...), ref.GradF32()...)
	}
	out, dx, dw := run(func(tp *Tape) *Tensor { return tp.LinearBF16(x, w) })
	wantOut, wantDx, wantDw := run(func(tp *Tape) *Tensor { return tp.Linear(x, ref) })
	// The bf16 dot kernel may round the activations to bf16 as well (8 bits
	// of mantissa: 0.4% per value, less over a 32-term sum).
	for i := range out {
		if !closeRel(out[i], float64(wantOut[i]), 1e-2) {
			t.Fatalf("out[%d] = %g, want %g", i, out[i], wantOut[i])
		}
	}
	for i := range dx {
		if !closeRel(dx[i], float64(wantDx[i]), 1e-5) {
			t.Fatalf("dx[%d] = %g, want %g", i, dx[i], wantDx[i])
		}
	}
	// dw holds master's gradient then ref's (each run fills one of them).
	for i := 0; i < oc*c; i++ {
		if !closeRel(dw[i], float64(wantDw[oc*c+i]), 1e-5) {
			t.Fatalf("dw[%d] = %g, want %g", i, dw[i], wantDw[oc*c+i])
		}
	}
	// A frozen input: only the weight gradient is recorded.
	frozen := NewTensor(x.F32(), n, c)
	master.ZeroGrad()
	tp := NewTape(NewCPU(nil))
	tp.Backward(tp.Sum(tp.Mul(tp.LinearBF16(frozen, w), r)))
	for i := 0; i < oc*c; i++ {
		if !closeRel(master.GradF32()[i], float64(wantDw[oc*c+i]), 1e-5) {
			t.Fatalf("frozen input: dw[%d] = %g, want %g", i, master.GradF32()[i], wantDw[oc*c+i])
		}
	}
}

// A frozen input stored as bf16 or f16 gives the weight the gradient of
// Linear on the decoded values.
func TestLinearFrozenInput(t *testing.T) {
	const n, c, oc = 6, 32, 5
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16} {
		xs := gcRand(1, n*c, 2)
		raw := make([]byte, n*c*typ.TypeSize())
		if err := gguf.Quantize(typ, xs, raw); err != nil {
			t.Fatal(err)
		}
		dt := map[gguf.Type]DType{gguf.TypeF32: F32, gguf.TypeF16: F16, gguf.TypeBF16: BF16}[typ]
		x := TensorOn(DefaultCPU(), -1, dt, n, c)
		x.Write(xs)
		decoded := make([]float32, n*c)
		if err := gguf.Dequantize(typ, raw, decoded); err != nil {
			t.Fatal(err)
		}
		w := gcParam(2, 1, oc, c)
		r := NewTensor(gcRand(3, n*oc, 1), n, oc)
		tp := NewTape(NewCPU(nil))
		y := tp.Linear(x, w)
		got := append([]float32(nil), y.F32()...)
		tp.Backward(tp.Sum(tp.Mul(y, r)))
		gotGrad := append([]float32(nil), w.GradF32()...)
		w.ZeroGrad()
		want := tp.Linear(NewTensor(decoded, n, c), w)
		for i := range got {
			if !closeRel(got[i], float64(want.F32()[i]), 1e-6) {
				t.Fatalf("%s: out[%d] = %g, want %g", typ, i, got[i], want.F32()[i])
			}
		}
		tp.Backward(tp.Sum(tp.Mul(want, r)))
		for i := range gotGrad {
			if !closeRel(gotGrad[i], float64(w.GradF32()[i]), 1e-6) {
				t.Fatalf("%s: dw[%d] = %g, want %g", typ, i, gotGrad[i], w.GradF32()[i])
			}
		}
	}
}

// The fused loss on a quantized (Q8_0) head equals the loss on its
// dequantized f32 copy, up to llama.cpp's 8-bit activation rounding in the
// forward; the hidden gradient uses the dequantized weights exactly.
func TestLMHeadCrossEntropyQuantizedHead(t *testing.T) {
	const n, d, vocab = 6, 64, 40
	ws := gcRand(1, vocab*d, 1)
	raw := make([]byte, vocab*d/gguf.TypeQ8_0.BlockSize()*gguf.TypeQ8_0.TypeSize())
	if err := gguf.Quantize(gguf.TypeQ8_0, ws, raw); err != nil {
		t.Fatal(err)
	}
	q8, err := NewMatrix("output", gguf.TypeQ8_0, vocab, d, raw)
	if err != nil {
		t.Fatal(err)
	}
	deq := make([]float32, vocab*d)
	if err := gguf.Dequantize(gguf.TypeQ8_0, raw, deq); err != nil {
		t.Fatal(err)
	}
	f32 := NewMatrixF32("output", vocab, d, deq)
	h := gcParam(2, 1, n, d)
	targets := []int32{1, 7, -100, 39, 0, 12}
	run := func(head *Matrix) (float32, []float32) {
		h.ZeroGrad()
		tp := NewTape(NewCPU(nil))
		loss := tp.LMHeadCrossEntropy(h, head, 0, targets)
		tp.Backward(loss)
		return loss.F32()[0], append([]float32(nil), h.GradF32()...)
	}
	lq, gq := run(q8)
	lf, gf := run(f32)
	if !closeRel(lq, float64(lf), 1e-2) {
		t.Fatalf("loss with Q8_0 head %g, with its f32 copy %g", lq, lf)
	}
	var scale float64
	for _, g := range gf {
		scale = math.Max(scale, math.Abs(float64(g)))
	}
	for i := range gq {
		if math.Abs(float64(gq[i]-gf[i])) > 2e-2*scale {
			t.Fatalf("dhidden[%d]: Q8_0 head %g, f32 copy %g", i, gq[i], gf[i])
		}
	}
}
