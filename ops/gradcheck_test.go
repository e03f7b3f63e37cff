package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference gradient checks. The analytic gradient of
// L = Σ out⊙R (R a fixed random projection, so every output value counts
// with its own weight) comes from the tape; the numerical one from the
// fourth-order central difference
//
//	dL/dx ≈ (−L(x+2h) + 8L(x+h) − 8L(x−h) + L(x−2h)) / 12h
//
// on float32 forwards with L summed in double. Its truncation error is
// O(h⁴) (≈1e-7 at h = 2e-2), so h can be large enough that float32 rounding
// of the outputs (≈1e-7 relative) divided by h stays near 1e-5.

const gcStep = 2e-2

// gcTol: a value passes when |analytic − numeric| ≤ atol·scale + rtol·|numeric|,
// scale being the largest |numeric| of that tensor. Single float32 forwards
// agree to about 1e-4 of scale; 1e-3 leaves a margin while a 1% error in
// one value, or in all of them, still fails (TestGradCheckDetectsWrongGradient).
type gcTol struct{ rtol, atol float64 }

var gcDefaultTol = gcTol{rtol: 5e-3, atol: 1e-3}

// gcRand returns n values uniform in [-scale, scale) from a fixed seed.
func gcRand(seed uint64, n int, scale float32) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		x[i] = (2*r.Float32() - 1) * scale
	}
	return x
}

// gcParam is a trainable tensor with random values and a zeroed gradient.
func gcParam(seed uint64, scale float32, shape ...int) *Tensor {
	n := shapeLen(shape)
	return ParamFrom(gcRand(seed, n, scale), make([]float32, n), shape...)
}

// gcProject returns Σ out⊙r in double.
func gcProject(out, r []float32) float64 {
	var s float64
	for i, v := range out {
		s += float64(v) * float64(r[i])
	}
	return s
}

// gcAnalytic runs build on a recording tape, back-propagates L = Σ out⊙R
// through the tape's own Mul and Sum ops and returns copies of the
// gradients of params, plus R.
func gcAnalytic(build func(tp *Tape) *Tensor, params []*Tensor) (grads [][]float32, r []float32) {
	for _, p := range params {
		p.ZeroGrad()
	}
	tp := NewTape(NewCPU(nil))
	out := build(tp)
	r = gcRand(99, len(out.F32()), 1)
	loss := tp.Sum(tp.Mul(out, NewTensor(r, out.Shape...)))
	tp.Backward(loss)
	for _, p := range params {
		grads = append(grads, append([]float32(nil), p.GradF32()...))
	}
	return grads, r
}

// gcNumeric returns the finite-difference gradient of Σ build(nil)⊙r with
// respect to every value of p, with step h.
func gcNumeric(build func(tp *Tape) *Tensor, p *Tensor, r []float32, h float32) []float64 {
	loss := func() float64 { return gcProject(build(nil).F32(), r) }
	num := make([]float64, len(p.F32()))
	for i, v := range p.F32() {
		at := func(k float32) float64 {
			p.F32()[i] = v + k*h
			return loss()
		}
		num[i] = (-at(2) + 8*at(1) - 8*at(-1) + at(-2)) / (12 * float64(h))
		p.F32()[i] = v
	}
	return num
}

// gcCompare lists the values where analytic and numeric disagree beyond tol.
func gcCompare(name string, analytic []float32, numeric []float64, tol gcTol) []string {
	var scale float64
	for _, v := range numeric {
		scale = math.Max(scale, math.Abs(v))
	}
	var bad []string
	for i, a := range analytic {
		n := numeric[i]
		if d := math.Abs(float64(a) - n); !(d <= tol.atol*scale+tol.rtol*math.Abs(n)) {
			bad = append(bad, fmt.Sprintf("%s[%d]: analytic %.6g, numeric %.6g (scale %.3g)", name, i, a, n, scale))
		}
	}
	return bad
}

// checkGrads fails t when any gradient of params disagrees with finite
// differences. names label params in messages.
func checkGrads(t *testing.T, build func(tp *Tape) *Tensor, params []*Tensor, names []string, tol gcTol) {
	t.Helper()
	checkGradsSteps(t, build, params, names, nil, tol)
}

// checkGradsSteps is checkGrads with a finite-difference step per
// parameter (0: gcStep). A value that enters divided by a temperature T
// (the ladder gate, α/T) needs a step of gcStep·T for the same accuracy.
func checkGradsSteps(t *testing.T, build func(tp *Tape) *Tensor, params []*Tensor, names []string, steps []float32, tol gcTol) {
	t.Helper()
	grads, r := gcAnalytic(build, params)
	for k, p := range params {
		h := float32(gcStep)
		if k < len(steps) && steps[k] != 0 {
			h = steps[k]
		}
		bad := gcCompare(names[k], grads[k], gcNumeric(build, p, r, h), tol)
		for i, b := range bad {
			if i == 5 {
				t.Errorf("... %d more", len(bad)-5)
				break
			}
			t.Error(b)
		}
	}
}

// The checker itself must catch wrong gradients: a 1% error in a single
// value, a 1% error in all of them, or a transposed gradient.
func TestGradCheckDetectsWrongGradient(t *testing.T) {
	x := gcParam(1, 1, 4, 8)
	w := gcParam(2, 0.5, 6, 8)
	build := func(tp *Tape) *Tensor { return tp.SiLU(tp.Linear(x, w)) }
	grads, r := gcAnalytic(build, []*Tensor{x, w})
	num := gcNumeric(build, w, r, gcStep)
	if bad := gcCompare("w", grads[1], num, gcDefaultTol); len(bad) > 0 {
		t.Fatalf("correct gradient rejected: %v", bad)
	}
	big := 0 // perturb the largest value, where the relative tolerance is loosest
	for i, v := range num {
		if math.Abs(v) > math.Abs(num[big]) {
			big = i
		}
	}
	for _, c := range []struct {
		name    string
		perturb func(g []float32)
	}{
		{"one value +1%", func(g []float32) { g[big] *= 1.01 }},
		{"all values +1%", func(g []float32) {
			for i := range g {
				g[i] *= 1.01
			}
		}},
		{"one small value off by 1% of the largest", func(g []float32) { g[len(g)/2] += 0.01 * g[big] }},
		{"transposed", func(g []float32) {
			h := append([]float32(nil), g...)
			for o := 0; o < 6; o++ {
				for i := 0; i < 8; i++ {
					g[o*8+i] = h[(i*6+o)%48]
				}
			}
		}},
	} {
		g := append([]float32(nil), grads[1]...)
		c.perturb(g)
		if bad := gcCompare("w", g, num, gcDefaultTol); len(bad) == 0 {
			t.Errorf("%s: wrong gradient not detected", c.name)
		}
	}
}
