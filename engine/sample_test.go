package engine

import (
	"math"
	"testing"
)

// Greedy takes the first maximum; top-k 1, a tiny top-p or min-p 1 leave
// only the most likely token; a seed fixes the draws; at temperature 1
// with no truncation the draw frequencies follow the softmax.
func TestSampler(t *testing.T) {
	logits := []float32{1, 3, 3, 0.5, 2}
	if got := Argmax(logits); got != 1 {
		t.Errorf("argmax %d, want 1 (first of the ties)", got)
	}
	for _, o := range []SamplerOptions{
		{Temp: 0},
		{Temp: 1, TopK: 1, TopP: 1},
		{Temp: 1, TopP: 1e-6},
		{Temp: 1, TopP: 1, MinP: 1},
	} {
		s := NewSampler(o)
		for range 20 {
			if id := s.Sample(logits); id != 1 && !(o.Temp > 0 && id == 2 && o.TopK != 1) {
				t.Fatalf("%+v: sampled %d", o, id)
			}
		}
	}
	a, b := NewSampler(SamplerOptions{Temp: 0.8, Seed: 42}), NewSampler(SamplerOptions{Temp: 0.8, Seed: 42})
	for range 50 {
		if a.Sample(logits) != b.Sample(logits) {
			t.Fatal("same seed, different draws")
		}
	}
	s := NewSampler(SamplerOptions{Temp: 1, TopP: 1, Seed: 7})
	counts := make([]int, len(logits))
	const draws = 20000
	for range draws {
		counts[s.Sample(logits)]++
	}
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l))
	}
	for i, l := range logits {
		p := math.Exp(float64(l)) / z
		if got := float64(counts[i]) / draws; math.Abs(got-p) > 4*math.Sqrt(p*(1-p)/draws)+1e-3 {
			t.Errorf("token %d drawn %.4f of the time, softmax %.4f", i, got, p)
		}
	}
}
