package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
)

// tinySpec is a small random model written to a GGUF file for the tests
// below: every architecture the engine supports, with the features no
// fixture has (qwen3's Q/K norms, rope_freqs.weight).
type tinySpec struct {
	arch                   string
	nEmbd, nLayer, nHead   int
	nHeadKV, headDim, nFF  int
	base                   float32
	biases, qkNorm, ffacts bool
}

// refWeights are the tiny model's float64 weights, for the reference forward.
type refWeights struct {
	spec                  tinySpec
	embd, outNorm, ffacts []float64
	layers                []refLayer
}

type refLayer struct {
	attnNorm, ffnNorm        []float64
	wq, wk, wv, wo           []float64 // (out, in) row-major
	bq, bk, bv, qNorm, kNorm []float64
	wGate, wUp, wDown        []float64
}

// writeTiny writes a random F32 model of spec with stories260K's tokenizer
// (512 tokens) and returns its path and weights.
func writeTiny(t *testing.T, s tinySpec) (string, *refWeights) {
	t.Helper()
	src, err := gguf.Open(fixtures.Path(t, "models/stories260K/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := gguf.NewWriter()
	w.SetString("general.architecture", s.arch)
	for _, kv := range src.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			if err := w.SetKV(kv); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := s.arch + "."
	w.SetUint32(a+"context_length", 256)
	w.SetUint32(a+"embedding_length", uint32(s.nEmbd))
	w.SetUint32(a+"block_count", uint32(s.nLayer))
	w.SetUint32(a+"feed_forward_length", uint32(s.nFF))
	w.SetUint32(a+"attention.head_count", uint32(s.nHead))
	w.SetUint32(a+"attention.head_count_kv", uint32(s.nHeadKV))
	w.SetUint32(a+"attention.key_length", uint32(s.headDim))
	w.SetUint32(a+"attention.value_length", uint32(s.headDim))
	w.SetFloat32(a+"rope.freq_base", s.base)
	w.SetFloat32(a+"attention.layer_norm_rms_epsilon", 1e-5)

	rng := rand.New(rand.NewPCG(uint64(len(s.arch)), 99))
	ref := &refWeights{spec: s}
	tensor := func(name string, std, mean float64, ne ...int64) []float64 {
		n := int64(1)
		for _, d := range ne {
			n *= d
		}
		v := make([]float64, n)
		raw := make([]byte, 4*n)
		for i := range v {
			f := float32(mean + std*rng.NormFloat64())
			v[i] = float64(f)
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
		}
		if err := w.AddTensor(name, gguf.TypeF32, ne, raw); err != nil {
			t.Fatal(err)
		}
		return v
	}
	E, F, hd := int64(s.nEmbd), int64(s.nFF), int64(s.headDim)
	qd, kvd := int64(s.nHead*s.headDim), int64(s.nHeadKV*s.headDim)
	ref.embd = tensor("token_embd.weight", 0.5, 0, E, 512)
	ref.outNorm = tensor("output_norm.weight", 0.1, 1, E)
	if s.ffacts {
		ref.ffacts = tensor("rope_freqs.weight", 0.3, 1.5, hd/2)
	}
	for l := 0; l < s.nLayer; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		var ly refLayer
		ly.attnNorm = tensor(p+"attn_norm.weight", 0.1, 1, E)
		ly.wq = tensor(p+"attn_q.weight", 0.15, 0, E, qd)
		ly.wk = tensor(p+"attn_k.weight", 0.15, 0, E, kvd)
		ly.wv = tensor(p+"attn_v.weight", 0.15, 0, E, kvd)
		ly.wo = tensor(p+"attn_output.weight", 0.15, 0, qd, E)
		if s.biases {
			ly.bq = tensor(p+"attn_q.bias", 0.2, 0, qd)
			ly.bk = tensor(p+"attn_k.bias", 0.2, 0, kvd)
			ly.bv = tensor(p+"attn_v.bias", 0.2, 0, kvd)
		}
		if s.qkNorm {
			ly.qNorm = tensor(p+"attn_q_norm.weight", 0.1, 1, hd)
			ly.kNorm = tensor(p+"attn_k_norm.weight", 0.1, 1, hd)
		}
		ly.ffnNorm = tensor(p+"ffn_norm.weight", 0.1, 1, E)
		ly.wGate = tensor(p+"ffn_gate.weight", 0.15, 0, E, F)
		ly.wUp = tensor(p+"ffn_up.weight", 0.15, 0, E, F)
		ly.wDown = tensor(p+"ffn_down.weight", 0.15, 0, F, E)
		ref.layers = append(ref.layers, ly)
	}
	path := filepath.Join(t.TempDir(), s.arch+".gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path, ref
}

// forward is an independent float64 forward pass written from llama.cpp's
// graph (build_llama / build_qwen2 / build_qwen3), straight loops and no
// caching: the final hidden states after output_norm, (n, nEmbd).
func (r *refWeights) forward(tokens []int32) [][]float64 {
	s := r.spec
	E, hd := s.nEmbd, s.headDim
	rms := func(x, w []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		sc := 1 / math.Sqrt(ss/float64(len(x))+1e-5)
		out := make([]float64, len(x))
		for i := range x {
			out[i] = x[i] * sc * w[i]
		}
		return out
	}
	mat := func(w, x []float64, out int) []float64 {
		y := make([]float64, out)
		for o := range y {
			for i, v := range x {
				y[o] += w[o*len(x)+i] * v
			}
		}
		return y
	}
	add := func(x, b []float64) {
		for i := range b {
			x[i] += b[i]
		}
	}
	rope := func(x []float64, nh, pos int) {
		neox := s.arch != "llama"
		for h := 0; h < nh; h++ {
			v := x[h*hd : (h+1)*hd]
			for i := 0; i < hd/2; i++ {
				theta := float64(pos) * math.Pow(float64(s.base), -2*float64(i)/float64(hd))
				if r.ffacts != nil {
					theta /= r.ffacts[i]
				}
				a, b := 2*i, 2*i+1
				if neox {
					a, b = i, i+hd/2
				}
				x0, x1 := v[a], v[b]
				v[a] = x0*math.Cos(theta) - x1*math.Sin(theta)
				v[b] = x0*math.Sin(theta) + x1*math.Cos(theta)
			}
		}
	}
	n := len(tokens)
	x := make([][]float64, n)
	for i, t := range tokens {
		x[i] = append([]float64(nil), r.embd[int(t)*E:(int(t)+1)*E]...)
	}
	for _, ly := range r.layers {
		qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for i := range x {
			c := rms(x[i], ly.attnNorm)
			qs[i], ks[i], vs[i] = mat(ly.wq, c, s.nHead*hd), mat(ly.wk, c, s.nHeadKV*hd), mat(ly.wv, c, s.nHeadKV*hd)
			if ly.bq != nil {
				add(qs[i], ly.bq)
				add(ks[i], ly.bk)
				add(vs[i], ly.bv)
			}
			if ly.qNorm != nil {
				for h := 0; h < s.nHead; h++ {
					copy(qs[i][h*hd:], rms(qs[i][h*hd:(h+1)*hd], ly.qNorm))
				}
				for h := 0; h < s.nHeadKV; h++ {
					copy(ks[i][h*hd:], rms(ks[i][h*hd:(h+1)*hd], ly.kNorm))
				}
			}
			rope(qs[i], s.nHead, i)
			rope(ks[i], s.nHeadKV, i)
		}
		for i := range x {
			att := make([]float64, s.nHead*hd)
			for h := 0; h < s.nHead; h++ {
				g := h / (s.nHead / s.nHeadKV)
				sc := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					for d := 0; d < hd; d++ {
						sc[j] += qs[i][h*hd+d] * ks[j][g*hd+d]
					}
					sc[j] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					for d := 0; d < hd; d++ {
						att[h*hd+d] += sc[j] / sum * vs[j][g*hd+d]
					}
				}
			}
			add(x[i], mat(ly.wo, att, E))
			c := rms(x[i], ly.ffnNorm)
			gt, up := mat(ly.wGate, c, s.nFF), mat(ly.wUp, c, s.nFF)
			for k := range gt {
				gt[k] = gt[k] / (1 + math.Exp(-gt[k])) * up[k]
			}
			add(x[i], mat(ly.wDown, gt, E))
		}
	}
	for i := range x {
		x[i] = rms(x[i], r.outNorm)
	}
	return x
}

var tinySpecs = []tinySpec{
	{arch: "llama", nEmbd: 64, nLayer: 2, nHead: 4, nHeadKV: 2, headDim: 16, nFF: 96, base: 10000},
	{arch: "llama", nEmbd: 64, nLayer: 2, nHead: 4, nHeadKV: 4, headDim: 16, nFF: 96, base: 500000, ffacts: true},
	{arch: "qwen2", nEmbd: 96, nLayer: 2, nHead: 3, nHeadKV: 1, headDim: 32, nFF: 64, base: 1e6, biases: true},
	{arch: "qwen3", nEmbd: 64, nLayer: 2, nHead: 4, nHeadKV: 2, headDim: 32, nFF: 96, base: 1e6, qkNorm: true},
}

// The engine's forward pass (exact f32 KV cache) matches an independent
// float64 implementation of llama.cpp's graphs for every architecture,
// including GQA, NEOX RoPE, rope_freqs.weight, QKV biases and qwen3's
// Q/K norms, and whether the tokens come in one batch or in pieces (the
// KV cache, batched and single-token paths). F32 weights: only float32
// rounding remains (~1e-6 relative).
func TestForwardAgainstReference(t *testing.T) {
	tokens := []int32{1, 17, 300, 42, 99, 7, 511, 256, 3, 120, 64, 65, 66, 400, 2, 9, 10, 11, 12}
	for _, s := range tinySpecs {
		name := fmt.Sprintf("%s-h%d-kv%d-ff%v", s.arch, s.nHead, s.nHeadKV, s.ffacts)
		t.Run(name, func(t *testing.T) {
			path, ref := writeTiny(t, s)
			want := ref.forward(tokens)
			m, err := Load(path, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, split := range [][]int{{len(tokens)}, {5, 1, 1, 3, 9}, {1, 1, 1, 1, 15}} {
				kv := m.NewKVCache(64)
				kv.RoundF16 = false
				h := make([]float32, len(tokens)*m.NEmbd)
				at := 0
				for _, k := range split {
					if err := m.Forward(tokens[at:at+k], kv, hostT(m, h[at*m.NEmbd:]), nil); err != nil {
						t.Fatal(err)
					}
					at += k
				}
				kv.Free()
				var d2, r2 float64
				for i := range want {
					for j, v := range want[i] {
						d := float64(h[i*m.NEmbd+j]) - v
						d2 += d * d
						r2 += v * v
					}
				}
				if rel := math.Sqrt(d2 / r2); rel > 1e-5 || math.IsNaN(rel) {
					t.Errorf("split %v: relative error %.3g vs the float64 reference", split, rel)
				}
			}
		})
	}
}
