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
	mu      sync.Mutex              // one loop at a time
	cur     atomic.Pointer[poolJob] // the latest loop

	// Dispatch: a loop is published in cur and by bumping epoch; workers
	// spin on it for a while after their last loop (a decode step runs a
	// hundred short loops, and waking a parked goroutine costs tens of
	// microseconds each time), then sleep on wake until the next epoch.
	// The caller waits only for the workers that joined its loop
	// (poolJob.active), never for one that has yet to notice it: on a
	// busy machine a worker the OS has descheduled (or one still waking)
	// used to hold every loop up until it ran again, while the caller had
	// long done all the chunks itself.
	epoch    atomic.Uint64
	sleepMu  sync.Mutex
	wake     *sync.Cond
	sleepers atomic.Int32
	closed   atomic.Bool
	done     sync.WaitGroup // the workers, for Close

	// matmul scratch (activation rows encoded for the dot kernel), reused
	// across calls; guarded by mmu because MatMul runs For inside it.
	mmu     sync.Mutex
	actBuf  []byte
	workBuf [][]float32 // per-worker float scratch (dequantized weight tiles)
	gemm    gemmScratch // batched matmul buffers (matmul_gemm.go)
}

// poolJob is one For loop: workers 1..helpers grab chunks
// [next, next+chunk) until n, as does the caller (worker 0). Each loop has
// a job of its own (a worker may still look at an old one), and its
// fields other than next and active are not written once published.
type poolJob struct {
	n, chunk int
	helpers  int
	next     atomic.Int64
	active   atomic.Int32 // workers inside run
	fn       func(worker, lo, hi int)
}

// poolSpin is how many polls of the epoch a worker makes before it sleeps
// (with a pause instruction between polls: about 100 µs).
const poolSpin = 4000

// NewPool starts threads-1 workers (threads <= 0 means runtime.NumCPU()).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads}
	p.wake = sync.NewCond(&p.sleepMu)
	p.done.Add(threads - 1)
	for i := 1; i < threads; i++ {
		go p.worker(i)
	}
	p.workBuf = make([][]float32, threads)
	return p
}

// Close stops the workers and releases the pool's scratch. The pool must
// not be used afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed.Swap(true) {
		p.sleepMu.Lock()
		p.epoch.Add(1)
		p.wake.Broadcast()
		p.sleepMu.Unlock()
		p.done.Wait()
	}
	p.cur.Store(nil) // drop the last loop's closure
	p.mmu.Lock()
	defer p.mmu.Unlock()
	bytes := int64(cap(p.actBuf)) + 4*int64(cap(p.gemm.act)+cap(p.gemm.apack))
	for _, b := range p.workBuf {
		bytes += 4 * int64(len(b))
	}
	for _, b := range p.gemm.panel {
		bytes += 4 * int64(cap(b))
	}
	for _, b := range p.gemm.rows6 {
		bytes += 4 * int64(cap(b))
	}
	bytes += p.gemm.i8.bytes()
	bytes += p.gemm.q6k.bytes()
	for i := range p.gemm.q6kBwd {
		bytes += p.gemm.q6kBwd[i].bytes()
	}
	DefaultMeter.Add(Scratch, -bytes)
	p.actBuf, p.workBuf, p.gemm = nil, nil, gemmScratch{}
}

// Threads is the pool's size (workers plus the caller).
func (p *Pool) Threads() int { return p.threads }

// worker runs the loops it is given a part of: it waits for the epoch to
// move (spinning, then asleep) and takes part in the latest loop when its
// id is within the loop's helpers. It counts itself in the job's active
// before it takes a chunk: the caller, having seen every chunk taken,
// waits for active to fall to zero, and a worker that counts itself in
// after that finds no chunk left and never calls fn.
func (p *Pool) worker(id int) {
	defer p.done.Done()
	var seen uint64 // the epoch at NewPool: a loop may be published before this goroutine runs
	for {
		e := p.epoch.Load()
		for spins := 0; e == seen; spins++ {
			if spins < poolSpin {
				pollPause(spins)
				e = p.epoch.Load()
				continue
			}
			p.sleepMu.Lock()
			p.sleepers.Add(1)
			for e = p.epoch.Load(); e == seen; e = p.epoch.Load() {
				p.wake.Wait()
			}
			p.sleepers.Add(-1)
			p.sleepMu.Unlock()
		}
		seen = e
		if p.closed.Load() {
			return
		}
		if j := p.cur.Load(); j != nil && id <= j.helpers {
			j.active.Add(1)
			j.run(id)
			j.active.Add(-1)
		}
	}
}

// pollPause is the wait between two polls of a spin loop: a PAUSE, and
// every 64 polls a yield to the scheduler, so that spinning goroutines
// never hold a processor that a pool larger than GOMAXPROCS (or another
// job) needs for long.
func pollPause(spins int) {
	if spins%64 == 63 {
		runtime.Gosched()
		return
	}
	procyield()
}

// run takes chunks of the loop until none is left.
func (j *poolJob) run(worker int) {
	for {
		lo := int(j.next.Add(int64(j.chunk))) - j.chunk
		if lo >= j.n {
			return
		}
		j.fn(worker, lo, min(lo+j.chunk, j.n))
	}
}

// For splits [0, n) into chunks run by the pool's workers and the caller;
// it returns when all are done. fn gets disjoint [lo, hi) ranges.
func (p *Pool) For(n int, fn func(lo, hi int)) {
	p.ForWorker(n, 1, func(_, lo, hi int) { fn(lo, hi) })
}

// ForWorker is For with the worker's index (0..Threads()-1, for per-worker
// scratch) and chunk boundaries at multiples of align (e.g. quant blocks).
func (p *Pool) ForWorker(n, align int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	if align < 1 {
		align = 1
	}
	units := (n + align - 1) / align
	// About four chunks per worker: balance without much contention.
	p.forChunks(n, max(1, units/(4*p.threads))*align, fn)
}

// ForChunks is ForWorker with chunks of exactly chunk (the last one
// shorter): for loops whose chunks are few and long, where ForWorker's
// four per worker would leave a worker idle for a large part of the loop
// while the other finishes its last one.
func (p *Pool) ForChunks(n, chunk int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	p.forChunks(n, max(1, chunk), fn)
}

func (p *Pool) forChunks(n, chunk int, fn func(worker, lo, hi int)) {
	units := (n + chunk - 1) / chunk
	if p.threads == 1 || units == 1 {
		fn(0, 0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	j := &poolJob{n: n, chunk: chunk, fn: fn, helpers: min(p.threads-1, units-1)}
	p.cur.Store(j) // publishes the job (atomics order the stores above)
	p.epoch.Add(1)
	if p.sleepers.Load() > 0 {
		p.sleepMu.Lock()
		p.wake.Broadcast()
		p.sleepMu.Unlock()
	}
	j.run(0) // returns once every chunk is taken
	for spins := 0; j.active.Load() != 0; spins++ {
		pollPause(spins)
	}
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
