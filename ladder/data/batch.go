package data

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// IgnoreIndex marks a target that carries no loss (prompt, padding).
const IgnoreIndex = -1

// Batch is B sequences laid out (B, T), T the longest sequence's input
// length in this batch.
type Batch struct {
	B, T     int
	Tokens   []int32 // (B,T) input ids; after Lens[b] padded with 0
	Targets  []int32 // (B,T) the next token where it carries loss, else IgnoreIndex
	Lens     []int   // (B) input tokens of each row (len(example) - 1)
	Labels   []int   // (B) classification label of each row, -1 when none
	Index    []int   // (B) index of each row's example in the batcher's list
	NTargets int     // targets that are not IgnoreIndex
}

// NewBatch lays out examples as a batch: row b's inputs are
// Tokens[:len-1] and targets Tokens[1:] where Mask says so.
func NewBatch(exs []Example, index []int) *Batch {
	b := &Batch{B: len(exs), Lens: make([]int, len(exs)), Labels: make([]int, len(exs)), Index: index}
	for i := range exs {
		b.Lens[i] = max(len(exs[i].Tokens)-1, 0)
		b.T = max(b.T, b.Lens[i])
		b.Labels[i] = exs[i].Label
	}
	b.Tokens = make([]int32, b.B*b.T)
	b.Targets = make([]int32, b.B*b.T)
	for i := range b.Targets {
		b.Targets[i] = IgnoreIndex
	}
	for i, ex := range exs {
		row := i * b.T
		copy(b.Tokens[row:row+b.Lens[i]], ex.Tokens)
		for t := 0; t < b.Lens[i]; t++ {
			if ex.Mask[t+1] {
				b.Targets[row+t] = ex.Tokens[t+1]
				b.NTargets++
			}
		}
	}
	return b
}

// Position is where a Batcher stands: the epoch and the number of examples
// of that epoch already handed out. It is what a checkpoint stores to resume.
type Position struct {
	Epoch int `json:"epoch"`
	Index int `json:"index"`
}

// Batcher hands out batches over a list of examples, epoch after epoch. With
// shuffle, each epoch visits the examples in a permutation that depends only
// on the seed and the epoch number, so a Batcher moved to a saved Position
// continues exactly as the original would have. The last batch of an epoch
// may have fewer rows.
type Batcher struct {
	exs     []Example
	size    int
	seed    uint64
	shuffle bool
	group   bool // GroupByLength
	pos     Position
	perm    []int // order of the current epoch
}

// groupMega is how many batches GroupByLength sorts together (Hugging
// Face's LengthGroupedSampler uses 50).
const groupMega = 50

// GroupByLength makes each shuffled epoch batch sequences of similar
// length, so that fewer padding tokens run through the side network: the
// permutation is cut into groups of groupMega batches, each group is
// sorted by length (longest first) and cut into batches, and the group's
// full batches are shuffled among themselves. The order still depends only
// on the seed and the epoch, so Seek resumes it.
func (b *Batcher) GroupByLength() {
	b.group = true
	b.order()
}

// NewBatcher makes a batcher of batchSize rows (> 0) over exs (not empty).
func NewBatcher(exs []Example, batchSize int, seed uint64, shuffle bool) (*Batcher, error) {
	if len(exs) == 0 {
		return nil, fmt.Errorf("data: no examples to batch")
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("data: batch size %d must be >= 1", batchSize)
	}
	b := &Batcher{exs: exs, size: batchSize, seed: seed, shuffle: shuffle}
	b.order()
	return b, nil
}

// order computes the current epoch's permutation.
func (b *Batcher) order() {
	if !b.shuffle {
		b.perm = permutation(len(b.exs), nil)
		return
	}
	b.perm = permutation(len(b.exs), rand.NewPCG(b.seed, uint64(b.pos.Epoch)))
	if !b.group {
		return
	}
	src := rand.NewPCG(b.seed^0x9e3779b97f4a7c15, uint64(b.pos.Epoch)) // the batches' shuffle: its own stream
	for lo := 0; lo < len(b.perm); lo += groupMega * b.size {
		g := b.perm[lo:min(lo+groupMega*b.size, len(b.perm))]
		slices.SortStableFunc(g, func(x, y int) int { return len(b.exs[y].Tokens) - len(b.exs[x].Tokens) })
		// Only full batches move: a short last batch stays the epoch's last.
		batches := make([][]int, len(g)/b.size)
		for i := range batches {
			batches[i] = append([]int(nil), g[i*b.size:(i+1)*b.size]...)
		}
		shuffle(batches, src)
		for i, bt := range batches {
			copy(g[i*b.size:], bt)
		}
	}
}

// BatchesPerEpoch is the number of Next calls that make one epoch.
func (b *Batcher) BatchesPerEpoch() int { return (len(b.exs) + b.size - 1) / b.size }

// Position returns the position of the next batch.
func (b *Batcher) Position() Position { return b.pos }

// Seek moves to a position returned by Position (from this or an identical
// batcher: same examples, batch size and seed).
func (b *Batcher) Seek(p Position) error {
	if p.Epoch < 0 || p.Index < 0 || p.Index >= len(b.exs) || p.Index%b.size != 0 {
		return fmt.Errorf("data: cannot resume at epoch %d, example %d: %d examples in batches of %d (different data or batch size?)",
			p.Epoch, p.Index, len(b.exs), b.size)
	}
	epochChanged := p.Epoch != b.pos.Epoch
	b.pos = p
	if epochChanged {
		b.order()
	}
	return nil
}

// Next returns the next batch, moving to the next epoch after the last one.
func (b *Batcher) Next() *Batch {
	lo := b.pos.Index
	hi := min(lo+b.size, len(b.exs))
	idx := append([]int(nil), b.perm[lo:hi]...)
	rows := make([]Example, len(idx))
	for i, j := range idx {
		rows[i] = b.exs[j]
	}
	b.pos.Index = hi
	if hi == len(b.exs) {
		b.pos = Position{Epoch: b.pos.Epoch + 1}
		b.order()
	}
	return NewBatch(rows, idx)
}

// permutation returns 0..n-1, shuffled by src unless src is nil.
func permutation(n int, src rand.Source) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	if src != nil {
		shuffle(p, src)
	}
	return p
}

// shuffle is a Fisher-Yates shuffle written out here, so the order depends
// only on the PCG stream (specified by math/rand/v2) and not on how a Go
// release implements rand.Shuffle: checkpoints resume across Go versions.
func shuffle[T any](s []T, src rand.Source) {
	for i := len(s) - 1; i > 0; i-- {
		j := int(uniform(src, uint64(i+1)))
		s[i], s[j] = s[j], s[i]
	}
}

// uniform returns a uniform integer in [0, n) by rejection sampling.
func uniform(src rand.Source, n uint64) uint64 {
	limit := -n % n // 2^64 mod n: values below it would bias the result
	for {
		if v := src.Uint64(); v >= limit {
			return v % n
		}
	}
}
