package ops

import "testing"

// Saved activations are counted while the tape holds them and released by
// Backward (or Reset); the backward pass never holds more activations than
// the forward did.
func TestTapeMemoryAccounting(t *testing.T) {
	const nSeq, n, d = 2, 8, 32
	b := newTestBlock(1, d, 4, 2, 48)
	x := NewTensor(gcRand(2, nSeq*n*d, 1), nSeq*n, d)
	pos := seqPositions(nSeq, n)
	// One pass first: the pool's GEMM buffers grow to these shapes once and
	// stay (counted as scratch, but the pool's, not the tape's).
	warm := NewTape(NewCPU(nil))
	warm.Backward(warm.Sum(b.forward(warm, x, nSeq, pos)))
	act0, scr0 := DefaultMeter.Current(Activations), DefaultMeter.Current(Scratch)
	// Measure peaks from here on, keeping every class's current count.
	var cur [numClasses]int64
	for c := range cur {
		cur[c] = DefaultMeter.Current(MemClass(c))
	}
	DefaultMeter.Reset()
	for c, v := range cur {
		DefaultMeter.Add(MemClass(c), v)
	}

	tp := NewTape(NewCPU(nil))
	y := b.forward(tp, x, nSeq, pos)
	held := DefaultMeter.Current(Activations) - act0
	// 2 norms, 7 linears, 2 RoPEs, attention, 2 adds, SwiGLU: 15 outputs
	// of (nSeq*n, ≤ 48), the attention probabilities (nSeq, 4, n, n) and
	// 2×(nSeq*n) rstd values. At least the probabilities and outputs:
	if min := int64(4 * (nSeq*n*d*8 + nSeq*4*n*n)); held < min {
		t.Fatalf("forward holds %d bytes of activations, want at least %d", held, min)
	}
	loss := tp.Sum(y)
	tp.Backward(loss)
	if got := DefaultMeter.Current(Activations); got != act0 {
		t.Errorf("after Backward: %d bytes of activations held, want %d", got-act0, 0)
	}
	if got := DefaultMeter.Current(Scratch); got != scr0 {
		t.Errorf("after Backward: %d bytes of scratch held, want 0", got-scr0)
	}
	if peak := DefaultMeter.Peak(Activations) - act0; peak > held+4 {
		t.Errorf("activation peak %d during backward exceeds the forward's %d (+ the loss)", peak, held)
	}
	if loss.F32() == nil || y.F32() != nil {
		t.Errorf("after Backward the loss must stay readable and intermediates be released")
	}
	if tp.Len() != 0 {
		t.Errorf("tape keeps %d records after Backward", tp.Len())
	}

	// A forward without backward (evaluation): Reset releases it.
	b.forward(tp, x, nSeq, pos)
	tp.Reset()
	if got := DefaultMeter.Current(Activations); got != act0 {
		t.Errorf("after Reset: %d bytes of activations held", got-act0)
	}
	// A no-grad tape records nothing and counts its outputs as scratch.
	ng := NewNoGradTape(NewCPU(nil))
	b.forward(ng, x, nSeq, pos)
	if ng.Len() != 0 || DefaultMeter.Current(Activations) != act0 || DefaultMeter.Current(Scratch) <= scr0 {
		t.Errorf("no-grad tape: %d records, activations %d, scratch %d", ng.Len(), DefaultMeter.Current(Activations)-act0, DefaultMeter.Current(Scratch)-scr0)
	}
	// Reset keeps the buffers for the next forward (scratch reused layer
	// after layer): a second forward allocates nothing new; Close frees them.
	ng.Reset()
	held = DefaultMeter.Current(Scratch)
	b.forward(ng, x, nSeq, pos)
	ng.Reset()
	if got := DefaultMeter.Current(Scratch); got != held {
		t.Errorf("second forward on a reset no-grad tape: scratch %d, want %d (reused)", got-scr0, held-scr0)
	}
	ng.Close()
	if got := DefaultMeter.Current(Scratch); got != scr0 {
		t.Errorf("no-grad tape after Close: %d bytes of scratch held", got-scr0)
	}
}

// Only what needs a gradient is recorded; frozen inputs get no buffers;
// parameter gradients accumulate across Backward calls (micro-batches).
func TestTapeGradientFlow(t *testing.T) {
	frozenW := NewTensor(gcRand(1, 4*3, 1), 4, 3)
	frozenX := NewTensor(gcRand(2, 2*3, 1), 2, 3)
	w := gcParam(3, 1, 4, 3)
	tp := NewTape(NewCPU(nil))
	c := tp.Linear(frozenX, frozenW) // constant: nothing to record
	if tp.Len() != 0 || c.RequiresGrad() {
		t.Fatalf("an op on frozen inputs was recorded (%d records)", tp.Len())
	}
	loss := tp.Sum(tp.Add(c, tp.Linear(frozenX, w)))
	if tp.Len() != 3 {
		t.Fatalf("%d records, want 3 (linear, add, sum)", tp.Len())
	}
	tp.Backward(loss)
	if frozenW.GradF32() != nil || frozenX.GradF32() != nil {
		t.Fatal("frozen tensors got gradient buffers")
	}
	// d/dw Σ x·wᵀ = Σ_rows x for every output row.
	once := append([]float32(nil), w.GradF32()...)
	for o := 0; o < 4; o++ {
		for i := 0; i < 3; i++ {
			if want := frozenX.F32()[i] + frozenX.F32()[3+i]; !closeRel(once[o*3+i], float64(want), 1e-6) {
				t.Fatalf("dw[%d,%d] = %g, want %g", o, i, once[o*3+i], want)
			}
		}
	}
	tp.Backward(tp.Sum(tp.Linear(frozenX, w)))
	for i, g := range w.GradF32() {
		if !closeRel(g, 2*float64(once[i]), 1e-6) {
			t.Fatalf("second Backward: grad %g, want accumulated %g", g, 2*once[i])
		}
	}
	w.ZeroGrad()
	for _, g := range w.GradF32() {
		if g != 0 {
			t.Fatal("ZeroGrad left a value")
		}
	}
}

// A nil tape is inference: same outputs, nothing recorded or counted.
func TestNilTapeMatchesRecording(t *testing.T) {
	const nSeq, n, d = 1, 6, 16
	b := newTestBlock(5, d, 2, 1, 24)
	x := NewTensor(gcRand(6, nSeq*n*d, 1), nSeq*n, d)
	pos := seqPositions(nSeq, n)
	act := DefaultMeter.Current(Activations)
	inf := b.forward(nil, x, nSeq, pos)
	if DefaultMeter.Current(Activations) != act {
		t.Fatal("a nil tape counted activations")
	}
	tp := NewTape(NewCPU(nil))
	rec := b.forward(tp, x, nSeq, pos)
	for i := range inf.F32() {
		if inf.F32()[i] != rec.F32()[i] {
			t.Fatalf("value %d: nil tape %g, recording %g", i, inf.F32()[i], rec.F32()[i])
		}
	}
	tp.Reset()
}

// A no-grad tape reuses its released buffers of a size while ops keep
// asking for it, and frees a size two Resets after its last use, so
// sequences of ever new lengths do not pile up buffers.
func TestNoGradTapeFreesUnusedSizes(t *testing.T) {
	be := NewCPU(nil)
	tp := NewNoGradTape(be)
	held := func() int64 { return be.Meter().Current(Scratch) }
	base := held()
	step := func(n int) *float32 { // the output's storage, before Reset releases it
		x := &hostF32(tp.newTensor(be, n, 4).buf)[0]
		tp.Reset()
		return x
	}
	if a, b := step(10), step(10); a != b {
		t.Fatalf("the same size was not reused")
	}
	for n := 11; n < 60; n++ {
		step(n)
		if got, limit := held()-base, int64(4*4*(n+n-1)); got > limit {
			t.Fatalf("after length %d: %d bytes kept, want at most the last two lengths' %d", n, got, limit)
		}
	}
	tp.Close()
	if got := held() - base; got != 0 {
		t.Fatalf("after Close: %d bytes kept", got)
	}
}
