package ops

import (
	"fmt"
	"math"
)

// RMSNormForward normalises each row by its root mean square and multiplies
// by weight, the way llama.cpp does it: ggml_rms_norm sums the squares in
// double (ggml_float), rounds the mean to float, scales by 1/sqrtf(mean+eps),
// and then ggml_mul applies the weight as a separate step.
//
// inp, out are (n, c); weight is (c), or nil for no weight. out may alias inp.
func RMSNormForward(out, inp, weight []float32, n, c int, eps float32) {
	rmsnormForward(out, nil, inp, weight, n, c, eps)
}

// rmsnormForward is RMSNormForward that also keeps rstd (n), the per-row
// 1/sqrt(mean(x²)+eps), for the backward pass (nil: not kept).
func rmsnormForward(out, rstd, inp, weight []float32, n, c int, eps float32) {
	if n == 0 || c == 0 {
		return
	}
	_ = inp[n*c-1]
	_ = out[n*c-1]
	for r := 0; r < n; r++ {
		x := inp[r*c : r*c+c]
		y := out[r*c : r*c+c]
		var sum float64
		for _, v := range x {
			sum += float64(v * v)
		}
		mean := float32(sum / float64(c))
		scale := 1 / float32(math.Sqrt(float64(mean+eps)))
		if rstd != nil {
			rstd[r] = scale
		}
		if weight != nil {
			w := weight[:c]
			for i, v := range x {
				y[i] = (v * scale) * w[i]
			}
		} else {
			for i, v := range x {
				y[i] = v * scale
			}
		}
	}
}

// rmsnormBackward accumulates the gradients of y = x·r·w, r = (mean(x²)+eps)^-½:
//
//	dx_i += r·w_i·dy_i − r³/c · x_i · Σ_j dy_j·w_j·x_j
//	dw_i += Σ_rows dy_i · x_i · r
//
// dinp, dout, inp are (n, c); weight, dweight (c) (nil: no weight / not wanted);
// rstd (n) from rmsnormForward. dinp may be nil when the input needs no gradient.
func rmsnormBackward(dinp, dweight, dout, inp, weight, rstd []float32, n, c int) {
	for r := 0; r < n; r++ {
		x := inp[r*c : r*c+c]
		dy := dout[r*c : r*c+c]
		rs := rstd[r]
		if dweight != nil {
			dw := dweight[:c]
			for i, v := range x {
				dw[i] += dy[i] * v * rs
			}
		}
		if dinp == nil {
			continue
		}
		dx := dinp[r*c : r*c+c]
		var dot float64 // Σ dy·w·x, in double like the forward sum
		if weight != nil {
			w := weight[:c]
			for i, v := range x {
				dot += float64(dy[i] * w[i] * v)
			}
		} else {
			for i, v := range x {
				dot += float64(dy[i] * v)
			}
		}
		k := rs * rs * rs * float32(dot/float64(c))
		if weight != nil {
			w := weight[:c]
			for i, v := range x {
				dx[i] += rs*w[i]*dy[i] - k*v
			}
		} else {
			for i, v := range x {
				dx[i] += rs*dy[i] - k*v
			}
		}
	}
}

// RMSNorm normalises each row of x (n, c) by its root mean square and
// multiplies by weight (c), which may be nil (no weight) or trainable.
func (tp *Tape) RMSNorm(x, weight *Tensor, eps float32) *Tensor {
	return tp.rmsNorm("RMSNorm", x, weight, x.Rows(), x.Cols(), eps)
}

// RMSNormHeads normalises each head's headDim values of x (n, k·headDim)
// on its own, with one weight (headDim) shared by the heads (qwen3's Q/K
// norms).
func (tp *Tape) RMSNormHeads(x, weight *Tensor, headDim int, eps float32) *Tensor {
	if headDim <= 0 || x.Cols()%headDim != 0 {
		panic(fmt.Sprintf("ops.RMSNormHeads: input %v, head size %d", x, headDim))
	}
	return tp.rmsNorm("RMSNormHeads", x, weight, x.Len()/headDim, headDim, eps)
}

func (tp *Tape) rmsNorm(op string, x, weight *Tensor, n, c int, eps float32) *Tensor {
	be := tp.backendFor(op, x, weight)
	var w Buffer
	if weight != nil {
		if weight.Len() != c {
			panic(fmt.Sprintf("ops.%s: input %v, weight %v: want %d weights", op, x, weight, c))
		}
		w = weight.buf
	}
	out := tp.newLike(be, x)
	rec := tp.needsGrad(x, weight)
	var rstd Buffer
	if rec {
		rstd = tp.save(be, n)
	}
	be.RMSNorm(out.buf, rstd, x.buf, w, n, c, eps)
	if rec {
		tp.record(out, func() {
			be.RMSNormBackward(tp.grad(x), tp.grad(weight), out.grad, x.buf, w, rstd, n, c)
		})
	}
	return out
}
