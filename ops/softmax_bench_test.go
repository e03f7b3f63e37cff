package ops

import "testing"

// BenchmarkSoftmaxRow is one attention row of 512 scores (ns/op / 512 is
// the cost per score).
func BenchmarkSoftmaxRow(b *testing.B) {
	x := gcRand(3, 512, 4)
	buf := make([]float32, len(x))
	for b.Loop() {
		copy(buf, x)
		softmaxRow(buf, 0.125, false)
	}
}
