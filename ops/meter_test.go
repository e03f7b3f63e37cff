package ops

import "testing"

func TestMeterPeakByClass(t *testing.T) {
	m := &Meter{}
	m.Add(Weights, 100)
	m.Add(Scratch, 50)
	m.Add(Scratch, -50)
	m.Add(Activations, 30)
	if got := m.Peak(Scratch); got != 50 {
		t.Errorf("scratch peak = %d, want 50", got)
	}
	if got := m.Current(Scratch); got != 0 {
		t.Errorf("scratch current = %d, want 0", got)
	}
	// The total peak is 150 (weights+scratch at once), not 180 (sum of peaks).
	if got := m.PeakTotal(); got != 150 {
		t.Errorf("total peak = %d, want 150", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{10, "10 B"}, {1536, "1.5 KiB"}, {3 << 30, "3.0 GiB"}} {
		if got := FormatBytes(c.n); got != c.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
