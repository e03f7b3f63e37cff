package kernels

import "fmt"

// RMSNormForward is out = x·rstd·weight per row, rstd = 1/sqrt(mean(x²)+eps)
// (ops.RMSNormForward): inp, out (n, c); weight (c) or the zero Buffer for
// none; rstd (n) receives each row's rstd for the backward, or the zero
// Buffer when not wanted. The sum of squares is in double, like the CPU's,
// summed in a different order (a tree over the block).
func (d *Device) RMSNormForward(out, rstd, inp, weight Buffer, n, c int, eps float32) error {
	if err := checkRows("RMSNormForward", n, c); err != nil {
		return err
	}
	if err := needAll("RMSNormForward", int64(n)*int64(c)*4, map[string]Buffer{"out": out, "inp": inp}); err != nil {
		return err
	}
	if weight.ptr != 0 {
		if err := need("RMSNormForward", "weight", weight, 4*int64(c)); err != nil {
			return err
		}
	}
	if rstd.ptr != 0 {
		if err := need("RMSNormForward", "rstd", rstd, 4*int64(n)); err != nil {
			return err
		}
	}
	return d.launch("rmsnorm_fwd", dim3{n, 1, 1}, dim3{rowThreads(c), 1, 1}, 0, out, rstd, inp, weight, n, c, eps)
}

// RMSNormBackward accumulates the gradients of RMSNormForward:
// dinp (n, c) += rstd·w·dy − rstd³/c·x·Σ dy·w·x and dweight (c) += Σ_rows dy·x·rstd.
// dinp or dweight may be the zero Buffer when not wanted; weight is the
// zero Buffer when the norm has none (then dweight must be too).
func (d *Device) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd Buffer, n, c int) error {
	if err := checkRows("RMSNormBackward", n, c); err != nil {
		return err
	}
	nc := int64(n) * int64(c) * 4
	if err := needAll("RMSNormBackward", nc, map[string]Buffer{"dout": dout, "inp": inp}); err != nil {
		return err
	}
	if err := need("RMSNormBackward", "rstd", rstd, 4*int64(n)); err != nil {
		return err
	}
	if weight.ptr != 0 {
		if err := need("RMSNormBackward", "weight", weight, 4*int64(c)); err != nil {
			return err
		}
	} else if dweight.ptr != 0 {
		return fmt.Errorf("kernels: RMSNormBackward: dweight without a weight")
	}
	if dinp.ptr != 0 {
		if err := need("RMSNormBackward", "dinp", dinp, nc); err != nil {
			return err
		}
		if err := d.launch("rmsnorm_bwd_input", dim3{n, 1, 1}, dim3{rowThreads(c), 1, 1}, 0, dinp, dout, inp, weight, rstd, n, c); err != nil {
			return err
		}
	}
	if dweight.ptr != 0 {
		if err := need("RMSNormBackward", "dweight", dweight, 4*int64(c)); err != nil {
			return err
		}
		return d.launch("rmsnorm_bwd_weight", dim3{ceilDiv(c, 256), 1, 1}, dim3{256, 1, 1}, 0, dweight, dout, inp, rstd, n, c)
	}
	return nil
}

// rowThreads is the block size of a one-block-per-row kernel: 256, or
// fewer (a multiple of 32) for short rows, whose idle threads a simulator
// would still interpret.
func rowThreads(c int) int { return min(256, max(32, (c+31)/32*32)) }

func checkRows(kernel string, n, c int) error {
	if n < 0 || c <= 0 {
		return fmt.Errorf("kernels: %s: shape (%d, %d)", kernel, n, c)
	}
	return nil
}

// needAll checks that every named buffer holds at least n bytes.
func needAll(kernel string, n int64, bufs map[string]Buffer) error {
	for what, b := range bufs {
		if err := need(kernel, what, b, n); err != nil {
			return err
		}
	}
	return nil
}
