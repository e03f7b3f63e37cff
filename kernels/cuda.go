// Package kernels holds the CUDA kernels of the CUDA backend: the CUDA C
// sources (*.cu), the PTX that gen.sh compiles from them (embedded), a
// binding of the CUDA driver API through purego (no cgo), and one typed
// launch wrapper per kernel. It knows nothing of ops: ops/cuda turns ops
// into these launches.
package kernels

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// driver holds the driver API entry points bound from libcuda.so.1.
// CUresult is an enum (int); handles (CUcontext, CUmodule, CUfunction) are
// pointers; CUdeviceptr is 64 bits on every platform we build for.
type driver struct {
	path string

	cuInit                    func(flags uint32) uint32
	cuDeviceGet               func(dev *int32, ordinal int32) uint32
	cuDeviceGetName           func(name *byte, n int32, dev int32) uint32
	cuDeviceComputeCapability func(major, minor *int32, dev int32) uint32
	cuCtxCreate               func(ctx *uintptr, flags uint32, dev int32) uint32
	cuModuleLoadData          func(mod *uintptr, image *byte) uint32
	cuModuleGetFunction       func(fn *uintptr, mod uintptr, name *byte) uint32
	cuMemAlloc                func(ptr *uint64, size uint64) uint32
	cuMemFree                 func(ptr uint64) uint32
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, n uint64) uint32
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, n uint64) uint32
	cuMemcpyDtoD              func(dst, src uint64, n uint64) uint32
	cuMemsetD32               func(dst uint64, v uint32, n uint64) uint32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params *unsafe.Pointer, extra *unsafe.Pointer) uint32
	cuCtxSynchronize          func() uint32
	cuMemGetInfo              func(free, total *uint64) uint32
	cuGetErrorString          func(res uint32, s **byte) uint32
	cuGetErrorName            func(res uint32, s **byte) uint32
}

// libraryPaths lists where libcuda.so.1 is looked for: $LADDER_CUDA_LIB
// first, then the dynamic linker's search and the usual driver locations.
func libraryPaths() []string {
	if p := os.Getenv("LADDER_CUDA_LIB"); p != "" {
		return []string{p}
	}
	return []string{
		"libcuda.so.1", // the dynamic linker's own search (LD_LIBRARY_PATH, ld.so.cache)
		"/usr/lib/x86_64-linux-gnu/libcuda.so.1",
		"/usr/lib/aarch64-linux-gnu/libcuda.so.1",
		"/usr/lib64/libcuda.so.1",
		"/usr/local/cuda/lib64/stubs/libcuda.so",
		"/usr/lib/wsl/lib/libcuda.so.1",
	}
}

var (
	driverMu  sync.Mutex
	theDriver *driver // bound once per process; failures are not cached
)

// loadDriver returns the process's driver binding, opening the library on
// first use.
func loadDriver() (*driver, error) {
	driverMu.Lock()
	defer driverMu.Unlock()
	if theDriver != nil {
		return theDriver, nil
	}
	d, err := openDriver(libraryPaths())
	if err != nil {
		return nil, err
	}
	theDriver = d
	return d, nil
}

// openDriver opens the first library of paths that loads and has every
// symbol. The error names every path tried and why each failed.
func openDriver(paths []string) (*driver, error) {
	var tried []string
	for _, p := range paths {
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
			continue
		}
		d := &driver{path: p}
		if err := d.bind(h); err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
			continue
		}
		return d, nil
	}
	return nil, fmt.Errorf("kernels: cannot load the CUDA driver; tried %s (set LADDER_CUDA_LIB to the path of libcuda.so.1)", strings.Join(tried, ", "))
}

// bind resolves every symbol first, so a library that lacks one is refused
// with its name rather than crashing at the first call.
func (d *driver) bind(h uintptr) error {
	syms := []struct {
		name string
		fn   any
	}{
		{"cuInit", &d.cuInit},
		{"cuDeviceGet", &d.cuDeviceGet},
		{"cuDeviceGetName", &d.cuDeviceGetName},
		{"cuDeviceComputeCapability", &d.cuDeviceComputeCapability},
		{"cuCtxCreate_v2", &d.cuCtxCreate},
		{"cuModuleLoadData", &d.cuModuleLoadData},
		{"cuModuleGetFunction", &d.cuModuleGetFunction},
		{"cuMemAlloc_v2", &d.cuMemAlloc},
		{"cuMemFree_v2", &d.cuMemFree},
		{"cuMemcpyHtoD_v2", &d.cuMemcpyHtoD},
		{"cuMemcpyDtoH_v2", &d.cuMemcpyDtoH},
		{"cuMemcpyDtoD_v2", &d.cuMemcpyDtoD},
		{"cuMemsetD32_v2", &d.cuMemsetD32},
		{"cuLaunchKernel", &d.cuLaunchKernel},
		{"cuCtxSynchronize", &d.cuCtxSynchronize},
		{"cuMemGetInfo_v2", &d.cuMemGetInfo},
		{"cuGetErrorString", &d.cuGetErrorString},
		{"cuGetErrorName", &d.cuGetErrorName},
	}
	for _, s := range syms {
		addr, err := purego.Dlsym(h, s.name)
		if err != nil || addr == 0 {
			return fmt.Errorf("symbol %s missing", s.name)
		}
		purego.RegisterFunc(s.fn, addr)
	}
	return nil
}

// Error is a failed driver call: the call, and CUDA's name and text for
// the result code.
type Error struct {
	Call string
	Code uint32
	Name string // CUDA_ERROR_..., or "" when the driver does not know the code
	Text string
}

func (e *Error) Error() string {
	name := e.Name
	if name == "" {
		name = fmt.Sprintf("CUresult %d", e.Code)
	}
	if e.Text != "" {
		return fmt.Sprintf("kernels: %s: %s (%s)", e.Call, name, e.Text)
	}
	return fmt.Sprintf("kernels: %s: %s", e.Call, name)
}

// check turns a CUresult into an *Error (nil on CUDA_SUCCESS).
func (d *driver) check(call string, res uint32) error {
	if res == 0 {
		return nil
	}
	e := &Error{Call: call, Code: res}
	var s *byte
	if d.cuGetErrorName(res, &s) == 0 && s != nil {
		e.Name = goString(s)
	}
	s = nil
	if d.cuGetErrorString(res, &s) == 0 && s != nil {
		e.Text = goString(s)
	}
	return e
}

// goString copies a NUL-terminated C string owned by the driver.
func goString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

// cString returns a NUL-terminated copy of s.
func cString(s string) *byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return &b[0]
}

// Device is one CUDA device with its context and the loaded kernels.
//
// A CUDA context is current on one OS thread, so a Device owns a goroutine
// locked to its OS thread (runtime.LockOSThread) that makes every driver
// call; the methods hand their work to it and wait. A Device may therefore
// be used from any goroutine, and calls from several goroutines are
// serialised. One Device per process: the simulator supports one context.
type Device struct {
	*thread
	name  string
	major int
	minor int
	mod   *module
}

// thread is the goroutine that holds the context, shared by the Device
// values that differ only in their module (see withModule).
type thread struct {
	drv  *driver
	work chan func()
	done chan struct{}
}

// module is a loaded PTX module and its kernels, looked up once each.
type module struct {
	handle uintptr
	arch   int // 70 or 80: which embedded PTX module

	mu    sync.Mutex
	funcs map[string]uintptr
}

// Open initialises the driver, creates a context on device ordinal and
// loads the kernel module: the compute_80 PTX on devices of compute
// capability 8.0 or more, the compute_70 PTX otherwise. LADDER_CUDA_PTX=70
// or 80 forces one (70 runs everywhere; 80 needs capability 8.0, except
// under the simulator, which runs compute_80 PTX without 8.0 instructions).
func Open(ordinal int) (*Device, error) {
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	forced := 0
	switch v := os.Getenv("LADDER_CUDA_PTX"); v {
	case "":
	case "70", "80":
		forced = int(v[0]-'0') * 10
	default:
		return nil, fmt.Errorf("kernels: LADDER_CUDA_PTX=%q: want 70 or 80", v)
	}
	d := &Device{thread: &thread{drv: drv, work: make(chan func()), done: make(chan struct{})}}
	started := make(chan error)
	go d.loop(ordinal, started)
	if err := <-started; err != nil {
		return nil, err
	}
	arch := 70
	if d.major >= 8 && len(ptx80) > 0 {
		arch = 80
	}
	if forced != 0 {
		arch = forced
	}
	if d.mod, err = d.loadModule(arch); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// loadModule loads the embedded compute_<arch> PTX.
func (d *Device) loadModule(arch int) (*module, error) {
	ptx := ptx70
	if arch == 80 {
		ptx = ptx80
	}
	m := &module{arch: arch, funcs: map[string]uintptr{}}
	err := d.do(func() error {
		img := make([]byte, len(ptx)+1) // the driver reads PTX text up to its NUL
		copy(img, ptx)
		err := d.drv.check(fmt.Sprintf("cuModuleLoadData(compute_%d PTX)", arch), d.drv.cuModuleLoadData(&m.handle, &img[0]))
		runtime.KeepAlive(img)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// withModule returns a Device on the same context that launches from the
// compute_<arch> module instead (tests compare the two modules' results).
func (d *Device) withModule(arch int) (*Device, error) {
	m, err := d.loadModule(arch)
	if err != nil {
		return nil, err
	}
	e := *d
	e.mod = m
	return &e, nil
}

// loop is the device goroutine: it locks its OS thread, creates the
// context there and runs the work handed to it until Close.
func (d *Device) loop(ordinal int, started chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread holds the context
	err := d.init(ordinal)
	started <- err
	if err != nil {
		return
	}
	for {
		select {
		case f := <-d.work:
			f()
		case <-d.done:
			return
		}
	}
}

func (d *Device) init(ordinal int) error {
	drv := d.drv
	if err := drv.check("cuInit", drv.cuInit(0)); err != nil {
		return err
	}
	var dev int32
	if err := drv.check(fmt.Sprintf("cuDeviceGet(%d)", ordinal), drv.cuDeviceGet(&dev, int32(ordinal))); err != nil {
		return err
	}
	name := make([]byte, 256)
	if err := drv.check("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), dev)); err != nil {
		return err
	}
	if i := strings.IndexByte(string(name), 0); i >= 0 {
		name = name[:i]
	}
	d.name = string(name)
	var major, minor int32
	if err := drv.check("cuDeviceComputeCapability", drv.cuDeviceComputeCapability(&major, &minor, dev)); err != nil {
		return err
	}
	d.major, d.minor = int(major), int(minor)
	var ctx uintptr
	return drv.check("cuCtxCreate_v2", drv.cuCtxCreate(&ctx, 0, dev))
}

// do runs f on the device goroutine and waits for it.
func (d *thread) do(f func() error) error {
	var err error
	ran := make(chan struct{})
	select {
	case d.work <- func() { err = f(); close(ran) }:
	case <-d.done:
		return errors.New("kernels: device closed")
	}
	<-ran
	return err
}

// Close stops the device goroutine. The driver keeps the context until the
// process ends (freeing memory first is the caller's business).
func (d *Device) Close() { d.thread.close() }

func (d *thread) close() {
	select {
	case <-d.done:
	default:
		close(d.done)
	}
}

// Name is the device's name as the driver reports it.
func (d *Device) Name() string { return d.name }

// ComputeCapability returns the device's major and minor version.
func (d *Device) ComputeCapability() (major, minor int) { return d.major, d.minor }

// Arch is the PTX module in use: 70 (compute_70, every kernel) or 80.
func (d *Device) Arch() int { return d.mod.arch }

// LibraryPath is the driver library that was loaded.
func (d *Device) LibraryPath() string { return d.drv.path }

// MemInfo returns the free and total device memory in bytes.
func (d *Device) MemInfo() (free, total int64, err error) {
	err = d.do(func() error {
		var f, t uint64
		if err := d.drv.check("cuMemGetInfo_v2", d.drv.cuMemGetInfo(&f, &t)); err != nil {
			return err
		}
		free, total = int64(f), int64(t)
		return nil
	})
	return
}

// Synchronize waits for every launched kernel to finish; a kernel's
// failure surfaces here.
func (d *Device) Synchronize() error {
	return d.do(func() error { return d.drv.check("cuCtxSynchronize", d.drv.cuCtxSynchronize()) })
}

// function returns the kernel of that name in the loaded module (cached).
// Called on the device goroutine.
func (d *Device) function(name string) (uintptr, error) {
	m := d.mod
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.funcs[name]; ok {
		return f, nil
	}
	var f uintptr
	if err := d.drv.check(fmt.Sprintf("cuModuleGetFunction(%q)", name), d.drv.cuModuleGetFunction(&f, m.handle, cString(name))); err != nil {
		return 0, err
	}
	m.funcs[name] = f
	return f, nil
}

// dim3 is a grid or block shape.
type dim3 struct{ x, y, z int }

// launch runs kernel name on grid × block threads with shared bytes of
// dynamic shared memory. args are Buffer, int, int64, int32, uint32,
// float32 or float64 values, in the kernel's parameter order; an int is a
// C int (32 bits; launch refuses values that do not fit), an int64 a long long.
//
// cuLaunchKernel reads each argument through the pointer array, so the
// values live in one Go array pinned for the call (runtime.Pinner).
func (d *Device) launch(name string, grid, block dim3, shared int, args ...any) error {
	if grid.x <= 0 || grid.y <= 0 || grid.z <= 0 {
		return nil // nothing to do (an empty shape)
	}
	slots := make([]uint64, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case Buffer:
			slots[i] = v.ptr
		case int:
			if v != int(int32(v)) {
				return fmt.Errorf("kernels: %s: argument %d (%d) does not fit in 32 bits", name, i, v)
			}
			slots[i] = uint64(uint32(int32(v)))
		case int64:
			slots[i] = uint64(v)
		case int32:
			slots[i] = uint64(uint32(v))
		case uint32:
			slots[i] = uint64(v)
		case float32:
			slots[i] = uint64(*(*uint32)(unsafe.Pointer(&v)))
		case float64:
			slots[i] = *(*uint64)(unsafe.Pointer(&v))
		default:
			return fmt.Errorf("kernels: %s: argument %d has unsupported type %T", name, i, a)
		}
	}
	return d.do(func() error {
		f, err := d.function(name)
		if err != nil {
			return err
		}
		var pin runtime.Pinner
		defer pin.Unpin()
		params := make([]unsafe.Pointer, len(slots)+1)
		if len(slots) > 0 {
			pin.Pin(&slots[0])
			for i := range slots {
				params[i] = unsafe.Pointer(&slots[i])
			}
		}
		pin.Pin(&params[0])
		res := d.drv.cuLaunchKernel(f, uint32(grid.x), uint32(grid.y), uint32(grid.z),
			uint32(block.x), uint32(block.y), uint32(block.z), uint32(shared), 0, &params[0], nil)
		return d.drv.check(fmt.Sprintf("cuLaunchKernel(%s, grid %v, block %v)", name, grid, block), res)
	})
}
