//go:build goexperiment.simd && amd64

package ops

import (
	"simd/archsimd"
	"unsafe"

	"ladder-engine/gguf"
)

// Row kernels for decoding (DotKernel.DotRows): many weight rows against
// one activation row, which PrepareRows has laid out once per matmul so
// that the per-row inner loop does only the weight side. Rows are streamed
// one after another, in address order: kernels that walk four rows in step
// gave the hardware prefetcher four short streams and waited on memory
// (12.6 against 23 GB/s from cache for 768-column Q4_0 rows on the CPU this
// was tuned on), while one row at a time keeps 21-25 GB/s out of DRAM.
//
// The loops use unsafe pointers after checking the slice lengths once at
// the top: Go's bounds checks and address arithmetic otherwise outnumber
// the vector instructions.

// useFastDotRows installs the row kernels. They use only 256-bit AVX2
// instructions and serve the AVX2 build too (useFastDotsAVX2, which then
// puts the assembly kernels of quant_dot_rows_avx2.go in for Q4_0, Q8_0
// and F16; dotRowsQ4_0AVX512 stays the Q4_0 one's twin); the Q4_0
// kernel's leftover blocks take dotQ4_0Tail.
func useFastDotRows() {
	e := dotTable[gguf.TypeQ4_0]
	e.fastRows, e.prepRows, e.rowsActBytes = dotRowsQ4_0AVX512, prepRowsQ8_0, rowsActBytesQ8_0
	dotTable[gguf.TypeQ4_K].fastRows = dotRowsQ4_KAVX512
	dotTable[gguf.TypeQ6_K].fastRows = dotRowsQ6_KAVX512
	if hasKQuantRowsAsm { // the assembly (quant_dot_rows_kquant.go), these its twins
		dotTable[gguf.TypeQ4_K].fastRows = dotRowsQ4_KAVX2
		dotTable[gguf.TypeQ6_K].fastRows = dotRowsQ6_KAVX2
	}
}

// dotRowsCheck panics (a programmer error, as an index out of range would)
// unless w holds rows rows of rowBytes, the last rowLen bytes long, and a
// holds actLen bytes.
func dotRowsCheck(w []byte, rows, rowBytes, rowLen int, a []byte, actLen int) {
	if rows > 0 && (len(w) < (rows-1)*rowBytes+rowLen || rowBytes < rowLen) || len(a) < actLen {
		panic("ops: DotRows: weight or activation slice too short")
	}
}

// q8_0Prep is a group of eight Q8_0 activation blocks laid out for the
// Q4_0 row kernel: per pair of blocks, the first and the second 16
// activations of both blocks (matching the low and the high nibbles of two
// weight blocks loaded side by side), the nibble offset's correction
// 8·(y_j + y_j+1) as VPMADDUBSW leaves pair sums, and the eight block
// scales ×2^112 in the order VPHADDD leaves the block sums (hOrder).
type q8_0Prep struct {
	lo, hi [4][32]int8
	corr   [4][16]int16
	dy     [8]float32
}

const q8_0PrepBytes = int(unsafe.Sizeof(q8_0Prep{})) // 416

var hOrder = [8]int{0, 2, 4, 6, 1, 3, 5, 7}

// rowsActBytesQ8_0: a q8_0Prep per eight blocks, then the last n/32 mod 8
// blocks as they were (Q8_0).
func rowsActBytesQ8_0(n int) int {
	nb := n / 32
	return nb/8*q8_0PrepBytes + nb%8*34
}

// prepRowsQ8_0 lays out a Q8_0 row of n elements (enc) for dotRowsQ4_0AVX512.
func prepRowsQ8_0(n int, enc, prep []byte) {
	nb := n / 32
	if len(enc) < 34*nb || len(prep) < rowsActBytesQ8_0(n) {
		panic("ops: PrepareRows: activation slice too short")
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(prep)))%4 != 0 {
		panic("ops: PrepareRows: prep not 4-byte aligned")
	}
	eight := archsimd.BroadcastUint8x32(8)
	y := unsafe.Pointer(unsafe.SliceData(enc))
	for g := 0; g < nb/8; g++ {
		pg := (*q8_0Prep)(unsafe.Pointer(&prep[g*q8_0PrepBytes]))
		yg := unsafe.Add(y, 34*8*g)
		for k := 0; k < 4; k++ {
			yb := unsafe.Add(yg, 68*k)
			ya := archsimd.LoadInt8x32((*[32]int8)(unsafe.Add(yb, 2)))
			yc := archsimd.LoadInt8x32((*[32]int8)(unsafe.Add(yb, 36)))
			lo := ya.Select128FromPair(0, 2, yc) // y_b[0:16], y_b+1[0:16]
			hi := ya.Select128FromPair(1, 3, yc) // y_b[16:32], y_b+1[16:32]
			lo.Store(&pg.lo[k])
			hi.Store(&pg.hi[k])
			eight.DotProductPairsSaturated(lo).Add(eight.DotProductPairsSaturated(hi)).Store(&pg.corr[k])
		}
		archsimd.ClearAVXUpperBits() // scalar float code follows
		for j, b := range hOrder {
			pg.dy[j] = 0x1p112 * gguf.F16ToF32(*(*uint16)(unsafe.Add(yg, 34*b)))
		}
	}
	copy(prep[nb/8*q8_0PrepBytes:], enc[34*(nb/8*8):34*nb])
}

// dotRowsQ4_0AVX512: Q4_0 × Q8_0 (prepared by prepRowsQ8_0), eight blocks
// per step. Two weight blocks' 16 nibble bytes sit in the two 128-bit
// halves of one vector; VPMADDUBSW multiplies the unsigned nibbles q
// (0..15) by the activations, and the prepared correction removes the
// offset: Σ(q−8)·y. Pair sums stay below 2·(2·15·128)+8·2·255 in
// magnitude, well inside int16. VPHADDD gathers the eight block sums into
// one vector, converted and scaled once: one VCVTDQ2PS and one FMA per 256
// weights.
func dotRowsQ4_0AVX512(n int, w []byte, rb int, a []byte, out []float32) {
	nb := n / 32
	rows := len(out)
	dotRowsCheck(w, rows, rb, 18*nb, a, rowsActBytesQ8_0(n))
	m4 := archsimd.BroadcastUint8x32(0x0f)
	ones := archsimd.BroadcastInt16x16(1)
	sh4 := archsimd.BroadcastUint16x16(1 << 12)
	groups, tail := nb/8, nb%8
	ap := unsafe.Pointer(unsafe.SliceData(a))
	row := func(r int) archsimd.Float32x8 {
		return q4_0Row(unsafe.Pointer(unsafe.SliceData(w[r*rb:])), ap, groups, m4, ones, sh4)
	}
	r := 0
	for ; r+4 <= rows; r += 4 {
		hsum4(row(r), row(r+1), row(r+2), row(r+3), out[r:r+4])
	}
	for ; r < rows; r++ {
		out[r] = dotHsum8(row(r))
	}
	if tail != 0 {
		for r := 0; r < rows; r++ {
			out[r] += dotQ4_0Tail(32*tail, w[r*rb+18*8*groups:], a[groups*q8_0PrepBytes:])
		}
	}
}

// dotQ4_0Tail is the one-row Q4_0 kernel of the instruction set in use.
func dotQ4_0Tail(n int, w, a []byte) float32 {
	if hasAVX512 {
		return dotQ4_0AVX512(n, w, a)
	}
	return dotQ4_0AVX2(n, w, a)
}

// q4_0Row is the lane-wise sum over groups·8 Q4_0 blocks at x against the
// prepared activations at ap.
func q4_0Row(x, ap unsafe.Pointer, groups int, m4 archsimd.Uint8x32, ones archsimd.Int16x16, sh4 archsimd.Uint16x16) archsimd.Float32x8 {
	var acc archsimd.Float32x8
	for g := 0; g < groups; g++ {
		pg := (*q8_0Prep)(unsafe.Add(ap, g*q8_0PrepBytes))
		p0 := q4_0Pair(x, pg, 0, m4, ones, sh4)
		p1 := q4_0Pair(unsafe.Add(x, 36), pg, 1, m4, ones, sh4)
		p2 := q4_0Pair(unsafe.Add(x, 72), pg, 2, m4, ones, sh4)
		p3 := q4_0Pair(unsafe.Add(x, 108), pg, 3, m4, ones, sh4)
		p := p0.AddPairsGrouped(p1).AddPairsGrouped(p2.AddPairsGrouped(p3)) // blocks in hOrder
		s := q4_0Scales8(x).Mul(archsimd.LoadFloat32x8(&pg.dy))
		acc = p.ConvertToFloat32().MulAdd(s, acc)
		x = unsafe.Add(x, 8*18)
	}
	return acc
}

// hsum4 stores the lane sums of four rows' accumulators into out[0:4].
func hsum4(a0, a1, a2, a3 archsimd.Float32x8, out []float32) {
	s := a0.AddPairsGrouped(a1).AddPairsGrouped(a2.AddPairsGrouped(a3))
	s.GetLo().Add(s.GetHi()).StoreSlice(out[:4])
}

// dotRowsQ4_KAVX512 and dotRowsQ6_KAVX512 run the one-row kernels' super-
// block steps row after row, and sum four rows' lanes at once.
func dotRowsQ4_KAVX512(n int, w []byte, rb int, a []byte, out []float32) {
	nb := n / 256
	rows := len(out)
	dotRowsCheck(w, rows, rb, 144*nb, a, q8KBlock*nb)
	m4 := archsimd.BroadcastUint8x32(0x0f)
	ones := archsimd.BroadcastInt16x16(1)
	ap := unsafe.Pointer(unsafe.SliceData(a))
	row := func(r int) archsimd.Float32x8 {
		x, y := unsafe.Pointer(unsafe.SliceData(w[r*rb:])), ap
		var acc archsimd.Float32x8
		for i := 0; i < nb; i++ {
			acc = q4KSuper(x, y, m4, ones, acc)
			x, y = unsafe.Add(x, 144), unsafe.Add(y, q8KBlock)
		}
		return acc
	}
	r := 0
	for ; r+4 <= rows; r += 4 {
		hsum4(row(r), row(r+1), row(r+2), row(r+3), out[r:r+4])
	}
	for ; r < rows; r++ {
		out[r] = dotHsum8(row(r))
	}
}

func dotRowsQ6_KAVX512(n int, w []byte, rb int, a []byte, out []float32) {
	nb := n / 256
	rows := len(out)
	dotRowsCheck(w, rows, rb, 210*nb, a, q8KBlock*nb)
	m4 := archsimd.BroadcastUint8x32(0x0f)
	m30 := archsimd.BroadcastUint8x32(0x30)
	ones := archsimd.BroadcastInt16x16(1)
	ap := unsafe.Pointer(unsafe.SliceData(a))
	row := func(r int) archsimd.Float32x8 {
		x, y := unsafe.Pointer(unsafe.SliceData(w[r*rb:])), ap
		var acc archsimd.Float32x8
		for i := 0; i < nb; i++ {
			acc = q6KSuper(x, y, m4, m30, ones, acc)
			x, y = unsafe.Add(x, 210), unsafe.Add(y, q8KBlock)
		}
		return acc
	}
	r := 0
	for ; r+4 <= rows; r += 4 {
		hsum4(row(r), row(r+1), row(r+2), row(r+3), out[r:r+4])
	}
	for ; r < rows; r++ {
		out[r] = dotHsum8(row(r))
	}
}

// q4_0Pair is Σ(q−8)·y of the two Q4_0 blocks at x against pair k of pg,
// as four int32 partial sums per block [b b b b | b+1 b+1 b+1 b+1].
func q4_0Pair(x unsafe.Pointer, pg *q8_0Prep, k int, m4 archsimd.Uint8x32, ones archsimd.Int16x16, sh4 archsimd.Uint16x16) archsimd.Int32x8 {
	// the 32-byte load at x+2 ends inside the second block (36 bytes from x)
	q := archsimd.LoadUint8x32((*[32]uint8)(unsafe.Add(x, 2))).SetHi(archsimd.LoadUint8x16((*[16]uint8)(unsafe.Add(x, 20))))
	lo := q.And(m4)
	hi := q.AsUint16x16().MulHigh(sh4).AsUint8x32().And(m4) // >> 4 (shr16x16, the constant hoisted)
	return lo.DotProductPairsSaturated(archsimd.LoadInt8x32(&pg.lo[k])).
		Add(hi.DotProductPairsSaturated(archsimd.LoadInt8x32(&pg.hi[k]))).
		Sub(archsimd.LoadInt16x16(&pg.corr[k])).DotProductPairs(ones)
}

// q4_0Scales8 converts the f16 scales of the eight Q4_0 blocks at x, in
// hOrder, to float32 times 2^-112: f16ToF32x16's conversion without its
// infinity and NaN cases (the sign-extended half shifted 13 up has the sign
// in bits 31..28 and exponent and mantissa in 27..13; keep bit 31 and
// 27..13). prepRowsQ8_0 folded the 2^112 into the activation scales, so
// each scale product rounds once, as half(x)*half(y) does.
func q4_0Scales8(x unsafe.Pointer) archsimd.Float32x8 {
	var h archsimd.Uint16x8
	h = h.SetElem(0, *(*uint16)(x)).SetElem(1, *(*uint16)(unsafe.Add(x, 36))).
		SetElem(2, *(*uint16)(unsafe.Add(x, 72))).SetElem(3, *(*uint16)(unsafe.Add(x, 108))).
		SetElem(4, *(*uint16)(unsafe.Add(x, 18))).SetElem(5, *(*uint16)(unsafe.Add(x, 54))).
		SetElem(6, *(*uint16)(unsafe.Add(x, 90))).SetElem(7, *(*uint16)(unsafe.Add(x, 126)))
	return shl32x8(h.AsInt16x8().ExtendToInt32().AsUint32x8(), 13).AsInt32x8().And(archsimd.BroadcastInt32x8(-0x70002000)).AsFloat32x8()
}
