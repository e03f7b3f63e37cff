//go:build goexperiment.simd && amd64

package ops

import (
	"encoding/binary"
	"math"
	"simd/archsimd"
	"testing"

	"ladder-engine/gguf"
)

// The vector half->float widening equals the scalar conversion bit for bit
// on all 65536 halves (zeros, subnormals, normals, infinities, NaNs).
func TestF16ToF32x16Exhaustive(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("no AVX-512")
	}
	var buf [32]byte
	var out [16]float32
	for base := 0; base < 1<<16; base += 16 {
		for i := 0; i < 16; i++ {
			binary.LittleEndian.PutUint16(buf[2*i:], uint16(base+i))
		}
		f16ToF32x16(archsimd.LoadUint8x32Slice(buf[:]).AsUint16x16()).Store(&out)
		for i, f := range out {
			want := gguf.F16ToF32(uint16(base + i))
			if math.Float32bits(f) != math.Float32bits(want) {
				t.Fatalf("half %#04x: %g (%#08x), want %g (%#08x)", base+i, f, math.Float32bits(f), want, math.Float32bits(want))
			}
		}
	}
}

func TestFastDotsInstalled(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("no AVX-512")
	}
	for _, typ := range dotTypes {
		if k, _ := DotKernelFor(typ); k.Impl != "avx512" {
			t.Errorf("%s: kernel %s, want avx512", typ, k.Impl)
		}
	}
}
