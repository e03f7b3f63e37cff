package ladder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ops"
)

// The adapter file is a GGUF with general.type = "adapter",
// adapter.type = "ladder" or "xladder", general.architecture of the base,
// the side network's hyper-parameters under ladder.* and the base model's
// fingerprint under ladder.base.*. Tensor names: see the name* constants in
// side.go. Matrices are stored as f32, f16 or bf16 (--adapter-type); norm
// weights and gates always as f32.

// Metadata keys of the adapter file.
const (
	keyType         = "general.type"
	keyArch         = "general.architecture"
	keyName         = "general.name"
	keyAdapterType  = "adapter.type"
	keyNEmbd        = "ladder.embedding_length"
	keyNFF          = "ladder.feed_forward_length"
	keyNHead        = "ladder.attention.head_count"
	keyNHeadKV      = "ladder.attention.head_count_kv"
	keyHeadDim      = "ladder.attention.key_length"
	keyEps          = "ladder.attention.layer_norm_rms_epsilon"
	keyNBlock       = "ladder.block_count"
	keyReduction    = "ladder.reduction"
	keyLayerMap     = "ladder.layer_map"   // i32 per side block: backbone layer, -1 free
	keyStartLayer   = "ladder.start_layer" // i32: backbone layer feeding Down_0, -1 embeddings
	keyGate         = "ladder.gate"        // "scalar" | "vector"
	keyGateTemp     = "ladder.gate_temperature"
	keyHead         = "ladder.head" // "residual" | "gated" | "side"
	keyRopeBase     = "ladder.rope.freq_base"
	keyRopeNeox     = "ladder.rope.neox"
	keyBaseName     = "ladder.base.name"
	keyBaseEmbd     = "ladder.base.embedding_length"
	keyBaseLayer    = "ladder.base.block_count"
	keyBaseVocab    = "ladder.base.vocab_size"
	keyBaseHead     = "ladder.base.head_count"
	keyBaseHeadKV   = "ladder.base.head_count_kv"
	keyBaseFF       = "ladder.base.feed_forward_length"
	keyBaseHash     = "ladder.base.tensor_hash"
	keyTrainPrefix  = "ladder.training."
	adapterTypeName = "adapter"
)

// Fingerprint identifies the base model an adapter belongs to.
type Fingerprint struct {
	Name                                       string // general.name of the base ("" if none)
	Arch                                       string
	NEmbd, NLayer, NVocab, NHead, NHeadKV, NFF int
	// TensorHash is the hex SHA-256 of the base's tensor table: every
	// tensor's name and shape, sorted by name. Types are left out, so the
	// same model quantized differently (train on q4_0, serve on f16) matches.
	TensorHash string
}

// BaseFingerprint computes the fingerprint of a loaded model.
func BaseFingerprint(m *engine.Model) Fingerprint {
	fp := Fingerprint{Arch: m.Arch, NEmbd: m.NEmbd, NLayer: m.NLayer, NVocab: m.NVocab,
		NHead: m.NHead, NHeadKV: m.NHeadKV, NFF: m.NFF}
	if m.File != nil {
		fp.Name, _ = m.File.GetString("general.name")
		fp.TensorHash = tensorTableHash(m.File.Tensors)
	}
	return fp
}

func tensorTableHash(ts []gguf.TensorInfo) string {
	rows := make([]string, len(ts))
	for i, t := range ts {
		dims := make([]string, len(t.Ne))
		for j, d := range t.Ne {
			dims[j] = strconv.FormatInt(d, 10)
		}
		rows[i] = t.Name + "\x00" + strings.Join(dims, ",")
	}
	sort.Strings(rows)
	h := sha256.New()
	for _, r := range rows {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Check reports, in words, why an adapter trained on fp cannot run on base.
func (fp Fingerprint) Check(base Fingerprint) error {
	var diffs []string
	if fp.Arch != base.Arch {
		diffs = append(diffs, fmt.Sprintf("architecture %q vs %q", fp.Arch, base.Arch))
	}
	dim := func(what string, a, b int) {
		if a != b {
			diffs = append(diffs, fmt.Sprintf("%s %d vs %d", what, a, b))
		}
	}
	dim("n_embd", fp.NEmbd, base.NEmbd)
	dim("n_layer", fp.NLayer, base.NLayer)
	dim("n_vocab", fp.NVocab, base.NVocab)
	dim("n_head", fp.NHead, base.NHead)
	dim("n_head_kv", fp.NHeadKV, base.NHeadKV)
	dim("n_ff", fp.NFF, base.NFF)
	if fp.Name != "" && base.Name != "" && fp.Name != base.Name {
		diffs = append(diffs, fmt.Sprintf("name %q vs %q", fp.Name, base.Name))
	}
	if len(diffs) == 0 && fp.TensorHash != "" && base.TensorHash != "" && fp.TensorHash != base.TensorHash {
		diffs = append(diffs, fmt.Sprintf("tensor table hash %.12s… vs %.12s…", fp.TensorHash, base.TensorHash))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the adapter was trained on a different base model (%s); use it with the model it was trained on", strings.Join(diffs, ", "))
	}
	return nil
}

// writeAdapter adds the adapter metadata and the side network's tensors to
// w, matrices encoded as typ (F32, F16 or BF16). train holds extra
// ladder.training.* values (string, int, float) to record.
func (s *Side) writeAdapter(w *gguf.Writer, typ gguf.Type, fp Fingerprint, train map[string]any) error {
	switch typ {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16:
	default:
		return fmt.Errorf("--adapter-type %s: want f32, f16 or bf16", typ)
	}
	h := &s.H
	w.SetString(keyArch, fp.Arch)
	w.SetString(keyType, adapterTypeName)
	name := h.Method + " adapter"
	if fp.Name != "" {
		name = fp.Name + " " + name
	}
	w.SetString(keyName, name)
	w.SetString(keyAdapterType, h.Method)
	w.SetUint32(keyNEmbd, uint32(h.NEmbd))
	w.SetUint32(keyNFF, uint32(h.NFF))
	w.SetUint32(keyNHead, uint32(h.NHead))
	w.SetUint32(keyNHeadKV, uint32(h.NHeadKV))
	w.SetUint32(keyHeadDim, uint32(h.HeadDim))
	w.SetFloat32(keyEps, h.NormEps)
	w.SetUint32(keyNBlock, uint32(h.NBlock))
	w.SetUint32(keyReduction, uint32(h.Reduction))
	lm := make([]int32, len(h.LayerMap))
	for i, l := range h.LayerMap {
		lm[i] = int32(l)
	}
	w.SetInt32s(keyLayerMap, lm)
	w.SetInt32(keyStartLayer, int32(h.StartLayer))
	w.SetString(keyGate, h.Gate)
	w.SetFloat32(keyGateTemp, h.GateTemp)
	w.SetString(keyHead, h.Head)
	w.SetFloat32(keyRopeBase, h.RopeBase)
	w.SetBool(keyRopeNeox, h.RopeNeox)
	if err := writeBaseAndTraining(w, fp, train); err != nil {
		return err
	}
	for _, p := range s.params {
		t := typ
		if len(p.t.Shape) == 1 {
			t = gguf.TypeF32
		}
		ne := make([]int64, len(p.t.Shape))
		for i, d := range p.t.Shape {
			ne[len(ne)-1-i] = int64(d) // ggml order: the row length first
		}
		if err := w.AddTensorFunc(p.name, t, ne, gguf.EncodeFunc(t, p.t.Read())); err != nil {
			return err
		}
	}
	return nil
}

// writeBaseAndTraining records the base model's fingerprint (ladder.base.*)
// and the training values train (ladder.training.*: string, int, float).
func writeBaseAndTraining(w *gguf.Writer, fp Fingerprint, train map[string]any) error {
	w.SetString(keyBaseName, fp.Name)
	w.SetUint32(keyBaseEmbd, uint32(fp.NEmbd))
	w.SetUint32(keyBaseLayer, uint32(fp.NLayer))
	w.SetUint32(keyBaseVocab, uint32(fp.NVocab))
	w.SetUint32(keyBaseHead, uint32(fp.NHead))
	w.SetUint32(keyBaseHeadKV, uint32(fp.NHeadKV))
	w.SetUint32(keyBaseFF, uint32(fp.NFF))
	w.SetString(keyBaseHash, fp.TensorHash)
	keys := make([]string, 0, len(train))
	for k := range train {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := train[k].(type) {
		case string:
			w.SetString(keyTrainPrefix+k, v)
		case int:
			w.SetInt64(keyTrainPrefix+k, int64(v))
		case float64:
			w.SetFloat32(keyTrainPrefix+k, float32(v))
		default:
			return fmt.Errorf("ladder: training key %q has unsupported type %T", k, v)
		}
	}
	return nil
}

// Save writes the side network as an adapter file (atomically).
func (s *Side) Save(path string, typ gguf.Type, fp Fingerprint, train map[string]any) error {
	w := gguf.NewWriter()
	if err := s.writeAdapter(w, typ, fp, train); err != nil {
		return err
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("writing adapter: %w", err)
	}
	return nil
}

// readHparams reads the side network's shape and the base fingerprint from
// an adapter (or checkpoint) file.
func readAdapterHparams(f *gguf.File) (Hparams, Fingerprint, error) {
	var h Hparams
	var fp Fingerprint
	typ, err := f.GetString(keyType)
	if err != nil || typ != adapterTypeName {
		return h, fp, fmt.Errorf("%s: not an adapter (general.type is %q, want %q)", f.Path, typ, adapterTypeName)
	}
	method, err := f.GetString(keyAdapterType)
	if err != nil {
		return h, fp, fmt.Errorf("%s: %w", f.Path, err)
	}
	if method != "ladder" && method != "xladder" {
		return h, fp, fmt.Errorf("%s: adapter.type %q is not a ladder adapter (want ladder or xladder)", f.Path, method)
	}
	h.Method = method
	var errs []string
	u := func(key string) int {
		v, err := f.GetUint32(key)
		if err != nil {
			errs = append(errs, err.Error())
		}
		return int(v)
	}
	fl := func(key string) float32 {
		v, err := f.GetFloat32(key)
		if err != nil {
			errs = append(errs, err.Error())
		}
		return v
	}
	str := func(key string) string {
		v, err := f.GetString(key)
		if err != nil {
			errs = append(errs, err.Error())
		}
		return v
	}
	h.NEmbd, h.NFF = u(keyNEmbd), u(keyNFF)
	h.NHead, h.NHeadKV, h.HeadDim = u(keyNHead), u(keyNHeadKV), u(keyHeadDim)
	h.NormEps = fl(keyEps)
	h.NBlock, h.Reduction = u(keyNBlock), u(keyReduction)
	lm, err := f.GetInt32s(keyLayerMap)
	if err != nil {
		errs = append(errs, err.Error())
	}
	for _, l := range lm {
		h.LayerMap = append(h.LayerMap, int(l))
	}
	sl, err := f.GetInt(keyStartLayer)
	if err != nil {
		errs = append(errs, err.Error())
	}
	h.StartLayer = int(sl)
	h.Gate, h.GateTemp, h.Head = str(keyGate), fl(keyGateTemp), str(keyHead)
	h.RopeBase = fl(keyRopeBase)
	h.RopeNeox, err = f.GetBool(keyRopeNeox)
	if err != nil {
		errs = append(errs, err.Error())
	}
	fp.Arch = f.Arch()
	fp.Name, _ = f.GetString(keyBaseName)
	fp.NEmbd, fp.NLayer, fp.NVocab = u(keyBaseEmbd), u(keyBaseLayer), u(keyBaseVocab)
	fp.NHead, fp.NHeadKV, fp.NFF = u(keyBaseHead), u(keyBaseHeadKV), u(keyBaseFF)
	fp.TensorHash = str(keyBaseHash)
	h.BaseEmbd, h.BaseLayer, h.BaseVocab = fp.NEmbd, fp.NLayer, fp.NVocab
	if len(errs) > 0 {
		return h, fp, fmt.Errorf("%s: bad adapter metadata: %s", f.Path, strings.Join(errs, "; "))
	}
	if err := h.validate(); err != nil {
		return h, fp, fmt.Errorf("%s: %w", f.Path, err)
	}
	return h, fp, nil
}

// validate checks a shape read from a file, so a corrupt adapter gives an
// error rather than a panic later.
func (h *Hparams) validate() error {
	const big = 1 << 20
	switch {
	case h.NEmbd < 2 || h.NEmbd > big || h.NFF < 1 || h.NFF > big:
		return fmt.Errorf("bad side widths n_embd %d, n_ff %d", h.NEmbd, h.NFF)
	case h.NHead < 1 || h.NHeadKV < 1 || h.NHead%h.NHeadKV != 0 || h.HeadDim < 2 || h.HeadDim%2 != 0 || h.NHead*h.HeadDim > big:
		return fmt.Errorf("bad side heads: %d heads, %d KV heads, head size %d", h.NHead, h.NHeadKV, h.HeadDim)
	case h.NBlock != len(h.LayerMap) || h.NBlock < 1 || h.NBlock > 4096:
		return fmt.Errorf("ladder.block_count %d but %d layer_map entries", h.NBlock, len(h.LayerMap))
	case h.BaseEmbd < 1 || h.BaseEmbd > big || h.BaseLayer < 1:
		return fmt.Errorf("bad base dimensions n_embd %d, n_layer %d", h.BaseEmbd, h.BaseLayer)
	case h.StartLayer < -1 || h.StartLayer >= h.BaseLayer:
		return fmt.Errorf("ladder.start_layer %d outside -1..%d", h.StartLayer, h.BaseLayer-1)
	case h.Gate != "scalar" && h.Gate != "vector":
		return fmt.Errorf("ladder.gate %q: want scalar or vector", h.Gate)
	case h.Head != "residual" && h.Head != "gated" && h.Head != "side":
		return fmt.Errorf("ladder.head %q: want residual, gated or side", h.Head)
	case !(h.GateTemp > 0):
		return fmt.Errorf("ladder.gate_temperature %g: must be > 0", h.GateTemp)
	}
	for i, l := range h.LayerMap {
		if l < -1 || l >= h.BaseLayer {
			return fmt.Errorf("ladder.layer_map[%d] = %d outside -1..%d", i, l, h.BaseLayer-1)
		}
	}
	return nil
}

// LoadAdapter reads an adapter (or a training checkpoint) for the model m.
// It fails with a clear message when the adapter belongs to another base.
func LoadAdapter(path string, m *engine.Model) (*Side, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return sideFromFile(f, m, false)
}

// sideFromFile builds a side network from an open adapter file, checked
// against m; grads makes its tensors trainable (resuming a checkpoint).
func sideFromFile(f *gguf.File, m *engine.Model, grads bool) (*Side, error) {
	h, fp, err := readAdapterHparams(f)
	if err != nil {
		return nil, err
	}
	if err := fp.Check(BaseFingerprint(m)); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	s := newSide(h, grads)
	if err := readParams(f, s.params, ""); err != nil {
		s.Free()
		return nil, err
	}
	return s, nil
}

// readParams fills params from f's tensors of the same names and shapes
// (any float encoding); hint is added to a missing tensor's error.
func readParams(f *gguf.File, params []param, hint string) error {
	for _, p := range params {
		ti, ok := f.Tensor(p.name)
		if !ok {
			return fmt.Errorf("%s: tensor %q missing%s", f.Path, p.name, hint)
		}
		if ti.NElements() != int64(p.t.Len()) || len(ti.Ne) != len(p.t.Shape) || ti.Ne[0] != int64(p.t.Cols()) {
			return fmt.Errorf("%s: tensor %q has shape %v, want %v (ggml order)", f.Path, p.name, ti.Ne, reversed(p.t.Shape))
		}
		if err := gguf.Dequantize(ti.Type, f.Data(ti), p.t.F32()); err != nil {
			return fmt.Errorf("%s: tensor %q: %w", f.Path, p.name, err)
		}
	}
	return nil
}

func reversed(shape []int) []int64 {
	out := make([]int64, len(shape))
	for i, d := range shape {
		out[len(out)-1-i] = int64(d)
	}
	return out
}

// TensorNames lists the adapter's tensors with their ggml shapes, for docs
// and `inspect`.
func (s *Side) TensorNames() []string {
	out := make([]string, len(s.params))
	for i, p := range s.params {
		out[i] = fmt.Sprintf("%s %v", p.name, reversed(p.t.Shape))
	}
	return out
}

var _ = ops.SideParams
