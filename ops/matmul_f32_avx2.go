//go:build goexperiment.simd && amd64

package ops

import "simd/archsimd"

// hasAVX2 says whether the AVX2+FMA kernels (the *_avx2.go files) run
// where AVX-512 is missing: 8-lane float32 and 32-byte integer vectors with
// fused multiply-add, as on AMD Zen 1–3 and Intel Haswell to Comet Lake.
// CPUID only: no vector instruction runs at package init.
var hasAVX2 = archsimd.X86.AVX2() && archsimd.X86.FMA()
