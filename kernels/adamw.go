package kernels

import (
	"fmt"
	"math"
)

// AdamWStep holds the constants of one AdamW update, computed on the host
// as optim.AdamW.Step does.
type AdamWStep struct {
	Beta1, Beta2, Eps float32
	StepSize          float32 // lr/(1−β1^t)
	BC2Sqrt           float32 // sqrt(1−β2^t)
	Decay             float32 // 1 − lr·weightDecay, or 1 for parameters without decay
}

// NewAdamWStep returns the constants of update number step (1-based), with
// the bias corrections in float64 as optim does.
func NewAdamWStep(lr, beta1, beta2, eps, weightDecay float32, step int, decay bool) AdamWStep {
	t := float64(step)
	bc1 := 1 - math.Pow(float64(beta1), t)
	bc2 := 1 - math.Pow(float64(beta2), t)
	s := AdamWStep{Beta1: beta1, Beta2: beta2, Eps: eps, StepSize: float32(float64(lr) / bc1), BC2Sqrt: float32(math.Sqrt(bc2)), Decay: 1}
	if decay {
		s.Decay = 1 - lr*weightDecay
	}
	return s
}

// AdamW updates the parameters p and the moments m, v (n floats each) in
// place from the gradient g, operation for operation as optim's update.
func (d *Device) AdamW(p, g, m, v Buffer, n int, k AdamWStep) error {
	if err := needAll("AdamW", 4*int64(n), map[string]Buffer{"p": p, "g": g, "m": m, "v": v}); err != nil {
		return err
	}
	return d.elementwise("adamw", n, p, g, m, v, n, k.Beta1, k.Beta2, k.Eps, k.StepSize, k.BC2Sqrt, k.Decay)
}

// Sum writes Σ x (or Σ x² with squares) over n floats into out, one
// float64, summed in double; with accumulate it adds to out instead (a
// gradient norm over several buffers). Read it back with ReadF64.
func (d *Device) Sum(out, x Buffer, n int64, squares, accumulate bool) error {
	if n < 0 {
		return fmt.Errorf("kernels: Sum of %d values", n)
	}
	if err := need("Sum", "out", out, 8); err != nil {
		return err
	}
	if err := need("Sum", "x", x, 4*n); err != nil {
		return err
	}
	return d.launch("reduce_sum", dim3{1, 1, 1}, dim3{1024, 1, 1}, 0, out, x, n, acc32(squares), acc32(accumulate))
}
