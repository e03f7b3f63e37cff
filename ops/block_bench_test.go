package ops

import (
	"syscall"
	"testing"
	"time"
)

// One side block at width 256 over 512 tokens (8 heads of 32, 4 kv heads,
// FFN 688). Reports the forward alone (on a no-grad tape) and
// forward+backward, and their ratio (issue 4 acceptance; llm.c-style
// training runs near 3×). Times are process CPU time on one worker, so
// other programs sharing the machine do not skew the ratio;
// BenchmarkSideBlockParallel gives wall time on all cores.
func BenchmarkSideBlock(b *testing.B) {
	benchSideBlock(b, 1, cpuTime, sideShape256)
}

func BenchmarkSideBlockParallel(b *testing.B) {
	benchSideBlock(b, 0, time.Now, sideShape256)
}

// BenchmarkSideBlock160m is one block of the side network that
// BenchmarkTrainStepModel trains on the 160m preset at r = 8 (width 96,
// 12 heads of 8, FFN 256), wall time on all cores.
func BenchmarkSideBlock160m(b *testing.B) {
	benchSideBlock(b, 0, time.Now, sideShape{d: 96, nHead: 12, nHeadKV: 12, nFF: 256})
}

type sideShape struct{ d, nHead, nHeadKV, nFF int }

var sideShape256 = sideShape{d: 256, nHead: 8, nHeadKV: 4, nFF: 688}

// cpuTime returns the process's user+system CPU time as a time.Time offset
// from zero, so it subtracts like wall time.
func cpuTime() time.Time {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return time.Now()
	}
	return time.Unix(0, ru.Utime.Nano()+ru.Stime.Nano())
}

func benchSideBlock(b *testing.B, threads int, clock func() time.Time, sh sideShape) {
	const n = 512
	d, nHead, nHeadKV, nFF := sh.d, sh.nHead, sh.nHeadKV, sh.nFF
	blk := newTestBlock(1, d, nHead, nHeadKV, nFF)
	x := NewTensor(gcRand(2, n*d, 1), n, d)
	dy := NewTensor(gcRand(3, n*d, 1), n, d)
	pos := seqPositions(1, n)
	pool := NewPool(threads)
	defer pool.Close()
	fwd := func() {
		tp := NewNoGradTape(NewCPU(pool))
		blk.forward(tp, x, 1, pos)
		tp.Reset()
	}
	// The trainer's recompute tape: it reuses the buffers of the last round.
	tp := NewReusingTape(NewCPU(pool))
	defer tp.Close()
	fwdBwd := func() {
		y := blk.forward(tp, x, 1, pos)
		tp.BackwardFrom(y, dy)
	}
	fwd()
	fwdBwd()
	b.ResetTimer()
	var tf, tfb time.Duration
	for i := 0; i < b.N; i++ {
		t0 := clock()
		fwd()
		t1 := clock()
		fwdBwd()
		tf += t1.Sub(t0)
		tfb += clock().Sub(t1)
	}
	tf /= time.Duration(b.N)
	tfb /= time.Duration(b.N)
	b.ReportMetric(float64(tf.Microseconds())/1e3, "fwd_ms")
	b.ReportMetric(float64(tfb.Microseconds())/1e3, "fwd+bwd_ms")
	b.ReportMetric(float64(tfb)/float64(tf), "fwd+bwd/fwd")
	b.ReportMetric(n/tfb.Seconds(), "train_tok/s")
}
