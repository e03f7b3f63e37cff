package ops

import (
	"fmt"
	"testing"
)

// BenchmarkAttention is causal attention forward and backward over one
// 512-token sequence: the side network's heads (12 of 8 at r = 8 on a
// 768-wide backbone) and a backbone's (12 of 64), with the block loops
// and with the row loops.
func BenchmarkAttention(b *testing.B) {
	for _, c := range []struct{ nHead, hd int }{{12, 8}, {32, 8}, {12, 64}} {
		n, qw := 512, c.nHead*c.hd
		q, k, v := gcRand(1, n*qw, 1), gcRand(2, n*qw, 1), gcRand(3, n*qw, 1)
		dout := gcRand(4, n*qw, 1)
		out := make([]float32, n*qw)
		att := make([]float32, c.nHead*n*n)
		dq, dk, dv := make([]float32, n*qw), make([]float32, n*qw), make([]float32, n*qw)
		p := NewPool(2)
		for _, blocks := range []bool{false, true} {
			attnBlocks = blocks
			b.Run(fmt.Sprintf("fwd/%dx%d/blocks=%v", c.nHead, c.hd, blocks), func(b *testing.B) {
				for b.Loop() {
					attentionForwardBatch(p, out, q, k, v, att, 1, n, n, c.nHead, c.nHead, c.hd, 0, nil)
				}
			})
			b.Run(fmt.Sprintf("bwd/%dx%d/blocks=%v", c.nHead, c.hd, blocks), func(b *testing.B) {
				for b.Loop() {
					attentionBackwardBatch(p, dq, dk, dv, dout, q, k, v, att, 1, n, n, c.nHead, c.nHead, c.hd, 0, nil)
				}
			})
		}
		attnBlocks = true
		p.Close()
	}
}
