package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"ladder-engine/internal/fixtures"
)

// The reader parses untrusted files, so it is fuzzed. A bounded run is part
// of the normal tests (TestParseMutations); for a longer one:
//
//	go test ./gguf -run '^$' -fuzz FuzzParse -fuzztime 20s -fuzzminimizetime 5s
//	go test ./gguf -run '^$' -fuzz FuzzOpen -fuzztime 20s -fuzzminimizetime 5s

// fuzzSeeds returns small valid files built here plus the headers of the
// fixture models (up to 32 KiB each), when the fixtures are present.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	w := everyValueWriter()
	w.AddTensor("f32", TypeF32, []int64{3, 2}, make([]byte, 24))
	w.AddTensor("q8", TypeQ8_0, []int64{32, 2}, make([]byte, 68))
	w.AddTensor("q4k", TypeQ4_K, []int64{256}, make([]byte, 144))
	var buf bytes.Buffer
	w.WriteTo(&buf)
	seeds = append(seeds, buf.Bytes())

	var r raw
	r.header(2, 1, 1).kvU32("general.alignment", 64).tensor("t", TypeF16, 0, 4, 1, 1, 1).data(64)
	seeds = append(seeds, r.Bytes())

	// Fixtures are optional here: the seeds above exercise every path.
	// Each fixture becomes a miniature of itself (arrays cut to 4 elements,
	// tensors shrunk to one block, at most 12 of them): the same keys and
	// types, but small, because the fuzzer minimizes every new input and a
	// big one stalls it.
	paths, _ := filepath.Glob(filepath.Join(fixtures.Dir(), "models", "*", "*.gguf"))
	vocab, _ := filepath.Glob(filepath.Join(fixtures.Dir(), "vocab", "*.gguf"))
	for _, p := range append(paths, vocab...) {
		if s := miniature(p); s != nil {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

func miniature(path string) []byte {
	f, err := Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	w := NewWriter()
	for _, kv := range f.KV {
		v := kv.Value
		if kv.Type() == ValArray && kv.Len() > 4 {
			v = reflect.ValueOf(v).Slice(0, 4).Interface()
		}
		w.Set(kv.Key, v)
	}
	for _, ti := range f.Tensors[:min(12, len(f.Tensors))] {
		ne := make([]int64, len(ti.Ne))
		for i := range ne {
			ne[i] = 1
		}
		ne[0] = int64(ti.Type.BlockSize())
		w.AddTensor(ti.Name, ti.Type, ne, make([]byte, ti.Type.TypeSize()))
	}
	var buf bytes.Buffer
	w.WriteTo(&buf)
	return buf.Bytes()
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParse(t, b) })
}

func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.gguf")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := Open(p)
		if err != nil {
			return
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			if d := file.Data(ti); int64(len(d)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes mapped, size %d", ti.Name, len(d), ti.Size)
			}
		}
		if err := file.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// checkParse parses b; whatever it accepts must survive every getter and a
// write/re-read cycle unchanged, and whatever it rejects must be a
// FormatError.
func checkParse(t testing.TB, b []byte) {
	f, err := parseBytes(b)
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v is not a *FormatError", err)
		}
		if fe.Offset < 0 || fe.Offset > int64(len(b)) {
			t.Fatalf("error offset %d outside the %d-byte input: %v", fe.Offset, len(b), err)
		}
		return
	}
	for _, kv := range f.KV {
		f.GetString(kv.Key)
		f.GetUint32(kv.Key)
		f.GetInt(kv.Key)
		f.GetFloat32(kv.Key)
		f.GetBool(kv.Key)
		f.GetStrings(kv.Key)
		f.GetFloat32s(kv.Key)
		f.GetInt32s(kv.Key)
	}
	f.Arch()
	if f.Alignment > 1<<16 {
		// Valid (ggml accepts any power of 2), but writing it back pads
		// the header to the alignment: gigabytes of zeros for 1<<31.
		return
	}
	w := NewWriter()
	for _, kv := range f.KV {
		if err := w.SetKV(kv); err != nil {
			t.Fatalf("writer refuses key %q the reader accepted: %v", kv.Key, err)
		}
	}
	for i := range f.Tensors {
		ti := f.Tensors[i]
		if err := w.AddTensorFunc(ti.Name, ti.Type, ti.Ne, func(out io.Writer) error {
			_, err := io.Copy(out, f.TensorReader(&ti))
			return err
		}); err != nil {
			t.Fatalf("writer refuses tensor %q the reader accepted: %v", ti.Name, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatalf("write back: %v", err)
	}
	g, err := parseBytes(buf.Bytes())
	if err != nil {
		t.Fatalf("re-reading what we wrote: %v", err)
	}
	if len(g.KV) != len(f.KV) || len(g.Tensors) != len(f.Tensors) {
		t.Fatalf("re-read %d keys %d tensors, want %d and %d", len(g.KV), len(g.Tensors), len(f.KV), len(f.Tensors))
	}
	for i := range f.KV {
		if g.KV[i].Key != f.KV[i].Key || !deepEqual(g.KV[i].Value, f.KV[i].Value) {
			t.Fatalf("key %d changed: %q", i, f.KV[i].Key)
		}
	}
	for i := range f.Tensors {
		a, c := f.Tensors[i], g.Tensors[i]
		if a.Name != c.Name || a.Type != c.Type || a.Offset != c.Offset || a.Size != c.Size || fmt.Sprint(a.Ne) != fmt.Sprint(c.Ne) {
			t.Fatalf("tensor %d changed: %+v -> %+v", i, a, c)
		}
	}
}

// TestParseMutations is a deterministic, bounded fuzz run: a few thousand
// mutations of the seeds (byte flips, hostile 4- and 8-byte integers,
// truncation, splices), each checked by checkParse and for allocation
// proportional to the input.
func TestParseMutations(t *testing.T) {
	seeds := fuzzSeeds()
	rng := uint64(0x9E3779B97F4A7C15)
	next := func() uint64 { // xorshift64
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return rng
	}
	hostile := []uint64{0, 1, 2, 3, 4, 8, 9, 12, 13, 31, 32, 63, 64, 255, 1 << 16, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1<<63 - 1, 1 << 63, 1<<64 - 1}
	iters := 4000
	if testing.Short() {
		iters = 500
	}
	var ms runtime.MemStats
	for i := range iters {
		seed := seeds[i%len(seeds)]
		b := append([]byte(nil), seed...)
		for range 1 + next()%3 {
			if len(b) == 0 {
				break
			}
			// Most structure sits in the first few hundred bytes; bias there.
			limit := len(b)
			if next()%2 == 0 {
				limit = min(limit, 512)
			}
			pos := int(next() % uint64(limit))
			switch next() % 5 {
			case 0:
				b[pos] = byte(next())
			case 1:
				b[pos] ^= 1 << (next() % 8)
			case 2, 3:
				v := hostile[next()%uint64(len(hostile))]
				n := 4 + 4*int(next()%2)
				for k := 0; k < n && pos+k < len(b); k++ {
					b[pos+k] = byte(v >> (8 * k))
				}
			case 4:
				b = b[:pos]
			}
		}
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		checkParse(t, b)
		runtime.ReadMemStats(&ms)
		// checkParse parses twice and writes once; allow a generous
		// constant factor, far below what an uncapped length would cost.
		if got, limit := ms.TotalAlloc-before, uint64(40*len(b)+(4<<20)); got > limit {
			t.Fatalf("iteration %d: %d bytes allocated for a %d-byte input", i, got, len(b))
		}
	}
}
