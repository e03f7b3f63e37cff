package ladder

import (
	"fmt"
	"math"
	"slices"
	"time"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ladder/data"
	"ladder-engine/ops"
	"ladder-engine/optim"
)

// TrainOptions are the training loop's settings; DefaultTrainOptions gives
// the defaults of `ladder-engine finetune`.
type TrainOptions struct {
	Batch       int     // sequences per micro-batch
	GradAccum   int     // micro-batches per optimizer step
	Steps       int     // optimizer steps; 0: Epochs over the training data
	Epochs      float64 // used when Steps is 0
	LR          float32 // peak learning rate
	MinLR       float32 // final learning rate of linear/cosine decay
	Schedule    string  // constant, linear or cosine
	Warmup      int     // warmup steps; < 0: 5% of the steps (at most 100)
	Optimizer   string  // adamw, adamw8 (8-bit moments) or sgd (momentum 0.9)
	WeightDecay float32 // decoupled (AdamW) or L2 (SGD); norms and gates are exempt
	ClipNorm    float32 // global gradient-norm clip (0: off)
	Seed        uint64  // data shuffling
	EvalEvery   int     // validation every N steps (0: only at the end)
	SaveEvery   int     // checkpoint every N steps (0: only at the end and on interrupt)
	LogEvery    int     // progress line every N steps (0: about 50 lines per run)
	ValBatches  int     // validation batches per evaluation (0: the whole split)
	// GroupByLength batches sequences of similar length (data.Batcher's
	// GroupByLength; the whole validation split, when evaluated, is
	// batched in length order too): less padding on data of mixed lengths.
	GroupByLength bool
}

// DefaultTrainOptions returns finetune's defaults.
func DefaultTrainOptions() TrainOptions {
	return TrainOptions{Batch: 8, GradAccum: 1, Epochs: 1, LR: 2e-3, Schedule: "cosine", Warmup: -1,
		Optimizer: "adamw", WeightDecay: 0, ClipNorm: 1, Seed: 1}
}

// trainable is what a Trainer trains: a side network (ladder, xladder)
// or LoRA pairs on the backbone (lora).
type trainable interface {
	paramList() []param
	NumParams() int
	// writeAdapter adds the adapter file's metadata and tensors to w.
	writeAdapter(w *gguf.Writer, typ gguf.Type, fp Fingerprint, train map[string]any) error
	// newDecoder runs the model with the current values (eval hooks).
	newDecoder(m *engine.Model, nCtx int) evalDecoder
	Free()
}

// evalDecoder is a decoder to free after use.
type evalDecoder interface {
	engine.Decoder
	Free()
}

func (s *Side) paramList() []param { return s.params }
func (s *Side) newDecoder(m *engine.Model, nCtx int) evalDecoder {
	return NewDecoder(m, s, nCtx)
}
func (lo *LoRA) paramList() []param { return lo.params }

// Trainer trains a side network (S) or LoRA pairs (L) on a frozen backbone.
type Trainer struct {
	M    *engine.Model
	S    *Side // ladder, xladder; nil for lora
	L    *LoRA // lora; nil otherwise
	Cfg  Config
	Opts TrainOptions

	net trainable // S or L

	opt    optim.Optimizer
	sched  optim.Schedule
	params []*optim.Param
	// On a backend other than the CPU the optimizer works on host copies
	// of the values and gradients (hostData, hostGrad, read and written
	// around each update); on the CPU it works in place and these are nil.
	hostData, hostGrad []float32
	train              *data.Batcher
	val                []data.Example
	fp                 Fingerprint

	tape      *ops.Tape
	blockTape *ops.Tape // the side blocks' recompute (reuses its buffers)
	kv        *engine.KVCache
	// nCtx is the backbone's context in training: the longest example
	// (training or validation), fixed for the run, so that what depends on
	// the context size (Phi-3 LongRoPE's choice of factors, as llama.cpp
	// makes it from n_ctx) is the same for every batch.
	nCtx  int
	projs []projection
	mb    microBuffers
	lb    loraBuffers

	// Tokens counts the input tokens trained on so far (restored on resume).
	Tokens int64
	// Phases sums the wall time of each phase of the ladder's training
	// steps (not LoRA's), for benchmarks and profiles.
	Phases StepPhases
}

// StepPhases is where a ladder training step's time goes.
type StepPhases struct {
	Backbone time.Duration // frozen forward and the ladder projections
	SideFwd  time.Duration // side network forward without tape
	Head     time.Duration // LM head and loss, forward and backward
	SideBwd  time.Duration // side blocks recomputed on the tape and back-propagated
	Down     time.Duration // the ladder projections' weight gradients
}

// microBuffers hold one micro-batch's backbone products, rows = B·T, on
// the model's backend.
type microBuffers struct {
	rows int
	base *ops.Tensor    // (rows, d) output_norm of the backbone (ops.Activations)
	x    []*ladderInput // per projection reading a layer: its kept input (nil: embeddings)
	y    []*ops.Tensor  // per projection: (rows, d_s) Down_i·x (ops.Activations)
	dy   []*ops.Tensor  // their gradients
	hin  []*ops.Tensor  // per side block: its input (rows, d_s), kept for the recomputation
	hout *ops.Tensor    // (rows, d_s) the last block's output
	dh   *ops.Tensor    // (rows, d_s) gradients of the side stream between blocks
	dhin *ops.Tensor
	pos  []int32
}

// embTile is how many embedding rows Down_0's backward re-gathers at once.
const embTile = 256

// NewTrainer builds a side network for m (initialised as cfg says) and the
// optimizer over it. train must not be empty; val may be.
func NewTrainer(m *engine.Model, cfg Config, opts TrainOptions, train, val []data.Example) (*Trainer, error) {
	if cfg.Method == "lora" {
		lo, err := newLoRA(m, cfg)
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
	h, err := NewHparams(cfg, &m.Hparams)
	if err != nil {
		return nil, err
	}
	s := newSide(h, true)
	s.initRandom(cfg.Seed, cfg.InitStd)
	if cfg.Init == "prune" {
		s.initPrune(m)
	}
	tr, err := newTrainer(m, s, cfg, opts, train, val)
	if err != nil {
		s.Free()
		return nil, err
	}
	return tr, nil
}

func newTrainer(m *engine.Model, net trainable, cfg Config, opts TrainOptions, train, val []data.Example) (*Trainer, error) {
	if opts.Batch < 1 || opts.GradAccum < 1 {
		return nil, fmt.Errorf("--batch %d and --grad-accum %d must be >= 1", opts.Batch, opts.GradAccum)
	}
	tr := &Trainer{M: m, Cfg: cfg, Opts: opts, val: val, fp: BaseFingerprint(m), net: net}
	s, _ := net.(*Side)
	tr.S = s
	tr.L, _ = net.(*LoRA)
	for _, exs := range [][]data.Example{train, val} {
		for _, ex := range exs {
			tr.nCtx = max(tr.nCtx, len(ex.Tokens))
		}
	}
	if s != nil {
		tr.projs = s.projections()
	}
	var err error
	if tr.train, err = data.NewBatcher(train, opts.Batch, opts.Seed, true); err != nil {
		return nil, err
	}
	if opts.GroupByLength {
		tr.train.GroupByLength()
	}
	if tr.Opts.Steps <= 0 {
		ep := opts.Epochs
		if !(ep > 0) {
			return nil, fmt.Errorf("--epochs %g: must be > 0 when --steps is 0", ep)
		}
		tr.Opts.Steps = max(1, int(math.Ceil(ep*float64(tr.train.BatchesPerEpoch())/float64(opts.GradAccum))))
	}
	if tr.Opts.Warmup < 0 {
		tr.Opts.Warmup = min(100, tr.Opts.Steps/20)
	}
	kind, err := optim.ParseScheduleKind(opts.Schedule)
	if err != nil {
		return nil, err
	}
	tr.sched = optim.Schedule{Kind: kind, LR: opts.LR, MinLR: opts.MinLR, Warmup: tr.Opts.Warmup, Total: tr.Opts.Steps}
	if kind != optim.Constant && tr.sched.Total <= tr.sched.Warmup {
		tr.sched.Warmup = 0
	}
	if err := tr.sched.Validate(); err != nil {
		return nil, err
	}
	if s != nil {
		s.place(m.Backend)
		if s.devData != nil {
			tr.hostData = s.hostValues()
			tr.hostGrad = make([]float32, len(tr.hostData))
		}
	}
	off := 0
	for _, p := range net.paramList() {
		prm := &optim.Param{Name: p.name, NoDecay: p.noDecay}
		if tr.hostData != nil {
			n := p.t.Len()
			prm.Data, prm.Grad = tr.hostData[off:off+n], tr.hostGrad[off:off+n]
			off += n
		} else {
			prm.Data, prm.Grad = p.t.F32(), p.t.GradF32()
		}
		tr.params = append(tr.params, prm)
	}
	switch opts.Optimizer {
	case "adamw", "adamw8":
		c := optim.DefaultAdamW()
		c.WeightDecay = opts.WeightDecay
		c.EightBit = opts.Optimizer == "adamw8"
		c.Threads = m.Pool.Threads()
		tr.opt, err = optim.NewAdamW(tr.params, c)
	case "sgd":
		tr.opt, err = optim.NewSGD(tr.params, optim.SGDConfig{Momentum: 0.9, WeightDecay: opts.WeightDecay})
	default:
		err = fmt.Errorf("--optimizer %q: want adamw, adamw8 or sgd", opts.Optimizer)
	}
	if err != nil {
		return nil, err
	}
	ops.DefaultMeter.Add(ops.OptimState, tr.opt.StateBytes())
	tr.tape = ops.NewTape(m.Backend)
	tr.blockTape = ops.NewReusingTape(m.Backend)
	return tr, nil
}

// Free releases the trainer's memory (not the model).
func (tr *Trainer) Free() {
	tr.growBuffers(0, 0)
	tr.growLoRABuffers(0)
	if tr.kv != nil {
		tr.kv.Free()
		tr.kv = nil
	}
	ops.DefaultMeter.Add(ops.OptimState, -tr.opt.StateBytes())
	tr.blockTape.Close()
	tr.net.Free()
}

// Step is the number of optimizer steps taken.
func (tr *Trainer) Step() int { return tr.opt.Steps() }

// TotalSteps is the length of the run.
func (tr *Trainer) TotalSteps() int { return tr.Opts.Steps }

// Epoch is the fractional number of passes over the training data so far.
func (tr *Trainer) Epoch() float64 {
	p := tr.train.Position()
	return float64(p.Epoch) + float64(p.Index)/float64(max(1, tr.train.BatchesPerEpoch()*tr.Opts.Batch))
}

// LR is the learning rate of the next step.
func (tr *Trainer) LR() float32 { return tr.sched.At(tr.opt.Steps()) }

// StepResult describes one optimizer step.
type StepResult struct {
	Loss     float64 // mean loss over the step's target tokens
	Targets  int     // target tokens
	Tokens   int     // input tokens run through the backbone
	GradNorm float64 // before clipping
	LR       float32
	Skipped  bool // the gradient was not finite: no update
}

// TrainStep runs GradAccum micro-batches and one optimizer update. The
// gradient is the exact mean over all target tokens of the step (each
// micro-batch's backward is seeded with its token count).
func (tr *Trainer) TrainStep() (StepResult, error) {
	var r StepResult
	tr.zeroGrads()
	var lossSum float64
	for range tr.Opts.GradAccum {
		b := tr.train.Next()
		if b.NTargets == 0 {
			continue
		}
		loss, err := tr.forward(b, true)
		if err != nil {
			return r, err
		}
		lossSum += loss * float64(b.NTargets)
		r.Targets += b.NTargets
		for _, n := range b.Lens {
			r.Tokens += n
		}
	}
	tr.Tokens += int64(r.Tokens)
	if r.Targets == 0 {
		return r, fmt.Errorf("ladder: step %d: no target tokens in %d batches", tr.Step()+1, tr.Opts.GradAccum)
	}
	r.Loss = lossSum / float64(r.Targets)
	tr.pullGrads()
	optim.ScaleGrads(tr.params, 1/float32(r.Targets))
	r.GradNorm = optim.ClipGradNorm(tr.params, tr.Opts.ClipNorm)
	r.LR = tr.LR()
	if math.IsNaN(r.GradNorm) || math.IsInf(r.GradNorm, 0) {
		r.Skipped = true
		return r, nil
	}
	tr.opt.Step(r.LR)
	tr.pushValues()
	return r, nil
}

// zeroGrads clears the gradients before a step's micro-batches.
func (tr *Trainer) zeroGrads() {
	if tr.hostData == nil {
		optim.ZeroGrads(tr.params)
		return
	}
	tr.S.devGrad.Backend().Zero(tr.S.devGrad)
}

// pullGrads copies the gradients to the optimizer's host copies (a
// backend other than the CPU): the one tensor read of a step.
func (tr *Trainer) pullGrads() {
	if tr.hostData != nil {
		tr.S.devGrad.Backend().Download(tr.hostGrad, tr.S.devGrad)
	}
}

// pushValues copies the updated values back to the backend.
func (tr *Trainer) pushValues() {
	if tr.hostData != nil {
		tr.S.devData.Backend().Upload(tr.S.devData, tr.hostData)
	}
}

// Validate returns the mean loss over the validation split's target tokens
// (at most ValBatches batches); NaN when there is no validation data.
func (tr *Trainer) Validate() (float64, error) {
	if len(tr.val) == 0 {
		return math.NaN(), nil
	}
	var sum float64
	var count int
	nb := 0
	order := make([]int, len(tr.val))
	for i := range order {
		order[i] = i
	}
	if tr.Opts.GroupByLength && tr.Opts.ValBatches == 0 {
		// Every example is evaluated: in length order, batches pad little.
		slices.SortStableFunc(order, func(x, y int) int { return len(tr.val[y].Tokens) - len(tr.val[x].Tokens) })
	}
	for i := 0; i < len(tr.val); i += tr.Opts.Batch {
		if tr.Opts.ValBatches > 0 && nb >= tr.Opts.ValBatches {
			break
		}
		idx := order[i:min(i+tr.Opts.Batch, len(tr.val))]
		exs := make([]data.Example, len(idx))
		for k, e := range idx {
			exs[k] = tr.val[e]
		}
		b := data.NewBatch(exs, idx)
		nb++
		if b.NTargets == 0 {
			continue
		}
		loss, err := tr.forward(b, false)
		if err != nil {
			return 0, err
		}
		sum += loss * float64(b.NTargets)
		count += b.NTargets
	}
	if count == 0 {
		return math.NaN(), nil
	}
	return sum / float64(count), nil
}

// forward runs one batch (lora: loraForward): the backbone sequence by sequence (no tape),
// keeping only the ladder inputs, then the side network and the loss on the
// tape; with train, the backward too (gradients accumulate, seeded with the
// batch's target count). It returns the batch's mean loss.
func (tr *Trainer) forward(b *data.Batch, train bool) (float64, error) {
	if tr.L != nil {
		return tr.loraForward(b, train)
	}
	m, s := tr.M, tr.S
	be := m.Backend
	T := b.T
	rows := b.B * T
	tr.growBuffers(rows, T)
	mb := &tr.mb
	if tr.kv == nil || tr.kv.NCtx < T {
		if tr.kv != nil {
			tr.kv.Free()
		}
		tr.kv = m.NewKVCache(max(T, tr.nCtx))
	}
	ng := ops.NewNoGradTape(be)
	defer ng.Close()
	start := time.Now()
	for q := 0; q < b.B; q++ {
		r0, n := q*T, b.Lens[q]
		toks := b.Tokens[r0 : r0+n]
		if n > 0 {
			tr.kv.Reset()
			err := m.Forward(toks, tr.kv, mb.base.RowsView(r0, r0+n), func(l int, h *ops.Tensor) {
				for i, p := range tr.projs {
					if p.layer != l {
						continue
					}
					if train {
						mb.x[i].put(r0, h, n)
					}
					project(ng, mb.y[i].RowsView(r0, r0+n), h, p.w)
					ng.Reset()
				}
			})
			if err != nil {
				return 0, err
			}
			if tr.projs[0].layer < 0 {
				project(ng, mb.y[0].RowsView(r0, r0+n), m.EmbedTokens(ng, toks), tr.projs[0].w)
				ng.Reset()
			}
		}
		// Padding rows: zero, so they stay finite (their loss and
		// gradients are zero anyway: causal attention, no targets).
		if n < T {
			be.Zero(mb.base.RowsView(r0+n, r0+T).Buf())
			for i := range tr.projs {
				be.Zero(mb.y[i].RowsView(r0+n, r0+T).Buf())
				if train && mb.x[i] != nil {
					mb.x[i].zero(r0+n, r0+T)
				}
			}
		}
	}
	for q := 0; q < b.B; q++ {
		for t := 0; t < T; t++ {
			mb.pos[q*T+t] = int32(t)
		}
	}

	if !train {
		ladder := make([]*ops.Tensor, len(s.Blocks))
		for i, p := range tr.projs {
			if p.out >= 0 {
				ladder[p.out] = mb.y[i].RowsView(0, rows)
			}
		}
		hs := s.forwardNoGrad(ng, mb.y[0].RowsView(0, rows), ladder, mb.pos[:rows], b.B, nil, mb.hout, mb.dh)
		z := s.headForward(ng, hs, mb.base.RowsView(0, rows))
		loss := float64(ng.LMHeadCrossEntropy(z, m.Output, m.FinalSoftCap, b.Targets).Scalar())
		ng.Reset()
		return loss, nil
	}
	tr.Phases.Backbone += time.Since(start)
	loss := tr.sideForwardBackward(b, rows)
	start = time.Now()
	// The ladders' weights: dDown_i += dY_iᵀ·X_i from the kept inputs
	// (Down_0 of the embeddings re-gathers them, tile by tile).
	for i, p := range tr.projs {
		if mb.x[i] != nil {
			downBackward(p.w, mb.dy[i].RowsView(0, rows), mb.x[i].rows(rows))
			continue
		}
		for r0 := 0; r0 < rows; r0 += embTile {
			r1 := min(r0+embTile, rows)
			emb := m.EmbedTokens(ng, b.Tokens[r0:r1])
			downBackward(p.w, mb.dy[i].RowsView(r0, r1), emb)
			ng.Reset()
		}
	}
	tr.Phases.Down += time.Since(start)
	return loss, nil
}

// sideForwardBackward trains the side network on the ladders of a batch
// (mb.y) with activation checkpointing at block granularity: a forward
// without tape keeps only each block's input (rows, d_s); the head and loss
// run on the tape; then, from the top block down, each block (with the
// ladder mixed in before it) is recomputed on the tape and back-propagated
// from the gradient of its output. The recomputation repeats the same
// kernels on the same values, so the gradients are those of a plain
// backward, while the tape holds one block's activations (its attention
// probabilities above all) instead of all of them. It returns the loss and
// leaves dLoss/dy in mb.dy, scaled by the batch's target count.
func (tr *Trainer) sideForwardBackward(b *data.Batch, rows int) float64 {
	m, s, mb := tr.M, tr.S, &tr.mb
	be := m.Backend
	pos := mb.pos[:rows]
	ladderY := make([]int, len(s.Blocks)) // projection feeding each block, -1 none
	for i := range ladderY {
		ladderY[i] = -1
	}
	for i, p := range tr.projs {
		if p.out >= 0 {
			ladderY[p.out] = i
		}
		be.Zero(mb.dy[i].RowsView(0, rows).Buf())
	}
	view := func(t *ops.Tensor) *ops.Tensor { return t.RowsView(0, rows) }
	leaf := func(t, grad *ops.Tensor) *ops.Tensor {
		return ops.ParamFromBuffers(view(t).Buf(), view(grad).Buf(), rows, s.H.NEmbd)
	}
	ladder := func(i int, train bool) *ops.Tensor {
		p := ladderY[i]
		switch {
		case p < 0:
			return nil
		case train:
			return leaf(mb.y[p], mb.dy[p])
		}
		return view(mb.y[p])
	}

	// Forward without tape, keeping each block's input.
	start := time.Now()
	ng := ops.NewNoGradTape(be)
	defer ng.Close()
	h := view(mb.y[0])
	for i := range s.Blocks {
		if i > 0 {
			be.Copy(view(mb.hin[i]).Buf(), h.Buf())
			ng.Reset()
			h = view(mb.hin[i])
		}
		h = s.segmentForward(ng, i, h, ladder(i, false), pos, b.B, nil)
	}
	be.Copy(view(mb.hout).Buf(), h.Buf())
	ng.Reset()

	tr.Phases.SideFwd += time.Since(start)

	// Head and loss on the tape: dLoss/dh_out into mb.dh.
	start = time.Now()
	tp := tr.tape
	be.Zero(view(mb.dh).Buf())
	z := s.headForward(tp, leaf(mb.hout, mb.dh), view(mb.base))
	lossT := tp.LMHeadCrossEntropy(z, m.Output, m.FinalSoftCap, b.Targets)
	loss := float64(lossT.Scalar())
	tp.BackwardScaled(lossT, float32(b.NTargets))
	tr.Phases.Head += time.Since(start)
	start = time.Now()

	// Blocks from the top: recompute, then back-propagate dh_out → dh_in,
	// on a tape that hands each block the buffers of the one before (the
	// same shapes); they are freed at the end, so the step's peak is as
	// without reuse.
	tp = tr.blockTape
	defer tp.Close()
	dOut, dIn := mb.dh, mb.dhin
	for i := len(s.Blocks) - 1; i >= 0; i-- {
		var in *ops.Tensor
		if i == 0 {
			in = leaf(mb.y[0], mb.dy[0]) // block 0's input is Down_0's output
		} else {
			be.Zero(view(dIn).Buf())
			in = leaf(mb.hin[i], dIn)
		}
		out := s.segmentForward(tp, i, in, ladder(i, true), pos, b.B, nil)
		tp.BackwardFrom(out, view(dOut))
		dOut, dIn = dIn, dOut
	}
	tr.Phases.SideBwd += time.Since(start)
	return loss
}

// growBuffers sizes the micro-batch buffers for rows = B·T (0: release).
func (tr *Trainer) growBuffers(rows, T int) {
	mb := &tr.mb
	if rows != 0 && rows <= mb.rows {
		return
	}
	if rows != 0 {
		rows = max(rows, mb.rows)
	}
	free := func(t *ops.Tensor) {
		if t != nil {
			t.FreeTensor()
		}
	}
	free(mb.base)
	for i := range mb.x {
		if mb.x[i] != nil {
			mb.x[i].free()
		}
		free(mb.y[i])
		free(mb.dy[i])
	}
	for _, t := range append(mb.hin, mb.hout, mb.dh, mb.dhin) {
		free(t)
	}
	*mb = microBuffers{rows: rows}
	if rows == 0 {
		return
	}
	be := tr.M.Backend
	d, ds := tr.M.NEmbd, tr.S.H.NEmbd
	act := func(w int) *ops.Tensor { return ops.TensorOn(be, ops.Activations, ops.F32, rows, w) }
	mb.base = act(d)
	mb.x = make([]*ladderInput, len(tr.projs))
	mb.y = make([]*ops.Tensor, len(tr.projs))
	mb.dy = make([]*ops.Tensor, len(tr.projs))
	for i, p := range tr.projs {
		if p.layer >= 0 {
			mb.x[i] = newLadderInput(be, tr.Cfg.LadderType, rows, d)
		}
		mb.y[i] = act(ds)
		mb.dy[i] = act(ds)
	}
	mb.hin = make([]*ops.Tensor, len(tr.S.Blocks))
	for i := 1; i < len(mb.hin); i++ {
		mb.hin[i] = act(ds)
	}
	mb.hout, mb.dh, mb.dhin = act(ds), act(ds), act(ds)
	mb.pos = make([]int32, rows)
}

// LadderInputBytes is the memory the kept ladder inputs take now.
func (tr *Trainer) LadderInputBytes() int64 {
	var n int64
	for _, x := range tr.mb.x {
		if x != nil {
			n += x.bytes()
		}
	}
	return n
}

// LadderInputShape describes the kept ladder inputs: the layers kept, rows
// per layer (batch × sequence length of the largest batch so far), the
// backbone width and the bytes per value.
func (tr *Trainer) LadderInputShape() (layers, rows, width, bytesPer int) {
	for _, x := range tr.mb.x {
		if x != nil {
			layers++
		}
	}
	bytesPer = 4
	if tr.Cfg.LadderType != gguf.TypeF32 {
		bytesPer = 2
	}
	return layers, tr.mb.rows, tr.M.NEmbd, bytesPer
}
