package engine

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"ladder-engine/internal/fixtures"
	"ladder-engine/ops"
)

// A backbone block in training mode (a recording tape, frozen quantized
// weights, a LoRA pair on every projection) back-propagates to the block
// input and to every LoRA pair what finite differences of the same forward
// give: the QLoRA baseline's block is BlockForward itself.
//
// Finite differences: L = Σ out⊙R for a fixed random R, the fourth-order
// central difference at h = 2e-2 on float32 forwards (as ops' gradient
// checks), on 16 random entries of each tensor (every entry would take
// minutes). Tolerance as ops' checks: |analytic − numeric| ≤ 1e-3·scale +
// 5e-3·|numeric|, scale the largest |analytic| of the tensor. The frozen
// products are exact f32 over the dequantized weights in training
// (LinearMatrix with a gradient), so the forward is smooth in every input.
//
// gemma2 and phi3 blocks too: soft-capped scores, the query scale, GeGLU
// (exact tanh GELU in training), post-norms, and phi3's fused weights as
// row views under LoRA pairs; their sliding window is narrowed to 3 so it
// cuts into the 5-token sequence.
func TestBlockLoRAGradients(t *testing.T) {
	for _, c := range []struct {
		name, path, wqType string
		layer, window      int
	}{
		{"llama-Q4_0", "models/synth/synth-llama-Q4_0.gguf", "q4_0", 1, 0},
		{"llama-Q8_0", "models/synth/synth-llama-Q8_0.gguf", "q8_0", 1, 0},
		{"gemma2-Q8_0", "models/arch/synth-gemma2-Q8_0.gguf", "q8_0", 0, 3},
		{"phi3-Q8_0", "models/arch/synth-phi3-Q8_0.gguf", "q8_0", 1, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(fixtures.Path(t, c.path), 2)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got := m.Layers[c.layer].Wq.Type.String(); got != c.wqType {
				t.Fatalf("attn_q is %s, want a %s model", got, c.wqType)
			}
			hp := m.BlockHparams()
			if c.window > 0 {
				if !hp.SWALayers[c.layer] {
					t.Fatalf("layer %d does not slide", c.layer)
				}
				hp.SlidingWindow = c.window
			}
			w := m.Block(c.layer)
			rng := rand.New(rand.NewPCG(7, 11))
			const rank = 2
			var params []*ops.Tensor
			var names []string
			lora := func(name string, base ops.Weight) ops.Weight {
				l := ops.NewLoRA(m.Backend, base, rank, 4, rng)
				// B is zero after PEFT's init (the adapted block is the base
				// block); make it non-zero so A's gradient is too.
				b := make([]float32, l.B.Len())
				for i := range b {
					b[i] = float32(rng.NormFloat64() * 0.05)
				}
				l.B.Write(b)
				params = append(params, l.A, l.B)
				names = append(names, name+".lora_a", name+".lora_b")
				return l
			}
			w.Wq, w.Wk, w.Wv, w.Wo = lora("q", w.Wq), lora("k", w.Wk), lora("v", w.Wv), lora("o", w.Wo)
			w.WGate, w.WUp, w.WDown = lora("gate", w.WGate), lora("up", w.WUp), lora("down", w.WDown)

			const n = 5
			xs := make([]float32, n*hp.NEmbd)
			for i := range xs {
				xs[i] = float32(rng.NormFloat64())
			}
			x := ops.ParamFrom(xs, make([]float32, len(xs)), n, hp.NEmbd)
			params = append(params, x)
			names = append(names, "input")
			pos := []int32{0, 1, 2, 3, 4}
			r := make([]float32, n*hp.NEmbd)
			for i := range r {
				r[i] = float32(rng.NormFloat64())
			}
			// The same training-mode forward (a recording tape: exact frozen
			// products), its records dropped.
			fd := ops.NewTape(m.Backend)
			loss := func() float64 {
				out := BlockForward(fd, &hp, &w, x, pos, 1, nil, c.layer)
				var s float64
				for i, v := range out.F32() {
					s += float64(v) * float64(r[i])
				}
				fd.Reset()
				return s
			}

			// Analytic gradients through the tape's own ops.
			tp := ops.NewTape(m.Backend)
			out := BlockForward(tp, &hp, &w, x, pos, 1, nil, c.layer)
			tp.Backward(tp.Sum(tp.Mul(out, ops.NewTensor(r, n, hp.NEmbd))))
			for _, p := range params {
				if p.GradF32() == nil {
					t.Fatalf("no gradient buffer")
				}
			}
			// The frozen weights got no gradient: nothing to check but that
			// the block's weights are still Frozen underneath.
			if _, ok := w.Wq.(*ops.LoRA).Base.(ops.Frozen); !ok {
				t.Fatal("attn_q's base is not a frozen GGUF matrix")
			}

			const h = 2e-2
			for pi, p := range params {
				g := p.GradF32()
				var scale float64
				for _, v := range g {
					scale = max(scale, math.Abs(float64(v)))
				}
				if scale == 0 {
					t.Errorf("%s: gradient is all zero", names[pi])
					continue
				}
				vals := p.F32()
				for k := 0; k < 16; k++ {
					i := rng.IntN(len(vals))
					v := vals[i]
					at := func(d float32) float64 { vals[i] = v + d; return loss() }
					num := (-at(2*h) + 8*at(h) - 8*at(-h) + at(-2*h)) / (12 * h)
					vals[i] = v
					if diff := math.Abs(float64(g[i]) - num); diff > 1e-3*scale+5e-3*math.Abs(num) {
						t.Errorf("%s[%d]: analytic %.6g, numeric %.6g (scale %.3g)", names[pi], i, g[i], num, scale)
					}
				}
			}
		})
	}
}

// The strict backend (CPU kernels, buffers out of reach) gives the CPU
// backend's final hidden states and perplexity bit for bit on stories260K:
// nothing in the forward or the perplexity loop reads backend memory
// behind the interface (it would panic).
func TestStrictBackendMatchesCPU(t *testing.T) {
	path := modelPath(t, "stories260K")
	cpu := loadModel(t, "stories260K")
	strict, err := LoadOn(path, 2, func(p *ops.Pool) ops.Backend { return ops.NewStrict(p) })
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	if strict.Backend.Name() != "strict" {
		t.Fatalf("backend %s", strict.Backend.Name())
	}
	tokens := cpu.Tok.Encode("Once upon a time, there was a little girl named Lily. She loved to play outside.", true, false)
	hidden := func(m *Model) []float32 {
		d := m.NewDecoder(64)
		defer d.Free()
		out := make([]float32, len(tokens)*m.NEmbd)
		if err := d.Embed(tokens, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := hidden(cpu), hidden(strict)
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("hidden[%d]: cpu %g, strict %g", i, a[i], b[i])
		}
	}

	text, err := os.ReadFile(fixtures.Path(t, "data/text/tinystories_sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ppl := func(m *Model) PerplexityResult {
		d := m.NewDecoder(128)
		defer d.Free()
		toks := m.Tok.Encode(string(text), true, false)
		r, err := Perplexity(d, toks, PerplexityOptions{NCtx: 128, NBatch: 128, NChunks: 4, AddBOS: m.Tok.AddBOS(), BOS: m.Tok.BOS()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pc, ps := ppl(cpu), ppl(strict)
	if pc.NChunks != 4 || pc.PPL != ps.PPL || pc.PPL <= 1 {
		t.Fatalf("perplexity over %d chunks: cpu %v, strict %v", pc.NChunks, pc.PPL, ps.PPL)
	}
	if strict.Backend.Meter().PeakTotal() == 0 {
		t.Error("the strict backend's meter counted nothing")
	}

	// And a host read behind the backend's back fails loudly.
	defer func() {
		if recover() == nil {
			t.Error("F32() of a strict tensor did not panic")
		}
	}()
	ops.TensorOn(strict.Backend, -1, ops.F32, 4).F32()
}
