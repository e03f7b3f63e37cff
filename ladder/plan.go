package ladder

import (
	"fmt"
	"strings"

	"ladder-engine/engine"
	"ladder-engine/ops"
)

// The memory planner predicts a training run's peak memory by class from
// the model's shapes and the options, before anything is allocated: the
// same buffers the trainer allocates (train.go, lora.go) and the tape
// outputs and saved values of the ops it runs (ops: every op output and
// every save is an activation on a recording tape, scratch on a no-grad
// one), counted here in floats per row. `finetune --plan` prints it,
// `--max-memory` refuses a plan over the limit, and `bench memory` sets it
// beside the measured peak.

// MemoryPlan is the predicted peak of a run, by meter class.
type MemoryPlan struct {
	Method    string
	Class     [7]int64 // by ops.MemClass: weights, side params, gradients, optimizer state, activations, KV cache, scratch
	Trainable int      // trainable values
	// Total is the peak of the meter's total; RSS the process's peak
	// resident size: the mapped weights, the counted buffers and the Go
	// runtime's own (heap headroom, tokenizer, data).
	Total, RSS int64
}

// PlanInput is what the planner needs: the backbone's shapes, the size of
// its weights, and the run's settings.
type PlanInput struct {
	Base        engine.Hparams
	WeightBytes int64
	Cfg         Config
	Batch       int // sequences per micro-batch
	Ctx         int // tokens per sequence (-c)
	Optimizer   string
	DataTokens  int // tokens of training data held in memory (0: ignored)
}

// Runtime costs outside the meter, measured with bench memory on synth
// 160m q4_0 at -c 512 (Go 1.26, GOGC=25 as finetune sets it; ladder,
// xladder and lora all gave RSS − weights ≈ 1.21..1.22 × counted heap +
// 16 MiB): a base for the runtime, tokenizer and data, and heap headroom
// over the live counted buffers (the collector lets the heap grow up to
// GOGC% past what is live before it runs).
const (
	planBaseRSS      = 16 << 20
	planHeapHeadroom = 0.22
)

// PlanMemory predicts the peak memory of training with in.
func PlanMemory(in PlanInput) (MemoryPlan, error) {
	p := MemoryPlan{Method: in.Cfg.Method}
	b := &in.Base
	rows := int64(in.Batch) * int64(in.Ctx)
	T := int64(in.Ctx)
	d, kv, ff, qd := int64(b.NEmbd), int64(b.KVDim()), int64(b.NFF), int64(b.QDim())
	L := int64(b.NLayer)
	const f = 4 // bytes per float
	p.Class[ops.Weights] = in.WeightBytes

	var n int64 // trainable values
	switch in.Cfg.Method {
	case "lora":
		targets, err := ParseLoRATargets(in.Cfg.LoRATargets)
		if err != nil {
			return p, err
		}
		if in.Cfg.LoRARank < 1 {
			return p, fmt.Errorf("--lora-rank %d: must be >= 1", in.Cfg.LoRARank)
		}
		r := int64(in.Cfg.LoRARank)
		scaled := in.Cfg.LoRAAlpha != float32(in.Cfg.LoRARank)
		for _, t := range targets {
			i, o := projDims(t, d, kv, ff, qd)
			n += L * r * (i + o)
		}
		// One layer on the recording tape, floats per row: the block's op
		// outputs (blockRowFloats) plus each pair's x·Aᵀ (r), ·Bᵀ (out),
		// scale (out, when alpha ≠ r), sum (out), dropout's x⊙mask and
		// mask (in, in); attention's probabilities B·nHead·T·T.
		perRow := blockRowFloats(d, kv, ff, qd)
		for _, t := range targets {
			i, o := projDims(t, d, kv, ff, qd)
			perRow += r + 2*o
			if scaled {
				perRow += o
			}
			if in.Cfg.LoRADropout > 0 {
				perRow += 2 * i
			}
		}
		layer := f * (rows*perRow + rows*int64(b.NHead)*T)
		head := f * rows * (2*d + 1 + 1) // output_norm out and 1/rms, the loss's saved dhidden
		emb := f * rows * d
		bufs := f * rows * d // the validation residual (loraBuffers.hin[0])
		if in.Cfg.Checkpointing {
			// Layer inputs L+1 and two gradients between layers, one layer
			// recomputed on the tape, the head; in backward the layer's
			// activations and its gradients (about as many again, at most).
			bufs = f * rows * d * (L + 1 + 2)
			p.Class[ops.Activations] = bufs + layer + head
		} else {
			p.Class[ops.Activations] = bufs + emb + L*layer + head
		}
		// Scratch: in backward the gradients of one layer's intermediates
		// at a time, the largest being the FFN's (rows, ff) three; before
		// it, the LM head's logits (not at the same time).
		p.Class[ops.Scratch] = max(f*rows*(3*ff+4*d), lmHeadScratch(b, rows))
	case "ladder", "xladder":
		h, err := NewHparams(in.Cfg, b)
		if err != nil {
			return p, err
		}
		n = int64(sideParamCount(h))
		ds := int64(h.NEmbd)
		sh := engine.Hparams{NEmbd: h.NEmbd, NHead: h.NHead, NHeadKV: h.NHeadKV, HeadDim: h.HeadDim, NFF: h.NFF}
		sideKV, sideFF, sideQ := int64(sh.KVDim()), int64(h.NFF), int64(sh.QDim())
		kept := int64(len(h.ladderLayers()))
		projs := kept
		if h.StartLayer < 0 {
			projs++
		}
		lt := int64(4)
		if in.Cfg.LadderType != 0 { // F32 is gguf type 0
			lt = 2
		}
		// microBuffers: base, the kept ladder inputs, y and dy per
		// projection, block inputs, hout, dh, dhin.
		bufs := f*rows*d + lt*rows*d*kept + f*rows*ds*(2*projs+int64(h.NBlock)-1+3)
		// One side block on the tape with its ladder mix (GatedMix out),
		// then the head: RMSNorm_s, Up (rows, d), the residual sum and the
		// loss's saved dhidden.
		sideLayer := f * (rows*(blockRowFloats(ds, sideKV, sideFF, sideQ)-0+ds) + rows*int64(h.NHead)*T)
		head := f * rows * (ds + 1 + 3*d)
		p.Class[ops.Activations] = bufs + max(sideLayer, head)
		// The backbone's no-grad forward, one sequence and one layer at a
		// time (kept for reuse), and its KV cache of T positions.
		p.Class[ops.Scratch] = f*T*(noGradLayerFloats(d, kv, ff, qd)) + f*rows*(3*sideFF+4*ds) + lmHeadScratch(b, rows)
		pad := func(x int64) int64 { return (x + 31) / 32 * 32 }
		hd := int64(b.HeadDim)
		p.Class[ops.KVMem] = f * L * int64(b.NHeadKV) * pad(T) * (hd + pad(hd))
	default:
		return p, fmt.Errorf("--method %q: want ladder, xladder or lora", in.Cfg.Method)
	}
	p.Trainable = int(n)
	p.Class[ops.SideParams] = f * n
	p.Class[ops.Gradients] = f * n
	switch in.Optimizer {
	case "adamw8":
		p.Class[ops.OptimState] = 2*n + 8*(n/256+1)
	case "sgd":
		p.Class[ops.OptimState] = f * n
	default:
		p.Class[ops.OptimState] = 2 * f * n
	}
	for _, c := range p.Class {
		p.Total += c
	}
	heap := p.Total - p.Class[ops.Weights]
	p.RSS = p.Class[ops.Weights] + heap + int64(planHeapHeadroom*float64(heap)) + planBaseRSS + 4*int64(in.DataTokens)
	return p, nil
}

// projDims is the (in, out) of a block projection.
func projDims(tensor string, d, kv, ff, qd int64) (int64, int64) {
	switch tensor {
	case "attn_q":
		return d, qd
	case "attn_k", "attn_v":
		return d, kv
	case "attn_output":
		return qd, d
	case "ffn_gate", "ffn_up":
		return d, ff
	}
	return ff, d // ffn_down
}

// blockRowFloats counts the floats per row that BlockForward leaves on a
// recording tape with plain weights (one output per projection): two
// RMSNorms (out + 1/rms), q, k, v, their RoPE, the attention output, Wo,
// the residual sums, gate, up, SwiGLU and down.
func blockRowFloats(d, kv, ff, qd int64) int64 {
	return 2*(d+1) + qd + 2*kv + qd + kv + qd + d + d + 2*ff + ff + d + d
}

// noGradLayerFloats counts the floats per token of one backbone layer on
// the no-grad tape (reset after each layer): blockRowFloats without the
// saved 1/rms.
func noGradLayerFloats(d, kv, ff, qd int64) int64 { return blockRowFloats(d, kv, ff, qd) - 2 }

// lmHeadScratch is the LM head's chunk of logits over rows in training.
func lmHeadScratch(b *engine.Hparams, rows int64) int64 {
	return 4 * int64(b.NVocab) * int64(ops.LMHeadChunkRows(b.NVocab, int(rows), true))
}

// sideParamCount is the number of values newSide lays out for h.
func sideParamCount(h Hparams) int {
	d, ds := h.BaseEmbd, h.NEmbd
	q, kv := h.QDim(), h.KVDim()
	n := ds * d // side_in
	for _, l := range h.LayerMap {
		if l >= 0 {
			n += ds*d + gateLen(h.Gate, ds)
		}
		n += ds + q*ds + 2*kv*ds + ds*q + ds + 3*h.NFF*ds
	}
	n += ds + d*ds
	if h.Head == "gated" {
		n += d
	}
	return n
}

// Report formats the plan by class, as the meter's report.
func (p MemoryPlan) Report() string {
	var b strings.Builder
	for c := ops.MemClass(0); c < 7; c++ {
		fmt.Fprintf(&b, "  %-19s %10s\n", c.String()+":", ops.FormatBytes(p.Class[c]))
	}
	fmt.Fprintf(&b, "  %-19s %10s\n", "total:", ops.FormatBytes(p.Total))
	fmt.Fprintf(&b, "  %-19s %10s = %d bytes (mapped weights, counted buffers, Go runtime)\n", "process peak:", ops.FormatBytes(p.RSS), p.RSS)
	return b.String()
}
