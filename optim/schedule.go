package optim

import (
	"fmt"
	"math"
	"strings"
)

// ScheduleKind names the shape of the learning rate after warmup.
type ScheduleKind int

const (
	Constant ScheduleKind = iota // peak LR after warmup
	Linear                       // linear decay from peak to MinLR at Total
	Cosine                       // half-cosine decay from peak to MinLR at Total
)

var scheduleNames = [...]string{"constant", "linear", "cosine"}

func (k ScheduleKind) String() string {
	if k < 0 || int(k) >= len(scheduleNames) {
		return fmt.Sprintf("ScheduleKind(%d)", int(k))
	}
	return scheduleNames[k]
}

// ParseScheduleKind accepts "constant", "linear" or "cosine" (any case).
func ParseScheduleKind(name string) (ScheduleKind, error) {
	for i, n := range scheduleNames {
		if strings.EqualFold(name, n) {
			return ScheduleKind(i), nil
		}
	}
	return 0, fmt.Errorf("optim: unknown learning-rate schedule %q (want constant, linear or cosine)", name)
}

// Schedule gives the learning rate of each optimizer step.
//
// Steps are counted from 0 (the value of Optimizer.Steps() before the update).
// During warmup (step < Warmup) the rate rises linearly, LR*(step+1)/Warmup,
// so the first update already moves the weights and step Warmup-1 reaches LR.
// Afterwards progress p = (step-Warmup)/(Total-Warmup), clamped to [0,1],
// decays the rate from LR to MinLR: linearly, or as MinLR +
// (LR-MinLR)*(1+cos(πp))/2. Steps past Total stay at MinLR.
type Schedule struct {
	Kind   ScheduleKind
	LR     float32 // peak learning rate
	MinLR  float32 // final learning rate of linear/cosine decay (default 0)
	Warmup int     // warmup steps (0: none)
	Total  int     // total steps; needed by linear and cosine
}

// Validate reports settings that cannot produce a sensible schedule.
func (s Schedule) Validate() error {
	switch {
	case s.Kind < Constant || s.Kind > Cosine:
		return fmt.Errorf("optim: unknown schedule kind %d", int(s.Kind))
	case !(s.LR >= 0) || math.IsInf(float64(s.LR), 0):
		return fmt.Errorf("optim: learning rate %g must be a finite number >= 0", s.LR)
	case s.MinLR < 0 || s.MinLR > s.LR:
		return fmt.Errorf("optim: minimum learning rate %g must lie in [0, %g]", s.MinLR, s.LR)
	case s.Warmup < 0:
		return fmt.Errorf("optim: warmup %d steps must be >= 0", s.Warmup)
	case s.Kind != Constant && s.Total <= s.Warmup:
		return fmt.Errorf("optim: %s schedule needs total steps (%d) > warmup steps (%d)", s.Kind, s.Total, s.Warmup)
	}
	return nil
}

// At returns the learning rate for step (0-based).
func (s Schedule) At(step int) float32 {
	if step < 0 {
		step = 0
	}
	if step < s.Warmup {
		return float32(float64(s.LR) * float64(step+1) / float64(s.Warmup))
	}
	if s.Kind == Constant {
		return s.LR
	}
	span := s.Total - s.Warmup
	p := 1.0
	if span > 0 {
		p = min(float64(step-s.Warmup)/float64(span), 1)
	}
	lr, lo := float64(s.LR), float64(s.MinLR)
	if s.Kind == Linear {
		return float32(lo + (lr-lo)*(1-p))
	}
	return float32(lo + (lr-lo)*0.5*(1+math.Cos(math.Pi*p)))
}
