package ladder

import (
	"fmt"
	"math"
	"math/rand/v2"

	"ladder-engine/ops"
)

// Side is the side network: the ladder projections, the side blocks and the
// head. Its parameters are views into one allocation of values (and one of
// gradients when training), llm.c style, so its memory is one number.
//
// Weights follow llama's convention: a matrix is (out, in) and a Linear
// computes x·Wᵀ; in the GGUF file ne = [in, out].
type Side struct {
	H Hparams

	In       *ops.Tensor // Down_0 (d_s, d): the start of the side stream
	Blocks   []Block
	OutNorm  *ops.Tensor // RMSNorm_s weight (d_s)
	Up       *ops.Tensor // (d, d_s): back to the backbone width
	HeadGate *ops.Tensor // (d): gated head's α (nil for other heads)

	params     []param
	data, grad []float32 // one allocation each (ops.SideParams, ops.Gradients), on the host
	// On a backend other than the CPU (place): the one allocation of values
	// and of gradients there; data and grad are then nil.
	devData, devGrad ops.Buffer
}

// Block is one side block and the ladder that feeds it.
type Block struct {
	Layer int         // backbone layer mixed in before the block; -1: none (free block)
	Down  *ops.Tensor // Down_i (d_s, d); nil for a free block
	Gate  *ops.Tensor // α_i (1) or (d_s); nil for a free block

	AttnNorm, Wq, Wk, Wv, Wo *ops.Tensor
	FFNNorm, WGate, WUp      *ops.Tensor
	WDown                    *ops.Tensor
}

// param is one named tensor of the side network.
type param struct {
	name    string      // GGUF tensor name (see TensorNames)
	t       *ops.Tensor // Shape (out, in) for matrices, (n) for vectors
	noDecay bool        // norms and gates: no weight decay
}

// Tensor names in the adapter file (ggml ne order in brackets; d the backbone
// width, d_s the side width, f the side FFN width, q = heads×head size,
// k = KV heads×head size).
const (
	nameIn       = "side_in.weight"            // [d, d_s] Down_0
	nameDown     = "blk.%d.ladder_down.weight" // [d, d_s] Down_i
	nameGate     = "blk.%d.ladder_gate.alpha"  // [1] or [d_s] α_i
	nameAttnNorm = "blk.%d.attn_norm.weight"   // [d_s]
	nameQ        = "blk.%d.attn_q.weight"      // [d_s, q]
	nameK        = "blk.%d.attn_k.weight"      // [d_s, k]
	nameV        = "blk.%d.attn_v.weight"      // [d_s, k]
	nameO        = "blk.%d.attn_output.weight" // [q, d_s]
	nameFFNNorm  = "blk.%d.ffn_norm.weight"    // [d_s]
	nameFFNGate  = "blk.%d.ffn_gate.weight"    // [d_s, f]
	nameFFNUp    = "blk.%d.ffn_up.weight"      // [d_s, f]
	nameFFNDown  = "blk.%d.ffn_down.weight"    // [f, d_s]
	nameOutNorm  = "side_output_norm.weight"   // [d_s]
	nameUp       = "side_up.weight"            // [d_s, d]
	nameHeadGate = "head_gate.alpha"           // [d] (gated head only)
)

// newSide lays out the parameters of a side network of shape h, zeroed
// (norm weights 1). With grads the tensors are trainable parameters with
// gradient buffers; without, frozen tensors (inference).
func newSide(h Hparams, grads bool) *Side {
	s := &Side{H: h}
	d, ds := h.BaseEmbd, h.NEmbd
	type spec struct {
		dst     **ops.Tensor
		name    string
		shape   []int
		noDecay bool
	}
	var specs []spec
	add := func(dst **ops.Tensor, name string, noDecay bool, shape ...int) {
		specs = append(specs, spec{dst, name, shape, noDecay})
	}
	add(&s.In, nameIn, false, ds, d)
	s.Blocks = make([]Block, h.NBlock)
	for i := range s.Blocks {
		b := &s.Blocks[i]
		b.Layer = h.LayerMap[i]
		if b.Layer >= 0 {
			add(&b.Down, fmt.Sprintf(nameDown, i), false, ds, d)
			add(&b.Gate, fmt.Sprintf(nameGate, i), true, gateLen(h.Gate, ds))
		}
		add(&b.AttnNorm, fmt.Sprintf(nameAttnNorm, i), true, ds)
		add(&b.Wq, fmt.Sprintf(nameQ, i), false, h.QDim(), ds)
		add(&b.Wk, fmt.Sprintf(nameK, i), false, h.KVDim(), ds)
		add(&b.Wv, fmt.Sprintf(nameV, i), false, h.KVDim(), ds)
		add(&b.Wo, fmt.Sprintf(nameO, i), false, ds, h.QDim())
		add(&b.FFNNorm, fmt.Sprintf(nameFFNNorm, i), true, ds)
		add(&b.WGate, fmt.Sprintf(nameFFNGate, i), false, h.NFF, ds)
		add(&b.WUp, fmt.Sprintf(nameFFNUp, i), false, h.NFF, ds)
		add(&b.WDown, fmt.Sprintf(nameFFNDown, i), false, ds, h.NFF)
	}
	add(&s.OutNorm, nameOutNorm, true, ds)
	add(&s.Up, nameUp, false, d, ds)
	if h.Head == "gated" {
		add(&s.HeadGate, nameHeadGate, true, d)
	}

	total := 0
	for _, sp := range specs {
		total += shapeSize(sp.shape)
	}
	s.data = ops.Alloc(ops.SideParams, total)
	if grads {
		s.grad = ops.Alloc(ops.Gradients, total)
	}
	off := 0
	for _, sp := range specs {
		n := shapeSize(sp.shape)
		var t *ops.Tensor
		if grads {
			t = ops.ParamFrom(s.data[off:off+n], s.grad[off:off+n], sp.shape...)
		} else {
			t = ops.NewTensor(s.data[off:off+n], sp.shape...)
		}
		*sp.dst = t
		s.params = append(s.params, param{name: sp.name, t: t, noDecay: sp.noDecay})
		off += n
	}
	for _, b := range s.Blocks {
		fill(b.AttnNorm.F32(), 1)
		fill(b.FFNNorm.F32(), 1)
	}
	fill(s.OutNorm.F32(), 1)
	if s.HeadGate != nil {
		// μ = sigmoid(α/T) = 0.95: start close to the backbone's own head.
		fill(s.HeadGate.F32(), h.GateTemp*float32(math.Log(19)))
	}
	return s
}

func gateLen(gate string, ds int) int {
	if gate == "vector" {
		return ds
	}
	return 1
}

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func fill(x []float32, v float32) {
	for i := range x {
		x[i] = v
	}
}

// NumParams is the number of side-network values.
func (s *Side) NumParams() int {
	if s.devData != nil {
		return s.devData.Len()
	}
	return len(s.data)
}

// place moves the parameters to be (built and initialised on the host, a
// side network lives there on the CPU backend; elsewhere its values and
// gradients become one allocation each on be, uploaded once).
func (s *Side) place(be ops.Backend) {
	if _, cpu := be.(*ops.CPU); cpu || s.devData != nil {
		return
	}
	n := len(s.data)
	s.devData = be.Alloc(ops.SideParams, ops.F32, n)
	be.Upload(s.devData, s.data)
	if s.grad != nil {
		s.devGrad = be.Alloc(ops.Gradients, ops.F32, n)
	}
	off := 0
	for _, p := range s.params {
		k := p.t.Len()
		shape := p.t.Shape
		var t *ops.Tensor
		if s.devGrad != nil {
			t = ops.ParamFromBuffers(s.devData.Slice(off, k), s.devGrad.Slice(off, k), shape...)
		} else {
			t = ops.TensorFrom(s.devData.Slice(off, k), shape...)
		}
		*p.t = *t // every holder of the tensor (Blocks, In, Up, …) sees the move
		off += k
	}
	ops.Free(ops.SideParams, s.data)
	ops.Free(ops.Gradients, s.grad)
	s.data, s.grad = nil, nil
}

// Free returns the parameter memory to the meter.
func (s *Side) Free() {
	ops.Free(ops.SideParams, s.data)
	ops.Free(ops.Gradients, s.grad)
	s.data, s.grad = nil, nil
	if s.devData != nil {
		be := s.devData.Backend()
		be.Free(ops.SideParams, s.devData)
		if s.devGrad != nil {
			be.Free(ops.Gradients, s.devGrad)
		}
		s.devData, s.devGrad = nil, nil
	}
}

// hostValues returns all parameter values in one host slice: the host
// allocation itself on the CPU, else a copy read from the backend.
func (s *Side) hostValues() []float32 {
	if s.devData == nil {
		return s.data
	}
	v := make([]float32, s.devData.Len())
	s.devData.Backend().Download(v, s.devData)
	return v
}

// initRandom draws the matrices: block weights N(0, std) with std =
// 1/sqrt(fan-in) (std <= 0; PyTorch's nn.Linear default has the same
// scale) or the given std, the residual projections (attn_output, ffn_down)
// scaled down by 1/sqrt(2·blocks) as GPT-2 does; the ladder projections
// N(0, 1/d) so Down·h keeps the scale of h; Up zero for the residual and
// gated heads (an untrained adapter is the base model exactly) or
// N(0, 1/d_s) for the side head (which alone makes the logits). Gates start
// at α = 0, μ = 0.5.
//
// The fan-in scale matters at side widths of 8–256: with GPT-2's fixed
// 0.02 the attention and FFN branches start a thousand times smaller than
// the ladder stream, so the side network first learns only from the
// current token's ladders and is slow to use its attention.
func (s *Side) initRandom(seed uint64, std float32) {
	rng := rand.New(rand.NewPCG(seed, 0x1adde5))
	normal := func(x []float32, sd float32) {
		for i := range x {
			x[i] = float32(rng.NormFloat64()) * sd
		}
	}
	h := s.H
	scale := func(fanIn int) float32 {
		if std > 0 {
			return std
		}
		return float32(1 / math.Sqrt(float64(fanIn)))
	}
	downStd := float32(1 / math.Sqrt(float64(h.BaseEmbd)))
	res := float32(1 / math.Sqrt(float64(2*max(1, h.NBlock))))
	normal(s.In.F32(), downStd)
	for i := range s.Blocks {
		b := &s.Blocks[i]
		if b.Down != nil {
			normal(b.Down.F32(), downStd)
		}
		normal(b.Wq.F32(), scale(h.NEmbd))
		normal(b.Wk.F32(), scale(h.NEmbd))
		normal(b.Wv.F32(), scale(h.NEmbd))
		normal(b.Wo.F32(), scale(h.QDim())*res)
		normal(b.WGate.F32(), scale(h.NEmbd))
		normal(b.WUp.F32(), scale(h.NEmbd))
		normal(b.WDown.F32(), scale(h.NFF)*res)
	}
	if h.Head == "side" {
		normal(s.Up.F32(), float32(1/math.Sqrt(float64(h.NEmbd))))
	}
}
