package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"ladder-engine/gguf"
	"ladder-engine/internal/fixtures"
)

var dotTypes = []gguf.Type{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
	gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ8_0,
	gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
	gguf.TypeIQ4_NL, gguf.TypeIQ4_XS,
}

// randomWeightRow returns n elements of type t: quantized N(0, 0.02) data
// where gguf can encode t, else random blocks with a sane f16 scale.
func randomWeightRow(rng *rand.Rand, t gguf.Type, n int) []byte {
	rs, _ := gguf.RowSize(t, n)
	out := make([]byte, rs)
	if gguf.CanQuantize(t) {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 0.02)
		}
		if err := gguf.Quantize(t, x, out); err != nil {
			panic(err)
		}
		return out
	}
	for i := range out {
		out[i] = byte(rng.Uint32())
	}
	bs := t.TypeSize()
	for o := 0; o < rs; o += bs { // IQ4_NL / IQ4_XS: d first
		binary.LittleEndian.PutUint16(out[o:], gguf.F32ToF16(float32(0.0005+0.001*rng.Float64())))
	}
	return out
}

func randomActivations(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	x[n/3] = 9 // an outlier, as real hidden states have
	for i := 0; i < 32 && i < n; i++ {
		x[i] = 0 // an all-zero block (zero scale)
	}
	return x
}

// expectedDot is the float64 dot of the dequantized weight row with the
// dequantized encoded activations, plus the |terms| sum for the tolerance.
// For Q8_1 activations the kernels use the block's stored s = f16(d*sum q)
// for the weight-min term, as ggml does; the expectation uses it too.
func expectedDot(t *testing.T, typ gguf.Type, k *DotKernel, n int, w, a []byte) (dot, mag float64) {
	wf := make([]float32, n)
	af := make([]float32, n)
	if err := gguf.Dequantize(typ, w, wf); err != nil {
		t.Fatal(err)
	}
	if err := gguf.Dequantize(k.ActType, a, af); err != nil {
		t.Fatal(err)
	}
	for i := range wf {
		dot += float64(wf[i]) * float64(af[i])
		mag += math.Abs(float64(wf[i]) * float64(af[i]))
	}
	if k.ActType == gguf.TypeQ8_1 {
		wbs := typ.TypeSize()
		for b := 0; b < n/32; b++ {
			m := float64(half(w[b*wbs+2:]))
			y := a[36*b : 36*b+36]
			sq := 0
			for _, q := range y[4:] {
				sq += int(int8(q))
			}
			s := float64(half(y[2:]))
			exact := float64(half(y)) * float64(sq)
			dot += m * (s - exact)
			mag += math.Abs(m * s)
		}
	}
	return dot, mag
}

// Each kernel (reference and, in the SIMD build, fast) against the float64
// dot of the dequantized operands. Integer block sums are exact, so the only
// error is float32 rounding of the block scales' products and of the
// accumulation: within 1e-5 of sum|w_i*a_i| for rows of up to 4096.
func TestDotKernelsMatchDequantized(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, typ := range dotTypes {
		k, err := DotKernelFor(typ)
		if err != nil {
			t.Fatal(err)
		}
		e := dotTable[typ]
		for _, n := range []int{256, 512, 4096} {
			w := randomWeightRow(rng, typ, n)
			x := randomActivations(rng, n)
			ab, _ := gguf.RowSize(k.ActType, n)
			a := make([]byte, ab)
			k.Quantize(x, a)
			want, mag := expectedDot(t, typ, k, n, w, a)
			tol := 1e-5*mag + 1e-30
			kernels := []struct {
				name string
				fn   func(int, []byte, []byte) float32
			}{{"ref", e.ref}, {"fast", e.fast}}
			for _, kn := range kernels {
				if kn.fn == nil {
					continue
				}
				got := kn.fn(n, w, a)
				if math.Abs(float64(got)-want) > tol {
					t.Errorf("%s n=%d %s: dot %g, want %g (tol %g)", typ, n, kn.name, got, want, tol)
				}
			}
		}
	}
}

// Real llama-quantize output: rows of the first tensor of each type in the
// synth models, against dequantized float64 dots (as above), and the fast
// kernels against the reference ones.
func TestDotKernelsOnSynthModels(t *testing.T) {
	files := fixtures.Glob(t, "models/synth/synth-llama-*.gguf")
	seen := map[gguf.Type]bool{}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, path := range files {
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			if seen[ti.Type] || len(ti.Ne) != 2 {
				continue
			}
			seen[ti.Type] = true
			k, err := DotKernelFor(ti.Type)
			if err != nil {
				t.Fatal(err)
			}
			n := int(ti.Ne[0])
			rb, _ := gguf.RowSize(ti.Type, n)
			ab, _ := gguf.RowSize(k.ActType, n)
			a := make([]byte, ab)
			k.Quantize(randomActivations(rng, n), a)
			data := f.Data(ti)
			for r := 0; r < 8; r++ {
				w := data[r*rb : (r+1)*rb]
				want, mag := expectedDot(t, ti.Type, k, n, w, a)
				if got := k.Dot(n, w, a); math.Abs(float64(got)-want) > 1e-5*mag {
					t.Errorf("%s %s row %d (%s): dot %g, want %g", f.Path, ti.Name, r, k.Impl, got, want)
				}
				if ref := dotTable[ti.Type].ref(n, w, a); math.Abs(float64(ref)-want) > 1e-5*mag {
					t.Errorf("%s %s row %d (ref): dot %g, want %g", f.Path, ti.Name, r, ref, want)
				}
			}
		}
		f.Close()
	}
	var types []string
	for typ := range seen {
		types = append(types, typ.String())
	}
	slices.Sort(types)
	t.Logf("checked weight types %v", types)
}

// Activation encodings: ggml's x86 Q8_0/Q8_1 rounding (127/amax, ties to
// even) stays within half a step of x, and Q8_1's s is f16(d*sum q).
func TestQuantizeActivations(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	x := randomActivations(rng, 512)
	x[100] = 2.5 * 127 / 9 // lands near a tie in its block
	for _, act := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ8_1, gguf.TypeQ8_K} {
		var k *DotKernel
		for _, e := range dotTable {
			if e.act == act {
				k = &e.kernel
				break
			}
		}
		ab, _ := gguf.RowSize(act, len(x))
		a := make([]byte, ab)
		k.Quantize(x, a)
		y := make([]float32, len(x))
		if err := gguf.Dequantize(act, a, y); err != nil {
			t.Fatal(err)
		}
		bs := act.BlockSize()
		for b := 0; b < len(x)/bs; b++ {
			var amax float64
			for _, v := range x[b*bs : (b+1)*bs] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			d := amax / 127
			for i := b * bs; i < (b+1)*bs; i++ {
				// half a step plus the f16 rounding of d (2^-11 relative) times 127
				if e := math.Abs(float64(x[i] - y[i])); e > 0.5*d+amax*1e-3+1e-12 {
					t.Fatalf("%s element %d: |x-deq| = %g, step %g", act, i, e, d)
				}
			}
		}
	}
	// all-zero input encodes to zeros without NaNs
	for _, typ := range dotTypes {
		k, _ := DotKernelFor(typ)
		ab, _ := gguf.RowSize(k.ActType, 256)
		a := make([]byte, ab)
		k.Quantize(make([]float32, 256), a)
		w := randomWeightRow(rng, typ, 256)
		if got := k.Dot(256, w, a); got != 0 {
			t.Errorf("%s: dot with zero activations = %g", typ, got)
		}
	}
}

func TestDotKernelForUnknown(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.TypeQ8_K, gguf.TypeIQ2_XXS, gguf.Type(99)} {
		if _, err := DotKernelFor(typ); err == nil {
			t.Errorf("DotKernelFor(%s) succeeded", typ)
		}
	}
}

// BenchmarkDot measures one weight row of 4096 against an encoded activation
// row, over 256 rows (the weights stay in L2 for small types): GB/s of
// weight bytes read, for the kernel DotKernelFor returns and for the
// reference.
func BenchmarkDot(b *testing.B) {
	const n, rows = 4096, 256
	rng := rand.New(rand.NewPCG(9, 10))
	for _, typ := range dotTypes {
		k, _ := DotKernelFor(typ)
		rb, _ := gguf.RowSize(typ, n)
		w := make([]byte, 0, rows*rb)
		for r := 0; r < rows; r++ {
			w = append(w, randomWeightRow(rng, typ, n)...)
		}
		ab, _ := gguf.RowSize(k.ActType, n)
		a := make([]byte, ab)
		k.Quantize(randomActivations(rng, n), a)
		impls := []struct {
			name string
			fn   func(int, []byte, []byte) float32
		}{{k.Impl, k.Dot}}
		if k.Impl != "go" {
			impls = append(impls, struct {
				name string
				fn   func(int, []byte, []byte) float32
			}{"go", dotTable[typ].ref})
		}
		for _, im := range impls {
			b.Run(fmt.Sprintf("%s/%s", typ, im.name), func(b *testing.B) {
				// Thread CPU time as well as wall time: on a shared 2-core
				// machine wall time mostly measures the neighbours.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPUSeconds()
				var sink float32
				for b.Loop() {
					for r := 0; r < rows; r++ {
						sink += im.fn(n, w[r*rb:(r+1)*rb], a)
					}
				}
				cpu := threadCPUSeconds() - cpu0
				b.ReportMetric(float64(rows*rb)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
				if cpu > 0 {
					b.ReportMetric(float64(rows*rb)*float64(b.N)/cpu/1e9, "cpu-GB/s")
					b.ReportMetric(float64(rows*n)*float64(b.N)/cpu/1e9, "cpu-Gweights/s")
				}
				_ = sink
			})
		}
	}
}

// threadCPUSeconds is the CPU time of the calling OS thread.
func threadCPUSeconds() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// Hot loops allocate nothing: matmul calls Quantize (and PrepareRows) once
// per activation row and DotRows once per worker's share of weight rows.
func TestDotKernelsDoNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const n = 512
	x := randomActivations(rng, n)
	for _, typ := range dotTypes {
		k, _ := DotKernelFor(typ)
		w := randomWeightRow(rng, typ, n)
		ab, _ := gguf.RowSize(k.ActType, n)
		a := make([]byte, ab)
		if allocs := testing.AllocsPerRun(20, func() { k.Quantize(x, a) }); allocs != 0 {
			t.Errorf("%s: Quantize allocates %v times", typ, allocs)
		}
		if allocs := testing.AllocsPerRun(20, func() { k.Dot(n, w, a) }); allocs != 0 {
			t.Errorf("%s: Dot allocates %v times", typ, allocs)
		}
		prep, out := a, make([]float32, 1)
		if k.PrepareRows != nil {
			prep = make([]byte, k.RowsActBytes(n))
			if allocs := testing.AllocsPerRun(20, func() { k.PrepareRows(n, a, prep) }); allocs != 0 {
				t.Errorf("%s: PrepareRows allocates %v times", typ, allocs)
			}
		}
		if allocs := testing.AllocsPerRun(20, func() { k.DotRows(n, w, len(w), prep, out) }); allocs != 0 {
			t.Errorf("%s: DotRows allocates %v times", typ, allocs)
		}
	}
}
