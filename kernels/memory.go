package kernels

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Buffer is a range of device memory: an opaque device address and its
// size in bytes. The zero Buffer is empty. Buffers are values: Slice makes
// views, and only what Alloc returned may be freed.
type Buffer struct {
	ptr  uint64
	size int64
}

// Size is the buffer's length in bytes.
func (b Buffer) Size() int64 { return b.size }

// Ptr is the device address (for logs and for comparing buffers).
func (b Buffer) Ptr() uint64 { return b.ptr }

// Slice returns the view of bytes [off, off+n) of b.
func (b Buffer) Slice(off, n int64) (Buffer, error) {
	if off < 0 || n < 0 || off+n > b.size {
		return Buffer{}, fmt.Errorf("kernels: slice [%d, %d) of a %d-byte buffer", off, off+n, b.size)
	}
	return Buffer{ptr: b.ptr + uint64(off), size: n}, nil
}

// Alloc allocates size bytes of device memory (contents undefined).
func (d *Device) Alloc(size int64) (Buffer, error) {
	if size <= 0 {
		return Buffer{}, fmt.Errorf("kernels: alloc of %d bytes", size)
	}
	var p uint64
	err := d.do(func() error {
		return d.drv.check(fmt.Sprintf("cuMemAlloc_v2(%d bytes)", size), d.drv.cuMemAlloc(&p, uint64(size)))
	})
	if err != nil {
		return Buffer{}, err
	}
	return Buffer{ptr: p, size: size}, nil
}

// Free releases a buffer that Alloc returned; freeing the zero Buffer does nothing.
func (d *Device) Free(b Buffer) error {
	if b.ptr == 0 {
		return nil
	}
	return d.do(func() error { return d.drv.check("cuMemFree_v2", d.drv.cuMemFree(b.ptr)) })
}

// Write copies src into the start of dst.
func (d *Device) Write(dst Buffer, src []byte) error {
	if int64(len(src)) > dst.size {
		return fmt.Errorf("kernels: write of %d bytes into a %d-byte buffer", len(src), dst.size)
	}
	if len(src) == 0 {
		return nil
	}
	return d.do(func() error {
		var pin runtime.Pinner
		defer pin.Unpin()
		pin.Pin(&src[0])
		return d.drv.check("cuMemcpyHtoD_v2", d.drv.cuMemcpyHtoD(dst.ptr, unsafe.Pointer(&src[0]), uint64(len(src))))
	})
}

// Read copies the start of src into dst. It waits for the kernels before
// it (the default stream is in order).
func (d *Device) Read(dst []byte, src Buffer) error {
	if int64(len(dst)) > src.size {
		return fmt.Errorf("kernels: read of %d bytes from a %d-byte buffer", len(dst), src.size)
	}
	if len(dst) == 0 {
		return nil
	}
	return d.do(func() error {
		var pin runtime.Pinner
		defer pin.Unpin()
		pin.Pin(&dst[0])
		return d.drv.check("cuMemcpyDtoH_v2", d.drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src.ptr, uint64(len(dst))))
	})
}

// WriteF32 copies float32 values into the start of dst.
func (d *Device) WriteF32(dst Buffer, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return d.Write(dst, unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), 4*len(src)))
}

// ReadF32 copies float32 values from the start of src.
func (d *Device) ReadF32(dst []float32, src Buffer) error {
	if len(dst) == 0 {
		return nil
	}
	return d.Read(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), src)
}

// WriteI32 copies int32 values (token ids, positions) into the start of dst.
func (d *Device) WriteI32(dst Buffer, src []int32) error {
	if len(src) == 0 {
		return nil
	}
	return d.Write(dst, unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), 4*len(src)))
}

// ReadF64 copies float64 values (the reductions' results) from the start of src.
func (d *Device) ReadF64(dst []float64, src Buffer) error {
	if len(dst) == 0 {
		return nil
	}
	return d.Read(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 8*len(dst)), src)
}

// Copy copies n bytes from the start of src to the start of dst on the device.
func (d *Device) Copy(dst, src Buffer, n int64) error {
	if n < 0 || n > dst.size || n > src.size {
		return fmt.Errorf("kernels: copy of %d bytes between buffers of %d and %d bytes", n, src.size, dst.size)
	}
	if n == 0 {
		return nil
	}
	return d.do(func() error { return d.drv.check("cuMemcpyDtoD_v2", d.drv.cuMemcpyDtoD(dst.ptr, src.ptr, uint64(n))) })
}

// Fill32 sets the first count 32-bit words of dst to v (0 for zeroing;
// math.Float32bits(x) for a float).
func (d *Device) Fill32(dst Buffer, v uint32, count int64) error {
	if count < 0 || 4*count > dst.size {
		return fmt.Errorf("kernels: fill of %d words in a %d-byte buffer", count, dst.size)
	}
	if count == 0 {
		return nil
	}
	return d.do(func() error { return d.drv.check("cuMemsetD32_v2", d.drv.cuMemsetD32(dst.ptr, v, uint64(count))) })
}

// Zero sets all of b to zero bytes (b's size must be a multiple of 4).
func (d *Device) Zero(b Buffer) error {
	if b.size%4 != 0 {
		return fmt.Errorf("kernels: zero of %d bytes (not whole words)", b.size)
	}
	return d.Fill32(b, 0, b.size/4)
}

// need checks that b holds at least n bytes, for the launch wrappers.
func need(kernel, what string, b Buffer, n int64) error {
	if b.ptr == 0 && n > 0 {
		return fmt.Errorf("kernels: %s: %s is an empty buffer, want %d bytes", kernel, what, n)
	}
	if b.size < n {
		return fmt.Errorf("kernels: %s: %s has %d bytes, want %d", kernel, what, b.size, n)
	}
	return nil
}
