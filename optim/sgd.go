package optim

import (
	"fmt"
	"io"
)

// SGDConfig holds the hyper-parameters of SGD. The zero value is plain SGD.
type SGDConfig struct {
	Momentum    float32 // 0: no momentum buffer
	Dampening   float32 // scales the new gradient in the buffer by (1-Dampening)
	Nesterov    bool
	WeightDecay float32 // classic L2: g += WeightDecay*p (skipped for Param.NoDecay)
}

// SGD is stochastic gradient descent with momentum, computed as torch.optim.SGD:
//
//	g ← g + wd·p
//	b ← g on the first step, else μ·b + (1-dampening)·g
//	g ← g + μ·b (Nesterov) or b
//	p ← p - lr·g
type SGD struct {
	cfg    SGDConfig
	params []*Param
	buf    [][]float32 // momentum buffers (nil without momentum)
	steps  int
	bytes  int64
}

// NewSGD builds an SGD over params.
func NewSGD(params []*Param, cfg SGDConfig) (*SGD, error) {
	if err := checkParams(params); err != nil {
		return nil, err
	}
	switch {
	case !(cfg.Momentum >= 0 && cfg.Momentum < 1):
		return nil, fmt.Errorf("optim: SGD momentum %g must lie in [0, 1)", cfg.Momentum)
	case !(cfg.Dampening >= 0 && cfg.Dampening <= 1):
		return nil, fmt.Errorf("optim: SGD dampening %g must lie in [0, 1]", cfg.Dampening)
	case cfg.Nesterov && (cfg.Momentum == 0 || cfg.Dampening != 0):
		return nil, fmt.Errorf("optim: Nesterov SGD needs momentum > 0 and no dampening")
	case !(cfg.WeightDecay >= 0):
		return nil, fmt.Errorf("optim: SGD weight decay %g must be >= 0", cfg.WeightDecay)
	}
	o := &SGD{cfg: cfg, params: params}
	if cfg.Momentum != 0 {
		o.buf = make([][]float32, len(params))
		for i, p := range params {
			o.buf[i] = make([]float32, len(p.Data))
			o.bytes += int64(4 * len(p.Data))
		}
	}
	return o, nil
}

func (o *SGD) Steps() int        { return o.steps }
func (o *SGD) StateBytes() int64 { return o.bytes }

// Step applies one update with learning rate lr.
func (o *SGD) Step(lr float32) {
	first := o.steps == 0
	o.steps++
	mu, damp := o.cfg.Momentum, o.cfg.Dampening
	for i, p := range o.params {
		wd := o.cfg.WeightDecay
		if p.NoDecay {
			wd = 0
		}
		var b []float32
		if o.buf != nil {
			b = o.buf[i]
		}
		for j, g := range p.Grad {
			g += wd * p.Data[j]
			if b != nil {
				if first {
					b[j] = g
				} else {
					b[j] = mu*b[j] + (1-damp)*g
				}
				if o.cfg.Nesterov {
					g += mu * b[j]
				} else {
					g = b[j]
				}
			}
			p.Data[j] -= lr * g
		}
	}
}

const kindSGD = "sgd"

// Save writes the step count and the momentum buffers.
func (o *SGD) Save(w io.Writer) error {
	sw := newStateWriter(w)
	sw.bytes([]byte(stateMagic))
	sw.str(kindSGD)
	sw.u64(uint64(o.steps))
	sw.u32(uint32(len(o.params)))
	for i, p := range o.params {
		sw.str(p.Name)
		sw.u64(uint64(len(p.Data)))
		if o.buf == nil {
			sw.u8(0)
			continue
		}
		sw.u8(1)
		sw.f32s(o.buf[i])
	}
	return sw.finish()
}

// Load restores state written by Save into an SGD over the same parameters
// with the same momentum setting; on error the optimizer is unchanged.
func (o *SGD) Load(r io.Reader) error {
	sr := newStateReader(r)
	steps := sr.header(kindSGD, o.params)
	var bufs [][]float32
	if o.buf != nil {
		bufs = make([][]float32, len(o.params))
	}
	for i, p := range o.params {
		sr.param(p)
		has := sr.u8()
		if sr.err != nil {
			break
		}
		if (has == 1) != (o.buf != nil) || has > 1 {
			sr.fail("parameter %q: momentum buffer present=%v in the state, optimizer momentum %g", p.Name, has == 1, o.cfg.Momentum)
			break
		}
		if has == 1 {
			bufs[i] = make([]float32, len(p.Data))
			sr.f32s(bufs[i])
		}
	}
	if err := sr.finish(); err != nil {
		return err
	}
	o.buf, o.steps = bufs, int(steps)
	return nil
}
