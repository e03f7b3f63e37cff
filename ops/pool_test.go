package ops

import (
	"sync/atomic"
	"testing"
	"time"
)

// Every index is visited exactly once, chunks respect the alignment, and
// worker ids stay in range, for pools of several sizes.
func TestPoolFor(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 2, 7, 64, 1000, 4097} {
			for _, align := range []int{1, 32, 256} {
				hits := make([]atomic.Int32, n)
				bad := atomic.Bool{}
				p.ForWorker(n, align, func(w, lo, hi int) {
					if w < 0 || w >= threads || lo%align != 0 || (hi%align != 0 && hi != n) || lo >= hi {
						bad.Store(true)
					}
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
				})
				if bad.Load() {
					t.Fatalf("threads %d n %d align %d: bad chunk or worker id", threads, n, align)
				}
				for i := range hits {
					if h := hits[i].Load(); h != 1 {
						t.Fatalf("threads %d n %d align %d: index %d visited %d times", threads, n, align, i, h)
					}
				}
			}
		}
		p.Close()
	}
}

// ForChunks: every index once, in chunks of exactly chunk (the last one
// shorter), worker ids in range.
func TestPoolForChunks(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 31, 32, 33, 768, 2049} {
			for _, chunk := range []int{0, 1, 32, 100} {
				hits := make([]atomic.Int32, n)
				bad := atomic.Bool{}
				p.ForChunks(n, chunk, func(w, lo, hi int) {
					c := max(chunk, 1)
					if w < 0 || w >= threads || lo%c != 0 || lo >= hi || (hi-lo != c && hi != n) {
						bad.Store(true)
					}
					if threads == 1 && (lo != 0 || hi != n) { // one thread: one call
						bad.Store(true)
					}
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
				})
				if bad.Load() {
					t.Fatalf("threads %d n %d chunk %d: bad chunk or worker id", threads, n, chunk)
				}
				for i := range hits {
					if h := hits[i].Load(); h != 1 {
						t.Fatalf("threads %d n %d chunk %d: index %d visited %d times", threads, n, chunk, i, h)
					}
				}
			}
		}
		p.Close()
	}
}

// A pool's matmul scratch is counted while held and released by Close.
func TestPoolScratchMetered(t *testing.T) {
	before := DefaultMeter.Current(Scratch)
	p := NewPool(2)
	w := NewMatrixF32("w", 64, 96, make([]float32, 64*96))
	MatMul(p, make([]float32, 8*64), make([]float32, 8*96), 8, w)
	MatMulBackwardInput(p, make([]float32, 2*96), make([]float32, 2*64), 2, w)
	if DefaultMeter.Current(Scratch) <= before {
		t.Errorf("scratch not counted")
	}
	p.Close()
	if got := DefaultMeter.Current(Scratch); got != before {
		t.Errorf("after Close: %d bytes of scratch counted, want %d", got, before)
	}
}

// Workers that went to sleep between loops (idle for longer than their
// spin) wake for the next one, and Close stops sleeping workers.
func TestPoolWakesSleepingWorkers(t *testing.T) {
	p := NewPool(3)
	helped := false
	for round := 0; round < 5; round++ {
		time.Sleep(5 * time.Millisecond) // far past the spin: the workers sleep
		var seen [3]atomic.Int32
		p.ForWorker(3000, 1, func(w, lo, hi int) {
			time.Sleep(200 * time.Microsecond) // long enough for the workers to wake and take chunks
			seen[w].Add(int32(hi - lo))
		})
		total := 0
		for w := range seen {
			total += int(seen[w].Load())
		}
		if total != 3000 {
			t.Fatalf("round %d: %d of 3000 indices run", round, total)
		}
		helped = helped || seen[1].Load() > 0 || seen[2].Load() > 0
	}
	if !helped {
		t.Fatalf("no worker ever woke: the caller ran every loop alone")
	}
	p.Close()
}
