package kernels

import (
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// Benchmarks at model sizes, for a real GPU (tools' GPU check): under the
// simulator they would take hours, so they skip there.

func realDevice(b *testing.B) *Device {
	d := device(b)
	if d.Name() == "GPGPU-Sim" {
		b.Skip("benchmarks need a real GPU")
	}
	return d
}

// benchWeight uploads a rows×cols weight of random bytes in type typ (the
// values do not matter for timing).
func benchWeight(b *testing.B, d *Device, typ gguf.Type, rows, cols int) Weight {
	rb, err := gguf.RowSize(typ, cols)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	data := make([]byte, rows*rb)
	for i := range data {
		data[i] = byte(r.UintN(256))
	}
	if typ == gguf.TypeF32 {
		for i := range data {
			if i%4 == 3 {
				data[i] &= 0x3f // finite floats
			}
		}
	}
	return Weight{Data: uploadBytes(b, d, data), Type: typ, Rows: rows, Cols: cols}
}

func BenchmarkMatVec(b *testing.B) {
	for _, typ := range []gguf.Type{gguf.TypeQ4_K, gguf.TypeQ8_0, gguf.TypeF16} {
		b.Run(typ.String(), func(b *testing.B) {
			d := realDevice(b)
			const rows, cols = 4096, 4096
			w := benchWeight(b, d, typ, rows, cols)
			x, out := upload(b, d, make([]float32, cols)), alloc(b, d, 4*rows)
			b.ResetTimer()
			for b.Loop() {
				if err := d.MatMul(out, x, 1, w, false); err != nil {
					b.Fatal(err)
				}
				if err := d.Synchronize(); err != nil { // launches are asynchronous
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.Data.Size())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

func BenchmarkMatMul(b *testing.B) {
	d := realDevice(b)
	const n, rows, cols = 512, 4096, 4096
	w := benchWeight(b, d, gguf.TypeQ4_K, rows, cols)
	x, out := upload(b, d, make([]float32, n*cols)), alloc(b, d, 4*n*rows)
	b.ResetTimer()
	for b.Loop() {
		if err := d.MatMul(out, x, n, w, false); err != nil {
			b.Fatal(err)
		}
		if err := d.Synchronize(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkAttention(b *testing.B) {
	d := realDevice(b)
	s := AttentionShape{NSeq: 1, N: 512, NKV: 512, NHead: 32, NHeadKV: 8, HeadDim: 128}
	q := alloc(b, d, int(s.qBytes()))
	kv := alloc(b, d, int(s.kvBytes()))
	out, lse := alloc(b, d, int(s.qBytes())), alloc(b, d, int(s.lseBytes()))
	for _, buf := range []Buffer{q, kv} {
		if err := d.Zero(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if err := d.AttentionForward(out, lse, q, kv, kv, s); err != nil {
			b.Fatal(err)
		}
		if err := d.Synchronize(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.N)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
