//go:build goexperiment.simd && amd64

package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"ladder-engine/gguf"
)

// The assembly row kernels for Q4_K and Q6_K against their archsimd twins
// and the Go reference dots, on random blocks and edge cases: zero scales,
// the largest 6-bit scales and mins (and int8 scales ±127/−128), all
// quants 0 or at their maximum, activations all +127, all −128 or
// alternating, 1..4 super-blocks, odd row counts, rows padded apart.
//
// Tolerance. The integer sums are exact in every kernel; they differ only
// in how the float32 terms (d·dy times a lane's or the super-block's
// integer sum, and the same for the mins) are added up, plus the rounding
// of an int32 lane sum above 2^24 when converted. Each result is a sum of
// at most 2·nb products per lane over 8 lanes (a chain of at most 2·nb+3
// float32 additions), so it is within (2·nb+4)·u·M of the exact value, u =
// 2^-24 and M the sum of the absolute values of all terms (bounding every
// partial sum); two kernels then differ by at most (4·nb+8)·u·M. The test
// allows exactly that, with M from kquantMag.

type kquantRowsKernel struct {
	typ       gguf.Type
	blockSize int // bytes per super-block
	asm, twin func(n int, w []byte, rb int, a []byte, out []float32)
	ref       func(n int, w, a []byte) float32
	mag       func(x, y []byte) float64
	gens      []func(rng *rand.Rand, b []byte)
}

func kquantRowsKernels() []kquantRowsKernel {
	h := func(b []byte, off int, v float32) { binary.LittleEndian.PutUint16(b[off:], gguf.F32ToF16(v)) }
	fill := func(b []byte, v byte) {
		for i := range b {
			b[i] = v
		}
	}
	random := func(rng *rand.Rand, b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	q4 := []func(*rand.Rand, []byte){
		func(rng *rand.Rand, b []byte) { // quantized data
			x := make([]float32, 256)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 0.02)
			}
			if err := gguf.Quantize(gguf.TypeQ4_K, x, b); err != nil {
				panic(err)
			}
		},
		func(rng *rand.Rand, b []byte) { // any scales, mins and quants
			random(rng, b)
			h(b, 0, float32(rng.Float64()*0.01))
			h(b, 2, float32(rng.Float64()*0.01))
		},
		func(rng *rand.Rand, b []byte) { // d = dmin = 0
			random(rng, b)
			h(b, 0, 0)
			h(b, 2, 0)
		},
		func(rng *rand.Rand, b []byte) { // all scales and mins 63, quants 15
			fill(b, 0xff)
			h(b, 0, 1.5)
			h(b, 2, 0.75)
		},
		func(rng *rand.Rand, b []byte) { // all scales and mins 63, quants 0
			fill(b, 0xff)
			fill(b[16:], 0)
			h(b, 0, 1)
			h(b, 2, -2)
		},
		func(rng *rand.Rand, b []byte) { // largest scales, random quants
			random(rng, b)
			fill(b[4:16], 0xff)
			h(b, 0, 0.5)
			h(b, 2, 0.25)
		},
	}
	q6 := []func(*rand.Rand, []byte){
		func(rng *rand.Rand, b []byte) {
			x := make([]float32, 256)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 0.02)
			}
			if err := gguf.Quantize(gguf.TypeQ6_K, x, b); err != nil {
				panic(err)
			}
		},
		func(rng *rand.Rand, b []byte) {
			random(rng, b)
			h(b, 208, float32(rng.Float64()*0.01))
		},
		func(rng *rand.Rand, b []byte) { // d = 0
			random(rng, b)
			h(b, 208, 0)
		},
		func(rng *rand.Rand, b []byte) { // quants 63 (+31), scales 127
			fill(b, 0xff)
			fill(b[192:208], 127)
			h(b, 208, 1)
		},
		func(rng *rand.Rand, b []byte) { // quants 63, scales −128
			fill(b, 0xff)
			fill(b[192:208], 0x80)
			h(b, 208, 1)
		},
		func(rng *rand.Rand, b []byte) { // quants 0 (−32), scales −128
			fill(b, 0)
			fill(b[192:208], 0x80)
			h(b, 208, -3)
		},
		func(rng *rand.Rand, b []byte) { // random quants, extreme scales
			random(rng, b)
			for j := 192; j < 208; j++ {
				b[j] = []byte{0x7f, 0x80}[rng.IntN(2)]
			}
			h(b, 208, 0.5)
		},
	}
	return []kquantRowsKernel{
		{gguf.TypeQ4_K, 144, dotRowsQ4_KAVX2, dotRowsQ4_KAVX512, dotQ4_KRef, kquantMagQ4_K, q4},
		{gguf.TypeQ6_K, 210, dotRowsQ6_KAVX2, dotRowsQ6_KAVX512, dotQ6_KRef, kquantMagQ6_K, q6},
	}
}

// q8KGens make Q8_K activation blocks: quantized data (with −128 at the
// largest magnitude), all +127, all −128, alternating; bsums filled in.
var q8KGens = []func(rng *rand.Rand, b []byte){
	func(rng *rand.Rand, b []byte) {
		QuantizeActQ8_K(randomActivations(rng, 256), b)
	},
	func(rng *rand.Rand, b []byte) { q8KFill(b, 0.01, func(int) int8 { return 127 }) },
	func(rng *rand.Rand, b []byte) { q8KFill(b, 0.02, func(int) int8 { return -128 }) },
	func(rng *rand.Rand, b []byte) {
		q8KFill(b, 1, func(i int) int8 { return [2]int8{127, -128}[i%2] })
	},
	func(rng *rand.Rand, b []byte) {
		q8KFill(b, float32(rng.Float64()), func(int) int8 { return int8(rng.Uint32()) })
	},
}

func q8KFill(b []byte, d float32, q func(i int) int8) {
	binary.LittleEndian.PutUint32(b, math.Float32bits(d))
	for j := 0; j < 16; j++ {
		s := 0
		for i := 16 * j; i < 16*j+16; i++ {
			v := q(i)
			b[4+i] = byte(v)
			s += int(v)
		}
		binary.LittleEndian.PutUint16(b[4+256+2*j:], uint16(int16(s)))
	}
}

// kquantMagQ4_K is Σ|terms| of one super-block's dot: |d·dy|·Σ sc·q·|y|
// plus |dmin·dy|·Σ m·|y|.
func kquantMagQ4_K(x, y []byte) float64 {
	dy := math.Abs(float64(f32At(y)))
	var si, sm float64
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, x[4:16])
		for l := 0; l < 32; l++ {
			q := x[16+32*(j/2)+l] >> (4 * (j % 2)) & 0xf
			ay := math.Abs(float64(int8(y[4+32*j+l])))
			si += float64(sc) * float64(q) * ay
			sm += float64(m) * ay
		}
	}
	return math.Abs(float64(half(x)))*dy*si + math.Abs(float64(half(x[2:])))*dy*sm
}

// kquantMagQ6_K: |d·dy|·Σ|s|·(q+32 and 32)·|y|, the two parts the
// kernels sum separately.
func kquantMagQ6_K(x, y []byte) float64 {
	var s float64
	for h := 0; h < 2; h++ {
		for l := 0; l < 32; l++ {
			ql0, ql1, qh := x[64*h+l], x[64*h+l+32], x[128+32*h+l]
			qs := [4]int{int(ql0&0xf | (qh&3)<<4), int(ql1&0xf | (qh>>2&3)<<4), int(ql0>>4 | (qh>>4&3)<<4), int(ql1>>4 | (qh>>6)<<4)}
			for k, q := range qs {
				e := 128*h + 32*k + l
				sc := math.Abs(float64(int8(x[192+e/16])))
				s += sc * float64(q+32) * math.Abs(float64(int8(y[4+e])))
			}
		}
	}
	return math.Abs(float64(half(x[208:])) * float64(f32At(y)) * s)
}

func TestDotRowsKQuantAsm(t *testing.T) {
	if !hasKQuantRowsAsm {
		t.Skip("no AVX2+FMA+F16C")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for _, k := range kquantRowsKernels() {
		for nb := 1; nb <= 4; nb++ {
			n := 256 * nb
			for _, rows := range []int{1, 3, 5, 7, 8, 17} {
				for _, pad := range []int{0, 13, 64} {
					for ag := range q8KGens {
						for rep := 0; rep < 3; rep++ {
							name := fmt.Sprintf("%s/nb=%d/rows=%d/pad=%d/act=%d/%d", k.typ, nb, rows, pad, ag, rep)
							kquantRowsCase(t, name, rng, k, n, rows, pad, ag, rep)
						}
					}
				}
			}
		}
	}
}

func kquantRowsCase(t *testing.T, name string, rng *rand.Rand, k kquantRowsKernel, n, rows, pad, ag, rep int) {
	nb := n / 256
	rl := k.blockSize * nb
	rb := rl + pad
	w := make([]byte, (rows-1)*rb+rl) // no padding after the last row
	for i := range w {
		w[i] = 0xa5 // padding garbage
	}
	for r := 0; r < rows; r++ {
		for b := 0; b < nb; b++ {
			g := (r*nb + b + rep) % len(k.gens)
			if rep == 2 {
				g = rng.IntN(len(k.gens))
			}
			k.gens[g](rng, w[r*rb+k.blockSize*b:r*rb+k.blockSize*(b+1)])
		}
	}
	a := make([]byte, q8KBlock*nb)
	for b := 0; b < nb; b++ {
		g := ag
		if rep == 2 {
			g = rng.IntN(len(q8KGens))
		}
		q8KGens[g](rng, a[q8KBlock*b:q8KBlock*(b+1)])
	}
	got := make([]float32, rows)
	twin := make([]float32, rows)
	for i := range got {
		got[i] = float32(math.NaN())
	}
	k.asm(n, w, rb, a, got)
	k.twin(n, w, rb, a, twin)
	for r := 0; r < rows; r++ {
		x := w[r*rb : r*rb+rl]
		want := k.ref(n, x, a)
		var mag float64
		for b := 0; b < nb; b++ {
			mag += k.mag(x[k.blockSize*b:], a[q8KBlock*b:])
		}
		tol := float64(4*nb+8) * 0x1p-24 * mag
		if d := math.Abs(float64(got[r]) - float64(want)); !(d <= tol) {
			t.Errorf("%s row %d: asm %g, reference %g (|diff| %g > tol %g)", name, r, got[r], want, d, tol)
		}
		if d := math.Abs(float64(got[r]) - float64(twin[r])); !(d <= tol) {
			t.Errorf("%s row %d: asm %g, archsimd twin %g (|diff| %g > tol %g)", name, r, got[r], twin[r], d, tol)
		}
		if mag == 0 && got[r] != 0 {
			t.Errorf("%s row %d: asm %g, want exactly 0", name, r, got[r])
		}
	}
}

// The kernels write exactly len(out) results: nothing before or after.
func TestDotRowsKQuantAsmBounds(t *testing.T) {
	if !hasKQuantRowsAsm {
		t.Skip("no AVX2+FMA+F16C")
	}
	rng := rand.New(rand.NewPCG(23, 24))
	for _, k := range kquantRowsKernels() {
		n := 768
		rb := k.blockSize * 3
		w := make([]byte, 5*rb)
		for r := 0; r < 5; r++ {
			for b := 0; b < 3; b++ {
				k.gens[0](rng, w[r*rb+k.blockSize*b:][:k.blockSize])
			}
		}
		a := make([]byte, 3*q8KBlock)
		for b := 0; b < 3; b++ {
			q8KGens[0](rng, a[q8KBlock*b:][:q8KBlock])
		}
		buf := []float32{-1, 0, 0, 0, 0, 0, -1}
		k.asm(n, w, rb, a, buf[1:6])
		if buf[0] != -1 || buf[6] != -1 {
			t.Errorf("%s: wrote outside out: %v", k.typ, buf)
		}
		k.asm(n, w, rb, a, buf[1:1]) // no rows
		k.asm(0, w, rb, a, buf[1:6]) // no columns: zeros
		for _, v := range buf[1:6] {
			if v != 0 {
				t.Errorf("%s: n=0 gave %v", k.typ, buf[1:6])
				break
			}
		}
	}
}

// The K-quant row kernels the dot table installed are the assembly ones.
func TestDotRowsKQuantAsmInstalled(t *testing.T) {
	if !hasKQuantRowsAsm {
		t.Skip("no AVX2+FMA+F16C")
	}
	rng := rand.New(rand.NewPCG(25, 26))
	for _, kk := range kquantRowsKernels() {
		k, _ := DotKernelFor(kk.typ)
		n := 512
		w := make([]byte, 2*kk.blockSize*3)
		for b := 0; b < 6; b++ {
			kk.gens[1](rng, w[kk.blockSize*b:][:kk.blockSize])
		}
		a := make([]byte, 2*q8KBlock)
		q8KGens[4](rng, a[:q8KBlock])
		q8KGens[4](rng, a[q8KBlock:])
		got, want := make([]float32, 3), make([]float32, 3)
		k.DotRows(n, w, 2*kk.blockSize, prepareRows(k, n, a), got)
		kk.asm(n, w, 2*kk.blockSize, a, want)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("%s: DotRows %v, the assembly %v", kk.typ, got, want)
				break
			}
		}
	}
}

// BenchmarkDotRowsKQuant: the assembly against the archsimd row kernels on
// decode shapes (160m: 768 columns; 1b-ish: 2048), one thread, weights
// reused from cache where they fit (the last shape, 75 or 110 MB, does
// not: it streams from DRAM), in wall and thread CPU time (the latter
// steadier on a shared machine).
func BenchmarkDotRowsKQuant(b *testing.B) {
	if !hasKQuantRowsAsm {
		b.Skip("no AVX2+FMA+F16C")
	}
	rng := rand.New(rand.NewPCG(27, 28))
	for _, k := range kquantRowsKernels() {
		for _, sh := range []struct{ rows, cols int }{{2048, 768}, {768, 2048}, {32000, 768}, {65536, 2048}} {
			nb := sh.cols / 256
			rb := k.blockSize * nb
			w := make([]byte, sh.rows*rb)
			for r := 0; r < sh.rows; r++ {
				if r >= 64 { // 64 distinct rows, repeated
					copy(w[r*rb:(r+1)*rb], w[(r%64)*rb:])
					continue
				}
				for bl := 0; bl < nb; bl++ {
					k.gens[0](rng, w[r*rb+k.blockSize*bl:][:k.blockSize])
				}
			}
			a := make([]byte, nb*q8KBlock)
			for bl := 0; bl < nb; bl++ {
				q8KGens[0](rng, a[q8KBlock*bl:][:q8KBlock])
			}
			out := make([]float32, sh.rows)
			for _, im := range []struct {
				name string
				fn   func(int, []byte, int, []byte, []float32)
			}{{"archsimd", k.twin}, {"asm", k.asm}} {
				b.Run(fmt.Sprintf("%s/%dx%d/%s", k.typ, sh.rows, sh.cols, im.name), func(b *testing.B) {
					b.SetBytes(int64(len(w)))
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					cpu0 := threadCPUSeconds()
					for b.Loop() {
						im.fn(sh.cols, w, rb, a, out)
					}
					if cpu := threadCPUSeconds() - cpu0; cpu > 0 {
						b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/op")
					}
				})
			}
		}
	}
}
