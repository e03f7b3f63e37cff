package synth

// The weights must be the same bits for a seed on every Go version and
// CPU, so the generator uses integer arithmetic only: splitmix64 for the
// stream, and a normal deviate as the sum of twelve 16-bit uniforms (the
// classic Irwin-Hall approximation, exact to ±6σ). Box-Muller would need
// log/cos, whose last bits may differ between platforms (and the compiler
// may fuse multiply-adds on some of them).

// splitmix64 advances *s and returns the next value (Steele et al. 2014).
func splitmix64(s *uint64) uint64 {
	*s += 0x9E3779B97F4A7C15
	z := *s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// mix hashes a seed with a stream id into an independent seed.
func mix(seed, id uint64) uint64 {
	s := seed ^ (id * 0xD1B54A32D192ED03)
	return splitmix64(&s)
}

// fnv1a hashes a tensor name, so each tensor's values depend only on the
// seed and its name, not on the order or type of the others.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// irwinHallMean is the mean of a sum of twelve uniforms on [0, 65535]; the
// sum's variance is 12·(65536²−1)/12 ≈ 65536², so (sum−mean)/65536 is a
// standard normal deviate to within 1e-10 of its scale.
const irwinHallMean = 12 * 65535 / 2

// fillNormal writes mean + std·N(0,1) into dst from the stream *s, three
// 64-bit draws per value. One float64 multiply and one add, each rounded,
// then rounding to float32: IEEE operations with one possible result.
func fillNormal(dst []float32, s *uint64, mean, std float64) {
	scale := std / 65536
	for i := range dst {
		var sum int64
		for range 3 {
			r := splitmix64(s)
			sum += int64(r&0xFFFF) + int64(r>>16&0xFFFF) + int64(r>>32&0xFFFF) + int64(r>>48)
		}
		// The explicit float64() stops the compiler fusing a multiply-add.
		dst[i] = float32(mean + float64(float64(sum-irwinHallMean)*scale))
	}
}
