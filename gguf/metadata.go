package gguf

import (
	"errors"
	"fmt"
	"math"
)

// ValueType is a GGUF metadata value type (enum gguf_type). The ids are part
// of the file format.
type ValueType uint32

const (
	ValUint8   ValueType = 0
	ValInt8    ValueType = 1
	ValUint16  ValueType = 2
	ValInt16   ValueType = 3
	ValUint32  ValueType = 4
	ValInt32   ValueType = 5
	ValFloat32 ValueType = 6
	ValBool    ValueType = 7
	ValString  ValueType = 8
	ValArray   ValueType = 9
	ValUint64  ValueType = 10
	ValInt64   ValueType = 11
	ValFloat64 ValueType = 12
	valCount   ValueType = 13
)

// valueTypeNames are ggml's gguf_type_name spellings.
var valueTypeNames = [valCount]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"}

// String returns ggml's short name of the value type ("u32", "str", "arr").
func (t ValueType) String() string {
	if t < valCount {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("gguf_type(%d)", uint32(t))
}

// fixedSize is the encoded size of a scalar of type t; 0 for strings,
// arrays and unknown types.
func (t ValueType) fixedSize() int {
	switch t {
	case ValUint8, ValInt8, ValBool:
		return 1
	case ValUint16, ValInt16:
		return 2
	case ValUint32, ValInt32, ValFloat32:
		return 4
	case ValUint64, ValInt64, ValFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one encoded value of type t can take; it caps
// declared counts against the bytes left in the file.
func (t ValueType) minSize() int64 {
	switch t {
	case ValString:
		return 8 // the length
	case ValArray:
		return 12 // element type + count
	}
	return int64(t.fixedSize())
}

// KV is one metadata key/value pair. Value holds the Go type that matches
// the GGUF type one to one:
//
//	u8 uint8, i8 int8, u16 uint16, i16 int16, u32 uint32, i32 int32,
//	f32 float32, bool bool, str string, u64 uint64, i64 int64, f64 float64,
//
// an array of those is the matching slice ([]uint32, []string, ...), and an
// array of arrays is []any whose elements are themselves such slices (the
// GGUF spec allows nesting; ggml itself does not read it).
type KV struct {
	Key   string
	Value any
}

// Type returns the GGUF type of the value (ValArray for any slice).
func (kv KV) Type() ValueType {
	t, _, _ := valueTypeOf(kv.Value)
	return t
}

// ElemType returns the element type of an array value (ValArray for an
// array of arrays); for a scalar it equals Type.
func (kv KV) ElemType() ValueType {
	t, e, _ := valueTypeOf(kv.Value)
	if t != ValArray {
		return t
	}
	return e
}

// Len returns the number of elements of an array value, 1 for a scalar.
func (kv KV) Len() int { return valueLen(kv.Value) }

// valueTypeOf maps a Go value to its GGUF type and, for slices, the element
// type; ok is false for Go types GGUF cannot hold.
func valueTypeOf(v any) (t, elem ValueType, ok bool) {
	switch v.(type) {
	case uint8:
		return ValUint8, 0, true
	case int8:
		return ValInt8, 0, true
	case uint16:
		return ValUint16, 0, true
	case int16:
		return ValInt16, 0, true
	case uint32:
		return ValUint32, 0, true
	case int32:
		return ValInt32, 0, true
	case float32:
		return ValFloat32, 0, true
	case bool:
		return ValBool, 0, true
	case string:
		return ValString, 0, true
	case uint64:
		return ValUint64, 0, true
	case int64:
		return ValInt64, 0, true
	case float64:
		return ValFloat64, 0, true
	case []uint8:
		return ValArray, ValUint8, true
	case []int8:
		return ValArray, ValInt8, true
	case []uint16:
		return ValArray, ValUint16, true
	case []int16:
		return ValArray, ValInt16, true
	case []uint32:
		return ValArray, ValUint32, true
	case []int32:
		return ValArray, ValInt32, true
	case []float32:
		return ValArray, ValFloat32, true
	case []bool:
		return ValArray, ValBool, true
	case []string:
		return ValArray, ValString, true
	case []uint64:
		return ValArray, ValUint64, true
	case []int64:
		return ValArray, ValInt64, true
	case []float64:
		return ValArray, ValFloat64, true
	case []any:
		return ValArray, ValArray, true
	}
	return 0, 0, false
}

func valueLen(v any) int {
	switch a := v.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []float32:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float64:
		return len(a)
	case []any:
		return len(a)
	}
	return 1
}

// ErrKeyNotFound is wrapped by every getter error for a missing key.
var ErrKeyNotFound = errors.New("key not found")

// Has reports whether the file has the metadata key.
func (f *File) Has(key string) bool {
	_, ok := f.kvIndex[key]
	return ok
}

// Lookup returns the metadata pair of key.
func (f *File) Lookup(key string) (*KV, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return &f.KV[i], true
}

// Arch returns general.architecture, or "" when missing or not a string.
func (f *File) Arch() string {
	s, _ := f.GetString("general.architecture")
	return s
}

func (f *File) lookup(key string) (*KV, error) {
	kv, ok := f.Lookup(key)
	if !ok {
		return nil, fmt.Errorf("gguf: %w: %q", ErrKeyNotFound, key)
	}
	return kv, nil
}

func wrongType(kv *KV, want string) error {
	return fmt.Errorf("gguf: key %q is %s, want %s", kv.Key, typeName(kv.Value), want)
}

// typeName spells a value's GGUF type for messages: "u32", "arr[str]".
func typeName(v any) string {
	t, e, ok := valueTypeOf(v)
	switch {
	case !ok:
		return fmt.Sprintf("Go %T", v)
	case t == ValArray:
		return "arr[" + e.String() + "]"
	}
	return t.String()
}

// GetString returns a string value.
func (f *File) GetString(key string) (string, error) {
	kv, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := kv.Value.(string)
	if !ok {
		return "", wrongType(kv, "str")
	}
	return s, nil
}

// asInt64 converts any integer scalar to int64; ok is false for other types
// and for uint64 values above MaxInt64.
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

func isInteger(v any) bool {
	switch v.(type) {
	case uint8, int8, uint16, int16, uint32, int32, uint64, int64:
		return true
	}
	return false
}

// GetUint32 returns an integer value of any integer type that fits in a
// uint32, as llama.cpp's get_key converts between integer widths.
func (f *File) GetUint32(key string) (uint32, error) {
	kv, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	if !isInteger(kv.Value) {
		return 0, wrongType(kv, "an integer")
	}
	n, ok := asInt64(kv.Value)
	if !ok || n < 0 || n > math.MaxUint32 {
		return 0, fmt.Errorf("gguf: key %q: value %v does not fit in a uint32", key, kv.Value)
	}
	return uint32(n), nil
}

// GetInt returns an integer value of any integer type that fits in an int64.
func (f *File) GetInt(key string) (int64, error) {
	kv, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	if !isInteger(kv.Value) {
		return 0, wrongType(kv, "an integer")
	}
	n, ok := asInt64(kv.Value)
	if !ok {
		return 0, fmt.Errorf("gguf: key %q: value %v does not fit in an int64", key, kv.Value)
	}
	return n, nil
}

// GetFloat32 returns a f32 value (a f64 is narrowed).
func (f *File) GetFloat32(key string) (float32, error) {
	kv, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := kv.Value.(type) {
	case float32:
		return x, nil
	case float64:
		return float32(x), nil
	}
	return 0, wrongType(kv, "f32")
}

// GetBool returns a bool value.
func (f *File) GetBool(key string) (bool, error) {
	kv, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := kv.Value.(bool)
	if !ok {
		return false, wrongType(kv, "bool")
	}
	return b, nil
}

// GetStrings returns an array of strings (the slice is the file's; do not
// modify it).
func (f *File) GetStrings(key string) ([]string, error) {
	kv, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := kv.Value.([]string)
	if !ok {
		return nil, wrongType(kv, "arr[str]")
	}
	return s, nil
}

// GetFloat32s returns an array of f32 (the file's slice; do not modify it).
// An f64 array is converted into a new slice.
func (f *File) GetFloat32s(key string) ([]float32, error) {
	kv, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	switch a := kv.Value.(type) {
	case []float32:
		return a, nil
	case []float64:
		out := make([]float32, len(a))
		for i, x := range a {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, wrongType(kv, "arr[f32]")
}

// GetInt32s returns an integer array as int32 (e.g. tokenizer.ggml.token_type).
// An i32 array is the file's slice (do not modify it); other integer arrays
// are converted when every element fits.
func (f *File) GetInt32s(key string) ([]int32, error) {
	kv, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	if a, ok := kv.Value.([]int32); ok {
		return a, nil
	}
	switch a := kv.Value.(type) {
	case []uint8:
		return narrowInt32s(key, a)
	case []int8:
		return narrowInt32s(key, a)
	case []uint16:
		return narrowInt32s(key, a)
	case []int16:
		return narrowInt32s(key, a)
	case []uint32:
		return narrowInt32s(key, a)
	case []uint64:
		return narrowInt32s(key, a)
	case []int64:
		return narrowInt32s(key, a)
	}
	return nil, wrongType(kv, "an integer array")
}

func narrowInt32s[T uint8 | int8 | uint16 | int16 | uint32 | uint64 | int64](key string, a []T) ([]int32, error) {
	out := make([]int32, len(a))
	for i, x := range a {
		v := int64(x)
		if (v < 0) != (x < 0) || v < math.MinInt32 || v > math.MaxInt32 {
			return nil, fmt.Errorf("gguf: key %q: element %d (%v) does not fit in an int32", key, i, x)
		}
		out[i] = int32(v)
	}
	return out, nil
}
