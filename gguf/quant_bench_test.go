package gguf

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkDequantize reports float32 values decoded per second (and GB/s of
// encoded input) for each decodable type, on a 4096x64 matrix.
func BenchmarkDequantize(b *testing.B) {
	const n = 4096 * 64
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.02)
	}
	for t := range typeTable {
		typ := Type(t)
		if !CanDequantize(typ) || !CanQuantize(typ) {
			continue
		}
		rs, _ := RowSize(typ, n)
		q := make([]byte, rs)
		Quantize(typ, x, q)
		y := make([]float32, n)
		b.Run(typ.String(), func(b *testing.B) {
			for b.Loop() {
				Dequantize(typ, q, y)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gvalues/s")
			b.ReportMetric(float64(rs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// BenchmarkQuantize: the reference quantizers (llama-quantize speed class).
func BenchmarkQuantize(b *testing.B) {
	const n = 256 * 64
	rng := rand.New(rand.NewPCG(2, 2))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.02)
	}
	for t := range typeTable {
		typ := Type(t)
		if !CanQuantize(typ) {
			continue
		}
		rs, _ := RowSize(typ, n)
		q := make([]byte, rs)
		b.Run(typ.String(), func(b *testing.B) {
			for b.Loop() {
				Quantize(typ, x, q)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mvalues/s")
		})
	}
}
