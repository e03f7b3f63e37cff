package ops

import (
	"fmt"
	"strings"
	"sync"
)

// MemClass names what an allocation is for, so peak memory can be reported
// and predicted by class (DESIGN.md: "memory is counted, by class").
type MemClass int

const (
	Weights     MemClass = iota // frozen backbone weights (mmapped or loaded)
	SideParams                  // trainable side-network / adapter parameters
	Gradients                   // gradients of trainable parameters
	OptimState                  // optimizer moments
	Activations                 // activations saved on the tape for backward
	KVMem                       // attention key/value caches (KVCache)
	Scratch                     // transient buffers reused layer after layer
	numClasses
)

var classNames = [numClasses]string{"weights", "side params", "gradients", "optimizer state", "stored activations", "KV cache", "scratch"}

func (c MemClass) String() string {
	if c < 0 || c >= numClasses {
		return fmt.Sprintf("MemClass(%d)", int(c))
	}
	return classNames[c]
}

// Meter keeps current and peak bytes per class. It is safe for concurrent use.
type Meter struct {
	mu        sync.Mutex
	cur, peak [numClasses]int64
	total     int64 // current sum over classes
	peakTotal int64 // peak of the sum (not the sum of per-class peaks)
}

// DefaultMeter counts the allocations made through Alloc and Free.
var DefaultMeter = &Meter{}

// Add records n bytes allocated (n < 0: freed) in class c.
func (m *Meter) Add(c MemClass, n int64) {
	m.mu.Lock()
	m.cur[c] += n
	m.total += n
	if m.cur[c] > m.peak[c] {
		m.peak[c] = m.cur[c]
	}
	if m.total > m.peakTotal {
		m.peakTotal = m.total
	}
	m.mu.Unlock()
}

// Current returns the bytes held now in class c.
func (m *Meter) Current(c MemClass) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur[c]
}

// Peak returns the largest number of bytes class c held at once.
func (m *Meter) Peak(c MemClass) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak[c]
}

// PeakTotal returns the largest total held at once across all classes.
func (m *Meter) PeakTotal() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peakTotal
}

// Reset forgets all counts (for a new measurement).
func (m *Meter) Reset() {
	m.mu.Lock()
	m.cur, m.peak, m.total, m.peakTotal = [numClasses]int64{}, [numClasses]int64{}, 0, 0
	m.mu.Unlock()
}

// Report formats current peaks by class, one per line.
func (m *Meter) Report() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for c := MemClass(0); c < numClasses; c++ {
		fmt.Fprintf(&b, "  %-19s %10s peak\n", c.String()+":", FormatBytes(m.peak[c]))
	}
	fmt.Fprintf(&b, "  %-19s %10s peak (at one time)\n", "total:", FormatBytes(m.peakTotal))
	return b.String()
}

// Alloc returns a zeroed float32 slice of n values counted in class c.
// Pair it with Free when the buffer is dropped.
func Alloc(c MemClass, n int) []float32 {
	DefaultMeter.Add(c, int64(n)*4)
	return make([]float32, n)
}

// Free records that a buffer from Alloc(c, ...) is no longer held.
func Free(c MemClass, buf []float32) {
	DefaultMeter.Add(c, -int64(len(buf))*4)
}

// FormatBytes prints a byte count the way people read them (1.5 MiB).
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, [...]string{"B", "KiB", "MiB", "GiB", "TiB"}[i])
}
