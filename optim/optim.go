// Package optim updates trainable parameters from their gradients: AdamW
// (f32 or block-wise 8-bit moments), SGD with momentum, learning-rate
// schedules, gradient clipping and the gradient-accumulation protocol.
//
// Parameters are plain float32 slices (Param), so this package knows nothing
// of tapes or models. An optimizer is built once over a fixed list of
// parameters; Step(lr) applies one update from the gradients currently in
// Param.Grad. Step does not zero the gradients: call ZeroGrads before the
// next backward pass.
//
// A training step with K micro-batches (gradient accumulation):
//
//	optim.ZeroGrads(params)
//	for i := range K { backward(micro-batch i) }   // the tape adds (+=) into Grad
//	optim.ScaleGrads(params, 1/float32(K))          // or 1/Σ weights, see ScaleGrads
//	norm := optim.ClipGradNorm(params, maxNorm)     // skip the step if norm is not finite
//	opt.Step(schedule.At(opt.Steps()))
package optim

import (
	"fmt"
	"io"
	"math"
)

// Param is one trainable tensor: its values and the gradient of the loss with
// respect to them (same length). NoDecay exempts it from weight decay, as is
// usual for norm weights, biases and gates.
type Param struct {
	Name    string
	Data    []float32
	Grad    []float32
	NoDecay bool
}

// Optimizer is what the training loop needs from AdamW and SGD.
type Optimizer interface {
	// Step applies one update with learning rate lr to every parameter from
	// its current gradient and advances the step count.
	Step(lr float32)
	// Steps returns the number of updates applied so far (restored by Load).
	Steps() int
	// Save writes the optimizer state (step count and moments) for a checkpoint.
	Save(w io.Writer) error
	// Load restores state written by Save into an optimizer built over the
	// same parameters (same names and sizes, in the same order).
	Load(r io.Reader) error
	// StateBytes is the memory held by the optimizer state; the caller
	// counts it in its meter (class ops.OptimState), so that this package
	// stays free of engine imports.
	StateBytes() int64
}

// checkParams rejects parameter lists an optimizer cannot work with; these are
// programmer errors surfaced as errors so a CLI can print them.
func checkParams(params []*Param) error {
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		if p == nil {
			return fmt.Errorf("optim: parameter %d is nil", i)
		}
		if len(p.Data) != len(p.Grad) {
			return fmt.Errorf("optim: parameter %q: %d values but %d gradients", p.Name, len(p.Data), len(p.Grad))
		}
		if seen[p.Name] {
			return fmt.Errorf("optim: parameter name %q used twice (names identify state in checkpoints)", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// ZeroGrads sets every gradient to zero (before accumulating a new step).
func ZeroGrads(params []*Param) {
	for _, p := range params {
		clear(p.Grad)
	}
}

// ScaleGrads multiplies every gradient by s. After accumulating K
// micro-batches whose losses are each a mean, s = 1/K gives the gradient of
// the mean over micro-batches. To weight micro-batches by their number of
// target tokens n_i instead (the exact full-batch token mean), seed micro-batch
// i's backward with n_i and use s = 1/Σn_i.
func ScaleGrads(params []*Param, s float32) {
	for _, p := range params {
		for i := range p.Grad {
			p.Grad[i] *= s
		}
	}
}

// GradNorm returns the global L2 norm of all gradients, summed in float64 so
// the result does not depend on how parameters are split into tensors.
func GradNorm(params []*Param) float64 {
	var ss float64
	for _, p := range params {
		for _, g := range p.Grad {
			ss += float64(g) * float64(g)
		}
	}
	return math.Sqrt(ss)
}

// ClipGradNorm scales all gradients so their global L2 norm is at most
// maxNorm (maxNorm <= 0 disables clipping) and returns the norm before
// clipping. As in torch.nn.utils.clip_grad_norm_, the scale is
// maxNorm/(norm+1e-6) and gradients are only ever scaled down. A NaN or
// infinite norm is returned unchanged and the gradients are left alone: the
// caller should skip that step (an 8-bit optimizer's block scales would be
// poisoned by it).
func ClipGradNorm(params []*Param, maxNorm float32) float64 {
	norm := GradNorm(params)
	if maxNorm <= 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	coef := float64(maxNorm) / (norm + 1e-6)
	if coef < 1 {
		ScaleGrads(params, float32(coef))
	}
	return norm
}
