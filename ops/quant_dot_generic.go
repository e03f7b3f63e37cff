//go:build !(goexperiment.simd && amd64)

package ops

// useFastDots: without GOEXPERIMENT=simd on amd64 every weight type uses its
// plain Go reference kernel.
func useFastDots() {}
