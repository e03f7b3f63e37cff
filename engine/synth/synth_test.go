package synth

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
)

// TestPresetsMatchReference: the presets are exactly the shapes of
// reference/presets.json, on which llama.cpp's speed figures were measured.
func TestPresetsMatchReference(t *testing.T) {
	b, err := os.ReadFile(fixtures.Path(t, "reference/presets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]json.RawMessage
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	type refPreset struct {
		NEmbd     int     `json:"n_embd"`
		NLayer    int     `json:"n_layer"`
		NHead     int     `json:"n_head"`
		NHeadKV   int     `json:"n_head_kv"`
		NFF       int     `json:"n_ff"`
		NVocab    int     `json:"n_vocab"`
		Tied      bool    `json:"tied"`
		RopeBase  float32 `json:"rope_base"`
		RMSEps    float32 `json:"rms_eps"`
		NCtxTrain int     `json:"n_ctx_train"`
	}
	n := 0
	for arch, raw := range ref {
		if arch == "note" {
			continue
		}
		var ps map[string]refPreset
		if err := json.Unmarshal(raw, &ps); err != nil {
			t.Fatal(err)
		}
		if len(ps) != len(PresetNames(arch)) {
			t.Errorf("%s: %d presets, reference has %d", arch, len(PresetNames(arch)), len(ps))
		}
		for name, r := range ps {
			p, err := LookupPreset(arch, name)
			if err != nil {
				t.Error(err)
				continue
			}
			want := Preset{NEmbd: r.NEmbd, NLayer: r.NLayer, NHead: r.NHead, NHeadKV: r.NHeadKV, NFF: r.NFF, NVocab: r.NVocab,
				Tied: r.Tied, RopeBase: r.RopeBase, RMSEps: r.RMSEps, NCtxTrain: r.NCtxTrain}
			if want != p {
				t.Errorf("%s %s: %+v, reference %+v", arch, name, p, r)
			}
			n++
		}
	}
	if n != 7 {
		t.Errorf("compared %d presets, want 7", n)
	}
}

func writeSynth(t *testing.T, opt Options) *gguf.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), opt.Arch+"-"+opt.Preset+".gguf")
	if err := Write(p, opt); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestSynthShapes checks tensor names, order, shapes and types and the
// hyper-parameter keys (with llama.cpp's value types) of both tiny presets
// against the fixture models made from the same shapes by llama.cpp.
func TestSynthShapes(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2", "gemma2", "phi3"} {
		t.Run(arch, func(t *testing.T) {
			f := writeSynth(t, Options{Arch: arch, Preset: "tiny", Seed: 1})
			dir := "models/synth/"
			if arch == "gemma2" || arch == "phi3" {
				dir = "models/arch/"
			}
			ref, err := gguf.Open(fixtures.Path(t, dir+"synth-"+arch+"-F32.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			// Same tensors with the same shapes and types as llama.cpp's file.
			if len(f.Tensors) != len(ref.Tensors) {
				t.Errorf("%d tensors, reference %d", len(f.Tensors), len(ref.Tensors))
			}
			for _, rt := range ref.Tensors {
				ti, ok := f.Tensor(rt.Name)
				if !ok {
					t.Errorf("missing %s", rt.Name)
					continue
				}
				if fmt.Sprint(ti.Ne) != fmt.Sprint(rt.Ne) || ti.Type != rt.Type {
					t.Errorf("%s: %s %v, reference %s %v", rt.Name, ti.Type, ti.Ne, rt.Type, rt.Ne)
				}
			}
			// Every hyper-parameter key of the reference, same type and value.
			for _, kv := range ref.KV {
				if !strings.HasPrefix(kv.Key, arch+".") && kv.Key != "general.architecture" && kv.Key != "general.file_type" {
					continue
				}
				got, ok := f.Lookup(kv.Key)
				if !ok {
					t.Errorf("missing key %s", kv.Key)
					continue
				}
				if got.Type() != kv.Type() || fmt.Sprint(got.Value) != fmt.Sprint(kv.Value) {
					t.Errorf("%s = %s %v, reference %s %v", kv.Key, got.Type(), got.Value, kv.Type(), kv.Value)
				}
			}
			toks, err := f.GetStrings("tokenizer.ggml.tokens")
			if err != nil || len(toks) != map[string]int{"llama": 512, "qwen2": 759, "gemma2": 512, "phi3": 512}[arch] {
				t.Errorf("tokens: %d, %v", len(toks), err)
			}
		})
	}
}

// TestSynthVocab checks the generated vocabularies are well formed: unique
// pieces, llama.cpp's special ids, SPM byte tokens, and BPE merges whose
// parts and results are all tokens, in creation order.
func TestSynthVocab(t *testing.T) {
	for _, c := range []struct{ arch, preset string }{{"llama", "tiny"}, {"qwen2", "tiny"}, {"llama", "160m"}, {"qwen2", "0.5b"}} {
		t.Run(c.arch+"-"+c.preset, func(t *testing.T) {
			p, _ := LookupPreset(c.arch, c.preset)
			w := gguf.NewWriter()
			var err error
			if c.arch == "llama" {
				err = setSPMVocab(w, p.NVocab)
			} else {
				err = setGPT2Vocab(w, p.NVocab)
			}
			if err != nil {
				t.Fatal(err)
			}
			f := writerFile(t, w)
			toks, _ := f.GetStrings("tokenizer.ggml.tokens")
			types, _ := f.GetInt32s("tokenizer.ggml.token_type")
			if len(toks) != p.NVocab || len(types) != p.NVocab {
				t.Fatalf("%d tokens %d types, want %d", len(toks), len(types), p.NVocab)
			}
			id := map[string]int{}
			for i, s := range toks {
				if _, dup := id[s]; dup {
					t.Fatalf("token %q twice", s)
				}
				id[s] = i
			}
			bos, _ := f.GetUint32("tokenizer.ggml.bos_token_id")
			eos, _ := f.GetUint32("tokenizer.ggml.eos_token_id")
			if c.arch == "llama" {
				scores, _ := f.GetFloat32s("tokenizer.ggml.scores")
				if toks[0] != "<unk>" || toks[bos] != "<s>" || toks[eos] != "</s>" || len(scores) != p.NVocab {
					t.Errorf("specials %q %q %q, %d scores", toks[0], toks[bos], toks[eos], len(scores))
				}
				if toks[3+0x0A] != "<0x0A>" || types[3+0x0A] != tokenByte || id["▁"] == 0 || id["a"] == 0 {
					t.Error("byte tokens or base symbols missing")
				}
				return
			}
			if toks[eos] != "<|endoftext|>" || bos != eos || toks[p.NVocab-1] != "<|im_end|>" || types[eos] != tokenControl {
				t.Errorf("specials: eos %q bos %d last %q", toks[eos], bos, toks[p.NVocab-1])
			}
			if toks[' '] != "Ġ" || toks['\n'] != "Ċ" || toks['a'] != "a" {
				t.Errorf("byte-level tokens: %q %q %q", toks[' '], toks['\n'], toks['a'])
			}
			merges, _ := f.GetStrings("tokenizer.ggml.merges")
			if len(merges) != p.NVocab-259 {
				t.Fatalf("%d merges, want %d", len(merges), p.NVocab-259)
			}
			for i, m := range merges {
				a, b, ok := strings.Cut(m, " ")
				ia, oka := id[a]
				ib, okb := id[b]
				ir, okr := id[a+b]
				if !ok || !oka || !okb || !okr || ir != 256+i || ia >= ir || ib >= ir {
					t.Fatalf("merge %d %q: parts %v/%v result %d", i, m, oka, okb, ir)
				}
			}
		})
	}
}

func writerFile(t *testing.T, w *gguf.Writer) *gguf.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "w.gguf")
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func sha(t *testing.T, opt Options) string {
	t.Helper()
	w, err := Build(opt)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := w.WriteTo(h); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestSynthDeterministic: the same seed gives the same bytes whatever the
// thread count; another seed gives other bytes. The first value of the
// stream is pinned so a change of generator cannot pass unnoticed.
func TestSynthDeterministic(t *testing.T) {
	opt := Options{Arch: "qwen2", Preset: "tiny", Type: gguf.TypeQ8_0, Seed: 42, Threads: 1}
	a := sha(t, opt)
	opt.Threads = 3
	if b := sha(t, opt); a != b {
		t.Errorf("threads change the output: %s vs %s", a, b)
	}
	opt.Seed = 43
	if c := sha(t, opt); c == a {
		t.Error("seeds 42 and 43 give the same file")
	}
	s := uint64(0)
	if got := splitmix64(&s); got != 0xE220A8397B1DCDAF {
		t.Errorf("splitmix64(0) = %#x, want 0xe220a8397b1dcdaf (Vigna's reference value)", got)
	}
}

// TestSynthValueStatistics: weights N(0, 0.02), norms 1 + N(0, 0.02),
// biases N(0, 0.02). With millions of samples the standard error of the
// mean and std is far below the tolerances used.
func TestSynthValueStatistics(t *testing.T) {
	f := writeSynth(t, Options{Arch: "qwen2", Preset: "tiny", Seed: 3})
	check := func(label string, match func(string) bool, wantMean float64) {
		var n, sum, sq float64
		var maxAbs float64
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			if !match(ti.Name) {
				continue
			}
			x := make([]float32, ti.NElements())
			if err := gguf.Dequantize(ti.Type, f.Data(ti), x); err != nil {
				t.Fatal(err)
			}
			for _, v := range x {
				d := float64(v) - wantMean
				n++
				sum += d
				sq += d * d
				maxAbs = math.Max(maxAbs, math.Abs(d))
			}
		}
		mean, std := sum/n, math.Sqrt(sq/n)
		// SE of the mean is 0.02/sqrt(n); allow 5 SE plus nothing else.
		if math.Abs(mean) > 5*0.02/math.Sqrt(n) || math.Abs(std-0.02)/0.02 > 0.02+5/math.Sqrt(2*n) {
			t.Errorf("%s: n %.0f, mean %+.2g off %g, std %.5f (want 0.02)", label, n, mean, wantMean, std)
		}
		if maxAbs > 6*0.02+1e-6 { // the twelve-uniform sum stops at 6σ
			t.Errorf("%s: |x-mean| reaches %g", label, maxAbs)
		}
	}
	isNorm := func(n string) bool { return strings.HasSuffix(n, "_norm.weight") }
	check("matrices", func(n string) bool { return strings.HasSuffix(n, ".weight") && !isNorm(n) }, 0)
	check("norms", isNorm, 1)
	check("biases", func(n string) bool { return strings.HasSuffix(n, ".bias") }, 0)
}

// TestSynthQuantizedMatchesF32: the quantized file holds the same random
// values as the F32 one, up to the quantization error. For a Gaussian block
// of 32, Q4_0's step is max|x|/8 ≈ 0.28σ, an RMS error ≈ 0.28σ/√12 ≈ 0.08σ;
// Q8_0's is 16× smaller. Bounds sit a little above those.
func TestSynthQuantizedMatchesF32(t *testing.T) {
	ref := writeSynth(t, Options{Arch: "llama", Preset: "tiny", Seed: 9})
	for _, c := range []struct {
		typ    gguf.Type
		maxRel float64
	}{{gguf.TypeQ4_0, 0.10}, {gguf.TypeQ8_0, 0.006}, {gguf.TypeF16, 0.001}, {gguf.TypeQ4_K, 0.12}} {
		t.Run(c.typ.String(), func(t *testing.T) {
			q := writeSynth(t, Options{Arch: "llama", Preset: "tiny", Seed: 9, Type: c.typ, Pure: true})
			ft, _ := q.GetUint32("general.file_type")
			if want, _ := gguf.FileTypeFor(c.typ); ft != uint32(want) {
				t.Errorf("general.file_type %d, want %d", ft, want)
			}
			for i := range ref.Tensors {
				rt := &ref.Tensors[i]
				qt, _ := q.Tensor(rt.Name)
				wantType := c.typ
				if len(rt.Ne) == 1 {
					wantType = gguf.TypeF32
				}
				if qt.Type != wantType {
					t.Errorf("%s: type %s, want %s", rt.Name, qt.Type, wantType)
					continue
				}
				a := make([]float32, rt.NElements())
				b := make([]float32, rt.NElements())
				gguf.Dequantize(rt.Type, ref.Data(rt), a)
				gguf.Dequantize(qt.Type, q.Data(qt), b)
				var num, den float64
				for j := range a {
					d := float64(a[j]) - float64(b[j])
					num += d * d
					den += float64(a[j]) * float64(a[j])
				}
				if len(rt.Ne) == 1 {
					if num != 0 {
						t.Errorf("%s: f32 vector differs", rt.Name)
					}
					continue
				}
				if rel := math.Sqrt(num / den); rel > c.maxRel {
					t.Errorf("%s: relative RMS error %.4f > %.4f", rt.Name, rel, c.maxRel)
				}
			}
		})
	}
}

// TestSynthMixMatchesLlamaQuantize: for every quantized fixture model
// (made by llama-quantize from the same shapes), synth with the matching
// --type gives every tensor the type llama-quantize chose (its mixes, e.g.
// output.weight Q6_K, Q4_K_M's Q6_K layers, and the fallbacks for rows that
// are not a multiple of 256 in qwen2) and the same general.file_type.
//
// The gemma2 and phi3 tiny presets have the arch fixtures' shapes, so their
// mixes are compared with reference/arch/models.json (phi3's fused attn_qkv
// gets Q5_K in Q4_K_M).
func TestSynthMixMatchesLlamaQuantize(t *testing.T) {
	type model struct {
		FileType    *int64            `json:"general.file_type"`
		TensorTypes map[string]string `json:"tensor_types"`
	}
	models := map[string]model{}
	for _, file := range []string{"reference/models.json", "reference/arch/models.json"} {
		b, err := os.ReadFile(fixtures.Path(t, file))
		if err != nil {
			t.Fatal(err)
		}
		var ms map[string]model
		if err := json.Unmarshal(b, &ms); err != nil {
			t.Fatal(err)
		}
		for k, v := range ms {
			models[k] = v
		}
	}
	n := 0
	for name, m := range models {
		arch, ftName, ok := strings.Cut(strings.TrimPrefix(name, "synth-"), "-")
		if !ok || !strings.HasPrefix(name, "synth-") || strings.Contains(ftName, "-") {
			continue // not a synth preset's shape (synth-llama-yarn-F32, ...)
		}
		typ, err := gguf.ParseType(strings.TrimSuffix(ftName, "_M"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !gguf.CanQuantize(typ) {
			t.Logf("%s: no quantizer for %s yet", name, typ)
			continue
		}
		w, err := Build(Options{Arch: arch, Preset: "tiny", Type: typ})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, ti := range w.Tensors() {
			if want := m.TensorTypes[ti.Name]; !strings.EqualFold(ti.Type.String(), want) {
				t.Errorf("%s: %s is %s, llama-quantize made %s", name, ti.Name, ti.Type, want)
			}
		}
		if ft, _ := gguf.FileTypeFor(typ); m.FileType == nil || int64(ft) != *m.FileType {
			t.Errorf("%s: file type %d, reference %v", name, ft, m.FileType)
		}
		n++
	}
	if n < 20 {
		t.Errorf("compared only %d models", n)
	}
}

// TestSynthPure: --pure gives every matrix the requested type, except the
// fallback for rows that are not a multiple of the block size.
func TestSynthPure(t *testing.T) {
	for _, c := range []struct {
		arch      string
		want, got gguf.Type
	}{
		{"llama", gguf.TypeQ4_K, gguf.TypeQ4_K}, {"llama", gguf.TypeQ4_0, gguf.TypeQ4_0},
		{"qwen2", gguf.TypeQ4_K, gguf.TypeQ5_0}, {"qwen2", gguf.TypeQ6_K, gguf.TypeQ8_0},
	} {
		w, err := Build(Options{Arch: c.arch, Preset: "tiny", Type: c.want, Pure: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range w.Tensors() {
			if len(ti.Ne) == 2 && ti.Type != c.got {
				t.Errorf("%s --type %s --pure: %s is %s, want %s", c.arch, c.want, ti.Name, ti.Type, c.got)
			}
		}
	}
}

// TestSynthVocabFrom copies stories260K's tokenizer.
func TestSynthVocabFrom(t *testing.T) {
	src, err := gguf.Open(fixtures.Path(t, "models/stories260K/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f := writeSynth(t, Options{Arch: "llama", Preset: "tiny", Vocab: src})
	for _, kv := range src.KV {
		if !strings.HasPrefix(kv.Key, "tokenizer.") {
			continue
		}
		got, ok := f.Lookup(kv.Key)
		if !ok || got.Type() != kv.Type() || fmt.Sprint(got.Value) != fmt.Sprint(kv.Value) {
			t.Errorf("%s not copied exactly", kv.Key)
		}
	}
	if n, _ := f.GetUint32("llama.vocab_size"); n != 512 {
		t.Errorf("vocab_size %d", n)
	}
	te, _ := f.Tensor("token_embd.weight")
	if te.Ne[1] != 512 {
		t.Errorf("token_embd %v", te.Ne)
	}
}

func TestSynthErrors(t *testing.T) {
	for _, c := range []struct {
		opt  Options
		want string
	}{
		{Options{Arch: "gpt2", Preset: "tiny"}, `unknown architecture "gpt2" (have gemma2, llama, phi3, qwen2)`},
		{Options{Arch: "llama", Preset: "3b"}, `llama has no preset "3b" (have 160m, 1b, 7b, tiny)`},
		{Options{Arch: "llama", Preset: "tiny", Type: gguf.TypeIQ2_XXS}, "cannot write tensors of type iq2_xxs"},
	} {
		if _, err := Build(c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opt, err, c.want)
		}
	}
}

// TestSynthBenchShapes: the 160m and 1b presets, with llama.cpp's SPM
// vocabulary, give exactly the parameter counts and per-type tensor counts
// of the files llama-bench was run on (reference/llama-bench.json), and
// tensor data that fills those files up to their header. Nothing is
// generated: Build only lays the file out, so it must allocate next to
// nothing for a billion-parameter model.
func TestSynthBenchShapes(t *testing.T) {
	b, err := os.ReadFile(fixtures.Path(t, "reference/llama-bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bench struct {
		Shapes map[string]struct {
			NParams int64 `json:"n_params"`
		} `json:"shapes"`
		Models map[string]struct {
			FileBytes int64          `json:"file_bytes"`
			Histogram map[string]int `json:"tensor_type_histogram"`
		} `json:"models"`
	}
	if err := json.Unmarshal(b, &bench); err != nil {
		t.Fatal(err)
	}
	vocab, err := gguf.Open(fixtures.Path(t, "vocab/ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer vocab.Close()
	for name, m := range bench.Models {
		shape, typName, _ := strings.Cut(name, "-")
		typ, err := gguf.ParseType(strings.TrimSuffix(typName, "_M"))
		if err != nil {
			t.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		w, err := Build(Options{Arch: "llama", Preset: strings.TrimPrefix(shape, "p"), Type: typ, Vocab: vocab})
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		if alloc := ms.TotalAlloc - before; alloc > 64<<20 {
			t.Errorf("%s: Build allocated %d MiB", name, alloc>>20)
		}
		var params, data int64
		hist := map[string]int{}
		for _, ti := range w.Tensors() {
			params += ti.NElements()
			data = int64(ti.Offset) + ti.Size
			hist[strings.ToUpper(ti.Type.String())]++
		}
		if want := bench.Shapes[shape].NParams; params != want {
			t.Errorf("%s: %d parameters, llama-bench's file has %d", name, params, want)
		}
		if fmt.Sprint(hist) != fmt.Sprint(m.Histogram) {
			t.Errorf("%s: tensor types %v, llama-bench's file %v", name, hist, m.Histogram)
		}
		if header := m.FileBytes - data; header < 0 || header > 2<<20 {
			t.Errorf("%s: tensor data %d bytes, llama-bench's file %d bytes", name, data, m.FileBytes)
		}
	}
}

// The gemma2 and phi3 presets at real shapes have the parameter counts of
// the Hugging Face checkpoints (google/gemma-2-2b: 2,614,341,888;
// microsoft/Phi-3-mini-4k-instruct: 3,821,079,552), so speed and memory can
// be measured on them; Build only lays out the tensors.
func TestSynthRealShapes(t *testing.T) {
	for _, c := range []struct {
		arch, preset string
		params       int64
	}{{"gemma2", "2b", 2614341888}, {"phi3", "mini", 3821079552}} {
		w, err := Build(Options{Arch: c.arch, Preset: c.preset, Type: gguf.TypeQ4_K})
		if err != nil {
			t.Fatal(err)
		}
		var params int64
		for _, ti := range w.Tensors() {
			params += ti.NElements()
		}
		if params != c.params {
			t.Errorf("%s %s: %d parameters, want %d", c.arch, c.preset, params, c.params)
		}
	}
}

// BenchmarkSynthWrite measures generation + encoding throughput of the
// 160m preset's first layers (q4_0), in weights per second.
func BenchmarkSynthWrite(b *testing.B) {
	for _, typ := range []gguf.Type{gguf.TypeF16, gguf.TypeQ4_0, gguf.TypeQ8_0, gguf.TypeQ4_K} {
		b.Run(typ.String(), func(b *testing.B) {
			p, _ := LookupPreset("llama", "160m")
			ts := tensorSpec{name: "blk.0.ffn_up.weight", ne: []int64{int64(p.NEmbd), int64(p.NFF)}, typ: typ}
			write := rowWriter(ts, 1, 0)
			for b.Loop() {
				if err := write(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(p.NEmbd*p.NFF)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mweights/s")
		})
	}
}
