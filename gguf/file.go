// Package gguf reads and writes GGUF files, the container llama.cpp keeps
// models in: a header, typed metadata, tensor infos, and aligned tensor data.
//
// The reader validates as strictly as ggml's gguf.cpp (llama.cpp c392e509):
// an input it accepts is one llama.cpp would load, and an input it rejects
// gets an error naming the key or tensor and the byte offset.
package gguf

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"

	"golang.org/x/sys/unix"
)

const (
	// Magic opens every GGUF file.
	Magic = "GGUF"
	// Version is the version the writer produces; the reader accepts 2 and 3
	// (same layout; v3 only allowed big-endian files, which we reject).
	Version = 3
	// DefaultAlignment applies when general.alignment is absent.
	DefaultAlignment = 32
	// MaxNameLen is ggml's GGML_MAX_NAME: tensor names must be shorter.
	MaxNameLen = 64
	// MaxDims is GGML_MAX_DIMS.
	MaxDims = 4
	// maxNesting bounds arrays of arrays so hostile input cannot recurse deep.
	maxNesting = 16
)

// File is a parsed GGUF file. From Open its tensor data is memory-mapped
// read-only; Close unmaps it.
type File struct {
	Path       string
	Version    uint32
	Alignment  uint64
	KV         []KV         // in file order
	Tensors    []TensorInfo // in file order
	DataOffset int64        // start of the tensor data section
	Size       int64        // bytes in the file

	kvIndex     map[string]int
	tensorIndex map[string]int
	r           io.ReaderAt
	mapped      []byte // the whole file, from Open
}

// TensorInfo describes one tensor.
type TensorInfo struct {
	Name   string
	Ne     []int64 // ggml ne order: Ne[0] is the row length (fastest); len = n_dims
	Type   Type
	Offset uint64 // relative to DataOffset
	Size   int64  // bytes
}

// NElements is the number of elements (1 for a tensor with no dimensions).
func (ti *TensorInfo) NElements() int64 {
	n := int64(1)
	for _, d := range ti.Ne {
		n *= d
	}
	return n
}

// FormatError is a malformed or unsupported file. Offset is the byte where
// the problem was found; Where names the key, tensor or header field.
type FormatError struct {
	Path   string
	Offset int64
	Where  string
	Msg    string
}

func (e *FormatError) Error() string {
	p := ""
	if e.Path != "" {
		p = e.Path + ": "
	}
	return fmt.Sprintf("gguf: %s%s: %s (at byte %d)", p, e.Where, e.Msg, e.Offset)
}

// Open memory-maps path read-only and parses it.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fd.Close() // the mapping outlives the descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	if !st.Mode().IsRegular() {
		// mmap of a directory fails with a puzzling "no such device".
		return nil, fmt.Errorf("gguf: %s: not a regular file (a directory?); give a .gguf file", path)
	}
	size := st.Size()
	if size == 0 {
		return nil, &FormatError{Path: path, Where: "header", Msg: "empty file"}
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("gguf: %s: file of %d bytes is too large to map", path, size)
	}
	m, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: mmap: %w", path, err)
	}
	f, err := parse(bytes.NewReader(m), size, path)
	if err != nil {
		unix.Munmap(m)
		return nil, err
	}
	f.mapped = m
	return f, nil
}

// Parse reads a GGUF file from r (size bytes) without mapping it: Data
// returns nil, TensorReader reads the tensor bytes through r.
func Parse(r io.ReaderAt, size int64) (*File, error) {
	return parse(r, size, "")
}

// Close unmaps the file; every slice Data returned becomes invalid.
func (f *File) Close() error {
	if f.mapped == nil {
		return nil
	}
	m := f.mapped
	f.mapped, f.r = nil, closedReader{}
	return unix.Munmap(m)
}

// closedReader stands in for the mapping after Close.
type closedReader struct{}

func (closedReader) ReadAt([]byte, int64) (int, error) { return 0, os.ErrClosed }

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// Data returns the tensor's bytes as a read-only view into the mapping
// (writing to it faults). It is nil for a File from Parse or after Close.
func (f *File) Data(ti *TensorInfo) []byte {
	if f.mapped == nil {
		return nil
	}
	start := f.DataOffset + int64(ti.Offset)
	return f.mapped[start : start+ti.Size : start+ti.Size]
}

// TensorReader reads the tensor's bytes through the file (mapped or not).
func (f *File) TensorReader(ti *TensorInfo) *io.SectionReader {
	return io.NewSectionReader(f.r, f.DataOffset+int64(ti.Offset), ti.Size)
}

// decoder reads little-endian fields from an io.ReaderAt through a window,
// tracking the offset for error messages.
type decoder struct {
	r      io.ReaderAt
	size   int64
	off    int64 // next byte to read
	win    []byte
	winOff int64 // file offset of win[0]
	path   string
	where  string // what is being read, for errors
}

const windowSize = 64 << 10

func (d *decoder) fail(off int64, format string, a ...any) error {
	return &FormatError{Path: d.path, Offset: off, Where: d.where, Msg: fmt.Sprintf(format, a...)}
}

func (d *decoder) left() int64 { return d.size - d.off }

// next returns the next n bytes; the slice is valid until the next call.
func (d *decoder) next(n int) ([]byte, error) {
	if int64(n) > d.left() {
		return nil, d.fail(d.off, "unexpected end of file: need %d bytes, %d left", n, d.left())
	}
	lo := d.off - d.winOff
	if lo < 0 || lo+int64(n) > int64(len(d.win)) {
		w := int64(max(n, windowSize))
		w = min(w, d.left())
		if cap(d.win) < int(w) {
			d.win = make([]byte, w)
		}
		d.win = d.win[:w]
		if _, err := d.r.ReadAt(d.win, d.off); err != nil && err != io.EOF {
			return nil, d.fail(d.off, "read: %v", err)
		}
		d.winOff, lo = d.off, 0
	}
	d.off += int64(n)
	return d.win[lo : lo+int64(n)], nil
}

func (d *decoder) u8() (uint8, error) {
	b, err := d.next(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.next(2)
	if err != nil {
		return 0, err
	}
	return uint16(b[0]) | uint16(b[1])<<8, nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.next(4)
	if err != nil {
		return 0, err
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24, nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.next(8)
	if err != nil {
		return 0, err
	}
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56, nil
}

// count reads a u64 element count and checks that n elements of at least
// minSize bytes each fit in the rest of the file, so no declared length can
// make us allocate more than the file could hold.
func (d *decoder) count(what string, minSize int64) (int, error) {
	at := d.off
	n, err := d.u64()
	if err != nil {
		return 0, err
	}
	if minSize > 0 && n > uint64(d.left()/minSize) {
		return 0, d.fail(at, "%s %d exceeds the %d bytes left in the file", what, n, d.left())
	}
	return int(n), nil
}

func (d *decoder) str() (string, error) {
	n, err := d.count("string length", 1)
	if err != nil {
		return "", err
	}
	b, err := d.next(n)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func parse(r io.ReaderAt, size int64, path string) (*File, error) {
	d := &decoder{r: r, size: size, path: path, where: "header"}
	f := &File{Path: path, Size: size, r: r, Alignment: DefaultAlignment}

	magic, err := d.next(4)
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, d.fail(0, "invalid magic %q, want %q: not a GGUF file", magic, Magic)
	}
	if f.Version, err = d.u32(); err != nil {
		return nil, err
	}
	switch v := f.Version; {
	case v == 0:
		return nil, d.fail(4, "bad version 0")
	case v&0xFFFF == 0:
		return nil, d.fail(4, "version %#x is byte-swapped: big-endian GGUF files are not supported", v)
	case v == 1:
		return nil, d.fail(4, "GGUF v1 is no longer supported (llama.cpp reads v2 and v3); convert the model again")
	case v > Version:
		return nil, d.fail(4, "GGUF version %d is newer than the supported 2 and 3", v)
	}

	nTensorsAt := d.off
	nTensors, err := d.u64()
	if err != nil {
		return nil, err
	}
	nKVAt := d.off
	nKV, err := d.u64()
	if err != nil {
		return nil, err
	}
	// A KV takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor
	// info 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
	if nKV > uint64(d.left()/13) {
		return nil, d.fail(nKVAt, "%d key-value pairs cannot fit in the %d bytes left", int64(nKV), d.left())
	}
	if nTensors > uint64(d.left()/24) {
		return nil, d.fail(nTensorsAt, "%d tensors cannot fit in the %d bytes left", int64(nTensors), d.left())
	}

	f.kvIndex = make(map[string]int, min(nKV, 1024)) // the counts are only capped by the file size
	alignAt := int64(0)
	for i := 0; i < int(nKV); i++ {
		at := d.off
		kv, err := d.readKV(i)
		if err != nil {
			return nil, err
		}
		if kv.Key == "general.alignment" {
			alignAt = at
		}
		if j, dup := f.kvIndex[kv.Key]; dup {
			return nil, d.fail(at, "duplicate key (pairs %d and %d)", j, i)
		}
		f.kvIndex[kv.Key] = len(f.KV)
		f.KV = append(f.KV, kv)
	}

	if kv, ok := f.Lookup("general.alignment"); ok {
		a, isU32 := kv.Value.(uint32)
		if !isU32 {
			return nil, &FormatError{Path: path, Offset: alignAt, Where: `key "general.alignment"`,
				Msg: fmt.Sprintf("must be u32, is %s", typeName(kv.Value))}
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, &FormatError{Path: path, Offset: alignAt, Where: `key "general.alignment"`,
				Msg: fmt.Sprintf("alignment %d is not a power of 2", a)}
		}
		f.Alignment = uint64(a)
	}

	f.tensorIndex = make(map[string]int, min(nTensors, 1024))
	var offsetAt []int64 // where each tensor's offset field sits, for errors
	for i := 0; i < int(nTensors); i++ {
		at := d.off
		ti, err := d.readTensorInfo(i)
		if err != nil {
			return nil, err
		}
		if j, dup := f.tensorIndex[ti.Name]; dup {
			return nil, d.fail(at, "duplicate tensor name (tensors %d and %d)", j, i)
		}
		f.tensorIndex[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
		offsetAt = append(offsetAt, d.off-8)
	}

	// The data section starts at the next multiple of the alignment; ggml
	// requires every tensor to sit exactly where the previous one's padded
	// data ends, which also makes every offset aligned.
	headerEnd := d.off
	f.DataOffset = int64(padTo(uint64(headerEnd), f.Alignment))
	var expect uint64
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		where := fmt.Sprintf("tensor %q", ti.Name)
		if ti.Offset != expect {
			return nil, &FormatError{Path: path, Offset: offsetAt[i], Where: where,
				Msg: fmt.Sprintf("data offset %d, want %d (tensor data must be contiguous, each padded to %d bytes)", ti.Offset, expect, f.Alignment)}
		}
		end := uint64(f.DataOffset) + ti.Offset + uint64(ti.Size)
		if end > uint64(size) || end < ti.Offset {
			return nil, &FormatError{Path: path, Offset: offsetAt[i], Where: where,
				Msg: fmt.Sprintf("data [%d, %d) runs past the end of the file (%d bytes)", uint64(f.DataOffset)+ti.Offset, end, size)}
		}
		expect = ti.Offset + padTo(uint64(ti.Size), f.Alignment)
	}
	return f, nil
}

func padTo(n, align uint64) uint64 { return (n + align - 1) &^ (align - 1) }

func (d *decoder) readKV(i int) (KV, error) {
	d.where = fmt.Sprintf("key-value pair %d", i)
	at := d.off
	key, err := d.str()
	if err != nil {
		return KV{}, err
	}
	if key == "" {
		return KV{}, d.fail(at, "empty key")
	}
	d.where = fmt.Sprintf("key %q", key)
	typAt := d.off
	t, err := d.u32()
	if err != nil {
		return KV{}, err
	}
	v, err := d.value(ValueType(t), typAt, 0)
	if err != nil {
		return KV{}, err
	}
	return KV{Key: key, Value: v}, nil
}

// value reads one value of type t (read at offset typAt).
func (d *decoder) value(t ValueType, typAt int64, depth int) (any, error) {
	switch t {
	case ValUint8:
		return d.u8()
	case ValInt8:
		v, err := d.u8()
		return int8(v), err
	case ValUint16:
		return d.u16()
	case ValInt16:
		v, err := d.u16()
		return int16(v), err
	case ValUint32:
		return d.u32()
	case ValInt32:
		v, err := d.u32()
		return int32(v), err
	case ValFloat32:
		v, err := d.u32()
		return math.Float32frombits(v), err
	case ValBool:
		v, err := d.u8()
		return v != 0, err // ggml reads a bool as int8 != 0
	case ValString:
		return d.str()
	case ValUint64:
		return d.u64()
	case ValInt64:
		v, err := d.u64()
		return int64(v), err
	case ValFloat64:
		v, err := d.u64()
		return math.Float64frombits(v), err
	case ValArray:
		return d.array(depth)
	}
	return nil, d.fail(typAt, "invalid GGUF value type %d", uint32(t))
}

// array reads an array's element type, count and elements.
func (d *decoder) array(depth int) (any, error) {
	if depth >= maxNesting {
		return nil, d.fail(d.off, "arrays nested deeper than %d", maxNesting)
	}
	elemAt := d.off
	e32, err := d.u32()
	if err != nil {
		return nil, err
	}
	e := ValueType(e32)
	if e >= valCount {
		return nil, d.fail(elemAt, "array of invalid GGUF value type %d", e32)
	}
	n, err := d.count("array length", e.minSize())
	if err != nil {
		return nil, err
	}
	switch e {
	case ValUint8:
		return fixedArray(d, n, 1, func(b []byte) uint8 { return b[0] })
	case ValInt8:
		return fixedArray(d, n, 1, func(b []byte) int8 { return int8(b[0]) })
	case ValBool:
		return fixedArray(d, n, 1, func(b []byte) bool { return b[0] != 0 })
	case ValUint16:
		return fixedArray(d, n, 2, le16)
	case ValInt16:
		return fixedArray(d, n, 2, func(b []byte) int16 { return int16(le16(b)) })
	case ValUint32:
		return fixedArray(d, n, 4, le32)
	case ValInt32:
		return fixedArray(d, n, 4, func(b []byte) int32 { return int32(le32(b)) })
	case ValFloat32:
		return fixedArray(d, n, 4, func(b []byte) float32 { return math.Float32frombits(le32(b)) })
	case ValUint64:
		return fixedArray(d, n, 8, le64)
	case ValInt64:
		return fixedArray(d, n, 8, func(b []byte) int64 { return int64(le64(b)) })
	case ValFloat64:
		return fixedArray(d, n, 8, func(b []byte) float64 { return math.Float64frombits(le64(b)) })
	case ValString:
		out := make([]string, n)
		for i := range out {
			if out[i], err = d.str(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	// ValArray: each element is itself (type, count, elements).
	out := make([]any, n)
	for i := range out {
		if out[i], err = d.array(depth + 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fixedArray decodes n elements of size bytes each (n already capped
// against the file size by count).
func fixedArray[T any](d *decoder, n, size int, dec func([]byte) T) ([]T, error) {
	out := make([]T, n)
	const chunk = windowSize / 8
	for i := 0; i < n; i += chunk {
		m := min(chunk, n-i)
		b, err := d.next(m * size)
		if err != nil {
			return nil, err
		}
		for j := 0; j < m; j++ {
			out[i+j] = dec(b[j*size:])
		}
	}
	return out, nil
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

func (d *decoder) readTensorInfo(i int) (TensorInfo, error) {
	d.where = fmt.Sprintf("tensor info %d", i)
	at := d.off
	name, err := d.str()
	if err != nil {
		return TensorInfo{}, err
	}
	if len(name) >= MaxNameLen {
		return TensorInfo{}, d.fail(at, "tensor name %.80q is %d bytes, ggml allows at most %d", name, len(name), MaxNameLen-1)
	}
	d.where = fmt.Sprintf("tensor %q", name)
	ti := TensorInfo{Name: name}

	dimsAt := d.off
	nDims, err := d.u32()
	if err != nil {
		return ti, err
	}
	if nDims > MaxDims {
		return ti, d.fail(dimsAt, "%d dimensions, ggml allows at most %d", nDims, MaxDims)
	}
	ti.Ne = make([]int64, nDims)
	for j := range ti.Ne {
		neAt := d.off
		v, err := d.u64()
		if err != nil {
			return ti, err
		}
		// ggml accepts ne == 0 only by accident (it divides by ne[1..3]);
		// an empty tensor is never meaningful in a model, so reject it.
		if int64(v) <= 0 {
			return ti, d.fail(neAt, "dimension %d has %d elements, want > 0", j, int64(v))
		}
		ti.Ne[j] = int64(v)
	}
	// ggml: the element count must stay below INT64_MAX.
	n := uint64(1)
	for j, v := range ti.Ne {
		hi, lo := bits.Mul64(n, uint64(v))
		if hi != 0 || lo >= math.MaxInt64 {
			return ti, d.fail(dimsAt, "shape %v: element count overflows int64 at dimension %d", ti.Ne, j)
		}
		n = lo
	}

	typAt := d.off
	t, err := d.u32()
	if err != nil {
		return ti, err
	}
	ti.Type = Type(t)
	bs, ts := ti.Type.BlockSize(), ti.Type.TypeSize()
	if bs == 0 || ts == 0 {
		return ti, d.fail(typAt, "unknown ggml type id %d", t)
	}
	ne0 := int64(1)
	if len(ti.Ne) > 0 {
		ne0 = ti.Ne[0]
	}
	if ne0%int64(bs) != 0 {
		return ti, d.fail(typAt, "type %s: row of %d elements is not a multiple of the block size %d", ti.Type, ne0, bs)
	}
	// bytes = ne0/bs*ts * ne1*ne2*ne3, checked for overflow.
	size := uint64(ne0/int64(bs)) * uint64(ts)
	for _, v := range ti.Ne[min(1, len(ti.Ne)):] {
		hi, lo := bits.Mul64(size, uint64(v))
		if hi != 0 || lo > math.MaxInt64 {
			return ti, d.fail(typAt, "shape %v of type %s: byte size overflows", ti.Ne, ti.Type)
		}
		size = lo
	}
	if size > uint64(d.size) {
		return ti, d.fail(typAt, "shape %v of type %s needs %d bytes, more than the whole file (%d)", ti.Ne, ti.Type, size, d.size)
	}
	ti.Size = int64(size)

	if ti.Offset, err = d.u64(); err != nil {
		return ti, err
	}
	return ti, nil
}
