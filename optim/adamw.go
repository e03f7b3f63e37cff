package optim

import (
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
)

// AdamWConfig holds AdamW's hyper-parameters. Start from DefaultAdamW() and
// change what you need; zero values are taken literally.
type AdamWConfig struct {
	Beta1, Beta2 float32 // moment decay rates, each in [0, 1)
	Eps          float32 // added to sqrt(v̂); > 0
	WeightDecay  float32 // decoupled: p -= lr*WeightDecay*p (skipped for Param.NoDecay)

	// EightBit stores both moments block-wise in 8 bits (bitsandbytes design)
	// for parameters of at least MinSize8Bit values; smaller ones keep f32
	// moments, where the saving would not pay for the error.
	EightBit    bool
	BlockSize   int // values per 8-bit block sharing one scale (256 or 2048)
	MinSize8Bit int

	// Threads is how many goroutines share a step (0 or 1: the caller
	// alone). Every value is updated on its own (an 8-bit block as a
	// whole), so the result does not depend on it.
	Threads int
}

// DefaultAdamW returns torch.optim.AdamW's defaults (betas 0.9/0.999, eps
// 1e-8, weight decay 0.01) with f32 moments; the 8-bit settings, used when
// EightBit is set, follow bitsandbytes: blocks of 256, tensors of 4096+ values.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, BlockSize: 256, MinSize8Bit: 4096}
}

func (c AdamWConfig) validate() error {
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("optim: AdamW beta1 %g must lie in [0, 1)", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("optim: AdamW beta2 %g must lie in [0, 1)", c.Beta2)
	case !(c.Eps > 0):
		return fmt.Errorf("optim: AdamW eps %g must be > 0", c.Eps)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("optim: AdamW weight decay %g must be >= 0", c.WeightDecay)
	case c.EightBit && c.BlockSize <= 0:
		return fmt.Errorf("optim: 8-bit AdamW block size %d must be > 0", c.BlockSize)
	}
	return nil
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter), with bias
// correction, computed as torch.optim.AdamW does:
//
//	p ← p·(1 - lr·wd)
//	m ← β1·m + (1-β1)·g ;  v ← β2·v + (1-β2)·g²
//	p ← p - (lr/(1-β1^t)) · m / (sqrt(v)/sqrt(1-β2^t) + ε)
type AdamW struct {
	cfg    AdamWConfig
	params []*Param
	state  []adamState
	steps  int
	bytes  int64 // state bytes counted in the meter
	spans  []span
}

// span is a run of one parameter's values that a step updates as a unit:
// whole 8-bit blocks, or up to spanLen values.
type span struct{ param, lo, hi int }

const spanLen = 1 << 15

// adamState holds one parameter's moments: f32 (m, v) or 8-bit codes with one
// absmax per block (c1/max1 for m, c2/max2 for v).
type adamState struct {
	m, v       []float32
	c1, c2     []uint8
	max1, max2 []float32
}

func (s *adamState) eightBit() bool { return s.c1 != nil }

// NewAdamW builds an AdamW over params; moments start at zero.
func NewAdamW(params []*Param, cfg AdamWConfig) (*AdamW, error) {
	if err := checkParams(params); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := &AdamW{cfg: cfg, params: params, state: make([]adamState, len(params))}
	for i, p := range params {
		n := len(p.Data)
		s := &o.state[i]
		if cfg.EightBit && n >= cfg.MinSize8Bit {
			nb := (n + cfg.BlockSize - 1) / cfg.BlockSize
			s.c1, s.c2 = make([]uint8, n), make([]uint8, n)
			s.max1, s.max2 = make([]float32, nb), make([]float32, nb)
			quantizeSigned(nil, 0, s.c1) // all codes 0.0, so a fresh state reads (and saves) as zeros
			o.bytes += int64(2*n + 8*nb)
		} else {
			s.m, s.v = make([]float32, n), make([]float32, n)
			o.bytes += int64(8 * n)
		}
	}
	for i, p := range params {
		step := spanLen
		if o.state[i].eightBit() {
			step = max(1, spanLen/cfg.BlockSize) * cfg.BlockSize
		}
		for lo := 0; lo < len(p.Data); lo += step {
			o.spans = append(o.spans, span{i, lo, min(lo+step, len(p.Data))})
		}
	}
	return o, nil
}

// Steps returns the number of updates applied.
func (o *AdamW) Steps() int { return o.steps }

// StateBytes is the memory of the moments (codes and scales when 8-bit).
func (o *AdamW) StateBytes() int64 { return o.bytes }

// Step applies one AdamW update with learning rate lr.
func (o *AdamW) Step(lr float32) {
	o.steps++
	t := float64(o.steps)
	// Bias corrections in float64: β2^t is close to 1 for thousands of steps.
	bc1 := 1 - math.Pow(float64(o.cfg.Beta1), t)
	bc2 := 1 - math.Pow(float64(o.cfg.Beta2), t)
	k := adamConsts{
		b1: o.cfg.Beta1, b2: o.cfg.Beta2, eps: o.cfg.Eps,
		stepSize: float32(float64(lr) / bc1), bc2Sqrt: float32(math.Sqrt(bc2)),
	}
	threads := min(max(1, o.cfg.Threads), len(o.spans))
	if threads <= 1 {
		var sc adamScratch
		for _, sp := range o.spans {
			o.update(sp, lr, k, &sc)
		}
		return
	}
	// Spans go to the goroutines in turn as they finish the last.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc adamScratch
			for {
				j := int(next.Add(1)) - 1
				if j >= len(o.spans) {
					return
				}
				o.update(o.spans[j], lr, k, &sc)
			}
		}()
	}
	wg.Wait()
}

// adamScratch is one goroutine's block of dequantized moments (8-bit).
type adamScratch struct{ m, v []float32 }

// update applies the step to one span.
func (o *AdamW) update(sp span, lr float32, k adamConsts, sc *adamScratch) {
	p, s := o.params[sp.param], &o.state[sp.param]
	decay := float32(1)
	if !p.NoDecay {
		decay = 1 - lr*o.cfg.WeightDecay
	}
	if !s.eightBit() {
		adamUpdate(p.Data[sp.lo:sp.hi], p.Grad[sp.lo:sp.hi], s.m[sp.lo:sp.hi], s.v[sp.lo:sp.hi], decay, k)
		return
	}
	bs := o.cfg.BlockSize
	if sc.m == nil {
		sc.m, sc.v = make([]float32, bs), make([]float32, bs)
	}
	for lo := sp.lo; lo < sp.hi; lo += bs {
		b, hi := lo/bs, min(lo+bs, sp.hi)
		m, v := sc.m[:hi-lo], sc.v[:hi-lo]
		dequantize8(&signedMap, s.c1[lo:hi], s.max1[b], m)
		dequantize8(&unsignedMap, s.c2[lo:hi], s.max2[b], v)
		adamUpdate(p.Data[lo:hi], p.Grad[lo:hi], m, v, decay, k)
		// New scales from the updated block; the parameter update above
		// used the unrounded moments, as bitsandbytes does.
		var a1, a2 float32
		for j := range m {
			a1 = max(a1, abs32(m[j]))
			a2 = max(a2, v[j])
		}
		s.max1[b], s.max2[b] = a1, a2
		quantizeSigned(m, a1, s.c1[lo:hi])
		quantizeUnsigned(v, a2, s.c2[lo:hi])
	}
}

type adamConsts struct {
	b1, b2, eps       float32
	stepSize, bc2Sqrt float32 // lr/(1-β1^t), sqrt(1-β2^t)
}

// adamUpdateGo updates p, m and v in place for one contiguous run of
// values; adamUpdate is the vector version where there is one
// (adamw_avx2.go), the same operations in the same order.
func adamUpdateGo(p, g, m, v []float32, decay float32, k adamConsts) {
	n := len(p)
	if n == 0 {
		return
	}
	_, _, _ = g[n-1], m[n-1], v[n-1]
	for i := range n {
		gi := g[i]
		mi := k.b1*m[i] + (1-k.b1)*gi
		vi := k.b2*v[i] + (1-k.b2)*gi*gi
		m[i], v[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/k.bc2Sqrt + k.eps
		p[i] = p[i]*decay - k.stepSize*(mi/denom)
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

const kindAdamW = "adamw"

// Save writes the step count and the moments (exactly: 8-bit codes and
// scales are stored as they are, not re-quantized).
func (o *AdamW) Save(w io.Writer) error {
	sw := newStateWriter(w)
	sw.bytes([]byte(stateMagic))
	sw.str(kindAdamW)
	sw.u64(uint64(o.steps))
	sw.u32(uint32(len(o.params)))
	for i, p := range o.params {
		s := &o.state[i]
		sw.str(p.Name)
		sw.u64(uint64(len(p.Data)))
		if !s.eightBit() {
			sw.u8(0)
			sw.f32s(s.m)
			sw.f32s(s.v)
			continue
		}
		sw.u8(1)
		sw.u32(uint32(o.cfg.BlockSize))
		sw.bytes(s.c1)
		sw.bytes(s.c2)
		sw.f32s(s.max1)
		sw.f32s(s.max2)
	}
	return sw.finish()
}

// Load restores state written by Save. The optimizer must be built over the
// same parameters with the same 8-bit settings; on error it is unchanged.
func (o *AdamW) Load(r io.Reader) error {
	sr := newStateReader(r)
	steps := sr.header(kindAdamW, o.params)
	// Read into fresh buffers so a failed load leaves the optimizer intact.
	loaded := make([]adamState, len(o.params))
	for i, p := range o.params {
		sr.param(p)
		if sr.err != nil {
			break
		}
		want := &o.state[i]
		s := &loaded[i]
		eight := sr.u8()
		if sr.err != nil {
			break
		}
		if (eight == 1) != want.eightBit() || eight > 1 {
			sr.fail("parameter %q: moments stored as %s, optimizer uses %s (same --optim settings needed to resume)",
				p.Name, momentsKind(eight == 1), momentsKind(want.eightBit()))
			break
		}
		if eight == 0 {
			s.m, s.v = make([]float32, len(want.m)), make([]float32, len(want.v))
			sr.f32s(s.m)
			sr.f32s(s.v)
			continue
		}
		if bs := sr.u32(); sr.err == nil && int(bs) != o.cfg.BlockSize {
			sr.fail("parameter %q: 8-bit block size %d in the state, %d in the optimizer", p.Name, bs, o.cfg.BlockSize)
			break
		}
		s.c1, s.c2 = make([]uint8, len(want.c1)), make([]uint8, len(want.c2))
		s.max1, s.max2 = make([]float32, len(want.max1)), make([]float32, len(want.max2))
		sr.bytes(s.c1)
		sr.bytes(s.c2)
		sr.f32s(s.max1)
		sr.f32s(s.max2)
	}
	if err := sr.finish(); err != nil {
		return err
	}
	o.state, o.steps = loaded, int(steps)
	return nil
}

func momentsKind(eight bool) string {
	if eight {
		return "8-bit blocks"
	}
	return "f32"
}
