//go:build !(goexperiment.simd && amd64)

package ops

import "ladder-engine/gguf"

var dotV2 = map[gguf.Type]func(int, []byte, []byte) float32{}
