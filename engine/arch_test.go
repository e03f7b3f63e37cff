package engine

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/engine/synth"
	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
	"ladder-engine/ops"
)

// The arch fixtures (../shared/models/arch, references in
// ../shared/reference/arch): gemma2 (embedding scale, post-norms, GeGLU,
// soft-capping, sliding window on even layers, query scale), phi3 (fused
// qkv and gate|up, sliding window) and RoPE scaling (llama with YaRN and
// linear, phi3 with LongRoPE factors).

func loadArchModel(t *testing.T, name string) *Model {
	t.Helper()
	m, err := Load(fixtures.Path(t, "models/arch/"+name+".gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// archHiddenTolerance is the largest error allowed against llama.cpp's
// final hidden states (RMS ≈ 1): max absolute and relative L2.
//
// F32: as hiddenTolerance (we round the KV cache, q and the attention
// probabilities to f16 and, for gemma2, GELU through ggml's f16 table, as
// llama.cpp does; what remains is summation order and the f16 roundings it
// flips: measured 5e-5..3.6e-4, gemma2 highest, as the README's numpy
// emulation of the same roundings, 3.5e-4).
//
// Quantized: llama.cpp rounds the activations to 8 bits (Q8_0 for *_0
// weights, Q8_K for K-quants) inside every quantized dot, and so do we;
// but a summation-order difference of 1e-7 upstream flips some of those
// roundings by a full step (1/127 of a block's largest value), and random
// weights carry the flips through the layers. How far: raising every other
// value of our own residual stream by one ulp after layer 0 moves our
// synth-gemma2-Q4_K_M output by 2.0e-2 (relative L2). gemma2's 26 layers
// (its post-norms re-normalising every branch) reach 1.8e-2..2.1e-2
// against llama.cpp, phi3 and the RoPE models (2..4 layers) 1.9e-3..8.7e-3;
// the reference README's numpy pass on the dequantized weights, which
// shares none of the roundings, is off by 1.0e-2..3.3e-2 (2.1e-2 for
// gemma2-Q8_0 even when it emulates the Q8_0 activations). Hence 3e-2 for
// gemma2 and the usual 2e-2 for the others.
func archHiddenTolerance(name string) (maxAbs, rel float64) {
	switch {
	case strings.HasSuffix(name, "F32"):
		return 5e-3, 1e-3
	case strings.HasPrefix(name, "synth-gemma2"):
		return 1.5e-1, 3e-2
	}
	return 1e-1, 2e-2
}

// Final hidden states of every arch model match llama.cpp's (llref embd at
// the JSON's n_ctx, which also picks LongRoPE's factors), and the prompt
// tokenizes to llama.cpp's ids.
func TestArchHiddenStates(t *testing.T) {
	for _, js := range fixtures.Glob(t, "reference/arch/hidden/*.hidden.json") {
		name := refName(js)
		variant := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(js), name), ".hidden.json")
		t.Run(name+variant, func(t *testing.T) {
			var ref struct {
				Prompt   string  `json:"prompt"`
				TokenIDs []int32 `json:"token_ids"`
				Shape    [2]int  `json:"shape"`
				NCtx     int     `json:"n_ctx"`
			}
			readJSON(t, js, &ref)
			if ref.NCtx == 0 {
				ref.NCtx = 512 // the gemma2/phi3 references: llref's default
			}
			raw, err := os.ReadFile(strings.TrimSuffix(js, ".json") + ".bin")
			if err != nil {
				t.Fatal(err)
			}
			m := loadArchModel(t, name)
			n, e := ref.Shape[0], ref.Shape[1]
			if n != len(ref.TokenIDs) || e != m.NEmbd || len(raw) != 4*n*e {
				t.Fatalf("reference shape %v, %d ids, %d bytes; model n_embd %d", ref.Shape, len(ref.TokenIDs), len(raw), m.NEmbd)
			}
			if got := m.Tok.Encode(ref.Prompt, true, true); !equalIDs(got, ref.TokenIDs) {
				t.Errorf("tokenizer: got %v, want %v", got, ref.TokenIDs)
			}
			kv := m.NewKVCache(ref.NCtx)
			defer kv.Free()
			h := make([]float32, n*e)
			if err := m.Forward(ref.TokenIDs, kv, hostT(m, h), nil); err != nil {
				t.Fatal(err)
			}
			maxAbs, rel := hiddenDiff(h, raw)
			t.Logf("%-34s max abs %.3g  rel (L2) %.3g", name+variant, maxAbs, rel)
			tolAbs, tolRel := archHiddenTolerance(name)
			if maxAbs > tolAbs || rel > tolRel || math.IsNaN(rel) {
				t.Errorf("max abs %.3g (limit %g), rel %.3g (limit %g)", maxAbs, tolAbs, rel, tolRel)
			}
		})
	}
}

// llama-tokenize's ids for every string of the arch token files (Gemma's
// SPM without a space prefix and with BOS; Phi-3's with the prefix, no BOS).
func TestArchTokenizer(t *testing.T) {
	for _, js := range fixtures.Glob(t, "reference/arch/tokens/*.tokens.json") {
		name := strings.TrimSuffix(filepath.Base(js), ".tokens.json")
		t.Run(name, func(t *testing.T) {
			var ref map[string][]int32
			readJSON(t, js, &ref)
			m := loadArchModel(t, name+"-F32")
			for text, want := range ref {
				if got := m.Tok.Encode(text, true, true); !equalIDs(got, want) {
					t.Errorf("%q:\n got %v\nwant %v", text, got, want)
				}
			}
		})
	}
}

// archPPLChunks is how many chunks TestArchPerplexity scores per file
// (LADDER_PPL_FULL=1: all, against the final value).
const archPPLChunks = 4

// Perplexity follows llama-perplexity at each reference's -c (= -b):
// the running PPL after archPPLChunks chunks within 0.1% (the issue's
// acceptance bound) for every model.
func TestArchPerplexity(t *testing.T) {
	full := os.Getenv("LADDER_PPL_FULL") == "1"
	for _, js := range fixtures.Glob(t, "reference/arch/ppl/*.ppl.json") {
		name := refName(js)
		t.Run(strings.TrimSuffix(filepath.Base(js), ".ppl.json"), func(t *testing.T) {
			var ref struct {
				TextFile string    `json:"text_file"`
				Ctx      int       `json:"ctx"`
				FinalPPL float64   `json:"final_ppl"`
				Stderr   float64   `json:"final_ppl_stderr"`
				NChunks  int       `json:"n_chunks"`
				Running  []float64 `json:"running_ppl_per_chunk"`
			}
			readJSON(t, js, &ref)
			if ref.Ctx == 0 {
				ref.Ctx = 128
			}
			text, err := os.ReadFile(fixtures.Path(t, ref.TextFile))
			if err != nil {
				t.Fatal(err)
			}
			m := loadArchModel(t, name)
			tokens := m.Tok.Encode(string(text), true, false)
			d := m.NewDecoder(ref.Ctx)
			defer d.Free()
			chunks := archPPLChunks
			if full {
				chunks = 0
			}
			r, err := Perplexity(d, tokens, PerplexityOptions{NCtx: ref.Ctx, NBatch: ref.Ctx, NChunks: chunks, AddBOS: m.Tok.AddBOS(), BOS: m.Tok.BOS()})
			if err != nil {
				t.Fatal(err)
			}
			want := ref.Running[r.NChunks-1]
			if r.NChunks == ref.NChunks {
				want = ref.FinalPPL
				t.Logf("%s: PPL %.4f +/- %.5f (llama.cpp %.4f +/- %.5f), %d chunks", filepath.Base(js), r.PPL, r.Stderr, ref.FinalPPL, ref.Stderr, r.NChunks)
			} else {
				t.Logf("%s: running PPL after %d chunks %.4f (llama.cpp %.4f)", filepath.Base(js), r.NChunks, r.PPL, want)
			}
			if rel := math.Abs(r.PPL-want) / want; rel > 0.001 {
				t.Errorf("PPL %.4f, llama.cpp %.4f: off by %.3g%% (limit 0.1%%)", r.PPL, want, 100*rel)
			}
		})
	}
}

// Greedy continuation of "Once upon a time" (32 tokens) at llama-simple's
// context size (prompt + 31: LongRoPE's short factors), against llref's
// ids; and the first step's top-1 logit, which for gemma2 is after the
// final soft-capping (a logit of ~1.9 under a cap of 2).
//
// F32: every id, and the logit within 1e-3 relative (measured ≤ 2e-5).
// Quantized: the 8-bit activation flips (see archHiddenTolerance) move
// logits by up to 0.0044 (gemma2-Q4_0's first step; 5e-3 relative
// allowed), and random weights leave top-1/top-2 margins as small as
// 0.0003, so ids are compared up to the first step where llama.cpp's
// margin is under 0.01: beyond it a tie could fall either way.
func TestArchGreedy(t *testing.T) {
	for _, js := range fixtures.Glob(t, "reference/arch/greedy/*.greedy.json") {
		name := refName(js)
		t.Run(name, func(t *testing.T) {
			var ref struct {
				Prompt    string    `json:"prompt"`
				NPredict  int       `json:"n_predict"`
				PromptIDs []int32   `json:"prompt_ids"`
				GenIDs    []int32   `json:"gen_ids"`
				Top1      []float64 `json:"top1_logit"`
				Top2      []float64 `json:"top2_logit"`
			}
			readJSON(t, js, &ref)
			quantized := !strings.HasSuffix(name, "F32")
			logitTol, compare := 1e-3, len(ref.GenIDs)
			if quantized {
				logitTol = 5e-3
				for i := range ref.GenIDs {
					if ref.Top1[i]-ref.Top2[i] < 0.01 {
						compare = i
						break
					}
				}
			}
			m := loadArchModel(t, name)
			prompt := m.Tok.Encode(ref.Prompt, true, true)
			if !equalIDs(prompt, ref.PromptIDs) {
				t.Fatalf("prompt ids %v, want %v", prompt, ref.PromptIDs)
			}
			d := m.NewDecoder(len(prompt) + ref.NPredict - 1)
			defer d.Free()
			logits := make([]float32, m.NVocab)
			if err := d.Decode(prompt, false, logits); err != nil {
				t.Fatal(err)
			}
			top := logits[Argmax(logits)]
			t.Logf("first top-1 logit %.6f, llama.cpp %.6f", top, ref.Top1[0])
			if math.Abs(float64(top)-ref.Top1[0]) > logitTol*math.Abs(ref.Top1[0]) {
				t.Errorf("first top-1 logit %g, llama.cpp %g", top, ref.Top1[0])
			}
			d.Reset()
			out, err := Generate(d, prompt, GenerateOptions{NPredict: ref.NPredict, IsEOG: m.Tok.IsEOG}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(ref.GenIDs) || !equalIDs(out[:compare], ref.GenIDs[:compare]) {
				t.Errorf("greedy ids (first %d compared)\n got %v\nwant %v", compare, out, ref.GenIDs)
			}
		})
	}
}

// rewriteArch copies an arch fixture with its metadata changed by edit,
// into a temporary file, and returns the path.
func rewriteArch(t *testing.T, name string, edit func(w *gguf.Writer)) string {
	t.Helper()
	src, err := gguf.Open(fixtures.Path(t, "models/arch/"+name+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := gguf.NewWriter()
	for _, kv := range src.KV {
		if err := w.SetKV(kv); err != nil {
			t.Fatal(err)
		}
	}
	for i := range src.Tensors {
		ti := &src.Tensors[i]
		if err := w.AddTensor(ti.Name, ti.Type, ti.Ne, src.Data(ti)); err != nil {
			t.Fatal(err)
		}
	}
	edit(w)
	path := filepath.Join(t.TempDir(), name+".gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Architectures and RoPE scalings we do not run fail at load with an error
// naming the key and value; a gemma2 file saying query_pre_attn_scalar =
// head_dim (what convert_hf_to_gguf.py writes for Gemma-2 2B and 9B)
// loads to the same query scale as the layer-count rule.
func TestArchLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name, model string
		edit        func(w *gguf.Writer)
		want        string
	}{
		{"architecture", "synth-gemma2-F32", func(w *gguf.Writer) { w.SetString("general.architecture", "gemma3") }, `architecture "gemma3" is not supported`},
		{"scaling type", "synth-llama-yarn-F32", func(w *gguf.Writer) { w.SetString("llama.rope.scaling.type", "dynamic") }, `llama.rope.scaling.type "dynamic" is not supported`},
		{"longrope off phi3", "synth-llama-yarn-F32", func(w *gguf.Writer) { w.SetString("llama.rope.scaling.type", "longrope") }, `llama.rope.scaling.type "longrope" is supported only with phi3`},
		{"bad factor", "synth-llama-linear-F32", func(w *gguf.Writer) { w.SetFloat32("llama.rope.scaling.factor", -2) }, "llama.rope.scaling.factor -2"},
		{"odd rotary", "synth-phi3-F32", func(w *gguf.Writer) { w.SetUint32("phi3.rope.dimension_count", 63) }, "phi3.rope.dimension_count 63"},
		{"query scalar", "synth-gemma2-F32", func(w *gguf.Writer) { w.SetFloat32("gemma2.attention.query_pre_attn_scalar", 0) }, "gemma2.attention.query_pre_attn_scalar = 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(rewriteArch(t, c.model, c.edit), 1)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	m, err := Load(rewriteArch(t, "synth-gemma2-F32", func(w *gguf.Writer) { w.SetUint32("gemma2.attention.query_pre_attn_scalar", 32) }), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if want := float32(1 / math.Sqrt(32)); m.QueryScale != want {
		t.Errorf("query scale %g, want %g", m.QueryScale, want)
	}
}

// synth's gemma2 and phi3 presets load and run: the tiny ones (the arch
// fixtures' shapes) in a quantized mix, a few tokens through the backbone.
func TestArchSynthPresetsRun(t *testing.T) {
	for _, arch := range []string{"gemma2", "phi3"} {
		t.Run(arch, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), arch+".gguf")
			if err := synth.Write(path, synth.Options{Arch: arch, Preset: "tiny", Type: gguf.TypeQ4_K, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			m, err := Load(path, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			d := m.NewDecoder(64)
			defer d.Free()
			logits := make([]float32, m.NVocab)
			if err := d.Decode(m.Tok.Encode("Once upon a time", true, true), false, logits); err != nil {
				t.Fatal(err)
			}
			for _, v := range logits {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || (m.FinalSoftCap > 0 && math.Abs(float64(v)) > float64(m.FinalSoftCap)) {
					t.Fatalf("logit %g", v)
				}
			}
		})
	}
}

// The strict backend (CPU kernels behind buffers nothing else can read)
// gives the CPU backend's hidden states and perplexity bit for bit on
// gemma2 (GeGLU, soft-caps, windows, embedding scale) and phi3 with
// LongRoPE: the new kernels go through the Backend interface only.
func TestArchStrictBackendMatchesCPU(t *testing.T) {
	for _, name := range []string{"synth-gemma2-Q4_K_M", "synth-phi3-longrope-Q8_0"} {
		t.Run(name, func(t *testing.T) {
			path := fixtures.Path(t, "models/arch/"+name+".gguf")
			cpu := loadArchModel(t, name)
			strict, err := LoadOn(path, 2, func(p *ops.Pool) ops.Backend { return ops.NewStrict(p) })
			if err != nil {
				t.Fatal(err)
			}
			defer strict.Close()
			text, err := os.ReadFile(fixtures.Path(t, "reference/text/tinyshakespeare_first40KB.txt"))
			if err != nil {
				t.Fatal(err)
			}
			toks := cpu.Tok.Encode(string(text[:4000]), true, false)
			run := func(m *Model) (PerplexityResult, []float32) {
				d := m.NewDecoder(128)
				defer d.Free()
				r, err := Perplexity(d, toks, PerplexityOptions{NCtx: 128, NBatch: 128, NChunks: 2, AddBOS: m.Tok.AddBOS(), BOS: m.Tok.BOS()})
				if err != nil {
					t.Fatal(err)
				}
				d.Reset()
				h := make([]float32, 40*m.NEmbd)
				if err := d.Embed(toks[:40], h); err != nil {
					t.Fatal(err)
				}
				return r, h
			}
			pc, hc := run(cpu)
			ps, hs := run(strict)
			if pc.PPL != ps.PPL || pc.NChunks != 2 {
				t.Fatalf("perplexity over %d chunks: cpu %v, strict %v", pc.NChunks, pc.PPL, ps.PPL)
			}
			for i := range hc {
				if math.Float32bits(hc[i]) != math.Float32bits(hs[i]) {
					t.Fatalf("hidden[%d]: cpu %g, strict %g", i, hc[i], hs[i])
				}
			}
		})
	}
}
