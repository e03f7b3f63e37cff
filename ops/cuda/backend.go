// Package cuda is the CUDA backend: ops.Backend on a kernels.Device. Buffers
// are device allocations (views share them), frozen GGUF weights are
// uploaded once in their file encoding (PlaceMatrix), and every kernel
// method is one or a few launches of the kernels package. Nothing waits for
// the device except host reads (Download, and what calls it).
//
// Errors: the ops.Backend methods return none, so a failed driver call or
// launch (out of memory, a kernel fault) panics with the call and CUDA's
// message. Plans are checked against free memory before a run (see
// Backend.MemInfo) so that memory running out is refused up front.
package cuda

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"ladder-engine/gguf"
	"ladder-engine/kernels"
	"ladder-engine/ops"
)

// device is one opened kernels.Device with a cache of freed blocks, shared
// by every Backend on it (one context per device and process).
type device struct {
	k       *kernels.Device
	ordinal int

	mu   sync.Mutex
	free map[int64][]kernels.Buffer // freed blocks by size, reused before cuMemAlloc
	ones kernels.Buffer             // n floats of 1 (AccumulateRows), grown as needed
}

var (
	devMu   sync.Mutex
	devices = map[int]*device{}
)

// openDevice opens device ordinal once per process (the simulator, and
// this package's caches, want one context per device).
func openDevice(ordinal int) (*device, error) {
	devMu.Lock()
	defer devMu.Unlock()
	if d, ok := devices[ordinal]; ok {
		return d, nil
	}
	k, err := kernels.Open(ordinal)
	if err != nil {
		return nil, err // not kept: a later call may find the driver (LADDER_CUDA_LIB)
	}
	d := &device{k: k, ordinal: ordinal, free: map[int64][]kernels.Buffer{}}
	devices[ordinal] = d
	return d, nil
}

// Backend is ops.Backend on one CUDA device, with a meter of its own
// (VRAM by class, with peaks). Several Backends may share a device (and
// then each other's buffers).
type Backend struct {
	dev   *device
	meter *ops.Meter
}

// New returns a backend on CUDA device ordinal, opening the driver and the
// device on first use. The error of a driver that does not load names
// every library path tried.
func New(ordinal int) (*Backend, error) {
	d, err := openDevice(ordinal)
	if err != nil {
		return nil, err
	}
	return &Backend{dev: d, meter: &ops.Meter{}}, nil
}

// ParseDevice reads a --device value: "auto", "cpu", "cuda" or "cuda:N".
// It returns the kind and the CUDA ordinal.
func ParseDevice(s string) (kind string, ordinal int, err error) {
	switch {
	case s == "auto" || s == "cpu" || s == "cuda":
		return s, 0, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("--device %q: want auto, cpu, cuda or cuda:N with N a device number", s)
		}
		return "cuda", n, nil
	}
	return "", 0, fmt.Errorf("--device %q: want auto, cpu, cuda or cuda:N", s)
}

func (b *Backend) Name() string             { return fmt.Sprintf("cuda:%d", b.dev.ordinal) }
func (b *Backend) Device() string           { return b.Name() }
func (b *Backend) Meter() *ops.Meter        { return b.meter }
func (b *Backend) Kernels() *kernels.Device { return b.dev.k }

// Describe is the device's name, capability and PTX module, for logs.
func (b *Backend) Describe() string {
	maj, min := b.dev.k.ComputeCapability()
	return fmt.Sprintf("%s: %s (compute %d.%d, compute_%d kernels, driver %s)", b.Name(), b.dev.k.Name(), maj, min, b.dev.k.Arch(), b.dev.k.LibraryPath())
}

// MemInfo returns the device's free and total memory in bytes.
func (b *Backend) MemInfo() (free, total int64, err error) { return b.dev.k.MemInfo() }

// must panics on a failed driver call or launch: the Backend interface has
// no error path (see the package comment).
func must(op string, err error) {
	if err != nil {
		panic(fmt.Sprintf("cuda: %s: %v", op, err))
	}
}

// blockSize rounds an allocation up so freed blocks are reused by nearby
// sizes too (and so every block holds whole 32-bit words for Fill32).
func blockSize(n int64) int64 {
	if n <= 4096 {
		return (max(n, 4) + 255) &^ 255
	}
	return (n + 4095) &^ 4095
}

// allocRaw returns a device block of at least n bytes (contents undefined),
// reusing a freed one when it can; on out of memory it returns the cache
// to the driver and tries once more.
func (d *device) allocRaw(n int64) kernels.Buffer {
	size := blockSize(n)
	d.mu.Lock()
	if l := d.free[size]; len(l) > 0 {
		blk := l[len(l)-1]
		d.free[size] = l[:len(l)-1]
		d.mu.Unlock()
		return blk
	}
	d.mu.Unlock()
	blk, err := d.k.Alloc(size)
	if err != nil {
		d.trim()
		blk, err = d.k.Alloc(size)
	}
	must("alloc", err)
	return blk
}

// release hands a block from allocRaw back to the cache.
func (d *device) release(blk kernels.Buffer) {
	if blk.Size() == 0 {
		return
	}
	d.mu.Lock()
	d.free[blk.Size()] = append(d.free[blk.Size()], blk)
	d.mu.Unlock()
}

// trim returns every cached block to the driver.
func (d *device) trim() {
	d.mu.Lock()
	free := d.free
	d.free = map[int64][]kernels.Buffer{}
	d.mu.Unlock()
	for _, l := range free {
		for _, blk := range l {
			_ = d.k.Free(blk)
		}
	}
}

// onesF32 is a device buffer of at least n floats equal to 1.
func (d *device) onesF32(n int) kernels.Buffer {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ones.Size() < 4*int64(n) {
		if d.ones.Size() > 0 {
			_ = d.k.Free(d.ones)
		}
		blk, err := d.k.Alloc(4 * int64(n))
		must("alloc", err)
		must("fill", d.k.Fill32(blk, math.Float32bits(1), int64(n)))
		d.ones = blk
	}
	return d.ones
}

// alloc is the memory of one Alloc, which every view of it holds. Its
// block goes back to the cache on Free, or when the last view is garbage
// (an uncounted buffer no one frees, say a value a tape-less op saved).
type alloc struct{ st *allocState }

type allocState struct {
	dev   *device
	blk   kernels.Buffer
	bytes int64 // as allocated (blk is rounded up)
	mu    sync.Mutex
	freed bool
}

func (st *allocState) release() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.freed {
		st.freed = true
		st.dev.release(st.blk)
	}
}

// buffer is an ops.Buffer on the device: n values of dt at mem, a view of
// the allocation a.
type buffer struct {
	be  *Backend
	dt  ops.DType
	n   int
	mem kernels.Buffer
	a   *alloc
}

func (c *buffer) Backend() ops.Backend { return c.be }
func (c *buffer) DType() ops.DType     { return c.dt }
func (c *buffer) Len() int             { return c.n }
func (c *buffer) Slice(off, n int) ops.Buffer {
	if off < 0 || n < 0 || off+n > c.n {
		panic(fmt.Sprintf("cuda: slice [%d, %d) of a buffer of %d values", off, off+n, c.n))
	}
	s := &buffer{be: c.be, dt: c.dt, n: n, a: c.a}
	if n > 0 {
		sz := int64(c.dt.Size())
		var err error
		s.mem, err = c.mem.Slice(int64(off)*sz, int64(n)*sz)
		must("slice", err)
	}
	return s
}
func (c *buffer) SameMemory(o ops.Buffer) bool {
	d, ok := o.(*buffer)
	return ok && c.n > 0 && d.n > 0 && c.mem.Ptr() == d.mem.Ptr()
}

// bytes is the buffer's size in bytes.
func (c *buffer) bytes() int64 { return int64(c.n) * int64(c.dt.Size()) }

// m returns the device memory of an ops.Buffer of this device (the zero
// Buffer for nil), and panics on a buffer of another device.
func (b *Backend) m(x ops.Buffer) kernels.Buffer {
	if x == nil {
		return kernels.Buffer{}
	}
	c, ok := x.(*buffer)
	if !ok || c.be.dev != b.dev {
		panic(fmt.Sprintf("cuda: %s handed a buffer of %s", b.Name(), x.Backend().Name()))
	}
	return c.mem
}

func (b *Backend) buf(x ops.Buffer) *buffer {
	b.m(x)
	return x.(*buffer)
}

func (b *Backend) Alloc(c ops.MemClass, dt ops.DType, n int) ops.Buffer {
	if n < 0 {
		panic(fmt.Sprintf("cuda: alloc of %d values", n))
	}
	buf := &buffer{be: b, dt: dt, n: n}
	if c >= 0 {
		b.meter.Add(c, int64(n*dt.Size()))
	}
	if n == 0 {
		return buf
	}
	st := &allocState{dev: b.dev, blk: b.dev.allocRaw(int64(n * dt.Size())), bytes: int64(n * dt.Size())}
	must("zero", b.dev.k.Zero(st.blk))
	buf.a = &alloc{st: st}
	runtime.AddCleanup(buf.a, func(st *allocState) { st.release() }, st)
	var err error
	buf.mem, err = st.blk.Slice(0, int64(n*dt.Size()))
	must("alloc", err)
	return buf
}

func (b *Backend) Free(c ops.MemClass, x ops.Buffer) {
	if x == nil {
		return
	}
	buf := b.buf(x)
	if c >= 0 {
		b.meter.Add(c, -buf.bytes())
	}
	if buf.a != nil && buf.mem.Ptr() == buf.a.st.blk.Ptr() && buf.bytes() == buf.a.st.bytes {
		buf.a.st.release() // the whole allocation; a smaller view leaves it to the garbage collector
	}
}

// halfType is the GGUF type of a half-precision buffer.
func halfType(dt ops.DType) gguf.Type {
	if dt == ops.BF16 {
		return gguf.TypeBF16
	}
	return gguf.TypeF16
}

func (b *Backend) Upload(dst ops.Buffer, src []float32) {
	d := b.buf(dst)
	if d.n == 0 {
		return
	}
	switch d.dt {
	case ops.F32:
		must("upload", b.dev.k.WriteF32(d.mem, src[:d.n]))
	case ops.F16, ops.BF16:
		raw := make([]byte, 2*d.n)
		if err := gguf.Quantize(halfType(d.dt), src[:d.n], raw); err != nil {
			panic(fmt.Sprintf("cuda: upload as %s: %v", d.dt, err))
		}
		must("upload", b.dev.k.Write(d.mem, raw))
	default:
		panic(fmt.Sprintf("cuda: upload f32 values into a %s buffer", d.dt))
	}
}

func (b *Backend) Download(dst []float32, src ops.Buffer) {
	s := b.buf(src)
	if s.n == 0 {
		return
	}
	switch s.dt {
	case ops.F32:
		must("download", b.dev.k.ReadF32(dst[:s.n], s.mem))
	case ops.F16, ops.BF16:
		raw := make([]byte, 2*s.n)
		must("download", b.dev.k.Read(raw, s.mem))
		if err := gguf.Dequantize(halfType(s.dt), raw, dst[:s.n]); err != nil {
			panic(fmt.Sprintf("cuda: download %s: %v", s.dt, err))
		}
	default:
		panic(fmt.Sprintf("cuda: download a %s buffer as f32", s.dt))
	}
}

func (b *Backend) Zero(x ops.Buffer) {
	c := b.buf(x)
	if c.n == 0 {
		return
	}
	if c.bytes()%4 == 0 && c.mem.Ptr()%4 == 0 {
		must("zero", b.dev.k.Fill32(c.mem, 0, c.bytes()/4))
		return
	}
	// An odd number of halves, or a view at an odd half: from the host.
	must("zero", b.dev.k.Write(c.mem, make([]byte, c.bytes())))
}

func (b *Backend) Fill(dst ops.Buffer, v float32) {
	d := b.buf(dst)
	if d.dt != ops.F32 {
		panic(fmt.Sprintf("cuda: fill a %s buffer", d.dt))
	}
	must("fill", b.dev.k.Fill32(d.mem, math.Float32bits(v), int64(d.n)))
}

func (b *Backend) Copy(dst, src ops.Buffer) {
	d, s := b.buf(dst), b.buf(src)
	if d.n != s.n {
		panic(fmt.Sprintf("cuda: copy %s[%d] into %s[%d]", s.dt, s.n, d.dt, d.n))
	}
	if d.n == 0 {
		return
	}
	k := b.dev.k
	switch {
	case d.dt == s.dt:
		must("copy", k.Copy(d.mem, s.mem, d.bytes()))
	case s.dt == ops.F32 && d.dt == ops.F16:
		must("copy", k.CastF32ToF16(d.mem, s.mem, d.n))
	case s.dt == ops.F32 && d.dt == ops.BF16:
		must("copy", k.CastF32ToBF16(d.mem, s.mem, d.n))
	case s.dt == ops.F16 && d.dt == ops.F32:
		must("copy", k.CastF16ToF32(d.mem, s.mem, d.n))
	case s.dt == ops.BF16 && d.dt == ops.F32:
		must("copy", k.CastBF16ToF32(d.mem, s.mem, d.n))
	default:
		panic(fmt.Sprintf("cuda: copy %s into %s", s.dt, d.dt))
	}
}

// placed is a Matrix's device copy (Matrix.Placed).
type placed struct {
	dev *device
	w   kernels.Weight
}

// PlaceMatrix uploads the weight's bytes in their GGUF encoding, once per
// matrix and device. The bytes are not metered here: the model counts its
// weights (ops.Weights) itself, the same on every backend.
func (b *Backend) PlaceMatrix(w *ops.Matrix) error {
	if w == nil {
		return nil
	}
	if p, ok := w.Placed.(*placed); ok && p.dev == b.dev {
		return nil
	}
	if !kernels.Supports(w.Type) {
		return fmt.Errorf("tensor %q: no CUDA kernel for weight type %s", w.Name, w.Type)
	}
	raw := w.Raw
	if w.F32 != nil {
		raw = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w.F32))), 4*len(w.F32))
	}
	if len(raw) == 0 {
		return fmt.Errorf("tensor %q: no data", w.Name)
	}
	blk, err := b.dev.k.Alloc(int64(len(raw)))
	if err != nil {
		return fmt.Errorf("tensor %q (%s): %w", w.Name, ops.FormatBytes(int64(len(raw))), err)
	}
	if err := b.dev.k.Write(blk, raw); err != nil {
		_ = b.dev.k.Free(blk)
		return fmt.Errorf("tensor %q: %w", w.Name, err)
	}
	w.Placed = &placed{dev: b.dev, w: kernels.Weight{Data: blk, Type: w.Type, Rows: w.Rows, Cols: w.Cols}}
	return nil
}

// weight returns a matrix's device copy, placing it on first use.
func (b *Backend) weight(w *ops.Matrix) kernels.Weight {
	if p, ok := w.Placed.(*placed); ok && p.dev == b.dev {
		return p.w
	}
	if err := b.PlaceMatrix(w); err != nil {
		panic(fmt.Sprintf("cuda: %v", err))
	}
	return w.Placed.(*placed).w
}

// tmp is transient device memory of an op, counted as Scratch until done.
type tmp struct {
	be  *Backend
	blk kernels.Buffer
	n   int64
}

func (b *Backend) tmp(bytes int64) tmp {
	b.meter.Add(ops.Scratch, bytes)
	return tmp{be: b, blk: b.dev.allocRaw(bytes), n: bytes}
}

// mem is the first bytes of the scratch block, exactly the size asked.
func (t tmp) mem() kernels.Buffer {
	s, _ := t.blk.Slice(0, t.n)
	return s
}

func (t tmp) done() {
	t.be.meter.Add(ops.Scratch, -t.n)
	t.be.dev.release(t.blk)
}

// int32s copies host ids or positions to a scratch buffer.
func (b *Backend) int32s(v []int32) tmp {
	t := b.tmp(4 * int64(max(len(v), 1)))
	if len(v) > 0 {
		must("upload ids", b.dev.k.WriteI32(t.mem(), v))
	}
	return t
}

// float32s copies host values (RoPE frequency factors) to a scratch buffer.
func (b *Backend) float32s(v []float32) tmp {
	t := b.tmp(4 * int64(max(len(v), 1)))
	if len(v) > 0 {
		must("upload", b.dev.k.WriteF32(t.mem(), v))
	}
	return t
}

// checkIDs refuses ids outside [0, n) on the host: the kernels read
// whatever row an id names.
func checkIDs(what string, ids []int32, n int) {
	for i, id := range ids {
		if id < 0 || int(id) >= n {
			panic(fmt.Sprintf("cuda: %s: id %d at %d outside [0, %d)", what, id, i, n))
		}
	}
}
