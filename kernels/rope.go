package kernels

import (
	"fmt"
	"math"
)

// RoPE rotates x (n, nHead*headDim) in place as ops.RoPEForward: pair i of
// each head turns by θ_i = pos·base^(-2i/headDim) / freqFactors[i]; NORM
// mode pairs (2i, 2i+1), NEOX mode (i, i+headDim/2). pos is a device
// buffer of n int32 positions; freqFactors holds headDim/2 floats or is the
// zero Buffer. backward turns by −θ instead: the gradient of the rotation.
func (d *Device) RoPE(x, pos, freqFactors Buffer, n, nHead, headDim int, base float32, neox, backward bool) error {
	if n < 0 || nHead <= 0 || headDim <= 0 || headDim%2 != 0 {
		return fmt.Errorf("kernels: RoPE: %d rows, %d heads of %d", n, nHead, headDim)
	}
	if n == 0 {
		return nil
	}
	if err := need("RoPE", "x", x, 4*int64(n)*int64(nHead)*int64(headDim)); err != nil {
		return err
	}
	if err := need("RoPE", "pos", pos, 4*int64(n)); err != nil {
		return err
	}
	if freqFactors.ptr != 0 {
		if err := need("RoPE", "freqFactors", freqFactors, 4*int64(headDim/2)); err != nil {
			return err
		}
	}
	// The same float computation as the CPU's (and ggml's theta_scale).
	thetaScale := float32(math.Pow(float64(base), float64(float32(-2)/float32(headDim))))
	sinSign := float32(1)
	if backward {
		sinSign = -1
	}
	half := headDim / 2
	return d.launch("rope", dim3{ceilDiv(half, 64), min(n, 65535), 1}, dim3{64, 1, 1}, 0,
		x, pos, freqFactors, n, nHead, headDim, thetaScale, acc32(neox), sinSign)
}
