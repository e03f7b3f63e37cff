package optim

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAdamWHandComputed checks three steps on one value against numbers
// worked out by hand from the paper's formula (m̂ = m/(1-β1^t),
// v̂ = v/(1-β2^t), p ← p(1-lr·wd) - lr·m̂/(√v̂+ε)); e.g. step 2:
// p = 0.89·0.99 - 0.1·(0.02/0.19)/√(0.00031225/0.001999) = 0.8544663.
func TestAdamWHandComputed(t *testing.T) {
	p := &Param{Name: "w", Data: []float32{1}, Grad: []float32{0}}
	cfg := DefaultAdamW()
	cfg.WeightDecay = 0.1
	o, err := NewAdamW([]*Param{p}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ grad, want float64 }{
		{0.5, 0.890000002},
		{-0.25, 0.8544662987},
		{0.125, 0.8118787219},
	} {
		p.Grad[0] = float32(tc.grad)
		o.Step(0.1)
		// float32 holds ~7 digits; 2e-7 is a few ulps at 0.9.
		if got := float64(p.Data[0]); math.Abs(got-tc.want) > 2e-7 {
			t.Errorf("step %d: p = %.9f, want %.9f", i+1, got, tc.want)
		}
	}
	if o.Steps() != 3 {
		t.Errorf("Steps() = %d, want 3", o.Steps())
	}
}

// adamRef64 is an independent float64 AdamW written from the paper's
// algorithm (bias-corrected m̂ and v̂), not from the package's arrangement.
type adamRef64 struct {
	b1, b2, eps, wd float64
	m, v            []float64
	t               int
}

func (r *adamRef64) step(p []float64, g []float32, lr float64, decay bool) {
	r.t++
	for i := range p {
		if decay {
			p[i] -= lr * r.wd * p[i]
		}
		gi := float64(g[i])
		r.m[i] = r.b1*r.m[i] + (1-r.b1)*gi
		r.v[i] = r.b2*r.v[i] + (1-r.b2)*gi*gi
		mh := r.m[i] / (1 - math.Pow(r.b1, float64(r.t)))
		vh := r.v[i] / (1 - math.Pow(r.b2, float64(r.t)))
		p[i] -= lr * mh / (math.Sqrt(vh) + r.eps)
	}
}

func TestAdamWMatchesFloat64Reference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, steps = 64, 40
	w := &Param{Name: "w", Data: make([]float32, n), Grad: make([]float32, n)}
	g := &Param{Name: "gate", Data: make([]float32, 3), Grad: make([]float32, 3), NoDecay: true}
	for i := range w.Data {
		w.Data[i] = float32(rng.NormFloat64())
	}
	cfg := AdamWConfig{Beta1: 0.8, Beta2: 0.95, Eps: 1e-6, WeightDecay: 0.05}
	o, err := NewAdamW([]*Param{w, g}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	refW := &adamRef64{b1: 0.8, b2: 0.95, eps: 1e-6, wd: 0.05, m: make([]float64, n), v: make([]float64, n)}
	refG := &adamRef64{b1: 0.8, b2: 0.95, eps: 1e-6, wd: 0.05, m: make([]float64, 3), v: make([]float64, 3)}
	pw, pg := toF64(w.Data), toF64(g.Data)
	sched := Schedule{Kind: Cosine, LR: 3e-2, Warmup: 5, Total: steps}
	for s := range steps {
		for i := range w.Grad {
			w.Grad[i] = float32(rng.NormFloat64() * math.Exp(float64(i%7-3))) // gradients over 6 decades
		}
		for i := range g.Grad {
			g.Grad[i] = float32(rng.NormFloat64())
		}
		lr := sched.At(s)
		o.Step(lr)
		refW.step(pw, w.Grad, float64(lr), true)
		refG.step(pg, g.Grad, float64(lr), false)
	}
	// Each step moves a value by at most ~lr; float32 rounding of the
	// moments adds a relative 1e-7 per step, so 40 steps stay under 2e-6.
	for _, c := range []struct {
		name string
		got  []float32
		want []float64
	}{{"w", w.Data, pw}, {"gate", g.Data, pg}} {
		for i := range c.got {
			if d := math.Abs(float64(c.got[i]) - c.want[i]); d > 2e-6*max(1, math.Abs(c.want[i])) {
				t.Fatalf("%s[%d] = %.8f, float64 reference %.8f (diff %.2g)", c.name, i, c.got[i], c.want[i], d)
			}
		}
	}
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// quadratic is f(x) = ½ Σ a_i (x_i - c_i)² with curvatures over 3 decades;
// grad can add Gaussian noise.
type quadratic struct {
	a, c []float64
	rng  *rand.Rand
}

func newQuadratic(n int, seed uint64) *quadratic {
	q := &quadratic{a: make([]float64, n), c: make([]float64, n), rng: rand.New(rand.NewPCG(seed, 99))}
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range q.a {
		q.a[i] = math.Pow(10, -2+3*r.Float64())
		q.c[i] = r.NormFloat64()
	}
	return q
}

func (q *quadratic) grad(x, g []float32, noise float64) {
	for i := range x {
		g[i] = float32(q.a[i]*(float64(x[i])-q.c[i]) + noise*q.rng.NormFloat64())
	}
}

func (q *quadratic) loss(x []float32) float64 {
	var s float64
	for i := range x {
		d := float64(x[i]) - q.c[i]
		s += 0.5 * q.a[i] * d * d
	}
	return s
}

// Test8BitTracksF32 runs f32 and 8-bit AdamW side by side on a quadratic
// whose curvatures span three decades inside every block (harder than real
// weight rows), with a cosine schedule to zero. Nearest rounding of the
// moments makes small updates of v stick, so 8-bit converges a little slower
// (measured: loss ratio ≤ 1.9 at any checkpoint, final parameters 0.2% (block
// 256) and 0.6% (block 2048) of the distance travelled apart); the bounds
// below leave room for that and fail on any real defect in the update.
func Test8BitTracksF32(t *testing.T) {
	const n, steps = 3 * 4096, 300
	sched := Schedule{Kind: Cosine, LR: 0.05, Warmup: 10, Total: steps}
	for _, bs := range []int{256, 2048} {
		q := newQuadratic(n, 5)
		x32 := &Param{Name: "x", Data: make([]float32, n), Grad: make([]float32, n)}
		x8 := &Param{Name: "x", Data: make([]float32, n), Grad: make([]float32, n)}
		cfg := DefaultAdamW()
		cfg.WeightDecay = 0
		o32, err := NewAdamW([]*Param{x32}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.EightBit, cfg.BlockSize = true, bs
		o8, err := NewAdamW([]*Param{x8}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !o8.state[0].eightBit() {
			t.Fatal("8-bit state not used for a 12288-value tensor")
		}
		if got, want := o8.StateBytes(), int64(2*n+8*((n+bs-1)/bs)); got != want {
			t.Errorf("8-bit state bytes = %d, want %d", got, want)
		}
		loss0 := q.loss(x32.Data)
		for s := range steps {
			q.grad(x32.Data, x32.Grad, 0)
			q.grad(x8.Data, x8.Grad, 0)
			o32.Step(sched.At(s))
			o8.Step(sched.At(s))
			if (s+1)%50 == 0 {
				l32, l8 := q.loss(x32.Data), q.loss(x8.Data)
				t.Logf("block %4d step %3d: loss f32 %.4f, 8-bit %.4f", bs, s+1, l32, l8)
				if l8 > 2.5*l32 {
					t.Errorf("block %d step %d: 8-bit loss %.4f > 2.5 × f32 loss %.4f", bs, s+1, l8, l32)
				}
			}
		}
		l32, l8 := q.loss(x32.Data), q.loss(x8.Data)
		if l32 > 1e-4*loss0 || l8 > 1e-4*loss0 {
			t.Errorf("block %d: not converged: loss %.1f -> f32 %.4f, 8-bit %.4f", bs, loss0, l32, l8)
		}
		var dist, ref float64
		for i := range x32.Data {
			d := float64(x8.Data[i] - x32.Data[i])
			dist += d * d
			ref += q.c[i] * q.c[i] // start (0) to optimum
		}
		rel := math.Sqrt(dist / ref)
		t.Logf("block %4d: ||x8-x32||/||x0-x*|| = %.4f", bs, rel)
		if rel > 0.01 {
			t.Errorf("block %d: 8-bit parameters ended %.4f (relative) away from f32", bs, rel)
		}
	}
}

// TestResumeExact: N steps straight must equal k steps, Save, Load into a
// fresh optimizer over a copy of the parameters, and N-k more steps, bit for
// bit.
func TestResumeExact(t *testing.T) {
	const n, steps, split = 5000, 25, 9
	mk := map[string]func([]*Param) (Optimizer, error){
		"adamw": func(ps []*Param) (Optimizer, error) { return NewAdamW(ps, DefaultAdamW()) },
		"adamw8bit": func(ps []*Param) (Optimizer, error) {
			c := DefaultAdamW()
			c.EightBit = true
			return NewAdamW(ps, c)
		},
		"sgd": func(ps []*Param) (Optimizer, error) {
			return NewSGD(ps, SGDConfig{Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3})
		},
	}
	sched := Schedule{Kind: Linear, LR: 0.01, Warmup: 3, Total: steps}
	for name, newOpt := range mk {
		t.Run(name, func(t *testing.T) {
			params := func() []*Param {
				return []*Param{
					{Name: "big", Data: make([]float32, n), Grad: make([]float32, n)},
					{Name: "small", Data: make([]float32, 10), Grad: make([]float32, 10), NoDecay: true},
				}
			}
			// grad depends on the step and the parameters only, so both runs
			// see the same gradients when their parameters agree.
			grad := func(ps []*Param, step int) {
				r := rand.New(rand.NewPCG(uint64(step), 3))
				for _, p := range ps {
					for i := range p.Data {
						p.Grad[i] = p.Data[i] - 1 + float32(r.NormFloat64())
					}
				}
			}
			run := func(ps []*Param, o Optimizer, from, to int) {
				for s := from; s < to; s++ {
					grad(ps, s)
					ClipGradNorm(ps, 50)
					o.Step(sched.At(o.Steps()))
				}
			}
			straight := params()
			o1, err := newOpt(straight)
			if err != nil {
				t.Fatal(err)
			}
			run(straight, o1, 0, steps)

			first := params()
			o2, _ := newOpt(first)
			run(first, o2, 0, split)
			var buf bytes.Buffer
			if err := o2.Save(&buf); err != nil {
				t.Fatal(err)
			}
			resumed := params()
			for i := range resumed {
				copy(resumed[i].Data, first[i].Data)
			}
			o3, _ := newOpt(resumed)
			if err := o3.Load(&buf); err != nil {
				t.Fatal(err)
			}
			if o3.Steps() != split {
				t.Fatalf("restored step count %d, want %d", o3.Steps(), split)
			}
			run(resumed, o3, split, steps)
			for i := range straight {
				for j := range straight[i].Data {
					a, b := straight[i].Data[j], resumed[i].Data[j]
					if math.Float32bits(a) != math.Float32bits(b) {
						t.Fatalf("%s[%d]: straight %v, resumed %v", straight[i].Name, j, a, b)
					}
				}
			}
		})
	}
}

func TestLoadRejectsMismatchAndCorruption(t *testing.T) {
	mkParams := func(names ...string) []*Param {
		var ps []*Param
		for _, nm := range names {
			ps = append(ps, &Param{Name: nm, Data: make([]float32, 8), Grad: []float32{1, 2, 3, 4, 5, 6, 7, 8}})
		}
		return ps
	}
	src, _ := NewAdamW(mkParams("a", "b"), DefaultAdamW())
	src.Step(0.1)
	var buf bytes.Buffer
	if err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0x40
	sgdState := func() []byte {
		o, _ := NewSGD(mkParams("a", "b"), SGDConfig{Momentum: 0.9})
		var b bytes.Buffer
		o.Save(&b)
		return b.Bytes()
	}()
	eightBit := DefaultAdamW()
	eightBit.EightBit, eightBit.MinSize8Bit = true, 1
	for _, tc := range []struct {
		name   string
		params []*Param
		cfg    AdamWConfig
		data   []byte
		want   string
	}{
		{"renamed parameter", mkParams("a", "c"), DefaultAdamW(), good, `"b" where "c" was expected`},
		{"fewer parameters", mkParams("a"), DefaultAdamW(), good, "2 parameters, optimizer has 1"},
		{"truncated", mkParams("a", "b"), DefaultAdamW(), good[:len(good)-10], "truncated"},
		{"flipped bit", mkParams("a", "b"), DefaultAdamW(), corrupt, "checksum"},
		{"other optimizer", mkParams("a", "b"), DefaultAdamW(), sgdState, `optimizer "sgd"`},
		{"8-bit vs f32", mkParams("a", "b"), eightBit, good, "8-bit"},
		{"not a state", mkParams("a", "b"), DefaultAdamW(), []byte("hello world, this is text"), "magic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := NewAdamW(tc.params, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = o.Load(bytes.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error = %v, want it to mention %q", err, tc.want)
			}
			if o.Steps() != 0 {
				t.Errorf("failed Load changed the step count to %d", o.Steps())
			}
		})
	}
}

func TestNewAdamWRejectsBadInput(t *testing.T) {
	ok := []*Param{{Name: "a", Data: make([]float32, 2), Grad: make([]float32, 2)}}
	bad := DefaultAdamW()
	bad.Beta2 = 1
	for _, tc := range []struct {
		name   string
		params []*Param
		cfg    AdamWConfig
	}{
		{"grad length", []*Param{{Name: "a", Data: make([]float32, 2), Grad: make([]float32, 3)}}, DefaultAdamW()},
		{"duplicate name", append(ok, ok[0]), DefaultAdamW()},
		{"beta2 = 1", ok, bad},
		{"zero eps", ok, AdamWConfig{Beta1: 0.9, Beta2: 0.99}},
	} {
		if _, err := NewAdamW(tc.params, tc.cfg); err == nil {
			t.Errorf("%s: NewAdamW accepted it", tc.name)
		}
	}
}

// BenchmarkAdamWStep reports optimizer throughput in parameters per second.
func BenchmarkAdamWStep(b *testing.B) {
	const n = 1 << 20
	for _, c := range []struct {
		eight   bool
		threads int
	}{{false, 1}, {false, 2}, {true, 1}, {true, 2}} {
		name := fmt.Sprintf("f32/threads=%d", c.threads)
		if c.eight {
			name = fmt.Sprintf("8bit/threads=%d", c.threads)
		}
		eight := c.eight
		b.Run(name, func(b *testing.B) {
			p := &Param{Name: "w", Data: make([]float32, n), Grad: make([]float32, n)}
			for i := range p.Grad {
				p.Grad[i] = float32(i%17) - 8
			}
			cfg := DefaultAdamW()
			cfg.EightBit = eight
			cfg.Threads = c.threads
			o, err := NewAdamW([]*Param{p}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				o.Step(1e-3)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparams/s")
		})
	}
}

// The vector AdamW update is the scalar loop's, value for value, on every
// tail length, with and without decay, on gradients from zero to large.
func TestAdamUpdateKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	k := adamConsts{b1: 0.9, b2: 0.999, eps: 1e-8, stepSize: 1e-3 / 0.19, bc2Sqrt: 0.0447}
	for _, n := range []int{1, 7, 8, 9, 31, 64, 1000} {
		for _, decay := range []float32{1, 0.9999} {
			p, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range p {
				p[i] = float32(rng.NormFloat64())
				g[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-8)))
				m[i] = float32(rng.NormFloat64() * 1e-3)
				v[i] = float32(rng.ExpFloat64() * 1e-6)
			}
			g[0] = 0
			p2, m2, v2 := append([]float32(nil), p...), append([]float32(nil), m...), append([]float32(nil), v...)
			adamUpdate(p, g, m, v, decay, k)
			adamUpdateGo(p2, g, m2, v2, decay, k)
			for i := range p {
				if math.Float32bits(p[i]) != math.Float32bits(p2[i]) || math.Float32bits(m[i]) != math.Float32bits(m2[i]) || math.Float32bits(v[i]) != math.Float32bits(v2[i]) {
					t.Fatalf("n %d decay %g [%d]: p %g m %g v %g, scalar loop %g %g %g", n, decay, i, p[i], m[i], v[i], p2[i], m2[i], v2[i])
				}
			}
		}
	}
}

// A step shared by several goroutines gives every parameter, moment and
// 8-bit code and scale of the step taken alone, on parameters of several
// spans (and a last partial one), a small one, and one without decay.
func TestAdamWThreadsMatchOne(t *testing.T) {
	for _, eight := range []bool{false, true} {
		run := func(threads int) ([]*Param, *AdamW) {
			rng := rand.New(rand.NewPCG(9, 9))
			var ps []*Param
			for i, n := range []int{3*spanLen + 1000, 37, 5000} {
				p := &Param{Name: fmt.Sprint("p", i), Data: make([]float32, n), Grad: make([]float32, n), NoDecay: i == 2}
				for j := range p.Data {
					p.Data[j] = float32(rng.NormFloat64())
				}
				ps = append(ps, p)
			}
			cfg := DefaultAdamW()
			cfg.EightBit, cfg.Threads = eight, threads
			o, err := NewAdamW(ps, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				for _, p := range ps {
					for j := range p.Grad {
						p.Grad[j] = float32(rng.NormFloat64())
					}
				}
				o.Step(1e-2)
			}
			return ps, o
		}
		p1, o1 := run(1)
		p3, o3 := run(3)
		for i := range p1 {
			for j := range p1[i].Data {
				if p1[i].Data[j] != p3[i].Data[j] {
					t.Fatalf("8-bit %v: %s[%d] = %g with 3 goroutines, %g with one", eight, p1[i].Name, j, p3[i].Data[j], p1[i].Data[j])
				}
			}
		}
		var b1, b3 bytes.Buffer
		if err := o1.Save(&b1); err != nil {
			t.Fatal(err)
		}
		if err := o3.Save(&b3); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1.Bytes(), b3.Bytes()) {
			t.Fatalf("8-bit %v: the saved state differs between 3 goroutines and one", eight)
		}
	}
}

// A parameter of several spans is updated as the same values split into
// parameters of one span each: the spans' offsets into the values, the
// moments and the 8-bit scales are right.
func TestAdamWSpansMatchSplitParams(t *testing.T) {
	const n = 3*spanLen + 5000 // the last part 8-bit too (MinSize8Bit), its last block partial
	for _, eight := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(10, 10))
		data, grads := make([]float32, n), make([][]float32, 3)
		for j := range data {
			data[j] = float32(rng.NormFloat64())
		}
		for s := range grads {
			grads[s] = make([]float32, n)
			for j := range grads[s] {
				grads[s][j] = float32(rng.NormFloat64())
			}
		}
		run := func(cuts []int) []float32 {
			var ps []*Param
			all := append([]float32(nil), data...)
			g := make([]float32, n)
			for i := 0; i+1 < len(cuts); i++ {
				lo, hi := cuts[i], cuts[i+1]
				ps = append(ps, &Param{Name: fmt.Sprint("p", i), Data: all[lo:hi], Grad: g[lo:hi]})
			}
			cfg := DefaultAdamW()
			cfg.EightBit = eight
			o, err := NewAdamW(ps, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, gs := range grads {
				copy(g, gs)
				o.Step(1e-2)
			}
			return all
		}
		whole := run([]int{0, n})
		split := run([]int{0, spanLen, 2 * spanLen, 3 * spanLen, n})
		for j := range whole {
			if whole[j] != split[j] {
				t.Fatalf("8-bit %v: value %d = %g in one parameter, %g split at the spans", eight, j, whole[j], split[j])
			}
		}
	}
}
