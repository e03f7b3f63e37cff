//go:build goexperiment.simd && amd64

package ops

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The AVX2 kernels against their plain Go twins, called directly (not
// through the dispatch, which prefers AVX-512 where present), so these
// tests run on any CPU with AVX2 and FMA.

func needAVX2(t *testing.T) {
	t.Helper()
	if !hasAVX2 {
		t.Skip("CPU has no AVX2+FMA")
	}
}

// TestGemmKernelAVX2: every row count, fresh and accumulating, short and
// odd depths, ldc wider than the panel; outputs within float32 rounding of
// the Go kernel (same terms in the same order, fused roundings only:
// |Δ| <= 1e-5·Σ|a·w|).
func TestGemmKernelAVX2(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(21, 22))
	for _, depth := range []int{1, 2, 7, 32, 255, 256} {
		for mr := 1; mr <= gemmMR; mr++ {
			for _, acc := range []bool{false, true} {
				const lda, ldc = 300, 41
				panel := randVec(rng, depth*gemmNR)
				a := randVec(rng, gemmMR*lda)
				a[0] = 0
				panel[1] = 1e30 // a huge weight: the tolerance scales with it
				c0 := randVec(rng, gemmMR*ldc)
				got := append([]float32(nil), c0...)
				want := append([]float32(nil), c0...)
				gemmKernelAVX2(panel, a, lda, depth, mr, got, ldc, acc)
				gemmKernelGo(panel, a, lda, depth, mr, want, ldc, acc)
				for i := 0; i < gemmMR; i++ {
					for j := 0; j < ldc; j++ {
						g, w := got[i*ldc+j], want[i*ldc+j]
						if i >= mr || j >= gemmNR { // untouched
							if g != c0[i*ldc+j] {
								t.Fatalf("depth %d mr %d: wrote c[%d][%d]", depth, mr, i, j)
							}
							continue
						}
						var mag float64
						for k := 0; k < depth; k++ {
							mag += math.Abs(float64(a[i*lda+k] * panel[k*gemmNR+j]))
						}
						if acc {
							mag += math.Abs(float64(c0[i*ldc+j]))
						}
						if math.Abs(float64(g-w)) > 1e-5*mag+1e-30 {
							t.Fatalf("depth %d mr %d acc %v: c[%d][%d] = %g, want %g", depth, mr, acc, i, j, g, w)
						}
					}
				}
			}
		}
	}
}
