package ladder

import (
	"math"
	"strings"
	"testing"

	"ladder-engine/engine"
	"ladder-engine/engine/tokenizer"
	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
	"ladder-engine/ladder/data"
)

const storiesPath = "models/stories260K/stories260K.gguf"

func loadStories(t testing.TB) *engine.Model {
	t.Helper()
	m, err := engine.Load(fixtures.Path(t, storiesPath), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// storyText is in-domain text for stories260K.
const storyText = `Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the park. She ran to the ball and kicked it very hard. The ball went up, up, up into the sky. Lily was so happy! She laughed and played with her friends all day long. When the sun went down, Lily went home to eat dinner with her mom and dad. They had soup and bread. Lily said, "Thank you, Mom!" Then she went to bed and dreamed about the big red ball.`

// testSide makes a side network for m whose Up is not zero, so the
// adapter changes the logits (an untrained one would not).
func testSide(t testing.TB, m *engine.Model, cfg Config) *Side {
	t.Helper()
	h, err := NewHparams(cfg, &m.Hparams)
	if err != nil {
		t.Fatal(err)
	}
	s := newSide(h, true)
	s.initRandom(cfg.Seed, 0.1)
	for i := range s.Up.F32() {
		s.Up.F32()[i] = float32(math.Sin(float64(i))) * 0.3
	}
	for i := range s.Blocks {
		if g := s.Blocks[i].Gate; g != nil {
			for j := range g.F32() {
				g.F32()[j] = 0.05 * float32(j+i-1)
			}
		}
	}
	if s.HeadGate != nil {
		fill(s.HeadGate.F32(), 0) // μ = 0.5: the side path matters
	}
	t.Cleanup(s.Free)
	return s
}

func tokens(m *engine.Model, text string) []int32 {
	return m.Tok.Encode(text, true, false)
}

var _ = tokenizer.FromGGUF

func TestHparams(t *testing.T) {
	base := &engine.Hparams{NVocab: 512, NEmbd: 64, NLayer: 5, NHead: 8, NHeadKV: 4, NFF: 172, RopeFreqBase: 1e4, NormEps: 1e-5}
	big := &engine.Hparams{NVocab: 32000, NEmbd: 2048, NLayer: 16, NHead: 32, NHeadKV: 8, NFF: 8192}
	for _, tc := range []struct {
		name                       string
		base                       *engine.Hparams
		mod                        func(*Config)
		nEmbd, nFF, nHead, nKV, hd int
		layerMap                   []int
		start                      int
		err                        string
	}{
		{"stories r8", base, nil, 8, 21, 1, 1, 8, []int{0, 1, 2, 3, 4}, -1, ""},
		{"stories r2", base, func(c *Config) { c.Reduction = 2 }, 32, 86, 4, 2, 8, []int{0, 1, 2, 3, 4}, -1, ""},
		{"1b r8 keeps heads", big, nil, 256, 1024, 32, 8, 8, nil, -1, ""},
		{"every:2 from the top", base, func(c *Config) { c.SideLayers = "every:2" }, 8, 21, 1, 1, 8, []int{0, 2, 4}, -1, ""},
		{"list", base, func(c *Config) { c.SideLayers = "1,3" }, 8, 21, 1, 1, 8, []int{1, 3}, -1, ""},
		{"xladder δ2", base, func(c *Config) { c.Method, c.Delta = "xladder", 2 }, 8, 21, 1, 1, 8, []int{3, 4, -1, -1}, 2, ""},
		{"xladder δ=L starts at embeddings", base, func(c *Config) { c.Method, c.Delta = "xladder", 5 }, 8, 21, 1, 1, 8, []int{0, 1, 2, 3, 4, -1, -1, -1, -1, -1}, -1, ""},
		{"bad layer", base, func(c *Config) { c.SideLayers = "1,7" }, 0, 0, 0, 0, 0, nil, 0, "outside 0..4"},
		{"bad order", base, func(c *Config) { c.SideLayers = "3,1" }, 0, 0, 0, 0, 0, nil, 0, "increasing"},
		{"bad delta", base, func(c *Config) { c.Method, c.Delta = "xladder", 9 }, 0, 0, 0, 0, 0, nil, 0, "--delta 9"},
		{"bad method", base, func(c *Config) { c.Method = "lora" }, 0, 0, 0, 0, 0, nil, 0, "--method"},
		{"odd width", base, func(c *Config) { c.Reduction = 64 }, 0, 0, 0, 0, 0, nil, 0, "below 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			if tc.mod != nil {
				tc.mod(&c)
			}
			h, err := NewHparams(c, tc.base)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.NEmbd != tc.nEmbd || h.NFF != tc.nFF || h.NHead != tc.nHead || h.NHeadKV != tc.nKV || h.HeadDim != tc.hd {
				t.Errorf("side shape d=%d ff=%d heads=%d/%d hd=%d, want %d %d %d/%d %d", h.NEmbd, h.NFF, h.NHead, h.NHeadKV, h.HeadDim, tc.nEmbd, tc.nFF, tc.nHead, tc.nKV, tc.hd)
			}
			if tc.layerMap != nil && !equalInts(h.LayerMap, tc.layerMap) {
				t.Errorf("layer map %v, want %v", h.LayerMap, tc.layerMap)
			}
			if h.StartLayer != tc.start {
				t.Errorf("start layer %d, want %d", h.StartLayer, tc.start)
			}
			// xLadder keeps no ladder input below layer L-δ (1-based): the
			// start (0-based L-δ-1) and the δ layers above it only.
			if c.Method == "xladder" && c.Delta < tc.base.NLayer {
				kept := h.ladderLayers()
				if len(kept) != c.Delta+1 || kept[0] != tc.base.NLayer-c.Delta-1 {
					t.Errorf("xladder keeps layers %v", kept)
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// An untrained residual adapter (Up = 0) must reproduce the base model
// exactly: same logits bit for bit, hence the same perplexity.
func TestUntrainedResidualIsBase(t *testing.T) {
	m := loadStories(t)
	for _, method := range []string{"ladder", "xladder"} {
		t.Run(method, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Method = method
			h, err := NewHparams(cfg, &m.Hparams)
			if err != nil {
				t.Fatal(err)
			}
			s := newSide(h, false)
			defer s.Free()
			s.initRandom(7, 0.02)

			toks := tokens(m, strings.Repeat(storyText+" ", 3))
			const nCtx = 64
			base := m.NewDecoder(nCtx)
			defer base.Free()
			ad := NewDecoder(m, s, nCtx)
			defer ad.Free()
			o := engine.PerplexityOptions{NCtx: nCtx, AddBOS: m.Tok.AddBOS(), BOS: m.Tok.BOS()}
			want, err := engine.Perplexity(base, toks, o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := engine.Perplexity(ad, toks, o)
			if err != nil {
				t.Fatal(err)
			}
			if got.PPL != want.PPL || got.NLL != want.NLL {
				t.Fatalf("perplexity with untrained adapter %.10f, base %.10f: want exactly equal", got.PPL, want.PPL)
			}
			t.Logf("%s: base ppl %.6f = adapter ppl %.6f over %d chunks", method, want.PPL, got.PPL, got.NChunks)
		})
	}
}

// Decoding token by token (side KV caches) must give the logits of one
// batched pass, and the trainer's forward must compute the same loss as
// the decoder.
func TestDecoderIncrementalAndTrainerAgree(t *testing.T) {
	m := loadStories(t)
	for _, method := range []string{"ladder", "xladder"} {
		t.Run(method, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Method, cfg.Reduction = method, 2
			s := testSide(t, m, cfg)
			toks := tokens(m, storyText)[:40]
			nv := m.NVocab
			dec := NewDecoder(m, s, 64)
			defer dec.Free()
			all := make([]float32, len(toks)*nv)
			if err := dec.Decode(toks, true, all); err != nil {
				t.Fatal(err)
			}
			dec.Reset()
			buf := make([]float32, 3*nv)
			var maxDiff float64
			for i := 0; i < len(toks); {
				// 3 tokens at once now and then, to cover pos0 > 0 with n > 1.
				n := 1
				if i%7 == 3 && i+3 <= len(toks) {
					n = 3
				}
				if err := dec.Decode(toks[i:i+n], n > 1, buf); err != nil {
					t.Fatal(err)
				}
				for j := range buf[:n*nv] {
					maxDiff = max(maxDiff, math.Abs(float64(buf[j]-all[i*nv+j])))
				}
				i += n
			}
			// Same math, different batch split: float rounding only. The
			// backbone alone differs by as much (SIMD matmul kernels sum a
			// row in another order when they tile several rows), so the
			// bound is relative to the base model's own difference.
			baseDiff := incrementalDiff(t, m.NewDecoder(64), toks)
			if maxDiff > max(1e-4, 4*baseDiff) {
				t.Errorf("incremental vs batched logits differ by %g (base model alone: %g)", maxDiff, baseDiff)
			}

			// The trainer's loss on this sequence = mean NLL from the decoder.
			var nll float64
			for i := 0; i+1 < len(toks); i++ {
				nll -= logSoftmax(all[i*nv:(i+1)*nv], toks[i+1])
			}
			nll /= float64(len(toks) - 1)
			mask := make([]bool, len(toks))
			for i := 1; i < len(mask); i++ {
				mask[i] = true
			}
			ex := []data.Example{{Tokens: toks, Mask: mask, Label: -1}}
			tr, err := newTrainer(m, s, cfg, DefaultTrainOptions(), ex, nil)
			if err != nil {
				t.Fatal(err)
			}
			loss, err := tr.forward(data.NewBatch(ex, []int{0}), false)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(loss-nll) > 1e-4*nll {
				t.Errorf("trainer loss %.6f, decoder NLL %.6f", loss, nll)
			}
			t.Logf("incremental max |Δlogit| %.2g (base %.2g); trainer loss %.6f vs decoder %.6f", maxDiff, baseDiff, loss, nll)
		})
	}
}

func logSoftmax(row []float32, id int32) float64 {
	mx := row[0]
	for _, v := range row {
		mx = max(mx, v)
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v - mx))
	}
	return float64(row[id]-mx) - math.Log(s)
}

// The adapter file round-trips, refuses another base model and keeps its
// precision per --adapter-type.
func TestAdapterFile(t *testing.T) {
	m := loadStories(t)
	cfg := DefaultConfig()
	cfg.Gate, cfg.Head = "vector", "gated"
	s := testSide(t, m, cfg)
	fp := BaseFingerprint(m)
	dir := t.TempDir()
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16} {
		path := dir + "/a-" + typ.String() + ".gguf"
		if err := s.Save(path, typ, fp, map[string]any{"steps": 3, "data": "x.txt"}); err != nil {
			t.Fatal(err)
		}
		got, err := LoadAdapter(path, m)
		if err != nil {
			t.Fatal(err)
		}
		tol := map[gguf.Type]float64{gguf.TypeF32: 0, gguf.TypeF16: 1e-3, gguf.TypeBF16: 8e-3}[typ]
		var maxRel float64
		for i := range s.data {
			a, b := float64(s.data[i]), float64(got.data[i])
			maxRel = max(maxRel, math.Abs(a-b)/max(math.Abs(a), 1e-3))
		}
		if maxRel > tol {
			t.Errorf("%s: max relative error %g > %g", typ, maxRel, tol)
		}
		if got.H.Head != "gated" || got.H.Gate != "vector" || !equalInts(got.H.LayerMap, s.H.LayerMap) || got.H.NEmbd != s.H.NEmbd {
			t.Errorf("%s: hparams %+v, want %+v", typ, got.H, s.H)
		}
		got.Free()
	}

	// Another base: a fingerprint with other dimensions and tensors.
	other := fp
	other.NEmbd, other.TensorHash = 128, "0000"
	path := dir + "/other.gguf"
	if err := s.Save(path, gguf.TypeF32, other, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAdapter(path, m); err == nil || !strings.Contains(err.Error(), "different base model") || !strings.Contains(err.Error(), "n_embd 128 vs 64") {
		t.Errorf("loading an adapter of another base: %v", err)
	}
	other = fp
	other.TensorHash = strings.Repeat("ab", 32)
	if err := s.Save(path, gguf.TypeF32, other, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAdapter(path, m); err == nil || !strings.Contains(err.Error(), "tensor table hash") {
		t.Errorf("loading an adapter of a base with another tensor table: %v", err)
	}
	// Not an adapter at all.
	if _, err := LoadAdapter(fixtures.Path(t, storiesPath), m); err == nil || !strings.Contains(err.Error(), "not an adapter") {
		t.Errorf("loading a model as an adapter: %v", err)
	}
}

// incrementalDiff is the largest logit difference between decoding toks
// one at a time and all at once on the base model.
func incrementalDiff(t *testing.T, d *engine.ModelDecoder, toks []int32) float64 {
	defer d.Free()
	nv := d.NVocab()
	all := make([]float32, len(toks)*nv)
	if err := d.Decode(toks, true, all); err != nil {
		t.Fatal(err)
	}
	d.Reset()
	one := make([]float32, nv)
	var diff float64
	for i, tok := range toks {
		if err := d.Decode([]int32{tok}, false, one); err != nil {
			t.Fatal(err)
		}
		for j := range one {
			diff = max(diff, math.Abs(float64(one[j]-all[i*nv+j])))
		}
	}
	return diff
}
