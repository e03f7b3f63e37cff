package engine

import (
	"fmt"
	"sort"
	"strings"

	"ladder-engine/gguf"
	"ladder-engine/ops"
)

// LoRA adapters in llama.cpp's format (convert_lora_to_gguf.py writes
// them, llama-adapter.cpp reads them):
//
//	general.type          = "adapter"
//	general.architecture  = the base model's
//	adapter.type          = "lora"
//	adapter.lora.alpha    f32 (absent or 0: scale = --adapter-scale alone)
//	<base tensor>.lora_a  ggml ne [n_in, r]   (A, r rows of n_in)
//	<base tensor>.lora_b  ggml ne [r, n_out]  (B, n_out rows of r)
//
// in f32, f16 or bf16. The update is W + scale·B·A with scale =
// adapter_scale · alpha / r, r = ne[0] of lora_b (llama_adapter_lora_weight
// get_scale). Tensors ending in _norm.weight are skipped, as llama.cpp does.

// Adapter metadata keys (llama.cpp's LLM_KV_ADAPTER_*).
const (
	keyGeneralType     = "general.type"
	keyAdapterType     = "adapter.type"
	KeyLoRAAlpha       = "adapter.lora.alpha"
	loraSuffixA        = ".lora_a"
	loraSuffixB        = ".lora_b"
	loraNormSuffix     = "_norm.weight"
	adapterTypeLoRA    = "lora"
	generalTypeAdapter = "adapter"
)

// LoRAPair is one adapted weight: A (r, in) and B (out, r) in the file's
// encoding (views of the mapping).
type LoRAPair struct {
	A, B *ops.Matrix
}

// Rank is r.
func (p LoRAPair) Rank() int { return p.A.Rows }

// LoRAAdapter is an open LoRA adapter file.
type LoRAAdapter struct {
	Path  string
	Arch  string
	Alpha float32
	Pairs map[string]LoRAPair // by base tensor name ("blk.0.attn_q.weight")
	file  *gguf.File
}

// IsLoRAAdapter tells whether f is a llama.cpp LoRA adapter.
func IsLoRAAdapter(f *gguf.File) bool {
	t, _ := f.GetString(keyAdapterType)
	return t == adapterTypeLoRA
}

// OpenLoRA reads a LoRA adapter file. Close releases it (after the model
// that uses it stops running).
func OpenLoRA(path string) (*LoRAAdapter, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	a, err := loraFromGGUF(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

func loraFromGGUF(f *gguf.File) (*LoRAAdapter, error) {
	if t, _ := f.GetString(keyGeneralType); t != generalTypeAdapter {
		return nil, fmt.Errorf("general.type is %q, want %q: not an adapter", t, generalTypeAdapter)
	}
	if t, _ := f.GetString(keyAdapterType); t != adapterTypeLoRA {
		return nil, fmt.Errorf("adapter.type is %q, want %q", t, adapterTypeLoRA)
	}
	a := &LoRAAdapter{Path: f.Path, Arch: f.Arch(), Pairs: map[string]LoRAPair{}, file: f}
	if f.Has(KeyLoRAAlpha) {
		alpha, err := f.GetFloat32(KeyLoRAAlpha)
		if err != nil {
			return nil, err
		}
		a.Alpha = alpha
	}
	for _, ti := range f.Tensors {
		name := ti.Name
		var base string
		isA := strings.HasSuffix(name, loraSuffixA)
		switch {
		case isA:
			base = strings.TrimSuffix(name, loraSuffixA)
		case strings.HasSuffix(name, loraSuffixB):
			base = strings.TrimSuffix(name, loraSuffixB)
		case strings.HasSuffix(name, loraNormSuffix):
			continue // llama.cpp ignores norm vectors in LoRA adapters too
		default:
			return nil, fmt.Errorf("tensor %q: unexpected name (want <base tensor>.lora_a or .lora_b)", name)
		}
		switch ti.Type {
		case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16:
		default:
			return nil, fmt.Errorf("tensor %q is %s; LoRA tensors must be f32, f16 or bf16", name, ti.Type)
		}
		m, err := ops.MatrixFromGGUF(f, name)
		if err != nil {
			return nil, err
		}
		p := a.Pairs[base]
		if isA {
			p.A = m
		} else {
			p.B = m
		}
		a.Pairs[base] = p
	}
	if len(a.Pairs) == 0 {
		return nil, fmt.Errorf("no LoRA tensors (<base tensor>.lora_a / .lora_b)")
	}
	for base, p := range a.Pairs {
		if p.A == nil || p.B == nil {
			return nil, fmt.Errorf("LoRA pair for %q is missing its %s", base, map[bool]string{true: "lora_b", false: "lora_a"}[p.A != nil])
		}
		// A (r, in), B (out, r): ggml ne A [in, r], B [r, out].
		if p.A.Rows != p.B.Cols {
			return nil, fmt.Errorf("tensor %q: lora_a has rank %d (ne[1]) but lora_b has %d (ne[0]); lora_a must be ne [n_in, r]", base, p.A.Rows, p.B.Cols)
		}
	}
	return a, nil
}

// Close releases the file; the model must no longer run with the adapter.
func (a *LoRAAdapter) Close() error { return a.file.Close() }

// Names are the adapted base tensors, sorted.
func (a *LoRAAdapter) Names() []string {
	names := make([]string, 0, len(a.Pairs))
	for n := range a.Pairs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Scale is the factor llama.cpp applies to B·A: adapterScale·alpha/r, or
// adapterScale alone when the file has no alpha.
func (a *LoRAAdapter) Scale(p LoRAPair, adapterScale float32) float32 {
	if a.Alpha == 0 {
		return adapterScale
	}
	return adapterScale * a.Alpha / float32(p.Rank())
}

// blockWeight returns a pointer to the projection of blk.L named by name
// ("blk.3.ffn_up.weight"), or nil if name is not a block projection.
func (m *Model) blockWeight(name string) (*ops.Weight, int) {
	var l int
	var proj string
	if _, err := fmt.Sscanf(name, "blk.%d.%s", &l, &proj); err != nil || l < 0 || l >= len(m.blocks) {
		return nil, -1
	}
	if fmt.Sprintf("blk.%d.%s", l, proj) != name {
		return nil, -1
	}
	b := &m.blocks[l]
	w := map[string]*ops.Weight{
		"attn_q.weight": &b.Wq, "attn_k.weight": &b.Wk, "attn_v.weight": &b.Wv, "attn_output.weight": &b.Wo,
		"ffn_gate.weight": &b.WGate, "ffn_up.weight": &b.WUp, "ffn_down.weight": &b.WDown,
	}[proj]
	return w, l
}

// ApplyLoRA puts the adapter's pairs on the model's projections, scaled by
// a.Scale(pair, adapterScale); applied again or with another adapter, the
// updates add up, as llama.cpp's repeated --lora. Everything is checked
// before anything changes: the architecture, that each tensor is a block
// projection of the model, and the shapes.
func (m *Model) ApplyLoRA(a *LoRAAdapter, adapterScale float32) error {
	if a.Arch != m.Arch {
		return fmt.Errorf("%s: LoRA adapter is for architecture %q, the model is %q", a.Path, a.Arch, m.Arch)
	}
	names := a.Names()
	for _, name := range names {
		p := a.Pairs[name]
		w, _ := m.blockWeight(name)
		if w == nil {
			if _, ok := m.File.Tensor(name); ok {
				return fmt.Errorf("%s: LoRA on %q is not supported (only the blocks' attn_q/k/v/output and ffn_gate/up/down)", a.Path, name)
			}
			return fmt.Errorf("%s: LoRA tensor %q does not exist in the base model (wrong base model?)", a.Path, name)
		}
		if p.A.Cols != (*w).InDim() || p.B.Rows != (*w).OutDim() {
			return fmt.Errorf("%s: tensor %q: LoRA shapes lora_a [%d %d], lora_b [%d %d] do not fit the model's [%d %d] (wrong base model?)",
				a.Path, name, p.A.Cols, p.A.Rows, p.B.Cols, p.B.Rows, (*w).InDim(), (*w).OutDim())
		}
	}
	for _, name := range names {
		p := a.Pairs[name]
		for _, mt := range []*ops.Matrix{p.A, p.B} {
			if err := m.Backend.PlaceMatrix(mt); err != nil {
				return err
			}
		}
		w, _ := m.blockWeight(name)
		*w = &ops.FrozenLoRA{Base: *w, A: p.A, B: p.B, Scale: a.Scale(p, adapterScale)}
	}
	return nil
}

// SetBlock replaces backbone layer l's weights for Forward (say, with
// LoRA pairs being trained); Block(l) returns the current ones.
func (m *Model) SetBlock(l int, w BlockWeights) { m.blocks[l] = w }

// LoRATensor is one trained pair to write: A (r, in) and B (out, r) as
// row-major f32 values, on the base tensor Name.
type LoRATensor struct {
	Name    string
	Rank    int
	In, Out int
	A, B    []float32
}

// WriteLoRA writes pairs as a llama.cpp LoRA adapter for a model of
// architecture arch, matrices encoded as typ (F32, F16 or BF16), with extra
// metadata kvs (may be nil). The file is written atomically.
func WriteLoRA(path, arch string, alpha float32, typ gguf.Type, pairs []LoRATensor, kvs map[string]any) error {
	w := gguf.NewWriter()
	if err := AddLoRA(w, arch, alpha, typ, pairs); err != nil {
		return err
	}
	for k, v := range kvs {
		if err := w.Set(k, v); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}

// AddLoRA adds a LoRA adapter's metadata and tensors to w (checkpoints add
// their own after).
func AddLoRA(w *gguf.Writer, arch string, alpha float32, typ gguf.Type, pairs []LoRATensor) error {
	switch typ {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16:
	default:
		return fmt.Errorf("LoRA adapter type %s: want f32, f16 or bf16", typ)
	}
	w.SetString(keyGeneralType, generalTypeAdapter)
	w.SetString("general.architecture", arch)
	w.SetString(keyAdapterType, adapterTypeLoRA)
	w.SetFloat32(KeyLoRAAlpha, alpha)
	for _, p := range pairs {
		if len(p.A) != p.Rank*p.In || len(p.B) != p.Out*p.Rank {
			return fmt.Errorf("LoRA %q: A has %d values, B %d; want %d×%d and %d×%d", p.Name, len(p.A), len(p.B), p.Rank, p.In, p.Out, p.Rank)
		}
		if err := w.AddTensorFunc(p.Name+loraSuffixA, typ, []int64{int64(p.In), int64(p.Rank)}, gguf.EncodeFunc(typ, p.A)); err != nil {
			return err
		}
		if err := w.AddTensorFunc(p.Name+loraSuffixB, typ, []int64{int64(p.Rank), int64(p.Out)}, gguf.EncodeFunc(typ, p.B)); err != nil {
			return err
		}
	}
	return nil
}
