package engine

import (
	"math"
	"math/rand/v2"
	"sort"
)

// SamplerOptions choose the next token from logits. The chain follows
// llama.cpp's common sampler order: top-k, top-p, min-p, temperature, then a
// draw from the softmax. Temp <= 0 is greedy (argmax), whatever the rest.
type SamplerOptions struct {
	Temp float32 // default 0.8 in llama.cpp; 0 = greedy
	TopK int     // keep the K most likely (<= 0: all); llama.cpp default 40
	TopP float32 // keep the smallest set with probability >= P (>= 1: all); default 0.95
	MinP float32 // drop tokens below MinP × the top probability (<= 0: off); default 0.05
	Seed uint64
}

// Sampler draws tokens; it keeps its random state between calls.
type Sampler struct {
	o    SamplerOptions
	rng  *rand.Rand
	cand []candidate // scratch, reused
}

type candidate struct {
	id int32
	p  float32 // logit, then probability
}

// NewSampler returns a sampler with its own random source seeded by o.Seed.
func NewSampler(o SamplerOptions) *Sampler {
	return &Sampler{o: o, rng: rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))}
}

// Sample picks the next token from one row of logits (NVocab).
func (s *Sampler) Sample(logits []float32) int32 {
	if s.o.Temp <= 0 {
		return Argmax(logits)
	}
	c := s.cand[:0]
	for i, v := range logits {
		c = append(c, candidate{int32(i), v})
	}
	s.cand = c
	sort.Slice(c, func(i, j int) bool { return c[i].p > c[j].p || (c[i].p == c[j].p && c[i].id < c[j].id) })
	if k := s.o.TopK; k > 0 && k < len(c) {
		c = c[:k]
	}
	// top-p and min-p act on the softmax of the untempered logits, as in llama.cpp.
	softmax(c, 1)
	if p := s.o.TopP; p < 1 {
		var cum float32
		for i := range c {
			cum += c[i].p
			if cum >= p {
				c = c[:i+1]
				break
			}
		}
	}
	if mp := s.o.MinP; mp > 0 {
		lim := c[0].p * mp
		keep := 1
		for keep < len(c) && c[keep].p >= lim {
			keep++
		}
		c = c[:keep]
	}
	// Temperature on the surviving logits, then draw.
	for i := range c {
		c[i].p = logits[c[i].id]
	}
	softmax(c, s.o.Temp)
	r := s.rng.Float32()
	var cum float32
	for _, x := range c {
		cum += x.p
		if r < cum {
			return x.id
		}
	}
	return c[len(c)-1].id
}

// softmax turns the logits in c (sorted descending) into probabilities at temperature t.
func softmax(c []candidate, t float32) {
	maxv := c[0].p
	var sum float64
	for i := range c {
		e := math.Exp(float64((c[i].p - maxv) / t))
		c[i].p = float32(e)
		sum += e
	}
	for i := range c {
		c[i].p = float32(float64(c[i].p) / sum)
	}
}

// Argmax returns the index of the largest logit (the first one on ties, as
// llama.cpp's greedy sampler).
func Argmax(logits []float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best)
}
