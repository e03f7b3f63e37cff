package gguf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// raw assembles GGUF bytes field by field, so tests can build files the
// writer would refuse to produce.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) u64(v uint64) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }

func (r *raw) header(version uint32, nTensors, nKV uint64) *raw {
	r.WriteString("GGUF")
	return r.u32(version).u64(nTensors).u64(nKV)
}

// kvU32 writes a u32 pair.
func (r *raw) kvU32(key string, v uint32) *raw { return r.str(key).u32(uint32(ValUint32)).u32(v) }

// tensor writes one tensor info.
func (r *raw) tensor(name string, t Type, off uint64, ne ...int64) *raw {
	r.str(name).u32(uint32(len(ne)))
	for _, v := range ne {
		r.u64(uint64(v))
	}
	return r.u32(uint32(t)).u64(off)
}

// pad appends zeros up to a multiple of 32, then n data bytes.
func (r *raw) data(n int) *raw {
	for r.Len()%32 != 0 {
		r.WriteByte(0)
	}
	r.Write(make([]byte, n))
	return r
}

func parseBytes(b []byte) (*File, error) { return Parse(bytes.NewReader(b), int64(len(b))) }

func TestParseValid(t *testing.T) {
	var r raw
	r.header(3, 2, 1).kvU32("general.alignment", 32)
	r.tensor("a", TypeF32, 0, 3, 2)    // 24 bytes, padded to 32
	r.tensor("b", TypeQ8_0, 32, 64, 1) // 2 blocks of 34 = 68 bytes
	r.data(32 + 68)
	f, err := parseBytes(r.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 || len(f.Tensors) != 2 {
		t.Fatalf("got version %d alignment %d %d tensors", f.Version, f.Alignment, len(f.Tensors))
	}
	b, ok := f.Tensor("b")
	if !ok || b.Size != 68 || b.NElements() != 64 || b.Offset != 32 {
		t.Fatalf("tensor b = %+v", b)
	}
	got, err := readAll(f, b)
	if err != nil || len(got) != 68 {
		t.Fatalf("TensorReader: %d bytes, %v", len(got), err)
	}
	if f.Data(b) != nil {
		t.Error("Data of a parsed (unmapped) file should be nil")
	}
}

func readAll(f *File, ti *TensorInfo) ([]byte, error) {
	buf := make([]byte, ti.Size)
	_, err := f.TensorReader(ti).ReadAt(buf, 0)
	return buf, err
}

// TestParseRejects checks each validation ggml's gguf.cpp performs, plus our
// allocation caps, and that the error names the place and offset.
func TestParseRejects(t *testing.T) {
	longName := strings.Repeat("x", MaxNameLen)
	tests := []struct {
		name   string
		build  func(r *raw)
		want   string // substring of the error
		offset int64  // expected FormatError.Offset, -1 to skip
	}{
		{"empty", func(r *raw) {}, "unexpected end of file", 0},
		{"magic", func(r *raw) { r.WriteString("GGML"); r.u32(3).u64(0).u64(0) }, "invalid magic", 0},
		{"v0", func(r *raw) { r.header(0, 0, 0) }, "bad version 0", 4},
		{"v1", func(r *raw) { r.header(1, 0, 0) }, "v1 is no longer supported", 4},
		{"v4", func(r *raw) { r.header(4, 0, 0) }, "version 4 is newer", 4},
		{"big-endian", func(r *raw) { r.header(0x03000000, 0, 0) }, "big-endian", 4},
		{"truncated header", func(r *raw) { r.WriteString("GGUF"); r.u32(3).u64(0) }, "unexpected end of file", 16},
		{"n_kv too large", func(r *raw) { r.header(3, 0, math.MaxUint64) }, "key-value pairs cannot fit", 16},
		{"n_tensors too large", func(r *raw) { r.header(3, 1<<40, 0) }, "tensors cannot fit", 8},
		{"key length", func(r *raw) { r.header(3, 0, 1).u64(1 << 50).u32(0).u64(0) }, "string length 1125899906842624 exceeds", 24},
		{"empty key", func(r *raw) { r.header(3, 0, 1).str("").u32(uint32(ValUint8)).WriteByte(1) }, "empty key", 24},
		{"duplicate key", func(r *raw) { r.header(3, 0, 2).kvU32("k", 1).kvU32("k", 2) }, `key "k": duplicate key`, 24 + 8 + 1 + 4 + 4},
		{"value type", func(r *raw) { r.header(3, 0, 1).str("k").u32(13).u32(0) }, `key "k": invalid GGUF value type 13`, 33},
		{"array elem type", func(r *raw) { r.header(3, 0, 1).str("k").u32(uint32(ValArray)).u32(99).u64(0) }, "array of invalid GGUF value type 99", 37},
		{"array length", func(r *raw) {
			r.header(3, 0, 1).str("k").u32(uint32(ValArray)).u32(uint32(ValUint32)).u64(1 << 40)
		}, "array length 1099511627776 exceeds", 41},
		{"string array length", func(r *raw) {
			r.header(3, 0, 1).str("k").u32(uint32(ValArray)).u32(uint32(ValString)).u64(3).str("a")
		}, "array length 3 exceeds", 41},
		{"nesting", func(r *raw) {
			r.header(3, 0, 1).str("k").u32(uint32(ValArray))
			for range maxNesting + 1 {
				r.u32(uint32(ValArray)).u64(1)
			}
			r.u32(uint32(ValUint8)).u64(0)
		}, "nested deeper", -1},
		{"alignment power of 2", func(r *raw) { r.header(3, 0, 2).kvU32("a", 1).kvU32("general.alignment", 48) }, "not a power of 2", 41},
		{"alignment zero", func(r *raw) { r.header(3, 0, 1).kvU32("general.alignment", 0) }, "not a power of 2", -1},
		{"alignment type", func(r *raw) {
			r.header(3, 0, 1).str("general.alignment").u32(uint32(ValUint64)).u64(32)
		}, "must be u32, is u64", -1},
		{"name length", func(r *raw) { r.header(3, 1, 0).tensor(longName, TypeF32, 0, 1).data(4) }, "64 bytes, ggml allows at most 63", 24},
		{"duplicate tensor", func(r *raw) {
			r.header(3, 2, 0).tensor("t", TypeF32, 0, 1).tensor("t", TypeF32, 32, 1).data(36)
		}, `tensor "t": duplicate tensor name (tensors 0 and 1)`, 24 + 8 + 1 + 4 + 8 + 4 + 8},
		{"n_dims", func(r *raw) { r.header(3, 1, 0).tensor("t", TypeF32, 0, 1, 1, 1, 1, 1).data(4) }, "5 dimensions", 33},
		{"ne zero", func(r *raw) { r.header(3, 1, 0).tensor("t", TypeF32, 0, 4, 0).data(4) }, "dimension 1 has 0 elements", 45},
		{"ne negative", func(r *raw) { r.header(3, 1, 0).tensor("t", TypeF32, 0, -4).data(4) }, "dimension 0 has -4 elements", 37},
		{"element overflow", func(r *raw) {
			r.header(3, 1, 0).tensor("t", TypeF32, 0, 1<<32, 1<<31).data(4)
		}, "element count overflows", 33},
		{"byte overflow", func(r *raw) {
			r.header(3, 1, 0).tensor("t", TypeF32, 0, 1<<31, 1<<31).data(4)
		}, "byte size overflows", -1},
		{"huge tensor", func(r *raw) { r.header(3, 1, 0).tensor("t", TypeF32, 0, 1<<20, 1<<20).data(4) }, "more than the whole file", -1},
		{"removed type", func(r *raw) { r.header(3, 1, 0).tensor("t", Type(4), 0, 32).data(20) }, "unknown ggml type id 4", 45},
		{"unknown type", func(r *raw) { r.header(3, 1, 0).tensor("t", Type(99), 0, 32).data(20) }, "unknown ggml type id 99", 45},
		{"block size", func(r *raw) { r.header(3, 1, 0).tensor("t", TypeQ4_0, 0, 33).data(40) }, "row of 33 elements is not a multiple of the block size 32", 45},
		{"offset gap", func(r *raw) { r.header(3, 1, 0).tensor("t", TypeF32, 32, 8).data(64) }, `tensor "t": data offset 32, want 0`, -1},
		{"offset overlap", func(r *raw) {
			r.header(3, 2, 0).tensor("a", TypeF32, 0, 8).tensor("b", TypeF32, 16, 8).data(64)
		}, `tensor "b": data offset 16, want 32`, -1},
		{"data past end", func(r *raw) { r.header(3, 1, 0).tensor("t", TypeF32, 0, 8).data(31) }, `tensor "t": data [64, 96) runs past the end of the file (95 bytes)`, 24 + 8 + 1 + 4 + 8 + 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r raw
			tc.build(&r)
			_, err := parseBytes(r.Bytes())
			if err == nil {
				t.Fatalf("accepted; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError", err)
			}
			if tc.offset >= 0 && fe.Offset != tc.offset {
				t.Errorf("offset %d, want %d (%v)", fe.Offset, tc.offset, err)
			}
		})
	}
}

// TestParseV2 checks that version 2 (same layout as 3) is read.
func TestParseV2(t *testing.T) {
	var r raw
	r.header(2, 0, 1).kvU32("general.alignment", 64)
	f, err := parseBytes(r.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 || f.Alignment != 64 {
		t.Fatalf("version %d alignment %d", f.Version, f.Alignment)
	}
}

// everyValueWriter sets one key of every GGUF value type.
func everyValueWriter() *Writer {
	w := NewWriter()
	w.SetUint8("u8", 200)
	w.SetInt8("i8", -100)
	w.SetUint16("u16", 60000)
	w.SetInt16("i16", -30000)
	w.SetUint32("u32", 4000000000)
	w.SetInt32("i32", -2000000000)
	w.SetFloat32("f32", 1e-5)
	w.SetBool("bool", true)
	w.SetString("str", "héllo")
	w.SetUint64("u64", math.MaxUint64)
	w.SetInt64("i64", -1<<62)
	w.SetFloat64("f64", math.Pi)
	w.SetStrings("arr.str", []string{"a", "", "ccc"})
	w.SetFloat32s("arr.f32", []float32{1, -2.5})
	w.SetInt32s("arr.i32", []int32{1, 2, 3})
	must(w.SetArray("arr.u8", []uint8{1, 2}))
	must(w.SetArray("arr.i8", []int8{-1}))
	must(w.SetArray("arr.u16", []uint16{7}))
	must(w.SetArray("arr.i16", []int16{-7}))
	must(w.SetArray("arr.u32", []uint32{1, 1 << 31}))
	must(w.SetArray("arr.u32.empty", []uint32{}))
	must(w.SetArray("arr.bool", []bool{true, false}))
	must(w.SetArray("arr.u64", []uint64{1 << 63}))
	must(w.SetArray("arr.i64", []int64{-5, 1 << 40}))
	must(w.SetArray("arr.f64", []float64{0.5}))
	must(w.SetArray("arr.nested", []any{[]uint32{1, 2}, []string{"x"}, []any{[]int8{-3}}, []any{}}))
	return w
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func TestMetadataRoundTripAndGetters(t *testing.T) {
	w := everyValueWriter()
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := parseBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.KV) != len(w.kv) {
		t.Fatalf("%d keys back, wrote %d", len(f.KV), len(w.kv))
	}
	for i, kv := range f.KV {
		want := w.kv[i]
		if kv.Key != want.Key || !deepEqual(kv.Value, want.Value) {
			t.Errorf("pair %d: got %s=%#v, want %s=%#v", i, kv.Key, kv.Value, want.Key, want.Value)
		}
		if kv.Type() != want.Type() || kv.ElemType() != want.ElemType() || kv.Len() != want.Len() {
			t.Errorf("%s: type %s/%s/%d, want %s/%s/%d", kv.Key, kv.Type(), kv.ElemType(), kv.Len(), want.Type(), want.ElemType(), want.Len())
		}
	}

	// Integer getters convert widths when the value fits, as llama.cpp does.
	intCases := []struct {
		key     string
		u32     uint32
		u32Err  bool
		i64     int64
		i64Errs bool
	}{
		{"u8", 200, false, 200, false},
		{"i8", 0, true, -100, false},
		{"u16", 60000, false, 60000, false},
		{"i16", 0, true, -30000, false},
		{"u32", 4000000000, false, 4000000000, false},
		{"i32", 0, true, -2000000000, false},
		{"u64", 0, true, 0, true},
		{"i64", 0, true, -1 << 62, false},
	}
	for _, c := range intCases {
		u, err := f.GetUint32(c.key)
		if (err != nil) != c.u32Err || (err == nil && u != c.u32) {
			t.Errorf("GetUint32(%s) = %d, %v", c.key, u, err)
		}
		n, err := f.GetInt(c.key)
		if (err != nil) != c.i64Errs || (err == nil && n != c.i64) {
			t.Errorf("GetInt(%s) = %d, %v", c.key, n, err)
		}
	}
	if v, err := f.GetFloat32("f32"); err != nil || v != 1e-5 {
		t.Errorf("GetFloat32 = %v, %v", v, err)
	}
	if v, err := f.GetFloat32("f64"); err != nil || v != float32(math.Pi) {
		t.Errorf("GetFloat32(f64) = %v, %v", v, err)
	}
	if v, err := f.GetBool("bool"); err != nil || !v {
		t.Errorf("GetBool = %v, %v", v, err)
	}
	if v, err := f.GetString("str"); err != nil || v != "héllo" {
		t.Errorf("GetString = %q, %v", v, err)
	}
	if v, err := f.GetStrings("arr.str"); err != nil || len(v) != 3 || v[2] != "ccc" {
		t.Errorf("GetStrings = %q, %v", v, err)
	}
	if v, err := f.GetFloat32s("arr.f32"); err != nil || len(v) != 2 || v[1] != -2.5 {
		t.Errorf("GetFloat32s = %v, %v", v, err)
	}
	if v, err := f.GetInt32s("arr.i32"); err != nil || len(v) != 3 || v[2] != 3 {
		t.Errorf("GetInt32s = %v, %v", v, err)
	}
	if v, err := f.GetInt32s("arr.i16"); err != nil || len(v) != 1 || v[0] != -7 {
		t.Errorf("GetInt32s(i16) = %v, %v", v, err)
	}
	if _, err := f.GetInt32s("arr.u32"); err == nil || !strings.Contains(err.Error(), "element 1") {
		t.Errorf("GetInt32s(u32 with 1<<31) err = %v, want element 1 does not fit", err)
	}

	// Wrong types and missing keys are errors, never panics.
	wrong := []struct {
		get  func() error
		want string
	}{
		{func() error { _, err := f.GetString("u32"); return err }, `key "u32" is u32, want str`},
		{func() error { _, err := f.GetUint32("str"); return err }, "is str, want an integer"},
		{func() error { _, err := f.GetInt("arr.u32"); return err }, "is arr[u32], want an integer"},
		{func() error { _, err := f.GetFloat32("u32"); return err }, "is u32, want f32"},
		{func() error { _, err := f.GetBool("u8"); return err }, "is u8, want bool"},
		{func() error { _, err := f.GetStrings("str"); return err }, "is str, want arr[str]"},
		{func() error { _, err := f.GetFloat32s("arr.i32"); return err }, "is arr[i32], want arr[f32]"},
		{func() error { _, err := f.GetInt32s("arr.f32"); return err }, "is arr[f32], want an integer array"},
		{func() error { _, err := f.GetInt32s("arr.nested"); return err }, "is arr[arr]"},
	}
	for i, c := range wrong {
		err := c.get()
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: error %q, want %q", i, err, c.want)
		}
	}
	if _, err := f.GetUint32("missing"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("missing key: %v, want ErrKeyNotFound", err)
	}
	if f.Arch() != "" || f.Has("missing") || !f.Has("u8") {
		t.Error("Arch/Has wrong")
	}
}

// deepEqual compares values bit for bit (NaN-safe for floats).
func deepEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	ta, ea, _ := valueTypeOf(a)
	tb, eb, _ := valueTypeOf(b)
	return ta == tb && ea == eb && bytes.Equal(ja, jb)
}

// modelInfo is one entry of reference/models.json (written from gguf-py).
type modelInfo struct {
	File        string            `json:"file"`
	Bytes       int64             `json:"bytes"`
	FileType    *int64            `json:"general.file_type"`
	TensorTypes map[string]string `json:"tensor_types"`
}

func loadModels(t *testing.T) map[string]modelInfo {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "reference/models.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]modelInfo
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOpenFixtures opens every fixture model and compares its size, file
// type and every tensor's type with reference/models.json.
func TestOpenFixtures(t *testing.T) {
	models := loadModels(t)
	if len(models) < 20 {
		t.Fatalf("models.json lists %d models", len(models))
	}
	for name, m := range models {
		t.Run(name, func(t *testing.T) {
			f, err := Open(fixtures.Path(t, m.File))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Size != m.Bytes {
				t.Errorf("size %d, want %d", f.Size, m.Bytes)
			}
			if m.FileType != nil {
				ft, err := f.GetUint32("general.file_type")
				if err != nil || int64(ft) != *m.FileType {
					t.Errorf("general.file_type = %d, %v; want %d", ft, err, *m.FileType)
				}
			} else if f.Has("general.file_type") {
				t.Error("general.file_type present; reference says absent")
			}
			if len(f.Tensors) != len(m.TensorTypes) {
				t.Errorf("%d tensors, want %d", len(f.Tensors), len(m.TensorTypes))
			}
			for tname, typ := range m.TensorTypes {
				ti, ok := f.Tensor(tname)
				if !ok {
					t.Errorf("tensor %s missing", tname)
					continue
				}
				if !strings.EqualFold(ti.Type.String(), typ) {
					t.Errorf("tensor %s: type %s, want %s", tname, ti.Type, typ)
				}
				if d := f.Data(ti); int64(len(d)) != ti.Size {
					t.Errorf("tensor %s: Data has %d bytes, want %d", tname, len(d), ti.Size)
				}
			}
			if f.Arch() != "llama" && f.Arch() != "qwen2" {
				t.Errorf("arch %q", f.Arch())
			}
		})
	}
}

// TestOpenVocabOnly reads llama.cpp's vocabulary-only files (no tensors).
func TestOpenVocabOnly(t *testing.T) {
	for _, p := range fixtures.Glob(t, "vocab/*.gguf") {
		f, err := Open(p)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		toks, err := f.GetStrings("tokenizer.ggml.tokens")
		if err != nil || len(toks) == 0 {
			t.Errorf("%s: tokens %d, %v", filepath.Base(p), len(toks), err)
		}
		f.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.gguf")); err == nil {
		t.Error("missing file accepted")
	}
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty file: %v (want an error naming the path)", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v (want \"not a regular file\")", err)
	}
	bad := filepath.Join(dir, "bad.gguf")
	var r raw
	r.header(3, 1, 0).tensor("t", TypeF32, 0, 8).data(31)
	os.WriteFile(bad, r.Bytes(), 0o644)
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `tensor "t"`) {
		t.Errorf("truncated data: %v", err)
	}
}

// BenchmarkOpen measures opening (mapping and parsing) a model with a
// 32,000-token vocabulary.
func BenchmarkOpen(b *testing.B) {
	p := fixtures.Path(b, "models/tiny-random/llama-2-tiny-random.gguf")
	for b.Loop() {
		f, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "opens/s")
}
