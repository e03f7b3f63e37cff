package kernels

import (
	"math/rand/v2"
	"testing"

	"ladder-engine/gguf"
)

// TestComputeArchModules loads the compute_80 module beside the compute_70
// one (the simulator runs compute_80 PTX that avoids 8.0-only
// instructions) and checks that a few kernels give the same bits from
// both: the compute_80 build of the sources computes what compute_70 does.
func TestComputeArchModules(t *testing.T) {
	d := device(t)
	other := 80
	if d.Arch() == 80 {
		other = 70
	}
	e, err := d.withModule(other)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(31, 32))
	const rows, cols, n = 9, 256, 3
	enc, _ := quantWeight(t, r, gguf.TypeQ4_K, rows, cols)
	w := Weight{Data: uploadBytes(t, d, enc), Type: gguf.TypeQ4_K, Rows: rows, Cols: cols}
	x := upload(t, d, randF32(r, n*cols, 1))
	s := AttentionShape{NSeq: 1, N: 5, NKV: 5, NHead: 2, NHeadKV: 1, HeadDim: 16}
	q := upload(t, d, randF32(r, 5*2*16, 1))
	kv := upload(t, d, randF32(r, 5*16, 1))
	run := func(dev *Device) []float32 {
		out := alloc(t, d, 4*n*rows)
		if err := dev.MatMul(out, x, n, w, false); err != nil {
			t.Fatal(err)
		}
		att := alloc(t, d, 4*5*2*16)
		if err := dev.AttentionForward(att, Buffer{}, q, kv, kv, s); err != nil {
			t.Fatal(err)
		}
		norm := alloc(t, d, 4*n*cols)
		if err := dev.RMSNormForward(norm, Buffer{}, x, Buffer{}, n, cols, 1e-6); err != nil {
			t.Fatal(err)
		}
		return append(append(download(t, d, out, n*rows), download(t, d, att, 5*2*16)...), download(t, d, norm, n*cols)...)
	}
	bitExact(t, "compute_80 vs compute_70", run(e), run(d))
}
