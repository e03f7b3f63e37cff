package ops

import (
	"strings"
	"testing"
)

// An op given tensors of two devices refuses with a message naming both;
// tensors of two CPU backends (other pools, one memory) mix freely.
func TestMixedBackendsRefused(t *testing.T) {
	strict := NewStrict(nil)
	a := NewTensor([]float32{1, 2, 3}, 3)
	b := TensorOn(strict, -1, F32, 3)
	b.Write([]float32{4, 5, 6})
	func() {
		defer func() {
			msg, _ := recover().(string)
			if !strings.Contains(msg, "strict") || !strings.Contains(msg, "cpu") {
				t.Errorf("mixing cpu and strict: panic %q, want one naming both devices", msg)
			}
		}()
		var tp *Tape
		tp.Add(a, b)
	}()
	other := NewCPU(NewPool(2))
	c := TensorOn(other, -1, F32, 3)
	c.Write([]float32{1, 1, 1})
	got := NewTape(other).Add(a, c).Read()
	if got[0] != 2 || got[2] != 4 {
		t.Errorf("cpu + cpu of another pool = %v", got)
	}
	// On the strict backend the op runs and its result is readable by copy.
	s := NewTape(strict).Add(b, b).Read()
	if s[0] != 8 || s[2] != 12 {
		t.Errorf("strict add = %v", s)
	}
}

// Copies between float types round to nearest even and decode back.
func TestCopyConverts(t *testing.T) {
	for _, be := range []Backend{DefaultCPU(), NewStrict(nil)} {
		src := TensorOn(be, -1, F32, 4)
		src.Write([]float32{1, 1.0 / 3, 65504, 1e-8})
		for _, dt := range []DType{F16, BF16} {
			h := TensorOn(be, -1, dt, 4)
			be.Copy(h.Buf(), src.Buf())
			back := TensorOn(be, -1, F32, 4)
			be.Copy(back.Buf(), h.Buf())
			got := back.Read()
			// bf16 of 1e-8: bits 0x322bcc77 round up to 0x322c0000.
			want := map[DType][]float32{F16: {1, 0.33325195, 65504, 0}, BF16: {1, 0.33398438, 65536, 1.0011718e-08}}[dt]
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s %s: value %d = %g, want %g", be.Name(), dt, i, got[i], want[i])
				}
			}
		}
	}
}
