package ladder

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ladder/data"
	"ladder-engine/ops"
)

// The QLoRA-style baseline (--method lora): LoRA pairs on the frozen,
// still-quantized backbone projections, trained through every backbone
// layer with the same loop, data, checkpoints and metrics as the ladder.
//
//	tokens ─► embeddings ─► blk 0 … blk L-1 (W + α/r·B·A, on the tape) ─► output_norm ─► LM head ─► loss
//
// Unlike the ladder, the backbone runs on the recording tape: each layer's
// activations are kept for backward (or, with Checkpointing, only each
// layer's input, the layer recomputed in backward). The adapter is written
// in llama.cpp's LoRA format (engine.WriteLoRA), which llama.cpp runs.

// loraTargets maps --lora-targets names to the backbone tensors.
var loraTargets = []struct{ short, tensor string }{
	{"q", "attn_q"}, {"k", "attn_k"}, {"v", "attn_v"}, {"o", "attn_output"},
	{"gate", "ffn_gate"}, {"up", "ffn_up"}, {"down", "ffn_down"},
}

// ParseLoRATargets reads --lora-targets: a comma-separated subset of
// q,k,v,o,gate,up,down (or "all"). It returns the tensor names (attn_q, …)
// in block order.
func ParseLoRATargets(spec string) ([]string, error) {
	if strings.TrimSpace(spec) == "all" {
		spec = "q,k,v,o,gate,up,down"
	}
	want := map[string]bool{}
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		ok := false
		for _, t := range loraTargets {
			if f == t.short || f == t.tensor {
				want[t.tensor], ok = true, true
			}
		}
		if !ok {
			return nil, fmt.Errorf("--lora-targets %q: %q is not one of q,k,v,o,gate,up,down", spec, f)
		}
	}
	var out []string
	for _, t := range loraTargets {
		if want[t.tensor] {
			out = append(out, t.tensor)
		}
	}
	return out, nil
}

// targetWeight returns the projection of b that tensor (attn_q, …) names.
func targetWeight(b *engine.BlockWeights, tensor string) *ops.Weight {
	switch tensor {
	case "attn_q":
		return &b.Wq
	case "attn_k":
		return &b.Wk
	case "attn_v":
		return &b.Wv
	case "attn_output":
		return &b.Wo
	case "ffn_gate":
		return &b.WGate
	case "ffn_up":
		return &b.WUp
	case "ffn_down":
		return &b.WDown
	}
	panic("ladder: unknown LoRA target " + tensor)
}

// LoRA is the trained state of --method lora: the pairs, and the
// backbone's blocks with the pairs on (BlockForward's weights).
type LoRA struct {
	Rank    int
	Alpha   float32
	Targets []string // tensor names: attn_q, …
	Dropout float32
	pairs   []loraPair
	blocks  []engine.BlockWeights
	params  []param
	rng     *rand.Rand // dropout masks
}

type loraPair struct {
	name string // the base tensor: blk.L.attn_q.weight
	w    *ops.LoRA
}

// newLoRA puts fresh pairs on m's projections: A as PEFT initialises it, B
// zero, so the model starts as the base exactly.
func newLoRA(m *engine.Model, cfg Config) (*LoRA, error) {
	if cfg.LoRARank < 1 {
		return nil, fmt.Errorf("--lora-rank %d: must be >= 1", cfg.LoRARank)
	}
	if !(cfg.LoRAAlpha > 0) {
		return nil, fmt.Errorf("--lora-alpha %g: must be > 0", cfg.LoRAAlpha)
	}
	if !(cfg.LoRADropout >= 0 && cfg.LoRADropout < 1) {
		return nil, fmt.Errorf("--lora-dropout %g: must lie in [0, 1)", cfg.LoRADropout)
	}
	if _, cpu := m.Backend.(*ops.CPU); !cpu {
		return nil, fmt.Errorf("--method lora: runs on the CPU backend only for now")
	}
	targets, err := ParseLoRATargets(cfg.LoRATargets)
	if err != nil {
		return nil, err
	}
	lo := &LoRA{Rank: cfg.LoRARank, Alpha: cfg.LoRAAlpha, Targets: targets, Dropout: cfg.LoRADropout,
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x10a))}
	init := rand.New(rand.NewPCG(cfg.Seed, 0x1a))
	for l := range m.NLayer {
		b := m.Block(l)
		for _, t := range targets {
			w := targetWeight(&b, t)
			p := ops.NewLoRA(m.Backend, *w, cfg.LoRARank, cfg.LoRAAlpha, init)
			*w = p
			name := fmt.Sprintf("blk.%d.%s.weight", l, t)
			lo.pairs = append(lo.pairs, loraPair{name: name, w: p})
			lo.params = append(lo.params, param{name: name + ".lora_a", t: p.A}, param{name: name + ".lora_b", t: p.B})
		}
		lo.blocks = append(lo.blocks, b)
	}
	return lo, nil
}

// loraFromFile loads the pairs of a LoRA adapter or checkpoint (llama.cpp
// format) into a fresh LoRA of cfg's shape on m.
func loraFromFile(f *gguf.File, m *engine.Model, cfg Config) (*LoRA, error) {
	if alpha, err := f.GetFloat32(engine.KeyLoRAAlpha); err == nil && alpha > 0 {
		cfg.LoRAAlpha = alpha
	}
	lo, err := newLoRA(m, cfg)
	if err != nil {
		return nil, err
	}
	if err := readParams(f, lo.params, " (trained with other --lora-targets or --lora-rank?)"); err != nil {
		lo.Free()
		return nil, err
	}
	return lo, nil
}

// LoRAConfigFromFile sets cfg's rank, alpha and targets from a llama.cpp
// LoRA adapter, so that training can start from it (finetune --method lora
// --adapter FILE). Every block must carry the same targets at one rank.
func LoRAConfigFromFile(path string, cfg Config) (Config, error) {
	a, err := engine.OpenLoRA(path)
	if err != nil {
		return cfg, err
	}
	defer a.Close()
	seen := map[string]bool{}
	rank := 0
	for name, p := range a.Pairs {
		var l int
		var proj string
		if _, err := fmt.Sscanf(name, "blk.%d.%s", &l, &proj); err != nil || !strings.HasSuffix(proj, ".weight") {
			return cfg, fmt.Errorf("%s: LoRA on %q: training continues only LoRA on block projections", path, name)
		}
		seen[strings.TrimSuffix(proj, ".weight")] = true
		if rank != 0 && p.Rank() != rank {
			return cfg, fmt.Errorf("%s: ranks %d and %d: training continues only an adapter of one rank", path, rank, p.Rank())
		}
		rank = p.Rank()
	}
	var targets []string
	for t := range seen {
		targets = append(targets, t)
	}
	cfg.Method, cfg.LoRARank, cfg.LoRATargets = "lora", rank, strings.Join(targets, ",")
	if a.Alpha > 0 {
		cfg.LoRAAlpha = a.Alpha
	} else {
		cfg.LoRAAlpha = float32(rank) // llama.cpp: no alpha means scale 1
	}
	return cfg, nil
}

// NewLoRATrainerFrom is NewTrainer for --method lora starting from the
// pairs of a LoRA adapter file (cfg from LoRAConfigFromFile).
func NewLoRATrainerFrom(path string, m *engine.Model, cfg Config, opts TrainOptions, train, val []data.Example) (*Trainer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lo, err := loraFromFile(f, m, cfg)
	if err != nil {
		return nil, err
	}
	tr, err := newTrainer(m, lo, cfg, opts, train, val)
	if err != nil {
		lo.Free()
		return nil, err
	}
	return tr, nil
}

// NumParams is the number of trainable values.
func (lo *LoRA) NumParams() int {
	n := 0
	for _, p := range lo.params {
		n += p.t.Len()
	}
	return n
}

// Free releases the pairs.
func (lo *LoRA) Free() {
	for _, p := range lo.params {
		if p.t.Buf() != nil {
			p.t.FreeParam()
		}
	}
}

// tensors lists the pairs for engine.AddLoRA.
func (lo *LoRA) tensors() []engine.LoRATensor {
	out := make([]engine.LoRATensor, len(lo.pairs))
	for i, p := range lo.pairs {
		out[i] = engine.LoRATensor{Name: p.name, Rank: lo.Rank, In: p.w.InDim(), Out: p.w.OutDim(), A: p.w.A.Read(), B: p.w.B.Read()}
	}
	return out
}

// writeAdapter adds the adapter in llama.cpp's LoRA format, with the
// base's fingerprint and the training keys beside (llama.cpp ignores them).
func (lo *LoRA) writeAdapter(w *gguf.Writer, typ gguf.Type, fp Fingerprint, train map[string]any) error {
	if err := engine.AddLoRA(w, fp.Arch, lo.Alpha, typ, lo.tensors()); err != nil {
		return err
	}
	name := "lora adapter"
	if fp.Name != "" {
		name = fp.Name + " " + name
	}
	w.SetString(keyName, name)
	w.SetUint32("adapter.lora.rank", uint32(lo.Rank))
	w.SetString("adapter.lora.targets", strings.Join(lo.Targets, ","))
	return writeBaseAndTraining(w, fp, train)
}

// Save writes the pairs as a llama.cpp LoRA adapter (atomically).
func (lo *LoRA) Save(path string, typ gguf.Type, fp Fingerprint, train map[string]any) error {
	w := gguf.NewWriter()
	if err := lo.writeAdapter(w, typ, fp, train); err != nil {
		return err
	}
	return w.WriteFile(path)
}

// loraDecoder is the model's decoder with the pairs on its blocks while it
// lives (eval during training); Free puts the frozen blocks back.
type loraDecoder struct {
	*engine.ModelDecoder
	m    *engine.Model
	base []engine.BlockWeights
}

func (lo *LoRA) newDecoder(m *engine.Model, nCtx int) evalDecoder {
	d := &loraDecoder{ModelDecoder: m.NewDecoder(nCtx), m: m}
	for l := range lo.blocks {
		d.base = append(d.base, m.Block(l))
		m.SetBlock(l, lo.blocks[l])
	}
	return d
}

func (d *loraDecoder) Free() {
	for l, b := range d.base {
		d.m.SetBlock(l, b)
	}
	d.ModelDecoder.Free()
}

// dropoutMasks draws, for a training micro-batch, a mask per pair when
// Dropout > 0 (nil otherwise): the pair's input is x⊙mask/(1-p), as PEFT's
// lora_dropout on the LoRA branch only.
func (lo *LoRA) setDropout(be ops.Backend, rows int, train bool) (free func()) {
	if lo.Dropout == 0 {
		return func() {}
	}
	var masks []*ops.Tensor
	for _, p := range lo.pairs {
		if !train {
			p.w.Mask = nil
			continue
		}
		in := p.w.InDim()
		v := make([]float32, rows*in)
		keep := 1 / (1 - lo.Dropout)
		for i := range v {
			if lo.rng.Float32() >= lo.Dropout {
				v[i] = keep
			}
		}
		t := ops.TensorOn(be, ops.Activations, ops.F32, rows, in)
		t.Write(v)
		p.w.Mask = t
		masks = append(masks, t)
	}
	return func() {
		for _, p := range lo.pairs {
			p.w.Mask = nil
		}
		for _, t := range masks {
			t.FreeTensor()
		}
	}
}

// loraBuffers hold a micro-batch's layer inputs for --checkpointing and
// the gradients between layers, (rows, d) each.
type loraBuffers struct {
	rows     int
	hin      []*ops.Tensor // input of each layer (hin[0]: the embeddings) and hin[L]: the last output
	dh, dhin *ops.Tensor
	pos      []int32
}

func (tr *Trainer) growLoRABuffers(rows int) {
	lb := &tr.lb
	if rows != 0 && rows <= lb.rows {
		return
	}
	for _, t := range append(lb.hin, lb.dh, lb.dhin) {
		if t != nil {
			t.FreeTensor()
		}
	}
	*lb = loraBuffers{rows: rows}
	if rows == 0 {
		return
	}
	be, d := tr.M.Backend, tr.M.NEmbd
	act := func() *ops.Tensor { return ops.TensorOn(be, ops.Activations, ops.F32, rows, d) }
	if tr.Cfg.Checkpointing {
		lb.hin = make([]*ops.Tensor, tr.M.NLayer+1)
		for i := range lb.hin {
			lb.hin[i] = act()
		}
		lb.dh, lb.dhin = act(), act()
	} else {
		lb.hin = []*ops.Tensor{act()} // the residual stream between layers in validation
	}
	lb.pos = make([]int32, rows)
}

// loraForward runs one batch through the backbone with the pairs on: in
// validation layer by layer on a no-grad tape; in training on the
// recording tape, keeping every activation, or (Checkpointing) only each
// layer's input, recomputing the layer in backward. It returns the
// batch's mean loss; gradients accumulate, seeded with its target count.
func (tr *Trainer) loraForward(b *data.Batch, train bool) (float64, error) {
	m, lo := tr.M, tr.L
	be := m.Backend
	rows := b.B * b.T
	tr.growLoRABuffers(rows)
	lb := &tr.lb
	pos := lb.pos[:rows]
	for q := range b.B {
		for t := range b.T {
			pos[q*b.T+t] = int32(t)
		}
	}
	hp := m.BlockHparams()
	toks := b.Tokens[:rows]
	defer lo.setDropout(be, rows, train)()
	view := func(t *ops.Tensor) *ops.Tensor { return t.RowsView(0, rows) }

	if !train {
		ng := ops.NewNoGradTape(be)
		defer ng.Close()
		h := view(lb.hin[0])
		be.Copy(h.Buf(), m.EmbedTokens(ng, toks).Buf())
		ng.Reset()
		for l := range lo.blocks {
			y := engine.BlockForward(ng, &hp, &lo.blocks[l], h, pos, b.B, nil, l)
			be.Copy(h.Buf(), y.Buf())
			ng.Reset()
		}
		z := ng.RMSNorm(h, m.OutputNormTensor(), m.NormEps)
		return float64(ng.LMHeadCrossEntropy(z, m.Output, m.FinalSoftCap, b.Targets).Scalar()), nil
	}

	tp := tr.tape
	head := func(h *ops.Tensor) float64 {
		z := tp.RMSNorm(h, m.OutputNormTensor(), m.NormEps)
		lossT := tp.LMHeadCrossEntropy(z, m.Output, m.FinalSoftCap, b.Targets)
		loss := float64(lossT.Scalar())
		tp.BackwardScaled(lossT, float32(b.NTargets))
		return loss
	}
	if !tr.Cfg.Checkpointing {
		h := m.EmbedTokens(tp, toks)
		for l := range lo.blocks {
			h = engine.BlockForward(tp, &hp, &lo.blocks[l], h, pos, b.B, nil, l)
		}
		return head(h), nil
	}

	// Checkpointing: a forward keeping each layer's input (each layer run
	// on the tape as the recomputation will run it, then released), the
	// head on the tape, then each layer from the top recomputed and
	// back-propagated. Layer 0's input, the embeddings, needs no gradient
	// (as without checkpointing), the others are leaves with one.
	leaf := func(t, grad *ops.Tensor) *ops.Tensor {
		return ops.ParamFromBuffers(view(t).Buf(), view(grad).Buf(), rows, m.NEmbd)
	}
	be.Copy(view(lb.hin[0]).Buf(), m.EmbedTokens(tp, toks).Buf())
	tp.Reset()
	L := len(lo.blocks)
	for l := range L {
		in := view(lb.hin[0])
		if l > 0 {
			in = leaf(lb.hin[l], lb.dhin)
		}
		y := engine.BlockForward(tp, &hp, &lo.blocks[l], in, pos, b.B, nil, l)
		be.Copy(view(lb.hin[l+1]).Buf(), y.Buf())
		tp.Reset()
	}
	be.Zero(view(lb.dh).Buf())
	loss := head(leaf(lb.hin[L], lb.dh))
	dOut, dIn := lb.dh, lb.dhin
	for l := L - 1; l >= 0; l-- {
		in := view(lb.hin[0])
		if l > 0 {
			be.Zero(view(dIn).Buf())
			in = leaf(lb.hin[l], dIn)
		}
		out := engine.BlockForward(tp, &hp, &lo.blocks[l], in, pos, b.B, nil, l)
		tp.BackwardFrom(out, view(dOut))
		dOut, dIn = dIn, dOut
	}
	return loss, nil
}
