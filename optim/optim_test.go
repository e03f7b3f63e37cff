package optim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestClipGradNorm(t *testing.T) {
	mk := func(g ...float32) []*Param {
		return []*Param{
			{Name: "a", Data: make([]float32, 1), Grad: g[:1]},
			{Name: "b", Data: make([]float32, len(g)-1), Grad: g[1:]},
		}
	}
	for _, tc := range []struct {
		name     string
		grads    []float32
		max      float32
		wantNorm float64
		want     []float32
	}{
		{"scaled down", []float32{3, 4}, 1, 5, []float32{3 / (5 + 1e-6), 4 / (5 + 1e-6)}},
		{"below max", []float32{3, 4}, 10, 5, []float32{3, 4}},
		{"disabled", []float32{30, 40}, 0, 50, []float32{30, 40}},
		{"three values", []float32{1, 2, 2}, 1.5, 3, []float32{0.5, 1, 1}},
	} {
		ps := mk(tc.grads...)
		norm := ClipGradNorm(ps, tc.max)
		if math.Abs(norm-tc.wantNorm) > 1e-6 {
			t.Errorf("%s: norm %v, want %v", tc.name, norm, tc.wantNorm)
		}
		got := append(append([]float32{}, ps[0].Grad...), ps[1].Grad...)
		for i := range got {
			if math.Abs(float64(got[i]-tc.want[i])) > 1e-6 {
				t.Errorf("%s: grad %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
	nan := mk(1, float32(math.NaN()))
	if n := ClipGradNorm(nan, 1); !math.IsNaN(n) || nan[0].Grad[0] != 1 {
		t.Errorf("NaN gradient: norm %v, grad %v; want NaN and untouched", n, nan[0].Grad[0])
	}
}

func TestScheduleAtKnownPoints(t *testing.T) {
	for _, tc := range []struct {
		s    Schedule
		step int
		want float64
	}{
		{Schedule{Kind: Constant, LR: 1, Warmup: 10}, 0, 0.1},
		{Schedule{Kind: Constant, LR: 1, Warmup: 10}, 4, 0.5},
		{Schedule{Kind: Constant, LR: 1, Warmup: 10}, 9, 1},
		{Schedule{Kind: Constant, LR: 1, Warmup: 10}, 1000, 1},
		{Schedule{Kind: Constant, LR: 2}, 0, 2},
		{Schedule{Kind: Linear, LR: 1, Total: 100}, 0, 1},
		{Schedule{Kind: Linear, LR: 1, Total: 100}, 50, 0.5},
		{Schedule{Kind: Linear, LR: 1, Total: 100}, 100, 0},
		{Schedule{Kind: Linear, LR: 1, Total: 100}, 500, 0},
		{Schedule{Kind: Linear, LR: 1, MinLR: 0.2, Warmup: 20, Total: 120}, 70, 0.6},
		{Schedule{Kind: Cosine, LR: 1, MinLR: 0.1, Warmup: 10, Total: 110}, 9, 1},
		{Schedule{Kind: Cosine, LR: 1, MinLR: 0.1, Warmup: 10, Total: 110}, 10, 1},
		{Schedule{Kind: Cosine, LR: 1, MinLR: 0.1, Warmup: 10, Total: 110}, 60, 0.55},                         // cos(π/2) = 0
		{Schedule{Kind: Cosine, LR: 1, MinLR: 0.1, Warmup: 10, Total: 110}, 35, 0.1 + 0.9*(1+math.Sqrt2/2)/2}, // cos(π/4)
		{Schedule{Kind: Cosine, LR: 1, MinLR: 0.1, Warmup: 10, Total: 110}, 110, 0.1},
	} {
		if err := tc.s.Validate(); err != nil {
			t.Fatalf("%+v: %v", tc.s, err)
		}
		if got := float64(tc.s.At(tc.step)); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("%s warmup %d total %d: At(%d) = %v, want %v", tc.s.Kind, tc.s.Warmup, tc.s.Total, tc.step, got, tc.want)
		}
	}
	for _, bad := range []Schedule{
		{Kind: Cosine, LR: 1, Warmup: 10, Total: 10},
		{Kind: Linear, LR: 1},
		{Kind: Constant, LR: -1},
		{Kind: Constant, LR: float32(math.NaN())},
		{Kind: Cosine, LR: 1, MinLR: 2, Total: 10},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate accepted %+v", bad)
		}
	}
	for _, name := range []string{"constant", "Linear", "COSINE"} {
		if k, err := ParseScheduleKind(name); err != nil || !strings.EqualFold(k.String(), name) {
			t.Errorf("ParseScheduleKind(%q) = %v, %v", name, k, err)
		}
	}
	if _, err := ParseScheduleKind("step"); err == nil {
		t.Error("ParseScheduleKind accepted \"step\"")
	}
}

// sgdRef64 is torch.optim.SGD's documented algorithm in float64.
func sgdRef64(p, buf []float64, g []float32, lr, mu, wd float64, nesterov, first bool) {
	for i := range p {
		gi := float64(g[i]) + wd*p[i]
		if first {
			buf[i] = gi
		} else {
			buf[i] = mu*buf[i] + gi
		}
		if nesterov {
			gi += mu * buf[i]
		} else {
			gi = buf[i]
		}
		p[i] -= lr * gi
	}
}

func TestSGDMatchesFloat64Reference(t *testing.T) {
	for _, nesterov := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(4, 4))
		p := &Param{Name: "w", Data: make([]float32, 16), Grad: make([]float32, 16)}
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64())
		}
		o, err := NewSGD([]*Param{p}, SGDConfig{Momentum: 0.9, Nesterov: nesterov, WeightDecay: 0.01})
		if err != nil {
			t.Fatal(err)
		}
		ref, buf := toF64(p.Data), make([]float64, 16)
		for s := range 30 {
			for i := range p.Grad {
				p.Grad[i] = float32(rng.NormFloat64())
			}
			o.Step(0.05)
			sgdRef64(ref, buf, p.Grad, 0.05, 0.9, 0.01, nesterov, s == 0)
		}
		for i := range ref {
			if d := math.Abs(float64(p.Data[i]) - ref[i]); d > 1e-5 {
				t.Fatalf("nesterov=%v: p[%d] = %v, reference %v", nesterov, i, p.Data[i], ref[i])
			}
		}
	}
	// Plain SGD, hand computed: p = 1 - 0.5·2 = 0.
	p := &Param{Name: "w", Data: []float32{1}, Grad: []float32{2}}
	o, _ := NewSGD([]*Param{p}, SGDConfig{})
	o.Step(0.5)
	if p.Data[0] != 0 || o.StateBytes() != 0 {
		t.Errorf("plain SGD: p = %v (want 0), state %d bytes (want 0)", p.Data[0], o.StateBytes())
	}
}

// TestGradientAccumulation checks the documented protocol on least squares:
// accumulating K micro-batch gradients of per-batch mean losses and scaling
// by 1/K equals the gradient of the mean over the whole batch when the
// micro-batches are equal in size; weighting by size handles unequal ones.
func TestGradientAccumulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	const dim = 4
	xs := make([][dim]float32, 12)
	ys := make([]float32, len(xs))
	for i := range xs {
		for j := range dim {
			xs[i][j] = float32(rng.NormFloat64())
		}
		ys[i] = float32(rng.NormFloat64())
	}
	w := make([]float32, dim)
	for j := range w {
		w[j] = float32(rng.NormFloat64())
	}
	// addMeanGrad adds seed·∇(mean over rows of ½(w·x - y)²) into g.
	addMeanGrad := func(g []float32, rows []int, seed float32) {
		for _, r := range rows {
			var pred float32
			for j := range dim {
				pred += w[j] * xs[r][j]
			}
			for j := range dim {
				g[j] += seed * (pred - ys[r]) * xs[r][j] / float32(len(rows))
			}
		}
	}
	all := make([]int, len(xs))
	for i := range all {
		all[i] = i
	}
	full := make([]float32, dim)
	addMeanGrad(full, all, 1)

	for _, tc := range []struct {
		name     string
		batches  [][]int
		weighted bool
	}{
		{"equal micro-batches", [][]int{all[:4], all[4:8], all[8:]}, false},
		{"unequal, weighted by size", [][]int{all[:2], all[2:9], all[9:]}, true},
	} {
		p := &Param{Name: "w", Data: w, Grad: make([]float32, dim)}
		ps := []*Param{p}
		ZeroGrads(ps)
		var total float32
		for _, b := range tc.batches {
			seed := float32(1)
			if tc.weighted {
				seed = float32(len(b))
			}
			addMeanGrad(p.Grad, b, seed)
			total += seed
		}
		ScaleGrads(ps, 1/total)
		for j := range dim {
			if math.Abs(float64(p.Grad[j]-full[j])) > 1e-5 {
				t.Errorf("%s: grad %v, full batch %v", tc.name, p.Grad, full)
				break
			}
		}
	}
}
