package ops

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool is a fixed set of worker goroutines, sized once by -t, that split
// loops by rows (STYLE.md: no goroutine per element). The calling goroutine
// is one of the workers, so NewPool(1) runs everything inline.
//
// For calls from different goroutines are serialized; a For must not call
// For on the same pool from inside fn (it would wait for itself).
type Pool struct {
	threads int
	mu      sync.Mutex // one loop at a time
	wake    []chan *poolJob
	job     poolJob

	// matmul scratch (activation rows encoded for the dot kernel), reused
	// across calls; guarded by mmu because MatMul runs For inside it.
	mmu     sync.Mutex
	actBuf  []byte
	workBuf [][]float32 // per-worker float scratch (dequantized weight tiles)
	gemm    gemmScratch // batched matmul buffers (matmul_gemm.go)
}

// poolJob is one For loop: workers grab chunks [next, next+chunk) until n.
type poolJob struct {
	n, chunk int
	next     atomic.Int64
	fn       func(worker, lo, hi int)
	wg       sync.WaitGroup
}

// NewPool starts threads-1 workers (threads <= 0 means runtime.NumCPU()).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads, wake: make([]chan *poolJob, threads-1)}
	for i := range p.wake {
		ch := make(chan *poolJob)
		p.wake[i] = ch
		go poolWorker(i+1, ch)
	}
	p.workBuf = make([][]float32, threads)
	return p
}

// Close stops the workers and releases the scratch buffers (counted as
// Scratch); the pool must not be used afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.wake {
		close(ch)
	}
	p.wake = nil
	p.mmu.Lock()
	defer p.mmu.Unlock()
	bytes := int64(cap(p.actBuf)) + 4*int64(cap(p.gemm.act))
	for _, b := range p.workBuf {
		bytes += 4 * int64(len(b))
	}
	for _, b := range p.gemm.panel {
		bytes += 4 * int64(cap(b))
	}
	bytes += p.gemm.i8.bytes()
	DefaultMeter.Add(Scratch, -bytes)
	p.actBuf, p.workBuf, p.gemm = nil, nil, gemmScratch{}
}

// Threads is the number of workers, the caller included.
func (p *Pool) Threads() int { return p.threads }

func poolWorker(id int, ch chan *poolJob) {
	for j := range ch {
		j.run(id)
		j.wg.Done()
	}
}

func (j *poolJob) run(worker int) {
	for {
		lo := int(j.next.Add(int64(j.chunk))) - j.chunk
		if lo >= j.n {
			return
		}
		j.fn(worker, lo, min(lo+j.chunk, j.n))
	}
}

// For splits [0,n) into contiguous chunks and runs fn on them over the
// workers, returning when all are done. Chunks are handed out on demand
// (a few per worker) so a worker slowed by another process does not hold
// up the loop.
func (p *Pool) For(n int, fn func(lo, hi int)) {
	p.ForWorker(n, 1, func(_, lo, hi int) { fn(lo, hi) })
}

// ForWorker is For with the worker index (0..Threads()-1) passed to fn, for
// per-worker scratch, and chunks that are multiples of align (the last one
// may be shorter), for splits that must respect quantization blocks.
func (p *Pool) ForWorker(n, align int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	if align < 1 {
		align = 1
	}
	units := (n + align - 1) / align
	if p.threads == 1 || units == 1 {
		fn(0, 0, n)
		return
	}
	// About four chunks per worker: enough to balance, few enough that the
	// atomic counter costs nothing next to the work.
	perChunk := max(1, units/(4*p.threads))
	p.mu.Lock()
	defer p.mu.Unlock()
	j := &p.job
	j.n, j.chunk, j.fn = n, perChunk*align, fn
	j.next.Store(0)
	helpers := min(len(p.wake), units-1)
	j.wg.Add(helpers)
	for i := 0; i < helpers; i++ {
		p.wake[i] <- j
	}
	j.run(0)
	j.wg.Wait()
	j.fn = nil
}

// workerScratch returns worker w's float scratch of at least n values,
// growing it (counted as Scratch) when needed. Only for use inside a loop
// run by p while p.mmu is held.
func (p *Pool) workerScratch(w, n int) []float32 {
	if len(p.workBuf[w]) < n {
		Free(Scratch, p.workBuf[w])
		p.workBuf[w] = Alloc(Scratch, n)
	}
	return p.workBuf[w][:n]
}

// actScratch returns the matmul activation buffer of at least n bytes.
// Caller holds p.mmu.
func (p *Pool) actScratch(n int) []byte {
	if cap(p.actBuf) < n {
		DefaultMeter.Add(Scratch, int64(n-cap(p.actBuf)))
		p.actBuf = make([]byte, n)
	}
	return p.actBuf[:n]
}
