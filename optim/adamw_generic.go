//go:build !(goexperiment.simd && amd64)

package optim

func adamUpdate(p, g, m, v []float32, decay float32, k adamConsts) {
	adamUpdateGo(p, g, m, v, decay, k)
}
