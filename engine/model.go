package engine

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"ladder-engine/engine/tokenizer"
	"ladder-engine/gguf"
	"ladder-engine/ops"
)

// Model is a frozen GGUF transformer ready to run. Weights are views into
// the memory-mapped file (quantized ones stay quantized); they are counted as
// ops.Weights bytes. A Model is not safe for concurrent Forward calls: its
// scratch buffers are shared (one sequence at a time, as the CLI and the
// trainer use it).
type Model struct {
	Arch string
	Hparams
	Tok  *tokenizer.Tokenizer
	File *gguf.File
	// Backend runs the model; Pool is the CPU worker pool behind it (or a
	// one-thread pool for host-side work on other backends).
	Backend ops.Backend
	Pool    *ops.Pool

	TokenEmbd  *ops.Matrix // (NVocab, NEmbd)
	Output     *ops.Matrix // (NVocab, NEmbd); == TokenEmbd when tied
	OutputNorm []float32   // (NEmbd)
	RopeFreqs  []float32   // (NRot/2) frequency factors (rope_freqs), nil if absent
	// Phi-3 LongRoPE: (NRot/2) factors for contexts longer than NCtxOrigYarn
	// and for shorter ones (rope_factors_long/short), nil if absent.
	RopeFactorsLong, RopeFactorsShort []float32
	Layers                            []Layer
	TiedEmbd                          bool
	weightBytes                       int64 // counted in ops.Weights

	// The backbone's blocks on Backend, for BlockForward.
	blockHP    BlockHparams
	blocks     []BlockWeights
	outputNorm *ops.Tensor

	mu    sync.Mutex // one Forward at a time (shared scratch)
	tape  *ops.Tape  // no-grad tape of Forward, reset after every layer
	resid *ops.Tensor
}

// Layer holds one decoder block's weights, named after llama.cpp's
// llama_layer. Optional tensors are nil when the file has none.
type Layer struct {
	AttnNorm       []float32 // (NEmbd)
	Wq, Wk, Wv, Wo *ops.Matrix
	Bq, Bk, Bv, Bo []float32 // optional biases (qwen2 has q, k, v)
	QNorm, KNorm   []float32 // (HeadDim) per-head RMSNorm weights (qwen3)
	PostAttnNorm   []float32 // (NEmbd) gemma2 post_attention_norm
	FFNNorm        []float32 // (NEmbd)
	WGate, WUp     *ops.Matrix
	WDown          *ops.Matrix
	PostFFNNorm    []float32 // (NEmbd) gemma2 post_ffw_norm
}

// Load maps a GGUF model and prepares it to run on `threads` CPU threads
// (<= 0: all). Close releases it.
func Load(path string, threads int) (*Model, error) {
	return LoadOn(path, threads, nil)
}

// LoadOn is Load with the model on the backend newBackend makes over the
// worker pool (nil: the CPU backend).
func LoadOn(path string, threads int, newBackend func(*ops.Pool) ops.Backend) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := fromGGUF(f, threads, newBackend)
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// FromGGUF builds a Model on an open file (which it then owns: Close closes it).
func FromGGUF(f *gguf.File, threads int) (*Model, error) { return fromGGUF(f, threads, nil) }

func fromGGUF(f *gguf.File, threads int, newBackend func(*ops.Pool) ops.Backend) (*Model, error) {
	arch := f.Arch()
	if _, ok := archs[arch]; !ok {
		return nil, fmt.Errorf("%s: architecture %q is not supported (supported: %s)", f.Path, arch, supportedArchs())
	}
	if len(f.Tensors) == 0 {
		// a vocabulary-only GGUF (llama.cpp's ggml-vocab-*.gguf) has the
		// metadata of a model but no weights.
		return nil, fmt.Errorf("%s: the file has no tensors (a vocabulary-only GGUF?); give a model with weights", f.Path)
	}
	hp, err := readHparams(f, arch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	m := &Model{Arch: arch, Hparams: hp, File: f}
	used := map[string]bool{}
	ld := loader{f: f, m: m, used: used}
	m.TokenEmbd = ld.matrix("token_embd.weight", hp.NEmbd, -1)
	if m.TokenEmbd != nil {
		m.NVocab = m.TokenEmbd.Rows
	}
	m.OutputNorm = ld.vector("output_norm.weight", hp.NEmbd)
	if _, ok := f.Tensor("output.weight"); ok {
		m.Output = ld.matrix("output.weight", hp.NEmbd, m.NVocab)
	} else {
		// llama.cpp: no output.weight means the head is tied to token_embd.
		m.Output, m.TiedEmbd = m.TokenEmbd, true
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		m.RopeFreqs = ld.vector("rope_freqs.weight", hp.NRot/2)
	}
	if archs[arch].ropeFactors {
		// llama.cpp loads phi3's LongRoPE factors whenever they are present,
		// whatever rope.scaling.type says.
		m.RopeFactorsLong = ld.optVector("rope_factors_long.weight", hp.NRot/2)
		m.RopeFactorsShort = ld.optVector("rope_factors_short.weight", hp.NRot/2)
		if (m.RopeFactorsLong == nil) != (m.RopeFactorsShort == nil) {
			return nil, fmt.Errorf("%s: LongRoPE needs both rope_factors_long.weight and rope_factors_short.weight", f.Path)
		}
	}
	m.Layers = make([]Layer, hp.NLayer)
	for i := range m.Layers {
		ld.layer(i, &m.Layers[i])
	}
	if ld.err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, ld.err)
	}
	for _, ti := range f.Tensors {
		if used[ti.Name] {
			m.weightBytes += ti.Size
		}
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: tokenizer: %w", f.Path, err)
	}
	if tok.VocabSize() != m.NVocab {
		return nil, fmt.Errorf("%s: tokenizer has %d tokens but token_embd has %d rows", f.Path, tok.VocabSize(), m.NVocab)
	}
	m.Tok = tok
	m.Pool = ops.NewPool(threads)
	if newBackend == nil {
		m.Backend = ops.NewCPU(m.Pool)
	} else {
		m.Backend = newBackend(m.Pool)
	}
	if err := m.place(); err != nil {
		m.Pool.Close()
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	m.Backend.Meter().Add(ops.Weights, m.weightBytes)
	m.tape = ops.NewNoGradTape(m.Backend)
	return m, nil
}

// place puts the weights on the model's backend once: matrices through
// PlaceMatrix, the small f32 vectors (norms, biases) as tensors (views of
// the mapping on the CPU, copies elsewhere).
func (m *Model) place() error {
	be := m.Backend
	_, onCPU := be.(*ops.CPU)
	vec := func(v []float32) *ops.Tensor {
		if v == nil {
			return nil
		}
		if onCPU {
			return ops.NewTensor(v, len(v))
		}
		t := ops.TensorOn(be, -1, ops.F32, len(v)) // counted in weightBytes
		t.Write(v)
		return t
	}
	for _, w := range []*ops.Matrix{m.TokenEmbd, m.Output} {
		if err := be.PlaceMatrix(w); err != nil {
			return err
		}
	}
	m.blockHP = m.blockHparams()
	m.outputNorm = vec(m.OutputNorm)
	m.blocks = make([]BlockWeights, len(m.Layers))
	for i := range m.Layers {
		ly := &m.Layers[i]
		for _, w := range []*ops.Matrix{ly.Wq, ly.Wk, ly.Wv, ly.Wo, ly.WGate, ly.WUp, ly.WDown} {
			if err := be.PlaceMatrix(w); err != nil {
				return err
			}
		}
		m.blocks[i] = BlockWeights{
			AttnNorm: vec(ly.AttnNorm),
			Wq:       ops.Frozen{M: ly.Wq}, Wk: ops.Frozen{M: ly.Wk}, Wv: ops.Frozen{M: ly.Wv}, Wo: ops.Frozen{M: ly.Wo},
			Bq: vec(ly.Bq), Bk: vec(ly.Bk), Bv: vec(ly.Bv), Bo: vec(ly.Bo),
			QNorm: vec(ly.QNorm), KNorm: vec(ly.KNorm),
			PostAttnNorm: vec(ly.PostAttnNorm),
			FFNNorm:      vec(ly.FFNNorm),
			WGate:        ops.Frozen{M: ly.WGate}, WUp: ops.Frozen{M: ly.WUp}, WDown: ops.Frozen{M: ly.WDown},
			PostFFNNorm: vec(ly.PostFFNNorm),
		}
	}
	return nil
}

// blockHparams is the backbone's block with its architecture's options,
// as llama.cpp's build function for the architecture sets them.
func (m *Model) blockHparams() BlockHparams {
	info := archs[m.Arch]
	hp := BlockHparams{NEmbd: m.NEmbd, NHead: m.NHead, NHeadKV: m.NHeadKV, HeadDim: m.HeadDim, NFF: m.NFF,
		NormEps: m.NormEps,
		Rope: ops.RoPEConfig{NRot: m.NRot, Base: m.RopeFreqBase, Neox: m.RopeNeox, FreqFactors: m.RopeFreqs,
			FreqScale: m.RopeFreqScale, ExtFactor: m.YarnExtFactor, AttnFactor: m.RopeAttnFactor,
			BetaFast: m.YarnBetaFast, BetaSlow: m.YarnBetaSlow, NCtxOrig: m.NCtxOrigYarn},
		QueryScale:    m.QueryScale,
		AttnSoftCap:   m.AttnSoftCap,
		SlidingWindow: m.NSWA,
		GeGLU:         info.geglu,
	}
	if m.RopeFactorsLong != nil {
		hp.Rope.FreqFactors = m.RopeFactorsLong
		hp.RopeShortFactors = m.RopeFactorsShort
	}
	if m.NSWA > 0 {
		hp.SWALayers = make([]bool, m.NLayer)
		for il := range hp.SWALayers {
			hp.SWALayers[il] = m.IsSWA(m.Arch, il)
		}
	}
	return hp
}

// BlockHparams is the shape of the backbone's blocks.
func (m *Model) BlockHparams() BlockHparams { return m.blockHP }

// Block returns backbone layer l's weights as BlockForward takes them
// (frozen GGUF matrices on the model's backend); a copy the caller may
// change, say to put LoRA pairs on its projections.
func (m *Model) Block(l int) BlockWeights { return m.blocks[l] }

// OutputNorm is output_norm's weight as a tensor on the model's backend.
func (m *Model) OutputNormTensor() *ops.Tensor { return m.outputNorm }

// Close releases the scratch buffers, the worker pool and the file.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.File == nil {
		return nil
	}
	m.tape.Close()
	if m.resid != nil {
		m.resid.FreeTensor()
		m.resid = nil
	}
	m.Backend.Meter().Add(ops.Weights, -m.weightBytes)
	m.Pool.Close()
	err := m.File.Close()
	m.File = nil
	return err
}

// WeightBytes is the size of the tensors the model uses (mapped, not copied).
func (m *Model) WeightBytes() int64 { return m.weightBytes }

func supportedArchs() string {
	var names []string
	for a := range archs {
		names = append(names, a)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// loader fetches tensors with shape checks, keeping the first error.
type loader struct {
	f    *gguf.File
	m    *Model
	used map[string]bool
	err  error
}

// matrix loads a (rows, cols) weight; rows < 0 accepts any row count.
func (l *loader) matrix(name string, cols, rows int) *ops.Matrix {
	if l.err != nil {
		return nil
	}
	w, err := ops.MatrixFromGGUF(l.f, name)
	if err != nil {
		l.err = err
		return nil
	}
	if w.Cols != cols || (rows >= 0 && w.Rows != rows) {
		l.err = fmt.Errorf("tensor %q has shape [%d %d], want [%d %d]", name, w.Cols, w.Rows, cols, rows)
		return nil
	}
	l.used[name] = true
	return w
}

// vector loads a 1-D float tensor of n values. F32 data is viewed in place;
// other float encodings are decoded once (they are small: norms, biases).
func (l *loader) vector(name string, n int) []float32 {
	if l.err != nil {
		return nil
	}
	ti, ok := l.f.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("tensor %q not found", name)
		return nil
	}
	if ti.NElements() != int64(n) {
		l.err = fmt.Errorf("tensor %q has shape %v, want [%d]", name, ti.Ne, n)
		return nil
	}
	w, err := ops.NewMatrix(name, ti.Type, 1, n, l.f.Data(ti))
	if err != nil {
		l.err = err
		return nil
	}
	l.used[name] = true
	if w.F32 != nil {
		return w.F32
	}
	v := make([]float32, n)
	w.DequantizeRow(0, v)
	return v
}

func (l *loader) optVector(name string, n int) []float32 {
	if _, ok := l.f.Tensor(name); !ok {
		return nil
	}
	return l.vector(name, n)
}

func (l *loader) layer(i int, ly *Layer) {
	if l.err != nil {
		return // keep the first error as it is, not wrapped by every later layer
	}
	hp := &l.m.Hparams
	p := fmt.Sprintf("blk.%d.", i)
	info := archs[l.m.Arch]
	ly.AttnNorm = l.vector(p+"attn_norm.weight", hp.NEmbd)
	if _, fused := l.f.Tensor(p + "attn_qkv.weight"); fused && info.fusedQKV {
		// phi3: rows Q | K | V, split as build_phi3's views of the product.
		qkv := l.matrix(p+"attn_qkv.weight", hp.NEmbd, hp.QDim()+2*hp.KVDim())
		if qkv != nil {
			q, kv := hp.QDim(), hp.KVDim()
			ly.Wq, ly.Wk, ly.Wv = qkv.RowSlice(0, q), qkv.RowSlice(q, q+kv), qkv.RowSlice(q+kv, q+2*kv)
		}
	} else {
		ly.Wq = l.matrix(p+"attn_q.weight", hp.NEmbd, hp.QDim())
		ly.Wk = l.matrix(p+"attn_k.weight", hp.NEmbd, hp.KVDim())
		ly.Wv = l.matrix(p+"attn_v.weight", hp.NEmbd, hp.KVDim())
	}
	ly.Wo = l.matrix(p+"attn_output.weight", hp.QDim(), hp.NEmbd)
	ly.Bq = l.optVector(p+"attn_q.bias", hp.QDim())
	ly.Bk = l.optVector(p+"attn_k.bias", hp.KVDim())
	ly.Bv = l.optVector(p+"attn_v.bias", hp.KVDim())
	ly.Bo = l.optVector(p+"attn_output.bias", hp.NEmbd)
	if archs[l.m.Arch].qkNorm {
		ly.QNorm = l.vector(p+"attn_q_norm.weight", hp.HeadDim)
		ly.KNorm = l.vector(p+"attn_k_norm.weight", hp.HeadDim)
	}
	if info.postNorms {
		ly.PostAttnNorm = l.vector(p+"post_attention_norm.weight", hp.NEmbd)
		ly.PostFFNNorm = l.vector(p+"post_ffw_norm.weight", hp.NEmbd)
	}
	ly.FFNNorm = l.vector(p+"ffn_norm.weight", hp.NEmbd)
	if _, gate := l.f.Tensor(p + "ffn_gate.weight"); !gate && info.fusedGateUp {
		// phi3: ffn_up holds gate | up (2·n_ff rows); build_ffn's
		// LLM_FFN_SWIGLU splits the product in halves.
		up := l.matrix(p+"ffn_up.weight", hp.NEmbd, 2*hp.NFF)
		if up != nil {
			ly.WGate, ly.WUp = up.RowSlice(0, hp.NFF), up.RowSlice(hp.NFF, 2*hp.NFF)
		}
	} else {
		ly.WGate = l.matrix(p+"ffn_gate.weight", hp.NEmbd, hp.NFF)
		ly.WUp = l.matrix(p+"ffn_up.weight", hp.NEmbd, hp.NFF)
	}
	ly.WDown = l.matrix(p+"ffn_down.weight", hp.NFF, hp.NEmbd)
	if l.err != nil {
		l.err = fmt.Errorf("layer %d: %w", i, l.err)
	}
}
