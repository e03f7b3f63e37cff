package kernels

import (
	"fmt"
	"math"

	"ladder-engine/optim"
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

// DynamicCodes returns the code books of 8-bit AdamW, the signed one (256
// sorted values on [-1, 1], index 127 is 0) then the unsigned one (on
// [0, 1]): optim's, bitsandbytes' dynamic data type. Upload it once and
// pass it to AdamW8bit.
func DynamicCodes() []float32 {
	s, u := optim.DynamicMap(true), optim.DynamicMap(false)
	return append(s[:], u[:]...)
}

// MaxAdamW8BlockSize bounds the 8-bit block size (two moments per value
// sit in shared memory during the update).
const MaxAdamW8BlockSize = 4096

// AdamW8bit is one 8-bit AdamW update of the parameters p (n floats) from
// the gradient g: c1, c2 (n bytes) are the moment codes, max1, max2
// (ceil(n/blockSize) floats) the blocks' scales, codes the 512 floats of
// DynamicCodes on the device. As optim: the update uses the unrounded
// moments, then each block takes its new maxima and requantizes to the
// nearest codes (the first moment keeping its sign, a positive second
// moment never 0).
func (d *Device) AdamW8bit(p, g, c1, c2, max1, max2, codes Buffer, n, blockSize int, k AdamWStep) error {
	if n < 0 || blockSize <= 0 || blockSize > MaxAdamW8BlockSize {
		return fmt.Errorf("kernels: AdamW8bit: %d values in blocks of %d (at most %d)", n, blockSize, MaxAdamW8BlockSize)
	}
	if n == 0 {
		return nil
	}
	nb := ceilDiv(n, blockSize)
	if err := needAll("AdamW8bit", 4*int64(n), map[string]Buffer{"p": p, "g": g}); err != nil {
		return err
	}
	if err := needAll("AdamW8bit", int64(n), map[string]Buffer{"c1": c1, "c2": c2}); err != nil {
		return err
	}
	if err := needAll("AdamW8bit", 4*int64(nb), map[string]Buffer{"max1": max1, "max2": max2}); err != nil {
		return err
	}
	if err := need("AdamW8bit", "codes", codes, 4*512); err != nil {
		return err
	}
	shared := 4 * (512 + 2*blockSize)
	return d.launch("adamw8", dim3{nb, 1, 1}, dim3{256, 1, 1}, shared,
		p, g, c1, c2, max1, max2, codes, n, blockSize, k.Beta1, k.Beta2, k.Eps, k.StepSize, k.BC2Sqrt, k.Decay)
}

// SumF64 writes float32(scale · Σ x) over n doubles into out (one float),
// summed in double: a loss from CrossEntropyRows' per-row losses, or a Sum
// result handed on as an f32 scalar without a host read.
func (d *Device) SumF64(out, x Buffer, n int, scale float64) error {
	if n < 0 {
		return fmt.Errorf("kernels: SumF64 of %d values", n)
	}
	if err := need("SumF64", "out", out, 4); err != nil {
		return err
	}
	if err := need("SumF64", "x", x, 8*int64(n)); err != nil {
		return err
	}
	return d.launch("sum_f64", dim3{1, 1, 1}, dim3{256, 1, 1}, 0, out, x, n, scale)
}
