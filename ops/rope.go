package ops

import (
	"fmt"
	"math"
)

// RoPEForward rotates pairs of each head's dimensions in place by the angle
// θ_i = pos·base^(-2i/headDim) / freqFactors[i], as ggml_rope_ext does with
// no YaRN scaling. NORM mode (llama) rotates adjacent pairs (2i, 2i+1); NEOX
// mode (qwen2, phi3, ...) rotates halves (i, i+headDim/2). freqFactors (headDim/2)
// is Llama 3.1's rope_freqs tensor, or nil.
//
// x is (n, nHead*headDim); pos (n) holds each row's position.
func RoPEForward(x []float32, n, nHead, headDim int, pos []int32, base float32, neox bool, freqFactors []float32) {
	ropeRotate(x, n, nHead, headDim, pos, base, neox, freqFactors, 1)
}

// ropeBackward rotates the gradient by −θ in place: the rotation is
// orthogonal, so its transpose is its inverse. dx is (n, nHead*headDim).
func ropeBackward(dx []float32, n, nHead, headDim int, pos []int32, base float32, neox bool, freqFactors []float32) {
	ropeRotate(dx, n, nHead, headDim, pos, base, neox, freqFactors, -1)
}

// ropeRotate applies the rotation with sin multiplied by sinSign (ggml's
// rope cache does the same for the backward pass).
func ropeRotate(x []float32, n, nHead, headDim int, pos []int32, base float32, neox bool, freqFactors []float32, sinSign float32) {
	half := headDim / 2
	// ggml: theta_scale = powf(freq_base, -2.0f/n_dims), then θ *= theta_scale
	// step by step in float, which we repeat for bit-compatible angles.
	// The exponent is a float division in ggml too (-2.0f/n_dims).
	thetaScale := float32(math.Pow(float64(base), float64(float32(-2)/float32(headDim))))
	width := nHead * headDim
	for r := 0; r < n; r++ {
		row := x[r*width : r*width+width]
		theta := float32(pos[r])
		for i := 0; i < half; i++ {
			t := theta
			if freqFactors != nil {
				t = theta / freqFactors[i]
			}
			cos := float32(math.Cos(float64(t)))
			sin := float32(math.Sin(float64(t))) * sinSign
			theta *= thetaScale
			i0, i1 := 2*i, 2*i+1
			if neox {
				i0, i1 = i, i+half
			}
			for h := 0; h < nHead; h++ {
				hd := row[h*headDim : h*headDim+headDim]
				x0, x1 := hd[i0], hd[i1]
				hd[i0] = x0*cos - x1*sin
				hd[i1] = x0*sin + x1*cos
			}
		}
	}
}

// RoPE returns x (n, nHead*headDim) with each head rotated by its row's
// position pos[r] (see RoPEForward). The rotation does not change with
// x, so the backward rotates the gradient back.
func (tp *Tape) RoPE(x *Tensor, nHead int, pos []int32, base float32, neox bool, freqFactors []float32) *Tensor {
	be := tp.backendFor("RoPE", x)
	n, w := x.Rows(), x.Cols()
	if nHead <= 0 || w%nHead != 0 || (w/nHead)%2 != 0 || len(pos) != n {
		panic(fmt.Sprintf("ops.RoPE: input %v, %d heads, %d positions", x, nHead, len(pos)))
	}
	headDim := w / nHead
	if freqFactors != nil && len(freqFactors) < headDim/2 {
		panic(fmt.Sprintf("ops.RoPE: %d frequency factors, want %d", len(freqFactors), headDim/2))
	}
	out := tp.newLike(be, x)
	be.RoPE(out.buf, x.buf, n, nHead, headDim, pos, base, neox, freqFactors, false)
	if tp.needsGrad(x) {
		tp.record(out, func() {
			// out's gradient is not read again after this record: rotate it in place.
			be.RoPE(out.grad, out.grad, n, nHead, headDim, pos, base, neox, freqFactors, true)
			be.Accumulate(tp.grad(x), out.grad)
		})
	}
	return out
}
