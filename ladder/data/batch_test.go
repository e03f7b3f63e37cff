package data

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestNewBatch(t *testing.T) {
	exs := []Example{
		{Tokens: []int32{1, 5, 6, 7}, Mask: []bool{false, false, true, true}, Label: -1},
		{Tokens: []int32{1, 8}, Mask: []bool{false, true}, Label: 1},
	}
	b := NewBatch(exs, []int{4, 9})
	I := int32(IgnoreIndex)
	want := &Batch{
		B: 2, T: 3,
		Tokens:   []int32{1, 5, 6, 1, 0, 0},
		Targets:  []int32{I, 6, 7, 8, I, I},
		Lens:     []int{3, 1},
		Labels:   []int{-1, 1},
		Index:    []int{4, 9},
		NTargets: 3,
	}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("got  %+v\nwant %+v", b, want)
	}
}

func numbered(n int) []Example {
	exs := make([]Example, n)
	for i := range exs {
		exs[i] = Example{Tokens: []int32{1, int32(100 + i)}, Mask: []bool{false, true}, Label: -1}
	}
	return exs
}

// TestBatcherEpochs: every epoch visits each example once, epochs differ,
// the same seed gives the same batches, and without shuffle the order is
// the file order.
func TestBatcherEpochs(t *testing.T) {
	exs := numbered(10)
	a, _ := NewBatcher(exs, 4, 42, true)
	b, _ := NewBatcher(exs, 4, 42, true)
	if a.BatchesPerEpoch() != 3 {
		t.Fatalf("BatchesPerEpoch = %d, want 3", a.BatchesPerEpoch())
	}
	var epochs [][]int
	for range 3 {
		var order []int
		for k := range a.BatchesPerEpoch() {
			ba, bb := a.Next(), b.Next()
			if !reflect.DeepEqual(ba, bb) {
				t.Fatal("same seed, different batches")
			}
			if want := []int{4, 4, 2}[k]; ba.B != want {
				t.Errorf("batch %d has %d rows, want %d", k, ba.B, want)
			}
			for r, i := range ba.Index {
				if ba.Tokens[r*ba.T] != 1 || ba.Targets[r*ba.T] != int32(100+i) {
					t.Errorf("row %d does not hold example %d", r, i)
				}
			}
			order = append(order, ba.Index...)
		}
		if !reflect.DeepEqual(sortedCopy(order), []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
			t.Errorf("epoch visited %v", order)
		}
		epochs = append(epochs, order)
	}
	if a.Position() != (Position{Epoch: 3}) {
		t.Errorf("position after 3 epochs %+v", a.Position())
	}
	if reflect.DeepEqual(epochs[0], epochs[1]) || reflect.DeepEqual(epochs[1], epochs[2]) {
		t.Errorf("epochs repeat the same order: %v", epochs)
	}
	c, _ := NewBatcher(exs, 4, 43, true)
	if reflect.DeepEqual(c.Next().Index, epochs[0][:4]) {
		t.Error("seed 43 starts like seed 42")
	}
	plain, _ := NewBatcher(exs, 3, 1, false)
	if got := plain.Next().Index; !reflect.DeepEqual(got, []int{0, 1, 2}) {
		t.Errorf("unshuffled order %v", got)
	}
}

// TestBatcherResume: a fresh batcher moved to a saved Position (through its
// JSON form, as a checkpoint stores it) continues exactly like the original.
func TestBatcherResume(t *testing.T) {
	exs := numbered(23)
	orig, _ := NewBatcher(exs, 5, 9, true)
	for range 7 { // into the second epoch
		orig.Next()
	}
	saved, _ := json.Marshal(orig.Position())
	var pos Position
	if err := json.Unmarshal(saved, &pos); err != nil {
		t.Fatal(err)
	}
	resumed, _ := NewBatcher(exs, 5, 9, true)
	if err := resumed.Seek(pos); err != nil {
		t.Fatal(err)
	}
	for k := range 12 {
		if a, b := orig.Next(), resumed.Next(); !reflect.DeepEqual(a, b) {
			t.Fatalf("batch %d after resume differs: %v vs %v", k, a.Index, b.Index)
		}
	}
	for _, bad := range []Position{{Epoch: -1}, {Index: 23}, {Index: 3}, {Index: -5}} {
		if resumed.Seek(bad) == nil {
			t.Errorf("Seek(%+v) accepted", bad)
		}
	}
	if _, err := NewBatcher(nil, 4, 0, true); err == nil {
		t.Error("NewBatcher accepted no examples")
	}
	if _, err := NewBatcher(exs, 0, 0, true); err == nil {
		t.Error("NewBatcher accepted batch size 0")
	}
}

// TestShuffleUniform: over many seeds each element lands in each position
// about equally often (a biased bounded random number would skew this).
func TestShuffleUniform(t *testing.T) {
	const n, trials = 5, 20000
	var counts [n][n]int
	for s := range trials {
		p := permutation(n, rand.NewPCG(uint64(s), 1))
		for pos, v := range p {
			counts[v][pos]++
		}
	}
	// Expected 4000 per cell, standard deviation ~57; 5 sigma.
	for v := range n {
		for pos := range n {
			if c := counts[v][pos]; c < 4000-285 || c > 4000+285 {
				t.Errorf("element %d at position %d: %d times of %d", v, pos, c, trials)
			}
		}
	}
}

// lengthExamples returns n examples of random lengths 2..200.
func lengthExamples(n int) []Example {
	rng := rand.New(rand.NewPCG(7, 7))
	exs := make([]Example, n)
	for i := range exs {
		l := 2 + rng.IntN(199)
		ex := Example{Tokens: make([]int32, l), Mask: make([]bool, l), Label: -1}
		for k := range ex.Tokens {
			ex.Tokens[k] = int32(i)
			ex.Mask[k] = k > 0
		}
		exs[i] = ex
	}
	return exs
}

// TestBatcherGroupByLength: with GroupByLength every epoch still visits
// each example once, the last short batch stays last, each group of
// groupMega batches is its sorted sequences cut into runs (no two batches
// of a group overlap in length) and shuffled, padding drops to a small fraction of the
// ungrouped batches', epochs differ, and Seek resumes the order exactly.
func TestBatcherGroupByLength(t *testing.T) {
	const n, size = 1234, 4 // 309 batches: 7 groups, the last 9 batches and a short one
	exs := lengthExamples(n)
	pad := func(bt *Batch) int { return bt.B*bt.T - sum(bt.Lens) }
	plain, _ := NewBatcher(exs, size, 5, true)
	grouped, _ := NewBatcher(exs, size, 5, true)
	grouped.GroupByLength()
	var padPlain, padGrouped, rises int
	var first []int
	for epoch := range 2 {
		var order []int
		var group [][2]int // each batch's shortest and longest sequence
		for k := range grouped.BatchesPerEpoch() {
			bp, bg := plain.Next(), grouped.Next()
			padPlain += pad(bp)
			padGrouped += pad(bg)
			if k == grouped.BatchesPerEpoch()-1 && bg.B != n%size {
				t.Fatalf("epoch %d: the last batch has %d rows, want %d", epoch, bg.B, n%size)
			}
			lo, hi := bg.T, 0
			for _, l := range bg.Lens {
				lo, hi = min(lo, l), max(hi, l)
			}
			for _, o := range group {
				if lo < o[1] && o[0] < hi {
					t.Fatalf("epoch %d batch %d: lengths %d..%d overlap %d..%d of its group", epoch, k, lo, hi, o[0], o[1])
				}
			}
			if len(group) > 0 && lo >= group[len(group)-1][1] {
				rises++ // a batch longer than the one before: the group's batches are shuffled
			}
			if group = append(group, [2]int{lo, hi}); len(group) == groupMega {
				group = nil
			}
			order = append(order, bg.Index...)
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		if !reflect.DeepEqual(sortedCopy(order), want) {
			t.Fatalf("epoch %d does not visit every example once", epoch)
		}
		if epoch == 0 {
			first = order
		} else if reflect.DeepEqual(first, order) {
			t.Fatal("two epochs in the same order")
		}
	}
	t.Logf("padding tokens over two epochs: %d grouped, %d not", padGrouped, padPlain)
	if rises < 100 {
		t.Fatalf("%d batches longer than the one before them: the groups' batches go in sorted order", rises)
	}
	if padGrouped*10 > padPlain {
		t.Fatalf("grouped batches pad %d tokens, ungrouped %d", padGrouped, padPlain)
	}
	orig, _ := NewBatcher(exs, size, 5, true)
	orig.GroupByLength()
	for range 100 {
		orig.Next()
	}
	resumed, _ := NewBatcher(exs, size, 5, true)
	resumed.GroupByLength()
	if err := resumed.Seek(orig.Position()); err != nil {
		t.Fatal(err)
	}
	for k := range 400 { // across the epoch boundary
		if a, b := orig.Next(), resumed.Next(); !reflect.DeepEqual(a, b) {
			t.Fatalf("batch %d after resume differs", k)
		}
	}
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
