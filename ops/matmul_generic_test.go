//go:build !(goexperiment.simd && amd64)

package ops

// setGemmPacked: the plain Go build has no packed path to switch.
func setGemmPacked(bool) func() { return func() {} }
