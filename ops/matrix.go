package ops

import (
	"fmt"
	"unsafe"

	"ladder-engine/gguf"
)

// Matrix is a weight matrix in any GGUF encoding, "something you can
// multiply by" (DESIGN.md). Rows are output features (ggml ne[1]), Cols are
// input features (ggml ne[0], the contiguous dimension). Quantized and half
// weights stay as the file's bytes (Raw, a view into the mmap: no
// dequantized copy); F32 weights are viewed as []float32 in place.
type Matrix struct {
	Name       string
	Type       gguf.Type
	Rows, Cols int
	Raw        []byte    // Rows * rowBytes bytes in Type's encoding
	F32        []float32 // set instead of Raw when Type is F32: (Rows, Cols)
	// Placed is a device backend's copy of the weight, set once by its
	// PlaceMatrix (nil on the CPU, which reads Raw or F32 in place).
	Placed any

	rowBytes int
	kernel   *DotKernel // nil for F32
}

// MatrixFromGGUF returns a view of tensor name of f as a Matrix. Tensors of
// more than two dimensions are accepted when the extra ones are 1. The
// returned matrix aliases the mapping and is valid until f is closed.
func MatrixFromGGUF(f *gguf.File, name string) (*Matrix, error) {
	ti, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q not found", f.Path, name)
	}
	if len(ti.Ne) == 0 || len(ti.Ne) > 4 {
		return nil, fmt.Errorf("%s: tensor %q has %d dimensions, want 1 or 2", f.Path, name, len(ti.Ne))
	}
	cols, rows := ti.Ne[0], int64(1)
	if len(ti.Ne) > 1 {
		rows = ti.Ne[1]
	}
	for _, d := range ti.Ne[min(2, len(ti.Ne)):] {
		if d != 1 {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want a matrix", f.Path, name, ti.Ne)
		}
	}
	m, err := NewMatrix(name, ti.Type, int(rows), int(cols), f.Data(ti))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return m, nil
}

// NewMatrix wraps raw bytes (rows*cols elements of type t, row-major) as a
// Matrix without copying. For F32 the bytes must be 4-byte aligned (GGUF
// data always is) and little-endian.
func NewMatrix(name string, t gguf.Type, rows, cols int, raw []byte) (*Matrix, error) {
	rb, err := gguf.RowSize(t, cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	if rows < 0 || len(raw) != rows*rb {
		return nil, fmt.Errorf("tensor %q: %d bytes of data, want %d rows of %d bytes (%s)", name, len(raw), rows, rb, t)
	}
	m := &Matrix{Name: name, Type: t, Rows: rows, Cols: cols, rowBytes: rb}
	if t == gguf.TypeF32 {
		if len(raw) > 0 && uintptr(unsafe.Pointer(&raw[0]))%4 != 0 {
			return nil, fmt.Errorf("tensor %q: f32 data is not 4-byte aligned", name)
		}
		m.F32 = bytesAsFloat32(raw)
		return m, nil
	}
	m.Raw = raw
	k, err := DotKernelFor(t)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	m.kernel = k
	return m, nil
}

// NewMatrixF32 wraps a (rows, cols) float32 slice as a Matrix without copying.
func NewMatrixF32(name string, rows, cols int, w []float32) *Matrix {
	if len(w) != rows*cols {
		panic(fmt.Sprintf("ops.NewMatrixF32 %q: len %d != %d*%d", name, len(w), rows, cols))
	}
	return &Matrix{Name: name, Type: gguf.TypeF32, Rows: rows, Cols: cols, F32: w, rowBytes: 4 * cols}
}

// RowBytes is the size in bytes of one encoded row.
func (w *Matrix) RowBytes() int { return w.rowBytes }

// row returns the encoded bytes of row r (non-F32 matrices).
func (w *Matrix) row(r int) []byte {
	return w.Raw[r*w.rowBytes : (r+1)*w.rowBytes]
}

// DequantizeRow writes row r as float32 into dst (len Cols).
func (w *Matrix) DequantizeRow(r int, dst []float32) {
	dst = dst[:w.Cols]
	if w.F32 != nil {
		copy(dst, w.F32[r*w.Cols:(r+1)*w.Cols])
		return
	}
	if err := gguf.Dequantize(w.Type, w.row(r), dst); err != nil {
		// The type was validated when the matrix was made.
		panic(fmt.Sprintf("ops: dequantize %q row %d: %v", w.Name, r, err))
	}
}

// dequantizeRange writes columns [c0,c1) of row r into dst (len c1-c0);
// c0 and c1 must be multiples of the block size (c1 may be Cols).
func (w *Matrix) dequantizeRange(r, c0, c1 int, dst []float32) {
	if w.F32 != nil {
		copy(dst, w.F32[r*w.Cols+c0:r*w.Cols+c1])
		return
	}
	bs, ts := w.Type.BlockSize(), w.Type.TypeSize()
	row := w.row(r)
	if err := gguf.Dequantize(w.Type, row[c0/bs*ts:(c1+bs-1)/bs*ts], dst[:c1-c0]); err != nil {
		panic(fmt.Sprintf("ops: dequantize %q row %d cols %d..%d: %v", w.Name, r, c0, c1, err))
	}
}

// bytesAsFloat32 views little-endian float32 bytes as []float32 (all our
// targets are little-endian).
func bytesAsFloat32(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// RowSlice is a view of rows [r0, r1) of w as a matrix of its own (no
// copy): one part of a fused weight, such as phi3's attn_qkv (Q | K | V
// rows) or ffn_up (gate | up). Each output row is the same dot product as
// in the whole matrix, so the parts compute what the fused product does.
func (w *Matrix) RowSlice(r0, r1 int) *Matrix {
	if r0 < 0 || r1 > w.Rows || r0 > r1 {
		panic(fmt.Sprintf("ops.Matrix.RowSlice %q: rows %d..%d of %d", w.Name, r0, r1, w.Rows))
	}
	s := *w
	s.Name = fmt.Sprintf("%s[%d:%d]", w.Name, r0, r1)
	s.Rows = r1 - r0
	if w.F32 != nil {
		s.F32 = w.F32[r0*w.Cols : r1*w.Cols]
	} else {
		s.Raw = w.Raw[r0*w.rowBytes : r1*w.rowBytes]
	}
	return &s
}
