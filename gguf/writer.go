package gguf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Writer builds a GGUF file: metadata in the order it was set, tensor infos
// and data in the order tensors were added, each tensor's data padded to the
// alignment (general.alignment when set, else 32), as gguf.cpp writes them.
// Tensor data is either given as bytes or streamed by a callback at write
// time, so a large model never has to sit in memory.
type Writer struct {
	kv          []KV
	kvIndex     map[string]int
	tensors     []writerTensor
	tensorIndex map[string]bool
}

type writerTensor struct {
	info  TensorInfo
	data  []byte
	write func(io.Writer) error
}

// NewWriter returns an empty writer.
func NewWriter() *Writer {
	return &Writer{kvIndex: map[string]int{}, tensorIndex: map[string]bool{}}
}

// Set sets key to v, which must be one of the Go types listed at KV. A key
// set again keeps its first position.
func (w *Writer) Set(key string, v any) error {
	if key == "" {
		return errors.New("gguf: writer: empty key")
	}
	if err := checkValue(v, 0); err != nil {
		return fmt.Errorf("gguf: writer: key %q: %w", key, err)
	}
	if key == "general.alignment" {
		a, ok := v.(uint32)
		if !ok {
			return fmt.Errorf("gguf: writer: key %q must be u32, not %s", key, typeName(v))
		}
		if a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("gguf: writer: alignment %d is not a power of 2", a)
		}
	}
	if i, ok := w.kvIndex[key]; ok {
		w.kv[i].Value = v
		return nil
	}
	w.kvIndex[key] = len(w.kv)
	w.kv = append(w.kv, KV{Key: key, Value: v})
	return nil
}

func checkValue(v any, depth int) error {
	if _, _, ok := valueTypeOf(v); !ok {
		return fmt.Errorf("Go type %T has no GGUF type", v)
	}
	if a, isNested := v.([]any); isNested {
		if depth >= maxNesting {
			return fmt.Errorf("arrays nested deeper than %d", maxNesting)
		}
		for i, e := range a {
			if et, _, _ := valueTypeOf(e); et != ValArray {
				return fmt.Errorf("element %d of an array of arrays is %T, not a slice", i, e)
			}
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetKV copies a pair read from another file, keeping its exact type.
func (w *Writer) SetKV(kv KV) error { return w.Set(kv.Key, kv.Value) }

// Delete removes key if present.
func (w *Writer) Delete(key string) {
	i, ok := w.kvIndex[key]
	if !ok {
		return
	}
	w.kv = append(w.kv[:i], w.kv[i+1:]...)
	delete(w.kvIndex, key)
	for j := i; j < len(w.kv); j++ {
		w.kvIndex[w.kv[j].Key] = j
	}
}

// The typed setters cannot fail for a non-empty key (general.alignment must
// go through SetUint32 with a power of 2); a bad key surfaces at write time.
func (w *Writer) setOrDefer(key string, v any) {
	if err := w.Set(key, v); err != nil {
		// Keep the error for WriteTo: record the pair as an invalid value.
		if i, ok := w.kvIndex[key]; ok {
			w.kv[i].Value = invalidValue{err}
			return
		}
		w.kvIndex[key] = len(w.kv)
		w.kv = append(w.kv, KV{Key: key, Value: invalidValue{err}})
	}
}

type invalidValue struct{ err error }

func (w *Writer) SetString(key, v string)          { w.setOrDefer(key, v) }
func (w *Writer) SetUint8(key string, v uint8)     { w.setOrDefer(key, v) }
func (w *Writer) SetInt8(key string, v int8)       { w.setOrDefer(key, v) }
func (w *Writer) SetUint16(key string, v uint16)   { w.setOrDefer(key, v) }
func (w *Writer) SetInt16(key string, v int16)     { w.setOrDefer(key, v) }
func (w *Writer) SetUint32(key string, v uint32)   { w.setOrDefer(key, v) }
func (w *Writer) SetInt32(key string, v int32)     { w.setOrDefer(key, v) }
func (w *Writer) SetUint64(key string, v uint64)   { w.setOrDefer(key, v) }
func (w *Writer) SetInt64(key string, v int64)     { w.setOrDefer(key, v) }
func (w *Writer) SetFloat32(key string, v float32) { w.setOrDefer(key, v) }
func (w *Writer) SetFloat64(key string, v float64) { w.setOrDefer(key, v) }
func (w *Writer) SetBool(key string, v bool)       { w.setOrDefer(key, v) }

// SetStrings sets an array of strings (e.g. tokenizer.ggml.tokens).
func (w *Writer) SetStrings(key string, v []string) { w.setOrDefer(key, v) }

// SetFloat32s sets an array of f32 (e.g. tokenizer.ggml.scores).
func (w *Writer) SetFloat32s(key string, v []float32) { w.setOrDefer(key, v) }

// SetInt32s sets an array of i32 (e.g. tokenizer.ggml.token_type).
func (w *Writer) SetInt32s(key string, v []int32) { w.setOrDefer(key, v) }

// SetArray sets an array; values is a typed slice ([]uint32, []string, ...)
// or []any of such slices for an array of arrays.
func (w *Writer) SetArray(key string, values any) error {
	if t, _, _ := valueTypeOf(values); t != ValArray {
		return fmt.Errorf("gguf: writer: key %q: %T is not an array type", key, values)
	}
	return w.Set(key, values)
}

// Tensors returns the infos of the tensors added so far, with the offsets
// they get under the alignment in effect now.
func (w *Writer) Tensors() []TensorInfo {
	align := w.alignment()
	out := make([]TensorInfo, len(w.tensors))
	var off uint64
	for i := range w.tensors {
		out[i] = w.tensors[i].info
		out[i].Offset = off
		off += padTo(uint64(out[i].Size), align)
	}
	return out
}

// tensorInfo validates a tensor the way the reader will.
func (w *Writer) tensorInfo(name string, t Type, ne []int64) (TensorInfo, error) {
	fail := func(format string, a ...any) (TensorInfo, error) {
		return TensorInfo{}, fmt.Errorf("gguf: writer: tensor %q: %s", name, fmt.Sprintf(format, a...))
	}
	if len(name) >= MaxNameLen {
		return fail("name is %d bytes, ggml allows at most %d", len(name), MaxNameLen-1)
	}
	if w.tensorIndex[name] {
		return fail("added twice")
	}
	if len(ne) > MaxDims {
		return fail("%d dimensions, ggml allows at most %d", len(ne), MaxDims)
	}
	n := int64(1)
	for j, v := range ne {
		if v <= 0 {
			return fail("dimension %d has %d elements, want > 0", j, v)
		}
		if n > math.MaxInt64/v {
			return fail("shape %v overflows", ne)
		}
		n *= v
	}
	ne0 := int64(1)
	if len(ne) > 0 {
		ne0 = ne[0]
	}
	if t.BlockSize() == 0 {
		return fail("unknown ggml type id %d", uint32(t))
	}
	row, err := RowSize(t, int(ne0))
	if err != nil {
		return fail("%v", err)
	}
	size := int64(row)
	for _, v := range ne[min(1, len(ne)):] {
		if size > math.MaxInt64/v {
			return fail("shape %v of type %s: byte size overflows", ne, t)
		}
		size *= v
	}
	return TensorInfo{Name: name, Ne: append([]int64(nil), ne...), Type: t, Size: size}, nil
}

// AddTensor adds a tensor whose bytes are data (kept, not copied, until the
// file is written). ne is in ggml order (ne[0] is the row length).
func (w *Writer) AddTensor(name string, t Type, ne []int64, data []byte) error {
	ti, err := w.tensorInfo(name, t, ne)
	if err != nil {
		return err
	}
	if int64(len(data)) != ti.Size {
		return fmt.Errorf("gguf: writer: tensor %q: %d bytes of data, shape %v of type %s needs %d", name, len(data), ne, t, ti.Size)
	}
	w.add(writerTensor{info: ti, data: data})
	return nil
}

// AddTensorFunc adds a tensor whose bytes write produces when the file is
// written; it must write exactly the tensor's size (rows in order).
func (w *Writer) AddTensorFunc(name string, t Type, ne []int64, write func(io.Writer) error) error {
	ti, err := w.tensorInfo(name, t, ne)
	if err != nil {
		return err
	}
	if write == nil {
		return fmt.Errorf("gguf: writer: tensor %q: nil write function", name)
	}
	w.add(writerTensor{info: ti, write: write})
	return nil
}

func (w *Writer) add(wt writerTensor) {
	w.tensorIndex[wt.info.Name] = true
	w.tensors = append(w.tensors, wt)
}

func (w *Writer) alignment() uint64 {
	if i, ok := w.kvIndex["general.alignment"]; ok {
		if a, ok := w.kv[i].Value.(uint32); ok {
			return uint64(a)
		}
	}
	return DefaultAlignment
}

// encoder writes little-endian fields, remembering the first error.
type encoder struct {
	w   io.Writer
	n   int64
	err error
	buf [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	m, err := e.w.Write(b)
	e.n += int64(m)
	e.err = err
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.bytes(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	e.buf[0], e.buf[1] = byte(v), byte(v>>8)
	e.bytes(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	for i := range 4 {
		e.buf[i] = byte(v >> (8 * i))
	}
	e.bytes(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	for i := range 8 {
		e.buf[i] = byte(v >> (8 * i))
	}
	e.bytes(e.buf[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
		e.n += int64(len(s))
	}
}

func (e *encoder) zeros(n uint64) {
	var z [64]byte
	for n > 0 {
		k := min(n, uint64(len(z)))
		e.bytes(z[:k])
		n -= k
	}
}

// value writes v without its type tag.
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	default: // an array
		_, elem, _ := valueTypeOf(v)
		e.u32(uint32(elem))
		e.u64(uint64(valueLen(v)))
		e.arrayElems(v)
	}
}

func (e *encoder) arrayElems(v any) {
	switch a := v.(type) {
	case []uint8:
		e.bytes(a)
	case []int8:
		for _, x := range a {
			e.u8(uint8(x))
		}
	case []uint16:
		for _, x := range a {
			e.u16(x)
		}
	case []int16:
		for _, x := range a {
			e.u16(uint16(x))
		}
	case []uint32:
		for _, x := range a {
			e.u32(x)
		}
	case []int32:
		for _, x := range a {
			e.u32(uint32(x))
		}
	case []float32:
		for _, x := range a {
			e.u32(math.Float32bits(x))
		}
	case []bool:
		for _, x := range a {
			e.value(x)
		}
	case []string:
		for _, x := range a {
			e.str(x)
		}
	case []uint64:
		for _, x := range a {
			e.u64(x)
		}
	case []int64:
		for _, x := range a {
			e.u64(uint64(x))
		}
	case []float64:
		for _, x := range a {
			e.u64(math.Float64bits(x))
		}
	case []any:
		for _, x := range a {
			e.value(x) // each element carries its own type and count
		}
	}
}

// WriteTo writes the whole file to out. Streamed tensors are produced in
// order; each must write exactly its size.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	for _, kv := range w.kv {
		if iv, bad := kv.Value.(invalidValue); bad {
			return 0, iv.err
		}
	}
	align := w.alignment()
	e := &encoder{w: out}
	e.bytes([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kv)))
	for _, kv := range w.kv {
		e.str(kv.Key)
		t, _, _ := valueTypeOf(kv.Value)
		e.u32(uint32(t))
		e.value(kv.Value)
	}
	var off uint64
	for i := range w.tensors {
		ti := &w.tensors[i].info
		ti.Offset = off
		e.str(ti.Name)
		e.u32(uint32(len(ti.Ne)))
		for _, v := range ti.Ne {
			e.u64(uint64(v))
		}
		e.u32(uint32(ti.Type))
		e.u64(off)
		off += padTo(uint64(ti.Size), align)
	}
	e.zeros(padTo(uint64(e.n), align) - uint64(e.n))
	if e.err != nil {
		return e.n, fmt.Errorf("gguf: writer: header: %w", e.err)
	}
	for i := range w.tensors {
		wt := &w.tensors[i]
		if wt.write == nil {
			e.bytes(wt.data)
		} else if e.err == nil {
			cw := &countingWriter{w: out}
			if err := wt.write(cw); err != nil {
				return e.n + cw.n, fmt.Errorf("gguf: writer: tensor %q: %w", wt.info.Name, err)
			}
			e.n += cw.n
			if cw.n != wt.info.Size {
				return e.n, fmt.Errorf("gguf: writer: tensor %q: write function wrote %d bytes, want %d", wt.info.Name, cw.n, wt.info.Size)
			}
		}
		e.zeros(padTo(uint64(wt.info.Size), align) - uint64(wt.info.Size))
		if e.err != nil {
			return e.n, fmt.Errorf("gguf: writer: tensor %q: %w", wt.info.Name, e.err)
		}
	}
	return e.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteFile writes the file atomically: into a temporary file in the same
// directory, synced, then renamed over path. On error path is untouched.
func (w *Writer) WriteFile(path string) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if _, err = w.WriteTo(bw); err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return nil
}

// EncodeFunc returns a function for AddTensorFunc that streams data encoded
// as t (F32, F16 or BF16) in chunks, so a large tensor needs no second,
// encoded copy in memory.
func EncodeFunc(t Type, data []float32) func(io.Writer) error {
	return func(w io.Writer) error {
		const chunk = 1 << 16
		size := 4
		if t != TypeF32 {
			size = 2
		}
		buf := make([]byte, min(chunk, len(data))*size)
		for lo := 0; lo < len(data); lo += chunk {
			hi := min(lo+chunk, len(data))
			b := buf[:(hi-lo)*size]
			if err := Quantize(t, data[lo:hi], b); err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
}
