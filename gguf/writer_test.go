package gguf

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// copyFile rebuilds f in a writer: same keys in the same order with the
// same types, same tensors in the same order.
func copyFile(t *testing.T, f *File) *Writer {
	t.Helper()
	w := NewWriter()
	for _, kv := range f.KV {
		if err := w.SetKV(kv); err != nil {
			t.Fatal(err)
		}
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if err := w.AddTensor(ti.Name, ti.Type, ti.Ne, f.Data(ti)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// TestRoundTripFixtures reads every fixture model and writes it back: the
// bytes must be identical, which checks key types, order, tensor infos,
// padding and data placement against files llama.cpp and gguf-py wrote.
func TestRoundTripFixtures(t *testing.T) {
	paths := fixtures.Glob(t, "models/synth/*.gguf")
	paths = append(paths,
		fixtures.Path(t, "models/stories260K/stories260K.gguf"),
		fixtures.Path(t, "models/tiny-random/llama-2-tiny-random.gguf"))
	dir := t.TempDir()
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			out := filepath.Join(dir, filepath.Base(p))
			if err := copyFile(t, f).WriteFile(out); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(p)
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, want) {
				n := 0
				for n < len(got) && n < len(want) && got[n] == want[n] {
					n++
				}
				t.Fatalf("wrote %d bytes, original %d; first difference at byte %d", len(got), len(want), n)
			}
			os.Remove(out)
		})
	}
}

// TestWriterStreaming writes tensors through AddTensorFunc and reads them
// back, with a non-default alignment.
func TestWriterStreaming(t *testing.T) {
	w := NewWriter()
	w.SetString("general.architecture", "test")
	w.SetUint32("general.alignment", 64)
	rows := [][]byte{bytes.Repeat([]byte{1}, 34), bytes.Repeat([]byte{2}, 34)}
	if err := w.AddTensorFunc("q", TypeQ8_0, []int64{32, 2}, func(out io.Writer) error {
		for _, r := range rows {
			if _, err := out.Write(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f32 := []byte{0, 0, 128, 63, 0, 0, 0, 64} // 1.0, 2.0
	if err := w.AddTensor("v", TypeF32, []int64{2}, f32); err != nil {
		t.Fatal(err)
	}
	infos := w.Tensors()
	if infos[0].Offset != 0 || infos[1].Offset != 128 || infos[0].Size != 68 {
		t.Fatalf("writer tensor infos %+v", infos)
	}
	path := filepath.Join(t.TempDir(), "s.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Fatalf("alignment %d data offset %d", f.Alignment, f.DataOffset)
	}
	q, _ := f.Tensor("q")
	if !bytes.Equal(f.Data(q), bytes.Join(rows, nil)) {
		t.Error("streamed data differs")
	}
	v, _ := f.Tensor("v")
	if v.Offset != 128 || !bytes.Equal(f.Data(v), f32) {
		t.Errorf("tensor v at %d: %v", v.Offset, f.Data(v))
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
}

// TestWriteFileAtomic: a failing write leaves neither the target nor a
// temporary file behind, and an existing target untouched.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	os.WriteFile(path, []byte("old"), 0o644)
	boom := errors.New("boom")
	w := NewWriter()
	w.AddTensorFunc("t", TypeF32, []int64{4}, func(out io.Writer) error {
		out.Write(make([]byte, 8))
		return boom
	})
	if err := w.WriteFile(path); !errors.Is(err, boom) || !strings.Contains(err.Error(), `tensor "t"`) {
		t.Fatalf("err = %v", err)
	}
	short := NewWriter()
	short.AddTensorFunc("t", TypeF32, []int64{4}, func(out io.Writer) error { _, err := out.Write(make([]byte, 8)); return err })
	if err := short.WriteFile(path); err == nil || !strings.Contains(err.Error(), "wrote 8 bytes, want 16") {
		t.Fatalf("short write: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left: %v", ents)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("target changed to %q", b)
	}
}

func TestWriterRejects(t *testing.T) {
	w := NewWriter()
	tests := []struct {
		err  error
		want string
	}{
		{w.AddTensor(strings.Repeat("n", 64), TypeF32, []int64{1}, make([]byte, 4)), "name is 64 bytes"},
		{w.AddTensor("a", TypeF32, []int64{1, 1, 1, 1, 1}, make([]byte, 4)), "5 dimensions"},
		{w.AddTensor("a", TypeF32, []int64{0}, nil), "dimension 0 has 0 elements"},
		{w.AddTensor("a", TypeQ4_0, []int64{33}, nil), "not a multiple of the block size"},
		{w.AddTensor("a", Type(4), []int64{32}, nil), "unknown ggml type id 4"},
		{w.AddTensor("a", TypeF32, []int64{2}, make([]byte, 4)), "4 bytes of data"},
		{w.AddTensorFunc("a", TypeF32, []int64{2}, nil), "nil write function"},
		{w.Set("k", 3), "Go type int has no GGUF type"},
		{w.Set("k", []any{1}), "not a slice"},
		{w.Set("", "x"), "empty key"},
		{w.Set("general.alignment", uint64(32)), "must be u32"},
		{w.Set("general.alignment", uint32(3)), "not a power of 2"},
		{w.SetArray("k", "x"), "not an array type"},
	}
	for i, tc := range tests {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("case %d: error %v, want %q", i, tc.err, tc.want)
		}
	}
	w.AddTensor("dup", TypeF32, []int64{1}, make([]byte, 4))
	if err := w.AddTensor("dup", TypeF32, []int64{1}, make([]byte, 4)); err == nil || !strings.Contains(err.Error(), "added twice") {
		t.Errorf("duplicate tensor: %v", err)
	}
	w.SetUint32("general.alignment", 48) // typed setters defer the error to the write
	if _, err := w.WriteTo(io.Discard); err == nil || !strings.Contains(err.Error(), "not a power of 2") {
		t.Errorf("bad alignment via SetUint32: %v", err)
	}
}

// TestWriterSetKeepsPosition: setting a key again replaces it in place;
// Delete removes it.
func TestWriterSetKeepsPosition(t *testing.T) {
	w := NewWriter()
	w.SetUint32("a", 1)
	w.SetUint32("b", 2)
	w.SetString("a", "x")
	w.SetUint32("c", 3)
	w.Delete("b")
	var buf bytes.Buffer
	w.WriteTo(&buf)
	f, err := parseBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.KV) != 2 || f.KV[0].Key != "a" || f.KV[0].Value != "x" || f.KV[1].Key != "c" {
		t.Fatalf("keys %+v", f.KV)
	}
}
